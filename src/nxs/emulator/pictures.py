"""The image models' work: text-to-image, image-to-image and inpainting, upscaling and
background removal, each answering in its fal app's shape.

Text-to-image renders at the requested `image_size` (or `aspect_ratio`); an edit keeps
its input image's size, tinted towards a picture drawn from the prompt and seed; an
upscale multiplies it; a cut-out is an RGBA PNG of the same size. Sides are capped at
`MAX_SIDE` to keep the work cheap.
"""

from __future__ import annotations

import io
from typing import Any, Final

from PIL import Image, ImageDraw

from nxs.emulator.files import FileStore, file_entry, publish
from nxs.emulator.images import CONTENT_TYPES, Picture, render
from nxs.emulator.media import MEDIA_KEY, Media
from nxs.emulator.models import Model

MAX_SIDE: Final = 4096
RATIO_LONG_SIDE: Final = 1024  # an `aspect_ratio` model's image: this long side


def output_size(clean: dict[str, Any]) -> tuple[int, int]:
    """The size a text-to-image input asks for: `image_size`, else `aspect_ratio`."""
    if "image_size" in clean:
        return clean["image_size"]["width"], clean["image_size"]["height"]
    across, down = (int(part) for part in clean.get("aspect_ratio", "1:1").split(":"))
    if across >= down:
        return RATIO_LONG_SIDE, max(1, RATIO_LONG_SIDE * down // across)
    return max(1, RATIO_LONG_SIDE * across // down), RATIO_LONG_SIDE


def capped(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def source(clean: dict[str, Any], field: str = "image_url") -> Media:
    media: Media = clean[MEDIA_KEY][field]
    return media


def units(model: Model, count: int, size: tuple[int, int]) -> float:
    """Billable units: megapixels of the output, else one per image (or request)."""
    if model.unit == "megapixel":
        return round(count * size[0] * size[1] / 1_000_000, 2)
    return count


def generate(
    model: Model, clean: dict[str, Any], files: FileStore, base: str
) -> tuple[dict[str, Any], float]:
    """Text-to-image, image-to-image and inpainting: `images`, `seed`, `timings`…"""
    size = (
        output_size(clean) if model.kind == "image" else capped(*source(clean).size or (512, 512))
    )
    fmt = clean.get(model.format_field, "jpeg")
    images = []
    for index in range(clean.get("num_images", 1)):
        picture = render(clean["prompt"], clean.get("seed", 0), index, size, fmt)
        if model.kind == "edit":
            picture = _edited(picture, source(clean), clean.get("strength", 0.5), fmt)
        name = f"image.{picture.extension}"
        url = publish(
            files, base, picture.data, picture.content_type, name, clean.get("sync_mode", False)
        )
        images.append(
            {"url": url, "width": size[0], "height": size[1], "content_type": picture.content_type}
        )
    payload = {
        "images": images,
        "timings": {"inference": model.seconds},
        "seed": clean.get("seed", 0),
        "has_nsfw_concepts": [False] * len(images),
        "prompt": clean["prompt"],
    }
    return payload, units(model, len(images), size)


def _edited(drawn: Picture, original: Media, strength: float, fmt: str) -> Picture:
    """The input image blended towards the drawn one by `strength` (at most half-way)."""
    with Image.open(io.BytesIO(original.data)) as opened:
        base = opened.convert("RGB").resize((drawn.width, drawn.height))
    with Image.open(io.BytesIO(drawn.data)) as overlay:
        blended = Image.blend(base, overlay.convert("RGB"), min(0.5, strength / 2))
    return Picture(_encode(blended, fmt), drawn.width, drawn.height, CONTENT_TYPES[fmt], fmt)


def _encode(picture: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        picture.save(buffer, format="PNG", compress_level=1)
    else:
        picture.convert("RGB").save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _image_file(data: bytes, fmt: str, size: tuple[int, int], url: str) -> dict[str, Any]:
    entry = file_entry(url, data, CONTENT_TYPES.get(fmt, "image/png"), url.rsplit("/", 1)[-1])
    return {**entry, "width": size[0], "height": size[1]}


def upscale(
    model: Model, clean: dict[str, Any], files: FileStore, base: str
) -> tuple[dict[str, Any], float]:
    """`{"image": …}` at the input's size times `scale` / `upscale_factor` / `upscaling_factor`."""
    original = source(clean)
    width, height = original.size or (512, 512)
    factor = float(
        clean.get("scale") or clean.get("upscale_factor") or clean.get("upscaling_factor") or 2
    )
    size = capped(round(width * factor), round(height * factor))
    fmt = clean.get("output_format", "png")
    with Image.open(io.BytesIO(original.data)) as opened:
        data = _encode(opened.convert("RGB").resize(size, Image.Resampling.BILINEAR), fmt)
    url = publish(files, base, data, CONTENT_TYPES[fmt], f"upscaled.{fmt}", False)
    payload: dict[str, Any] = {"image": _image_file(data, fmt, size, url)}
    if "seed" in clean:
        payload["seed"] = clean["seed"]
    if model.endpoint_id != "fal-ai/esrgan":
        payload["timings"] = {"inference": model.seconds}
    return payload, units(model, 1, size) if model.unit == "megapixel" else 1


def cut_out(
    model: Model, clean: dict[str, Any], files: FileStore, base: str
) -> tuple[dict[str, Any], float]:
    """`{"image": …}`: the input as an RGBA PNG, its background (outside an ellipse) clear."""
    original = source(clean)
    with Image.open(io.BytesIO(original.data)) as opened:
        picture = opened.convert("RGBA")
    width, height = picture.size
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).ellipse(
        (width // 8, height // 8, width * 7 // 8, height * 7 // 8), fill=255
    )
    picture.putalpha(mask)
    data = _encode(picture, "png")
    url = publish(files, base, data, "image/png", "cutout.png", clean.get("sync_mode", False))
    payload: dict[str, Any] = {"image": _image_file(data, "png", (width, height), url)}
    if model.endpoint_id == "fal-ai/birefnet":
        payload["mask_image"] = None
    return payload, 1
