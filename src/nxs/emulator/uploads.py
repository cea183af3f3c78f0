"""Uploads in progress: a file URL handed out before its bytes arrive, and its parts.

An `Upload` is created by an initiate call (its id is the capability the client uses
for the unauthenticated byte PUTs), receives one body or numbered parts, and is
completed into the emulator's `FileStore`, after which its file URL serves the bytes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from aiohttp import web

from nxs.emulator.files import FileStore, StoredFile
from nxs.errors import BadRequest, NotFound, PayloadTooLarge

MAX_FILE_BYTES = 1024 * 1024 * 1024  # one uploaded file, all parts together
MAX_PARTS = 10_000
READ_CHUNK_BYTES = 1024 * 1024
UPLOADED_PREFIX = "up-"  # file URLs of initiated uploads: /v3.fal.media/files/up-{id}/{name}
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;[\w\s=.+\"-]*)?$")


class UploadNotFound(NotFound):
    detail = "Upload not found"


class UploadTooLarge(PayloadTooLarge):
    detail = f"File too large (max {MAX_FILE_BYTES // (1024 * 1024)} MB)"


def clean_content_type(value: object) -> str:
    """The content type to store: the client's if well-formed, else octet-stream."""
    if isinstance(value, str) and _CONTENT_TYPE.match(value.strip()):
        return value.strip()
    return "application/octet-stream"


def etag_of(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


@dataclass
class Upload:
    """One initiated upload: where it will live and what has arrived so far."""

    upload_id: str
    name: str
    content_type: str
    account_id: str
    parts: dict[int, bytes] = field(default_factory=dict)
    stored: StoredFile | None = None

    @property
    def path(self) -> str:
        """The path of its file URL, below the emulator's base URL."""
        return f"/v3.fal.media/files/{UPLOADED_PREFIX}{self.upload_id}/{self.name}"

    def received_bytes(self) -> int:
        return sum(len(part) for part in self.parts.values())

    def add_part(self, number: int, data: bytes) -> str:
        """Keep part `number` (replacing an earlier try); returns its ETag."""
        if self.stored is not None:
            raise BadRequest("Upload already completed")
        if not 1 <= number <= MAX_PARTS:
            raise BadRequest(f"Part number must be between 1 and {MAX_PARTS}")
        previous = len(self.parts.get(number, b""))
        if self.received_bytes() - previous + len(data) > MAX_FILE_BYTES:
            raise UploadTooLarge()
        self.parts[number] = data
        return etag_of(data)

    def assemble(self, listed: list[tuple[int, str]]) -> bytes:
        """The file's bytes from the parts the client lists, checking each ETag."""
        if not listed:
            raise BadRequest("No parts listed")
        chunks = []
        for number, etag in sorted(listed):
            data = self.parts.get(number)
            if data is None:
                raise BadRequest(f"Part {number} was not uploaded")
            if etag.strip('"') != etag_of(data).strip('"'):
                raise BadRequest(f"ETag of part {number} does not match")
            chunks.append(data)
        return b"".join(chunks)


class UploadRegistry:
    """Uploads by id; completing one stores its bytes in the FileStore."""

    def __init__(self, files: FileStore) -> None:
        self._files = files
        self._uploads: dict[str, Upload] = {}

    def create(self, name: str, content_type: str, account_id: str) -> Upload:
        upload_id = secrets.token_urlsafe(16)
        upload = Upload(upload_id, clean_name(name), clean_content_type(content_type), account_id)
        self._uploads[upload_id] = upload
        return upload

    def get(self, upload_id: str) -> Upload:
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise UploadNotFound()
        return upload

    def complete(self, upload: Upload, data: bytes) -> StoredFile:
        """Store `data` as the upload's file (a later PUT replaces it, as on a bucket)."""
        upload.stored = self._files.put(data, upload.content_type, upload.name)
        upload.parts.clear()
        return upload.stored

    def file_of(self, upload_id: str, name: str) -> StoredFile:
        """The stored file behind an upload's URL; 404 until its bytes have arrived."""
        upload = self._uploads.get(upload_id)
        if upload is None or upload.stored is None or upload.name != name:
            raise NotFound("File not found")
        return upload.stored


def clean_name(name: str) -> str:
    """A file name safe in a URL path: its last segment, odd characters replaced."""
    last = name.split("/")[-1]
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in last)
    return cleaned[:120].strip(".") or "file.bin"


async def read_body(request: web.Request, limit: int = MAX_FILE_BYTES) -> bytes:
    """The request body, streamed in chunks; 413 past `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise UploadTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)
