"""Administration of NXS: the `nxs customers|keys|upstream` commands over the store.

(The admin HTTP API of issue 4 will live here too, off the gateway's hot path.)
"""
