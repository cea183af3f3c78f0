"""The local fal: one aiohttp server playing every fal host under a path prefix.

`/fal.run/…`, `/queue.fal.run/…`, `/rest.fal.ai/…`, `/rest.alpha.fal.ai/…`,
`/v3.fal.media/…` and `/api.fal.ai/…`, speaking fal's wire protocol as the official
clients expect it. See README "The emulator".
"""
