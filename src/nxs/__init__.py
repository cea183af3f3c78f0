"""NXS: a self-hosted gateway for fal.ai-compatible generative-media APIs.

Customers call NXS with `nxs_` keys exactly as they would call fal; NXS forwards
their calls to a pool of upstream fal keys. `nxs emulator` is a local fal.
"""

__version__ = "0.1.0"
