"""The gateway's hot path: `nxs serve`, a raw ASGI app that authenticates `nxs_` keys and
forwards fal calls (run, queue, SDK proxy) to a pool of upstream fal keys with failover.
"""
