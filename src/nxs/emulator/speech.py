"""The audio models' work: speech-to-text (an audio file in, text and timed chunks out,
in each app's shape) and text-to-speech (a real 8 kHz mono WAV, written with `wave`).

Both are deterministic: the words come from a hash of the audio's bytes, the tones
from a hash of the text; a WAV input's own length sets the transcript's timestamps.
"""

from __future__ import annotations

import array
import hashlib
import io
import math
import wave
from typing import Any, Final

from nxs.emulator.files import FileStore, file_entry, publish
from nxs.emulator.media import MEDIA_KEY, Media
from nxs.emulator.models import Model

RATE: Final = 8_000
SECONDS_PER_CHAR: Final = 0.05
MAX_SPEECH_SECONDS: Final = 20.0
WORDS: Final = (
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog",
    "while", "seven", "emus", "sing", "softly",
)  # fmt: skip


def audio_seconds(media: Media | None) -> float:
    """A WAV input's length; 5 s for anything else."""
    if media is not None:
        try:
            with wave.open(io.BytesIO(media.data)) as reader:
                return round(reader.getnframes() / reader.getframerate(), 2)
        except (wave.Error, EOFError, ZeroDivisionError):
            pass
    return 5.0


def _sentences(seed: bytes, count: int) -> list[str]:
    digest = hashlib.sha256(seed).digest()
    return [
        " ".join(WORDS[b % len(WORDS)] for b in digest[part * 6 : part * 6 + 6]).capitalize() + "."
        for part in range(count)
    ]


def transcribe(
    model: Model, clean: dict[str, Any], files: FileStore, base: str
) -> tuple[dict[str, Any], float]:
    """`text` and `chunks` (whisper, wizper) or `words` (ElevenLabs), timed over the audio."""
    media: Media | None = clean.get(MEDIA_KEY, {}).get("audio_url")
    seed = media.data if media is not None else clean["audio_url"].encode("utf-8", "surrogatepass")
    sentences, length = _sentences(seed, 2), audio_seconds(media)
    step = round(length / len(sentences), 2)
    chunks = [
        {"timestamp": [round(i * step, 2), round((i + 1) * step, 2)], "text": text}
        for i, text in enumerate(sentences)
    ]
    text = " ".join(sentences)
    if model.endpoint_id == "fal-ai/elevenlabs/speech-to-text":
        return _scribe(text, length, clean), 1
    payload: dict[str, Any] = {"text": text, "chunks": chunks}
    language = clean.get("language") or "en"
    if model.endpoint_id == "fal-ai/wizper":
        payload["languages"] = [language]
    else:
        payload |= {"inferred_languages": [language], "diarization_segments": []}
    return payload, 1


def _scribe(text: str, length: float, clean: dict[str, Any]) -> dict[str, Any]:
    words = text.split()
    step = length / max(1, len(words))
    entries = [
        {
            "text": word,
            "start": round(i * step, 2),
            "end": round((i + 1) * step, 2),
            "type": "word",
            "speaker_id": "speaker_0",
        }
        for i, word in enumerate(words)
    ]
    language = clean.get("language_code") or "eng"
    return {"text": text, "language_code": language, "language_probability": 1.0, "words": entries}


def wav(text: str) -> bytes:
    """A WAV reading `text`: one short tone per character, pitched from its hash."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    seconds = min(MAX_SPEECH_SECONDS, max(1.0, len(text) * SECONDS_PER_CHAR))
    total, per_tone = int(seconds * RATE), int(SECONDS_PER_CHAR * RATE)
    samples = array.array("h", bytes(2 * total))
    for start in range(0, total, per_tone):
        pitch = 2 * math.pi * (180 + digest[(start // per_tone) % len(digest)]) / RATE
        for offset in range(min(per_tone, total - start)):
            samples[start + offset] = int(8000 * math.sin(pitch * offset))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes(samples.tobytes())
    return buffer.getvalue()


def speak(
    model: Model, clean: dict[str, Any], files: FileStore, base: str
) -> tuple[dict[str, Any], float]:
    """`{"audio": File}` holding a WAV of the prompt (or `text`)."""
    data = wav(str(clean.get("prompt") or clean.get("text") or ""))
    url = publish(files, base, data, "audio/wav", "speech.wav", False)
    payload: dict[str, Any] = {"audio": file_entry(url, data, "audio/wav", "speech.wav")}
    if model.endpoint_id.startswith("fal-ai/elevenlabs/"):
        payload["timestamps"] = None
    return payload, 1
