"""What a model hands back: images, a video or a transcript, plus its billable units.

`prepare` validates an input and fixes its seed; `produce` does the (cheap) work,
storing files in the emulator's CDN and returning an `Outcome`. An input whose string
fields contain `[fail]` ends as an error instead: the documented failure trigger;
`[fail-billed]` as an app's 422 that still bills one unit.
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct
from dataclasses import dataclass
from typing import Any

from nxs.emulator.files import FileStore
from nxs.emulator.images import Picture, render
from nxs.emulator.inputs import validate
from nxs.emulator.models import Model

FAIL_TRIGGER = "[fail]"
FINISH_TRIGGER = "[ignore-cancel]"  # an app that finishes a started request despite a cancel
FAILURE_DETAIL = "Model failed: the input asked for a failure ([fail])"
BILLED_FAIL_TRIGGER = "[fail-billed]"  # an app that rejects the input yet bills the attempt
BILLED_FAILURE = "Model rejected the input ([fail-billed]); the attempt is billed"
BILLED_FAILURE_STATUS = 422
WORDS = tuple(
    [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "seven",
        "emus",
        "sing",
        "softly",
    ]
)


@dataclass(frozen=True)
class Outcome:
    """A finished request: its result payload and billable units, or its error."""

    payload: dict[str, Any] | None
    billable_units: float
    error: str | None = None
    error_type: str | None = None
    status: int | None = None  # a failure's HTTP status, when the app chose it

    @property
    def failed(self) -> bool:
        return self.error is not None


def prepare(model: Model, body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The validated input with defaults; a random seed is chosen when none was given."""
    clean = validate(model.schema, body)
    if any(field.name == "seed" for field in model.schema) and "seed" not in clean:
        clean["seed"] = rng.randrange(0, 2**31)
    return clean


def wants_failure(clean: dict[str, Any], trigger: str = FAIL_TRIGGER) -> bool:
    return any(isinstance(value, str) and trigger in value for value in clean.values())


def ignores_cancel(clean: dict[str, Any]) -> bool:
    return any(isinstance(value, str) and FINISH_TRIGGER in value for value in clean.values())


def progress_lines(model: Model, clean: dict[str, Any]) -> list[str]:
    """The log lines a request prints while IN_PROGRESS."""
    if model.kind == "image":
        size = clean["image_size"]
        steps = clean.get("num_inference_steps", 4)
        count = clean["num_images"]
        first = f"Generating {count} image(s) of {size['width']}x{size['height']}"
        return [first, f"Step {max(1, steps // 2)}/{steps}", f"Step {steps}/{steps}"]
    if model.kind == "video":
        return ["Generating video frames", f"Encoding {clean['duration']}s of video"]
    return ["Downloading audio", "Transcribing"]


def produce(model: Model, clean: dict[str, Any], files: FileStore, base_url: str) -> Outcome:
    """Do the model's work; CPU-bound, so callers run it in a thread."""
    if wants_failure(clean):
        return Outcome(None, 0, FAILURE_DETAIL, "runner_server_error")
    if wants_failure(clean, BILLED_FAIL_TRIGGER):
        return Outcome(None, 1, BILLED_FAILURE, status=BILLED_FAILURE_STATUS)
    if model.kind == "image":
        return _images(model, clean, files, base_url)
    if model.kind == "video":
        return _video(clean, files, base_url)
    return _transcript(clean)


def _image_entry(picture: Picture, clean: dict[str, Any], files: FileStore, base: str) -> str:
    if clean.get("sync_mode"):
        encoded = base64.b64encode(picture.data).decode()
        return f"data:{picture.content_type};base64,{encoded}"
    stored = files.put(picture.data, picture.content_type, f"image.{picture.extension}")
    return FileStore.url(base, stored)


def _images(model: Model, clean: dict[str, Any], files: FileStore, base: str) -> Outcome:
    size = (clean["image_size"]["width"], clean["image_size"]["height"])
    fmt = clean[model.format_field]
    images = []
    for index in range(clean["num_images"]):
        picture = render(clean["prompt"], clean["seed"], index, size, fmt)
        url = _image_entry(picture, clean, files, base)
        images.append(
            {"url": url, "width": size[0], "height": size[1], "content_type": picture.content_type}
        )
    payload = {
        "images": images,
        "timings": {"inference": model.seconds},
        "seed": clean["seed"],
        "has_nsfw_concepts": [False] * len(images),
        "prompt": clean["prompt"],
    }
    if model.unit == "megapixel":
        units = round(len(images) * size[0] * size[1] / 1_000_000, 2)
    else:
        units = len(images)
    return Outcome(payload, units)


def _fake_mp4(clean: dict[str, Any]) -> bytes:
    """An MP4-shaped file (ftyp + mdat boxes) unique to the prompt, seed and duration."""
    ftyp = b"ftypisom" + struct.pack(">I", 512) + b"isomiso2avc1mp41"
    seed_text = f"{clean['prompt']}\n{clean.get('seed')}\n{clean['duration']}".encode(
        "utf-8", "surrogatepass"
    )
    media = hashlib.sha256(seed_text).digest() * (64 * int(clean["duration"]))
    return (
        struct.pack(">I", len(ftyp) + 4) + ftyp + struct.pack(">I", len(media) + 8) + b"mdat"
    ) + media


def _video(clean: dict[str, Any], files: FileStore, base: str) -> Outcome:
    data = _fake_mp4(clean)
    stored = files.put(data, "video/mp4", "output.mp4")
    video = {
        "url": FileStore.url(base, stored),
        "content_type": "video/mp4",
        "file_name": stored.name,
        "file_size": len(data),
    }
    return Outcome({"video": video}, int(clean["duration"]))


def _transcript(clean: dict[str, Any]) -> Outcome:
    digest = hashlib.sha256(clean["audio_url"].encode("utf-8", "surrogatepass")).digest()
    chunks: list[dict[str, Any]] = []
    start = 0.0
    for part in range(2):
        words = [WORDS[b % len(WORDS)] for b in digest[part * 6 : part * 6 + 6]]
        text = " ".join(words).capitalize() + "."
        chunks.append({"timestamp": [start, start + 2.5], "text": text})
        start += 2.5
    payload = {
        "text": " ".join(str(chunk["text"]) for chunk in chunks),
        "chunks": chunks,
        "inferred_languages": [clean.get("language") or "en"],
        "diarization_segments": [],
    }
    return Outcome(payload, 1)
