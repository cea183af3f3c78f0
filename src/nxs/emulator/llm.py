"""The LLM endpoints' work (`fal-ai/any-llm`, `…/vision`): a deterministic reply, whole as
the result, or streamed as fal streams it: events `{"output": <text so far>, "partial":
true, "error": null}`, then the final `{"output", "partial": false, …}`.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from nxs.emulator.files import FileStore
from nxs.emulator.models import Model

STREAM_STEPS: Final = 4
VOCABULARY: Final = (
    "emulated", "answers", "stay", "the", "same", "for", "one", "prompt", "and", "seed",
    "so", "tests", "can", "compare", "every", "token", "they", "receive",
)  # fmt: skip


def reply(clean: dict[str, Any]) -> str:
    """The model's whole answer to this input."""
    text = f"{clean.get('model')}\n{clean.get('system_prompt')}\n{clean['prompt']}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    words = [VOCABULARY[byte % len(VOCABULARY)] for byte in digest[:24]]
    return " ".join(words).capitalize() + "."


def partial_reply(clean: dict[str, Any], step: int) -> str:
    """What a stream has said after `step` of its `STREAM_STEPS` events."""
    words = reply(clean).split(" ")
    return " ".join(words[: len(words) * min(step, STREAM_STEPS) // STREAM_STEPS])


def answer(
    model: Model, clean: dict[str, Any], files: FileStore, base: str
) -> tuple[dict[str, Any], float]:
    payload = {"output": reply(clean), "reasoning": None, "partial": False, "error": None}
    return payload, 1
