"""The video models' work: a small, real MP4 of the requested duration and aspect ratio.

The file is an ISO base media file written by hand (`ftyp`, `moov` before `mdat`, one
video track) whose samples are JPEG frames (`mp4v`, object type 0x6C: Motion JPEG), two
per second, drawn from the prompt and seed: players and parsers read it as a video.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from nxs.emulator.files import FileStore, file_entry, publish
from nxs.emulator.images import render
from nxs.emulator.media import MEDIA_KEY, Media
from nxs.emulator.models import Model

FPS: Final = 2
TIMESCALE: Final = 1000
FRAME_LONG_SIDE: Final = 160
DEFAULT_SECONDS: Final = {"fal-ai/minimax/video-01": 6, "fal-ai/minimax/video-01/image-to-video": 6}
MATRIX: Final = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def seconds_of(model: Model, clean: dict[str, Any]) -> int:
    """`duration` as fal's apps take it ("5", "8s"), else the model's fixed length."""
    raw = str(clean.get("duration") or DEFAULT_SECONDS.get(model.endpoint_id, 5))
    return int(raw.rstrip("s"))


def frame_size(clean: dict[str, Any]) -> tuple[int, int]:
    """Small frames in the input image's proportions, the aspect ratio's, or 16:9."""
    media: Media | None = clean.get(MEDIA_KEY, {}).get("image_url")
    if media is not None and media.size:
        across, down = media.size
    elif "dimensions" in clean:
        across, down = (int(side) for side in clean["dimensions"].split("x"))
    else:
        across, down = (int(side) for side in clean.get("aspect_ratio", "16:9").split(":"))
    scale = FRAME_LONG_SIDE / max(across, down)
    return max(2, round(across * scale) // 2 * 2), max(2, round(down * scale) // 2 * 2)


def make_video(
    model: Model, clean: dict[str, Any], files: FileStore, base: str
) -> tuple[dict[str, Any], float]:
    """`{"video": File}` (plus `seed` when the model takes one); units: seconds or one."""
    seconds = seconds_of(model, clean)
    size = frame_size(clean)
    seed = clean.get("seed") or 0
    frames = [
        render(clean["prompt"], seed, index, size, "jpeg").data for index in range(seconds * FPS)
    ]
    data = mp4(frames, size, seconds)
    url = publish(files, base, data, "video/mp4", "output.mp4", False)
    payload: dict[str, Any] = {"video": file_entry(url, data, "video/mp4", "output.mp4")}
    if "seed" in clean:
        payload["seed"] = seed
    return payload, seconds if model.unit == "video_second" else 1


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _descriptor(tag: int, body: bytes) -> bytes:
    return bytes([tag, len(body)]) + body


def _sample_entry(width: int, height: int) -> bytes:
    config = _descriptor(0x04, bytes([0x6C, 0x11]) + b"\x00\x00\x00" + struct.pack(">II", 0, 0))
    es = _descriptor(0x03, b"\x00\x01\x00" + config + _descriptor(0x06, b"\x02"))
    visual = b"\x00" * 6 + struct.pack(">H", 1) + b"\x00" * 16 + struct.pack(">HH", width, height)
    visual += struct.pack(">IIIH", 0x480000, 0x480000, 0, 1) + b"\x00" * 32
    visual += struct.pack(">Hh", 0x18, -1)
    return _box(b"mp4v", visual, _full(b"esds", 0, 0, es))


def _table(frames: list[bytes], width: int, height: int, offset: int) -> bytes:
    count = len(frames)
    return _box(
        b"stbl",
        _full(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(width, height)),
        _full(b"stts", 0, 0, struct.pack(">III", 1, count, TIMESCALE // FPS)),
        _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1)),
        _full(b"stsz", 0, 0, struct.pack(f">II{count}I", 0, count, *map(len, frames))),
        _full(b"stco", 0, 0, struct.pack(">II", 1, offset)),
    )


def _movie(frames: list[bytes], size: tuple[int, int], seconds: int, offset: int) -> bytes:
    width, height = size
    duration = seconds * TIMESCALE
    mvhd = struct.pack(">IIII", 0, 0, TIMESCALE, duration) + struct.pack(">IH", 0x10000, 0x100)
    mvhd += b"\x00" * 10 + MATRIX + b"\x00" * 24 + struct.pack(">I", 2)
    tkhd = (
        struct.pack(">IIIII", 0, 0, 1, 0, duration) + b"\x00" * 8 + struct.pack(">hhhH", 0, 0, 0, 0)
    )
    tkhd += MATRIX + struct.pack(">II", width << 16, height << 16)
    mdhd = struct.pack(">IIIIHH", 0, 0, TIMESCALE, duration, 0x55C4, 0)
    hdlr = struct.pack(">I", 0) + b"vide" + b"\x00" * 12 + b"VideoHandler\x00"
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1)))
    vmhd = _full(b"vmhd", 0, 1, b"\x00" * 8)
    minf = _box(b"minf", vmhd, dinf, _table(frames, width, height, offset))
    mdia = _box(b"mdia", _full(b"mdhd", 0, 0, mdhd), _full(b"hdlr", 0, 0, hdlr), minf)
    trak = _box(b"trak", _full(b"tkhd", 0, 3, tkhd), mdia)
    return _box(b"moov", _full(b"mvhd", 0, 0, mvhd), trak)


def mp4(frames: list[bytes], size: tuple[int, int], seconds: int) -> bytes:
    """A complete MP4: `ftyp`, `moov` (its chunk offset pointing into `mdat`), `mdat`."""
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2mp41")
    provisional = _movie(frames, size, seconds, 0)
    offset = len(ftyp) + len(provisional) + 8
    return ftyp + _movie(frames, size, seconds, offset) + _box(b"mdat", *frames)
