"""The emulator's models over plain HTTP: exact image sizes and formats (decoded with
Pillow), determinism for (prompt, seed), sync_mode data URIs, billable units per the
model's unit, the video and speech models, pricing, the CDN and endpoint parsing.
"""

from __future__ import annotations

import base64
import io
import urllib.request

import pytest
from PIL import Image
from tests.api.test_emulator_core import ARGS, FLUX, Fal
from tests.support.servers import RunningServer

SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


def fetch(url: str) -> bytes:
    if url.startswith("data:"):
        return base64.b64decode(url.split(",", 1)[1])
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


@pytest.mark.parametrize("size", [*SIZES, "custom"])
def test_images_have_exactly_the_requested_size(emulator: RunningServer, size: str) -> None:
    requested = {"width": 300, "height": 200} if size == "custom" else size
    body = {"prompt": "size", "image_size": requested, "output_format": "png"}
    result = Fal(emulator.url).call("POST", "/fal.run/fal-ai/flux/schnell", body).json()
    image = result["images"][0]
    picture = Image.open(io.BytesIO(fetch(image["url"])))
    expected = (300, 200) if size == "custom" else SIZES[size]
    assert picture.size == expected == (image["width"], image["height"])
    assert picture.format == "PNG" and image["content_type"] == "image/png"


def test_num_images_and_jpeg_by_default(emulator: RunningServer) -> None:
    result = Fal(emulator.url).call("POST", f"/fal.run/{FLUX}", {**ARGS, "num_images": 3}).json()
    assert len(result["images"]) == 3 and result["has_nsfw_concepts"] == [False] * 3
    formats = {Image.open(io.BytesIO(fetch(image["url"]))).format for image in result["images"]}
    assert formats == {"JPEG"}


def test_same_prompt_and_seed_give_the_same_image(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    first, second = (fal.call("POST", f"/fal.run/{FLUX}", ARGS).json() for _ in range(2))
    other = fal.call("POST", f"/fal.run/{FLUX}", {**ARGS, "seed": 4}).json()
    assert fetch(first["images"][0]["url"]) == fetch(second["images"][0]["url"])
    assert fetch(first["images"][0]["url"]) != fetch(other["images"][0]["url"])
    unseeded = fal.call("POST", f"/fal.run/{FLUX}", {"prompt": "no seed"}).json()
    assert isinstance(unseeded["seed"], int)
    assert unseeded["prompt"] == "no seed" and "inference" in unseeded["timings"]


def test_sync_mode_returns_data_uris(emulator: RunningServer) -> None:
    body = {**ARGS, "sync_mode": True, "output_format": "png"}
    image = Fal(emulator.url).call("POST", f"/fal.run/{FLUX}", body).json()["images"][0]
    assert image["url"].startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(fetch(image["url"]))).size == (512, 512)


@pytest.mark.parametrize(
    ("endpoint", "body", "units"),
    [
        ("fal-ai/flux/dev", {"prompt": "p", "image_size": "square_hd"}, "1.05"),
        ("fal-ai/realistic-vision", {"prompt": "p", "num_images": 3, "image_size": "square"}, "3"),
        ("fal-ai/kling-video/v2/master/text-to-video", {"prompt": "p", "duration": "10"}, "10"),
    ],
)
def test_billable_units_follow_the_models_unit(
    emulator: RunningServer, endpoint: str, body: dict[str, object], units: str
) -> None:
    reply = Fal(emulator.url).call("POST", f"/fal.run/{endpoint}", body)
    assert reply.status == 200 and reply.headers["x-fal-billable-units"] == units


def test_video_model_returns_an_mp4_on_the_cdn(emulator: RunningServer) -> None:
    body = {"prompt": "waves", "duration": "5"}
    video = Fal(emulator.url).call(
        "POST", "/fal.run/fal-ai/kling-video/v2/master/text-to-video", body
    )
    clip = video.json()["video"]
    data = fetch(clip["url"])
    assert clip["content_type"] == "video/mp4" and clip["file_size"] == len(data)
    assert data[4:8] == b"ftyp" and clip["file_name"].endswith(".mp4")


def test_speech_model_transcribes(emulator: RunningServer) -> None:
    body = {"audio_url": "data:audio/mpeg;base64,SUQz"}  # not a WAV: 5 s of speech assumed
    result = Fal(emulator.url).call("POST", "/fal.run/fal-ai/whisper", body).json()
    assert result["text"] and result["chunks"][0]["timestamp"] == [0.0, 2.5]
    missing = Fal(emulator.url).call("POST", "/fal.run/fal-ai/whisper", {})
    assert missing.json()["detail"][0]["loc"] == ["body", "audio_url"]


def test_pricing_lists_unit_prices(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    path = "/api.fal.ai/v1/models/pricing?endpoint_id=fal-ai/flux/dev,fal-ai/whisper"
    reply = fal.call("GET", path + "&endpoint_id=xai/grok-imagine-image").json()
    assert [price["endpoint_id"] for price in reply["prices"]] == [
        "fal-ai/flux/dev",
        "fal-ai/whisper",
        "xai/grok-imagine-image",
    ]
    assert reply["prices"][0] == {
        "endpoint_id": "fal-ai/flux/dev",
        "unit_price": 0.025,
        "unit": "megapixel",
        "currency": "USD",
    }
    assert (reply["next_cursor"], reply["has_more"]) == (None, False)
    assert Fal(emulator.url, None).call("GET", path).status == 401


def test_endpoint_ids_parse_as_the_clients_build_them(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    submitted = fal.submit("fal-ai/kling-video/v2/master/text-to-video/", {"prompt": "p"})
    assert "/queue.fal.run/fal-ai/kling-video/requests/" in submitted["response_url"]
    request_id = submitted["request_id"]
    fal.wait("fal-ai/kling-video", request_id)
    assert (
        fal.call("GET", f"/queue.fal.run/fal-ai/kling-video/requests/{request_id}/").status == 200
    )
    wrong_app = fal.call("GET", f"/queue.fal.run/fal-ai/flux/requests/{request_id}")
    assert wrong_app.status == 404
    workflow = fal.call("POST", "/queue.fal.run/workflows/fal-ai/none/run", ARGS)
    assert workflow.status == 404


def test_cdn_serves_stored_files_and_404s_others(emulator: RunningServer) -> None:
    fal = Fal(emulator.url, None)
    missing = fal.call("GET", "/v3.fal.media/files/nope/image.png")
    assert missing.status == 404 and missing.json()["detail"] == "File not found"
