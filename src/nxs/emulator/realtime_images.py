"""What a realtime image app answers to one frame: the input checked against the model's
schema (as its HTTP endpoint checks it) and the pictures drawn as its HTTP endpoint
draws them, but returned as raw bytes in the msgpack result rather than as CDN URLs.

Same prompt and seed → the same bytes; a missing seed is chosen and returned.
"""

from __future__ import annotations

import random
from typing import Any

from nxs.emulator import images
from nxs.emulator.inputs import validate
from nxs.emulator.models import Model
from nxs.errors import ValidationFailed


def parse_input(model: Model, body: Any) -> dict[str, Any]:
    """The frame's input with defaults filled in; ValidationFailed (fal's 422) otherwise."""
    if not isinstance(body, dict):
        detail = [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]
        raise ValidationFailed(detail)
    clean = validate(model.schema, body)
    if clean.get("seed") is None:
        clean["seed"] = random.randrange(2**31)
    if isinstance(body.get("request_id"), str):
        clean["request_id"] = body["request_id"]
    return clean


def result(model: Model, clean: dict[str, Any]) -> dict[str, Any]:
    """The result frame's content: images with their bytes, seed and safety flags."""
    size = (clean["image_size"]["width"], clean["image_size"]["height"])
    fmt = clean.get(model.format_field, "jpeg")
    pictures = [
        images.render(clean["prompt"], clean["seed"], index, size, fmt)
        for index in range(clean.get("num_images", 1))
    ]
    answer: dict[str, Any] = {
        "images": [
            {
                "content": picture.data,
                "width": picture.width,
                "height": picture.height,
                "content_type": picture.content_type,
            }
            for picture in pictures
        ],
        "seed": clean["seed"],
        "has_nsfw_concepts": [False] * len(pictures),
        "num_inference_steps": clean.get("num_inference_steps"),
        "prompt": clean["prompt"],
    }
    if "request_id" in clean:
        answer["request_id"] = clean["request_id"]
    return answer
