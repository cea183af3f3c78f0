"""The emulator's model table: every endpoint it serves, in one place.

Each `Model` names its input schema, what it outputs (images, a video, a transcript),
how fal bills it (unit and unit price) and how long it pretends to work at time
scale 1. `ModelRegistry` looks endpoints up and answers the pricing API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from nxs.emulator.inputs import Field

Schema = tuple[Field, ...]
PROMPT = Field("prompt", "str")
SEED = Field("seed", "int", None, 0, 2**63 - 1)
SYNC = Field("sync_mode", "bool", False)
SAFETY = Field("enable_safety_checker", "bool", True)
NEGATIVE = Field("negative_prompt", "str", "")
IMAGE_COUNT = Field("num_images", "int", 1, 1, 4)


def _format(name: str) -> Field:
    return Field(name, "enum", "jpeg", choices=("jpeg", "png"))


def _steps(default: int, high: int) -> Field:
    return Field("num_inference_steps", "int", default, 1, high)


def _guidance(default: float, low: float, high: float) -> Field:
    return Field("guidance_scale", "float", default, low, high)


def _size(default: str) -> Field:
    return Field("image_size", "image_size", default)


FLUX_DEV: Schema = (PROMPT, _size("landscape_4_3"), _steps(28, 50), SEED, _guidance(3.5, 1, 20))
FLUX_DEV += (IMAGE_COUNT, SAFETY, _format("output_format"), SYNC)
FLUX_SCHNELL: Schema = (PROMPT, _size("landscape_4_3"), _steps(4, 12), SEED, IMAGE_COUNT, SAFETY)
FLUX_SCHNELL += (_format("output_format"), SYNC)
SD_STYLE: Schema = (PROMPT, NEGATIVE, _size("square_hd"), _steps(35, 70), _guidance(5, 0, 20), SEED)
SD_STYLE += (IMAGE_COUNT, SAFETY, _format("format"), SYNC)
SDXL: Schema = (PROMPT, NEGATIVE, _size("square_hd"), _steps(25, 65), _guidance(7.5, 0, 20), SEED)
SDXL += (IMAGE_COUNT, SAFETY, _format("format"), SYNC)
LCM: Schema = (PROMPT, NEGATIVE, _size("square"), _steps(6, 12), _guidance(1.5, 0, 16), SEED)
LCM += (IMAGE_COUNT, SAFETY, _format("format"), SYNC)
GROK = (PROMPT, _size("square_hd"), SEED, IMAGE_COUNT, _format("output_format"), SYNC)
KLING: Schema = (PROMPT, NEGATIVE, Field("duration", "enum", "5", choices=("5", "10")))
KLING += (Field("aspect_ratio", "enum", "16:9", choices=("16:9", "9:16", "1:1")),)
KLING += (Field("cfg_scale", "float", 0.5, 0, 1),)
WHISPER = (
    Field("audio_url", "str"),
    Field("task", "enum", "transcribe", choices=("transcribe", "translate")),
    Field("language", "str", None),
    Field("chunk_level", "enum", "segment", choices=("segment", "word")),
    Field("version", "enum", "3", choices=("3",)),
)


@dataclass(frozen=True)
class Model:
    """One endpoint: schema, output kind (image/video/speech), billing, simulated work."""

    endpoint_id: str
    kind: str
    schema: tuple[Field, ...]
    unit: str
    unit_price: float
    seconds: float
    format_field: str = "output_format"

    @property
    def log_name(self) -> str:
        return self.endpoint_id.split("/", 1)[-1]


MODELS = (
    Model("fal-ai/flux/dev", "image", FLUX_DEV, "megapixel", 0.025, 0.8),
    Model("fal-ai/flux/schnell", "image", FLUX_SCHNELL, "megapixel", 0.003, 0.4),
    Model("fal-ai/flux-1/dev", "image", FLUX_DEV, "megapixel", 0.025, 0.8),
    Model("fal-ai/flux-1/schnell", "image", FLUX_SCHNELL, "megapixel", 0.003, 0.4),
    Model("fal-ai/realistic-vision", "image", SD_STYLE, "image", 0.01, 0.6, "format"),
    Model("fal-ai/fast-sdxl", "image", SDXL, "image", 0.003, 0.5, "format"),
    Model("fal-ai/fast-lcm-diffusion", "image", LCM, "image", 0.0015, 0.2, "format"),
    Model("xai/grok-imagine-image", "image", GROK, "image", 0.07, 0.6),
    Model("fal-ai/kling-video/v2/master/text-to-video", "video", KLING, "video_second", 0.28, 1.2),
    Model("fal-ai/whisper", "speech", WHISPER, "request", 0.0015, 0.5),
    # a namespaced endpoint with a path, to exercise the clients' `workflows/` parsing
    Model(
        "workflows/fal-ai/image-pipeline/text-to-image", "image", FLUX_SCHNELL, "image", 0.005, 0.3
    ),
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
