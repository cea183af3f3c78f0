"""fal's Platform API (`https://api.fal.ai/v1/…`) answered by NXS for its own customers.

`queries`, `prices`, `account` and `keys` are framework-free reads and writes over the
store (the portal uses them too; key aliases live in the portal's migration); `params`
reads fal's query parameters, `wire` writes fal's JSON, `app` routes `/v1/…`.
"""
