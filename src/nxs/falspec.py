"""fal's public conventions that several subsystems share: the `image_size` presets.

The emulator renders them, billing estimates megapixels from them; both read this one
table so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

IMAGE_SIZES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "square_hd": (1024, 1024),
        "square": (512, 512),
        "portrait_4_3": (768, 1024),
        "portrait_16_9": (576, 1024),
        "landscape_4_3": (1024, 768),
        "landscape_16_9": (1024, 576),
    }
)
