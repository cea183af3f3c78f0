"""The files a model's input names (`image_url`, `mask_url`, `audio_url`), fetched as fal's
apps fetch them: a `data:` URI, or a file of the emulator's own CDN (generated outputs and
uploads, by path, whatever host the URL names). The emulator is offline: any other URL is
the 422 fal answers for a file it cannot download. Images are decoded for their size.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from PIL import Image, UnidentifiedImageError

from nxs.emulator.files import CDN_PREFIX, FileStore
from nxs.emulator.uploads import UPLOADED_PREFIX, UploadRegistry
from nxs.errors import NotFound, ValidationFailed

MEDIA_KEY: Final = "_media"  # where the fetched files ride along in a job's clean input
DOWNLOAD_FAILED: Final = "Failed to download the file. Please check if the URL is accessible."
UNREADABLE_IMAGE: Final = "Could not read the image: it is not a PNG, JPEG, WebP or GIF file"


@dataclass(frozen=True)
class Media:
    """One fetched input file; `size` is (width, height) for an image, else None."""

    data: bytes
    content_type: str
    size: tuple[int, int] | None = None


def attach_media(
    clean: dict[str, Any], fields: tuple[str, ...], files: FileStore, uploads: UploadRegistry
) -> None:
    """Fetch every media field of `clean` into `clean[MEDIA_KEY]`; 422 when one fails."""
    fetched: dict[str, Media] = {}
    errors = []
    for name in fields:
        url = clean.get(name)
        if url is None:
            continue
        try:
            fetched[name] = _decoded(name, _fetch(str(url), files, uploads))
        except _Unusable as problem:
            errors.append({"loc": ["body", name], "msg": problem.msg, "type": problem.kind})
    if errors:
        raise ValidationFailed(errors)
    clean[MEDIA_KEY] = fetched


class _Unusable(Exception):
    def __init__(self, msg: str, kind: str) -> None:
        super().__init__(msg)
        self.msg, self.kind = msg, kind


def _fetch(url: str, files: FileStore, uploads: UploadRegistry) -> Media:
    if url.startswith("data:"):
        return _data_uri(url)
    parts = urlsplit(url)
    marker = CDN_PREFIX + "/"
    if parts.scheme in ("http", "https") and marker in parts.path:
        file_id = unquote(parts.path.split(marker, 1)[1])
        stored = files.get(file_id)
        if stored is None and file_id.startswith(UPLOADED_PREFIX) and "/" in file_id:
            upload_id, name = file_id[len(UPLOADED_PREFIX) :].split("/", 1)
            try:
                stored = uploads.file_of(upload_id, name)
            except NotFound:
                stored = None
        if stored is not None:
            return Media(stored.data, stored.content_type)
    raise _Unusable(DOWNLOAD_FAILED, "file_download_error")


def _data_uri(url: str) -> Media:
    header, _, payload = url[5:].partition(",")
    content_type = header.split(";", 1)[0] or "text/plain"
    try:
        data = (
            base64.b64decode(payload, validate=True)
            if ";base64" in header
            else unquote(payload).encode()
        )
    except (binascii.Error, ValueError) as exc:
        raise _Unusable(DOWNLOAD_FAILED, "file_download_error") from exc
    return Media(data, content_type)


def _decoded(name: str, media: Media) -> Media:
    """An image field's file with its size read (422 when it is no image)."""
    if not name.startswith(("image", "mask")):
        return media
    try:
        with Image.open(io.BytesIO(media.data)) as picture:
            size = picture.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise _Unusable(UNREADABLE_IMAGE, "image_load_error") from exc
    return Media(media.data, media.content_type, size)
