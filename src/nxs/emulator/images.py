"""Cheap, deterministic pictures for the emulator's image models.

A picture is a two-colour gradient with a few shapes, drawn small and scaled up to
exactly the requested size, then encoded as PNG (fast compression) or JPEG. The same
(prompt, seed, index, size, format) always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageDraw

BASE_SIDE = 128
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}


@dataclass(frozen=True)
class Picture:
    data: bytes
    width: int
    height: int
    content_type: str
    extension: str


def _palette(digest: bytes) -> list[tuple[int, int, int]]:
    return [(digest[i], digest[i + 1], digest[i + 2]) for i in range(0, 15, 3)]


def _gradient(first: tuple[int, int, int], last: tuple[int, int, int], turn: int) -> Image.Image:
    ramp = Image.linear_gradient("L").resize((BASE_SIDE, BASE_SIDE))
    ramp = ramp.rotate(90 * (turn % 4))
    bands = [
        ramp.point([a + (b - a) * v // 255 for v in range(256)])
        for a, b in zip(first, last, strict=True)
    ]
    return Image.merge("RGB", bands)


def _draw_shapes(canvas: Image.Image, digest: bytes, colours: list[tuple[int, int, int]]) -> None:
    draw = ImageDraw.Draw(canvas)
    for shape in range(3):
        x, y = digest[16 + shape * 4] % BASE_SIDE, digest[17 + shape * 4] % BASE_SIDE
        radius = 8 + digest[18 + shape * 4] % (BASE_SIDE // 3)
        box = (x - radius, y - radius, x + radius, y + radius)
        fill = colours[2 + shape]
        if digest[19 + shape * 4] % 2:
            draw.ellipse(box, fill=fill)
        else:
            draw.rectangle(box, fill=fill)


def render(prompt: str, seed: int, index: int, size: tuple[int, int], fmt: str) -> Picture:
    """One picture of exactly `size` (width, height) in `fmt` ("png" or "jpeg")."""
    digest = hashlib.sha256(f"{seed}\n{index}\n{prompt}".encode("utf-8", "surrogatepass")).digest()
    colours = _palette(digest)
    canvas = _gradient(colours[0], colours[1], digest[15])
    _draw_shapes(canvas, digest, colours)
    picture = canvas.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    if fmt == "png":
        picture.save(buffer, format="PNG", compress_level=1)
    else:
        picture.save(buffer, format="JPEG", quality=80)
    width, height = size
    return Picture(buffer.getvalue(), width, height, CONTENT_TYPES[fmt], fmt)
