"""The emulator's model table: every endpoint it serves, in one place.

Each `Model` names its input schema (`schemas.py`), the shape of its output (`kind`:
images, an edited image, an upscale, a cut-out, a video, a transcript, speech, text), how
fal bills it (unit and unit price), how long it pretends to work at time scale 1 and its
catalogue category. `ModelRegistry` looks endpoints up and answers the pricing and
catalogue APIs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from nxs.emulator import schemas as s
from nxs.emulator.inputs import Field

# Output kinds (see outputs.py): what a model hands back.
IMAGE, EDIT, UPSCALE, CUTOUT = "image", "edit", "upscale", "cutout"
VIDEO, TRANSCRIPT, SPEECH, TEXT = "video", "transcript", "speech", "text"


@dataclass(frozen=True)
class Model:
    """One endpoint: schema, output kind, billing, simulated work, catalogue category."""

    endpoint_id: str
    kind: str
    schema: tuple[Field, ...]
    unit: str
    unit_price: float
    seconds: float
    category: str = "text-to-image"
    format_field: str = "output_format"

    @property
    def log_name(self) -> str:
        return self.endpoint_id.split("/", 1)[-1]

    @property
    def media_fields(self) -> tuple[str, ...]:
        """The input fields naming a file the model fetches (`image_url`, `audio_url`…)."""
        return tuple(field.name for field in self.schema if field.kind == "url")

    @property
    def display_name(self) -> str:
        return " ".join(part.replace("-", " ").title() for part in self.log_name.split("/"))


def _t2i(eid: str, schema: s.Schema, unit: str, price: float, secs: float, fmt: str = "") -> Model:
    return Model(eid, IMAGE, schema, unit, price, secs, "text-to-image", fmt or "output_format")


def _edit(eid: str, schema: s.Schema, unit: str, price: float, fmt: str = "") -> Model:
    return Model(eid, EDIT, schema, unit, price, 0.6, "image-to-image", fmt or "output_format")


def _video(eid: str, schema: s.Schema, unit: str, price: float, category: str) -> Model:
    return Model(eid, VIDEO, schema, unit, price, 1.2, category)


MODELS = (
    _t2i("fal-ai/flux/dev", s.FLUX_DEV, "megapixel", 0.025, 0.8),
    _t2i("fal-ai/flux/schnell", s.FLUX_SCHNELL, "megapixel", 0.003, 0.4),
    _t2i("fal-ai/flux-1/dev", s.FLUX_DEV, "megapixel", 0.025, 0.8),
    _t2i("fal-ai/flux-1/schnell", s.FLUX_SCHNELL, "megapixel", 0.003, 0.4),
    _t2i("fal-ai/flux-pro/v1.1", s.FLUX_PRO, "megapixel", 0.04, 0.8),
    _t2i("fal-ai/flux-pro/v1.1-ultra", s.FLUX_ULTRA, "image", 0.06, 1.0),
    _t2i("fal-ai/realistic-vision", s.SD_STYLE, "image", 0.01, 0.6, "format"),
    _t2i("fal-ai/stable-diffusion-v35-large", s.SD35, "megapixel", 0.065, 0.8),
    _t2i("fal-ai/fast-sdxl", s.SDXL, "image", 0.003, 0.5, "format"),
    _t2i("fal-ai/fast-lcm-diffusion", s.LCM, "image", 0.0015, 0.2, "format"),
    _t2i("fal-ai/recraft-v3", s.RECRAFT, "image", 0.04, 0.7),
    _t2i("fal-ai/ideogram/v2", s.IDEOGRAM, "image", 0.08, 0.8),
    _t2i("xai/grok-imagine-image", s.GROK, "image", 0.07, 0.6),
    # a namespaced endpoint with a path, to exercise the clients' `workflows/` parsing
    _t2i("workflows/fal-ai/image-pipeline/text-to-image", s.FLUX_SCHNELL, "image", 0.005, 0.3),
    _edit("fal-ai/flux/dev/image-to-image", s.FLUX_I2I, "megapixel", 0.03),
    _edit("fal-ai/fast-sdxl/image-to-image", s.SDXL_I2I, "image", 0.003, "format"),
    _edit("fal-ai/fast-sdxl/inpainting", s.SDXL_INPAINT, "image", 0.003, "format"),
    _edit("fal-ai/flux-lora/inpainting", s.FLUX_INPAINT, "megapixel", 0.035),
    _edit("fal-ai/flux-pro/kontext", s.KONTEXT, "image", 0.04),
    Model("fal-ai/esrgan", UPSCALE, s.ESRGAN, "megapixel", 0.00111, 0.5, "image-to-image"),
    Model("fal-ai/clarity-upscaler", UPSCALE, s.CLARITY, "megapixel", 0.03, 0.8, "image-to-image"),
    Model("fal-ai/aura-sr", UPSCALE, s.AURA_SR, "request", 0.02, 0.5, "image-to-image"),
    Model("fal-ai/birefnet", CUTOUT, s.BIREFNET, "request", 0.002, 0.3, "image-to-image"),
    Model("fal-ai/imageutils/rembg", CUTOUT, s.REMBG, "request", 0.001, 0.2, "image-to-image"),
    Model(
        "fal-ai/bria/background/remove",
        CUTOUT,
        s.BRIA_REMOVE,
        "image",
        0.018,
        0.3,
        "image-to-image",
    ),
    _video(
        "fal-ai/kling-video/v2/master/text-to-video", s.KLING, "video_second", 0.28, "text-to-video"
    ),
    _video(
        "fal-ai/kling-video/v2.1/master/image-to-video",
        s.KLING_I2V,
        "video_second",
        0.28,
        "image-to-video",
    ),
    _video("fal-ai/minimax/video-01", s.MINIMAX, "request", 0.5, "text-to-video"),
    _video(
        "fal-ai/minimax/video-01/image-to-video", s.MINIMAX_I2V, "request", 0.5, "image-to-video"
    ),
    _video("fal-ai/veo3", s.VEO3, "video_second", 0.75, "text-to-video"),
    _video("fal-ai/luma-dream-machine", s.LUMA, "request", 0.5, "text-to-video"),
    _video(
        "fal-ai/luma-dream-machine/image-to-video", s.LUMA_I2V, "request", 0.5, "image-to-video"
    ),
    # an owner outside NXS's default list: `nxs models sync` is what teaches it to the gateway
    _video("moonvalley/marey/t2v", s.MAREY, "video_second", 0.3, "text-to-video"),
    Model("fal-ai/whisper", TRANSCRIPT, s.WHISPER, "request", 0.0015, 0.5, "speech-to-text"),
    Model("fal-ai/wizper", TRANSCRIPT, s.WIZPER, "request", 0.0005, 0.3, "speech-to-text"),
    Model(
        "fal-ai/elevenlabs/speech-to-text",
        TRANSCRIPT,
        s.SCRIBE,
        "request",
        0.03,
        0.4,
        "speech-to-text",
    ),
    Model(
        "fal-ai/kokoro/american-english", SPEECH, s.KOKORO, "request", 0.02, 0.3, "text-to-speech"
    ),
    Model(
        "fal-ai/elevenlabs/tts/multilingual-v2",
        SPEECH,
        s.ELEVEN_TTS,
        "request",
        0.1,
        0.4,
        "text-to-speech",
    ),
    Model("fal-ai/any-llm", TEXT, s.ANY_LLM, "request", 0.001, 0.6, "llm"),
    Model("fal-ai/any-llm/vision", TEXT, s.ANY_LLM_VISION, "request", 0.002, 0.6, "vision"),
)


class ModelRegistry:
    """Endpoint id → Model; ids are matched without trailing slashes."""

    def __init__(self, models: Iterable[Model] = MODELS) -> None:
        self._models = {model.endpoint_id: model for model in models}

    def get(self, endpoint_id: str) -> Model | None:
        return self._models.get(endpoint_id.strip("/"))

    def knows_app(self, app_id: str) -> bool:
        return any(eid == app_id or eid.startswith(app_id + "/") for eid in self._models)

    def all(self) -> list[Model]:
        return list(self._models.values())

    def prices(self, endpoint_ids: list[str]) -> list[dict[str, object]]:
        """Pricing entries for the known ids among `endpoint_ids` (all when empty)."""
        chosen = [self.get(eid) for eid in endpoint_ids] if endpoint_ids else self.all()
        return [
            {
                "endpoint_id": model.endpoint_id,
                "unit_price": model.unit_price,
                "unit": model.unit,
                "currency": "USD",
            }
            for model in chosen
            if model is not None
        ]


REGISTRY_KEY = web.AppKey("nxs_emulator_models", ModelRegistry)
