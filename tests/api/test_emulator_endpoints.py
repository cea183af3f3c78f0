"""Every endpoint of the emulator's model table, over plain HTTP against one emulator: a
minimal input gets its app's output shape with real files (images of the input's size,
an MP4 of the asked duration, a WAV), its billable units and its price; `{}` gets fal's
422. Also: files fetched from the emulator's CDN, the LLM stream and the model search.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import wave
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from tests.api.test_emulator_core import Fal
from tests.api.test_emulator_models import fetch
from tests.support.servers import RunningServer, start_emulator

from nxs.emulator.inputs import MISSING
from nxs.emulator.models import MODELS, Model
from nxs.emulator.speech import wav

INPUT_SIZE = (300, 200)
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
SECONDS = {"minimax": 6, "veo3": 8}  # the videos' default lengths; the others' is 5 s


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An emulator whose models work 20× faster than at time scale 1."""
    server = start_emulator(tmp_path_factory.mktemp("endpoints"), "--time-scale", "0.05")
    yield server
    server.stop()


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def minimal_input(model: Model) -> dict[str, Any]:
    """The model's required fields: a prompt, a 300×200 PNG, a 2.5 s WAV."""
    body: dict[str, Any] = {}
    for field in model.schema:
        if field.default is not MISSING:
            continue
        if field.kind != "url":
            body[field.name] = "a red fox"
        elif field.name == "audio_url":
            body[field.name] = data_uri(wav("x" * 50), "audio/wav")
        else:
            body[field.name] = data_uri(png(INPUT_SIZE), "image/png")
    return body


def boxes(data: bytes) -> dict[bytes, bytes]:
    """Every box of an MP4 by type (containers opened), each box's payload."""
    found: dict[bytes, bytes] = {}
    offset = 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        assert size >= 8, f"bad box size at {offset}"
        payload = data[offset + 8 : offset + size]
        found[kind] = payload
        if kind in CONTAINERS:
            found |= boxes(payload)
        offset += size
    assert offset == len(data)
    return found


def check_mp4(data: bytes, seconds: int) -> None:
    found = boxes(data)
    assert {b"ftyp", b"moov", b"mdat", b"stsd", b"stsz", b"stco"} <= set(found)
    assert found[b"stsd"][12:16] == b"mp4v"
    timescale, duration = struct.unpack(">II", found[b"mvhd"][12:20])
    assert duration / timescale == seconds
    count = struct.unpack(">I", found[b"stsz"][8:12])[0]
    first = struct.unpack(">I", found[b"stco"][8:12])[0]
    assert count == seconds * 2 and data[first : first + 2] == b"\xff\xd8"  # a JPEG frame
    sizes = struct.unpack(f">{count}I", found[b"stsz"][12 : 12 + 4 * count])
    Image.open(io.BytesIO(data[first : first + sizes[0]])).verify()


def check_output(model: Model, result: dict[str, Any]) -> None:
    """The output shape of the model's kind, its files real and sized as they should be."""
    if model.kind in ("image", "edit"):
        image = result["images"][0]
        picture = Image.open(io.BytesIO(fetch(image["url"])))
        assert picture.size == (image["width"], image["height"])
        if model.kind == "edit":
            assert picture.size == INPUT_SIZE
    elif model.kind in ("upscale", "cutout"):
        image = result["image"]
        picture = Image.open(io.BytesIO(fetch(image["url"])))
        assert picture.size == (image["width"], image["height"])
        assert (
            picture.size[0] > INPUT_SIZE[0] if model.kind == "upscale" else picture.mode == "RGBA"
        )
    elif model.kind == "video":
        data = fetch(result["video"]["url"])
        assert result["video"]["file_size"] == len(data)
        check_mp4(data, SECONDS.get(model.endpoint_id.split("/")[1], 5))
    elif model.kind == "speech":
        with wave.open(io.BytesIO(fetch(result["audio"]["url"]))) as reader:
            assert reader.getnframes() > 0 and result["audio"]["content_type"] == "audio/wav"
    elif model.kind == "transcript":
        assert result["text"] and (result.get("chunks") or result.get("words"))
    else:
        assert result["output"] and result["partial"] is False


@pytest.mark.parametrize("model", MODELS, ids=[model.endpoint_id for model in MODELS])
def test_every_endpoint_answers_its_shape_and_refuses_bad_input(
    fast: RunningServer, model: Model
) -> None:
    fal = Fal(fast.url)
    reply = fal.call("POST", f"/fal.run/{model.endpoint_id}", minimal_input(model))
    assert reply.status == 200, reply.body
    check_output(model, reply.json())
    assert float(reply.headers["x-fal-billable-units"]) > 0
    refused = fal.call("POST", f"/fal.run/{model.endpoint_id}", {})
    assert refused.status == 422
    assert all(error["type"] == "value_error.missing" for error in refused.json()["detail"])
    price = fal.call("GET", f"/api.fal.ai/v1/models/pricing?endpoint_id={model.endpoint_id}")
    entry = price.json()["prices"][0]
    assert (entry["unit"], entry["unit_price"]) == (model.unit, model.unit_price)


def test_an_edit_fetches_its_image_from_the_emulators_cdn(fast: RunningServer) -> None:
    fal = Fal(fast.url)
    body = {"prompt": "p", "image_size": {"width": 320, "height": 240}, "seed": 1}
    made = fal.call("POST", "/fal.run/fal-ai/flux/schnell", body).json()["images"][0]["url"]
    edit = {"prompt": "q", "image_url": made, "mask_url": made, "seed": 1}
    edited = fal.call("POST", "/fal.run/fal-ai/fast-sdxl/inpainting", edit).json()
    assert (edited["images"][0]["width"], edited["images"][0]["height"]) == (320, 240)
    gone = fal.call("POST", "/fal.run/fal-ai/esrgan", {"image_url": "https://example.test/a.png"})
    assert gone.status == 422
    assert gone.json()["detail"][0]["loc"] == ["body", "image_url"]


def test_video_and_speech_are_deterministic(fast: RunningServer) -> None:
    fal = Fal(fast.url)
    path, body = "/fal.run/fal-ai/veo3", {"prompt": "waves", "seed": 7, "aspect_ratio": "9:16"}
    first, second = (fetch(fal.call("POST", path, body).json()["video"]["url"]) for _ in range(2))
    assert first == second
    speech = [
        fal.call("POST", "/fal.run/fal-ai/kokoro/american-english", {"prompt": "hi"})
        for _ in range(2)
    ]
    assert fetch(speech[0].json()["audio"]["url"]) == fetch(speech[1].json()["audio"]["url"])


def test_the_llm_streams_output_and_partial(fast: RunningServer) -> None:
    reply = Fal(fast.url).call("POST", "/fal.run/fal-ai/any-llm/stream", {"prompt": "hello"})
    chunks = reply.body.decode().split("\n\n")
    parsed = [json.loads(chunk[6:]) for chunk in chunks if chunk.startswith("data: ")]
    assert [event["partial"] for event in parsed] == [True, True, True, True, False]
    texts = [event["output"] for event in parsed]
    assert all(texts[i + 1].startswith(texts[i]) for i in range(len(texts) - 1))
    assert texts[-1] == texts[-2] and texts[-1].endswith(".")


def test_model_search_pages_through_every_endpoint(fast: RunningServer) -> None:
    fal, seen, cursor = Fal(fast.url, None), [], ""
    for _ in range(20):
        page = fal.call("GET", f"/api.fal.ai/v1/models?limit=7{cursor}").json()
        seen += [model["endpoint_id"] for model in page["models"]]
        assert page["has_more"] == (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == [model.endpoint_id for model in MODELS] and len(seen) >= 30
    found = fal.call(
        "GET", "/api.fal.ai/v1/models?endpoint_id=fal-ai/any-llm&endpoint_id=fal-ai/veo3"
    )
    assert [m["endpoint_id"] for m in found.json()["models"]] == ["fal-ai/veo3", "fal-ai/any-llm"]
    assert found.json()["models"][0]["metadata"]["category"] == "text-to-video"
    bad = fal.call("GET", "/api.fal.ai/v1/models?limit=0")
    assert bad.status == 400 and bad.json()["error"]["type"] == "validation_error"
