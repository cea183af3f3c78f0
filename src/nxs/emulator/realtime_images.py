"""What a realtime image app takes and gives: one frame's input, validated, and the
small deterministic picture (JPEG or PNG) rendered for it.

Same input and seed → the same bytes; a missing seed is chosen and returned.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from nxs.errors import ValidationFailed

IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
DEFAULT_SIZE = "square"
MIN_SIDE, MAX_SIDE = 64, 2048
FORMATS = ("jpeg", "png")


@dataclass(frozen=True)
class RealtimeInput:
    prompt: str
    seed: int
    width: int
    height: int
    num_images: int
    num_inference_steps: int
    output_format: str
    request_id: str | None


def _error(field: str, msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": ["body", field], "msg": msg, "type": kind}


def _int_in(body: dict[str, Any], field: str, low: int, high: int, default: int) -> int:
    value = body.get(field, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationFailed([_error(field, f"ensure {low} <= value <= {high}")])
    return value


def _size(value: Any) -> tuple[int, int]:
    if isinstance(value, str) and value in IMAGE_SIZES:
        return IMAGE_SIZES[value]
    if isinstance(value, dict):
        width, height = value.get("width"), value.get("height")
        if all(isinstance(v, int) and MIN_SIDE <= v <= MAX_SIDE for v in (width, height)):
            return int(width), int(height)  # type: ignore[arg-type]
    msg = f"must be one of {', '.join(IMAGE_SIZES)} or {{width, height}} in {MIN_SIDE}..{MAX_SIDE}"
    raise ValidationFailed([_error("image_size", msg)])


def parse_input(body: Any) -> RealtimeInput:
    """The frame's input as a realtime image app reads it; 422-style errors otherwise."""
    if not isinstance(body, dict):
        raise ValidationFailed(
            [{"loc": ["body"], "msg": "must be an object", "type": "type_error"}]
        )
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationFailed([_error("prompt", "field required", "value_error.missing")])
    seed = body.get("seed")
    if seed is None:
        seed = random.randrange(2**31)
    seed = _int_in({"seed": seed}, "seed", 0, 2**63 - 1, 0)
    output_format = body.get("output_format", body.get("format", "jpeg"))
    if output_format not in FORMATS:
        raise ValidationFailed([_error("output_format", "must be 'jpeg' or 'png'")])
    request_id = body.get("request_id")
    width, height = _size(body.get("image_size", DEFAULT_SIZE))
    return RealtimeInput(
        prompt=prompt,
        seed=seed,
        width=width,
        height=height,
        num_images=_int_in(body, "num_images", 1, 4, 1),
        num_inference_steps=_int_in(body, "num_inference_steps", 1, 12, 4),
        output_format=output_format,
        request_id=request_id if isinstance(request_id, str) else None,
    )


def render(request_input: RealtimeInput, index: int = 0) -> bytes:
    """A gradient with a few shapes, its colours drawn from (prompt, seed, index)."""
    digest = hashlib.sha256(f"{request_input.prompt}\0{request_input.seed}\0{index}".encode())
    rng = random.Random(digest.digest())
    size = (request_input.width, request_input.height)
    colours = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(2)]
    gradient = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270)))
    image = ImageOps.colorize(gradient.resize(size), colours[0], colours[1])
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        radius = rng.randrange(8, max(9, min(size) // 4))
        fill = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    buffer = io.BytesIO()
    if request_input.output_format == "png":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()
