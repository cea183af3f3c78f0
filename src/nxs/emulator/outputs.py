"""What a model hands back, plus its billable units: the work of each output kind
(`pictures`, `video`, `speech`, `llm`) behind one `produce`.

`prepare` validates an input and fixes its seed; `produce` does the (cheap) work,
storing files in the emulator's CDN and returning an `Outcome`; `progress_lines` are the
logs it prints meanwhile and `partial_event` what a stream sends for each. An input
whose string fields contain `[fail]` ends as an error instead: the documented failure
trigger; `[fail-billed]` as an app's 422 that still bills one unit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nxs.emulator import llm, pictures, speech, video
from nxs.emulator import models as kinds
from nxs.emulator.files import FileStore
from nxs.emulator.inputs import validate
from nxs.emulator.models import Model

FAIL_TRIGGER = "[fail]"
FINISH_TRIGGER = "[ignore-cancel]"  # an app that finishes a started request despite a cancel
FAILURE_DETAIL = "Model failed: the input asked for a failure ([fail])"
BILLED_FAIL_TRIGGER = "[fail-billed]"  # an app that rejects the input yet bills the attempt
BILLED_FAILURE = "Model rejected the input ([fail-billed]); the attempt is billed"
BILLED_FAILURE_STATUS = 422


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


Work = Callable[[Model, dict[str, Any], FileStore, str], tuple[dict[str, Any], float]]
WORK: dict[str, Work] = {
    kinds.IMAGE: pictures.generate,
    kinds.EDIT: pictures.generate,
    kinds.UPSCALE: pictures.upscale,
    kinds.CUTOUT: pictures.cut_out,
    kinds.VIDEO: video.make_video,
    kinds.TRANSCRIPT: speech.transcribe,
    kinds.SPEECH: speech.speak,
    kinds.TEXT: llm.answer,
}


def progress_lines(model: Model, clean: dict[str, Any]) -> list[str]:
    """The log lines a request prints while IN_PROGRESS."""
    if model.kind in (kinds.IMAGE, kinds.EDIT):
        width, height = (
            pictures.output_size(clean) if model.kind == kinds.IMAGE else _input_size(clean)
        )
        steps = clean.get("num_inference_steps", 4)
        first = f"Generating {clean.get('num_images', 1)} image(s) of {width}x{height}"
        return [first, f"Step {max(1, steps // 2)}/{steps}", f"Step {steps}/{steps}"]
    if model.kind == kinds.VIDEO:
        return ["Generating video frames", f"Encoding {video.seconds_of(model, clean)}s of video"]
    if model.kind == kinds.TEXT:
        steps = llm.STREAM_STEPS
        return [
            f"Generating with {clean['model']} ({step}/{steps})" for step in range(1, steps + 1)
        ]
    return PROGRESS.get(model.kind, ["Working"])


PROGRESS: dict[str, list[str]] = {
    kinds.UPSCALE: ["Loading image", "Upscaling"],
    kinds.CUTOUT: ["Loading image", "Segmenting the foreground"],
    kinds.TRANSCRIPT: ["Downloading audio", "Transcribing"],
    kinds.SPEECH: ["Loading voice", "Synthesising speech"],
}


def _input_size(clean: dict[str, Any]) -> tuple[int, int]:
    return pictures.capped(*pictures.source(clean).size or (512, 512))


def partial_event(model: Model, clean: dict[str, Any], step: int, line: str) -> dict[str, Any]:
    """What a stream sends for its `step`-th progress line (an LLM: its text so far)."""
    if model.kind == kinds.TEXT:
        return {"output": llm.partial_reply(clean, step), "partial": True, "error": None}
    return {"partial": True, "step": step, "message": line, "sent_at": time.time()}


def produce(model: Model, clean: dict[str, Any], files: FileStore, base_url: str) -> Outcome:
    """Do the model's work; CPU-bound, so callers run it in a thread."""
    if wants_failure(clean):
        return Outcome(None, 0, FAILURE_DETAIL, "runner_server_error")
    if wants_failure(clean, BILLED_FAIL_TRIGGER):
        return Outcome(None, 1, BILLED_FAILURE, status=BILLED_FAILURE_STATUS)
    payload, units = WORK[model.kind](model, clean, files, base_url)
    return Outcome(payload, units)
