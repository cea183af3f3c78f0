"""The emulator's CDN: bytes kept in memory, served back at `/v3.fal.media/files/…`.

Uploaded files and generated outputs both live here; URLs are built from the
address the emulator was reached at. `publish` hands a generated file out as fal does.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

CDN_PREFIX = "/v3.fal.media/files"


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    name: str
    content_type: str
    data: bytes


class FileStore:
    """Files by id; an id is `<random>/<name>` so URLs keep the file's name."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}

    def put(self, data: bytes, content_type: str, name: str) -> StoredFile:
        file_id = f"{secrets.token_urlsafe(9)}/{_safe_name(name)}"
        stored = StoredFile(file_id, _safe_name(name), content_type, data)
        self._files[file_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    @staticmethod
    def url(base_url: str, stored: StoredFile) -> str:
        return f"{base_url}{CDN_PREFIX}/{stored.file_id}"


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name.split("/")[-1])
    return cleaned[:120] or "file.bin"


def publish(
    files: FileStore, base_url: str, data: bytes, content_type: str, name: str, inline: bool
) -> str:
    """A generated file's URL: a data URI when `inline` (fal's `sync_mode`), else a CDN URL."""
    if inline:
        return f"data:{content_type};base64,{base64.b64encode(data).decode()}"
    return FileStore.url(base_url, files.put(data, content_type, name))


def file_entry(url: str, data: bytes, content_type: str, name: str) -> dict[str, Any]:
    """fal's `File` object for a generated file."""
    return {"url": url, "content_type": content_type, "file_name": name, "file_size": len(data)}
