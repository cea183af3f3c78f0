"""fal's model catalogue: the endpoint ids `nxs models sync` reads from fal's Platform API,
stored (migration 11) and resolved in memory by the gateway's router."""
