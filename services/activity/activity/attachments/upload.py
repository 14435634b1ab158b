"""Receive the one file of a multipart upload as it streams in, into the content store.

The body is parsed chunk by chunk (python-multipart's streaming parser) straight into a
temporary file of the store, hashed and counted on the way: the file is never held in memory.
It is refused as soon as it crosses the size limit, and as soon as its first bytes show a type
that is not allowed; a refused or interrupted upload leaves no file behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from activity.attachments.sniff import HEAD_BYTES, is_allowed, kind_of, sniff
from activity.attachments.storage import ContentStore, PendingFile
from salesrail.http.problems import ProblemError, invalid_field

FIELD = "file"
# Room for the multipart framing and small form fields around the file.
FRAMING_BYTES = 64 * 1024
# A part's headers are a few hundred bytes; more is not a form a client sends.
MAX_PART_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    media_type: str
    kind: str
    original_name: str | None


def file_problem(status: int, message: str, code: str, **extra: Any) -> ProblemError:
    """A problem about the uploaded file, naming the field like a validation error does."""
    return ProblemError(
        status,
        f"{FIELD}: {message}",
        errors=[{"field": FIELD, "in": "body", "message": message, "code": code}],
        **extra,
    )


def too_large(max_bytes: int) -> ProblemError:
    return file_problem(
        413, f"the file is larger than {max_bytes} bytes", "too_large", max_bytes=max_bytes
    )


async def receive_file(
    request: Request, *, store: ContentStore, max_bytes: int, allowed: Sequence[str]
) -> StoredFile:
    """The file of the `file` part, checked and stored under its sha256."""
    boundary = _boundary(request.headers.get("content-type"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FRAMING_BYTES:
        raise too_large(max_bytes)
    receiver = _FileReceiver(store, max_bytes=max_bytes, allowed=allowed)
    parser = MultipartParser(boundary, receiver.callbacks())
    try:
        async for chunk in request.stream():
            # Parsing, hashing and writing are blocking work: off the event loop.
            await anyio.to_thread.run_sync(receiver.feed, parser, chunk)
        parser.finalize()
        pending, media_type = receiver.complete()
        sha256 = await anyio.to_thread.run_sync(pending.commit)
    except MultipartParseError as exc:
        receiver.discard()
        raise invalid_field(FIELD, f"the multipart body is malformed: {exc}") from None
    except ClientDisconnect:
        receiver.discard()
        raise file_problem(400, "the upload was interrupted", "interrupted") from None
    except BaseException:
        receiver.discard()
        raise
    return StoredFile(sha256, pending.size, media_type, kind_of(media_type), receiver.filename)


def _boundary(content_type: str | None) -> bytes:
    media_type, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise invalid_field(FIELD, "send the file as multipart/form-data in a part named 'file'")
    return boundary


class _FileReceiver:
    """The parser's callbacks: the `file` part goes to a pending file, other parts nowhere."""

    def __init__(self, store: ContentStore, *, max_bytes: int, allowed: Sequence[str]) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.allowed = allowed
        self.body_bytes = 0
        self.pending: PendingFile | None = None
        self.filename: str | None = None
        self.media_type: str | None = None
        self.head = bytearray()
        self.in_file = False
        self.file_ended = False
        self._header_bytes = 0
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        }

    def feed(self, parser: MultipartParser, chunk: bytes) -> None:
        self.body_bytes += len(chunk)
        if self.body_bytes > self.max_bytes + FRAMING_BYTES:
            raise too_large(self.max_bytes)
        parser.write(chunk)

    def complete(self) -> tuple[PendingFile, str]:
        """The whole file has arrived: its pending file and sniffed type."""
        if self.pending is None:
            raise invalid_field(FIELD, "no part named 'file' in the body", code="missing")
        if not self.file_ended:
            raise invalid_field(FIELD, "the body ended before the file did")
        if self.pending.size == 0:
            raise invalid_field(FIELD, "the file is empty")
        assert self.media_type is not None  # sniffed at the part's end at the latest
        return self.pending, self.media_type

    def discard(self) -> None:
        if self.pending is not None:
            self.pending.discard()

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._value += data[start:end]

    def _count_header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise invalid_field(FIELD, "a part's headers are too large")

    def _on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        # Header bytes are passed as latin-1 and come back so: the raw (UTF-8) file name.
        _, params = parse_options_header(self._headers.get("content-disposition", b""))
        if params.get(b"name") != FIELD.encode():
            return
        if self.pending is not None:
            raise invalid_field(FIELD, "send one file per upload")
        name = params.get(b"filename")
        if name:
            # Some clients send a whole path: keep the last component.
            last = name.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
            self.filename = last[:255] or None
        self.pending = self.store.pending()
        self.in_file = True

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.in_file:
            return  # other form fields are not kept
        assert self.pending is not None
        chunk = data[start:end]
        if self.pending.size + len(chunk) > self.max_bytes:
            raise too_large(self.max_bytes)
        self.pending.write(chunk)
        if self.media_type is None and len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
            if len(self.head) == HEAD_BYTES:
                self._judge()

    def _on_part_end(self) -> None:
        if not self.in_file:
            return
        self.in_file = False
        self.file_ended = True
        if self.media_type is None and self.head:
            self._judge()

    def _judge(self) -> None:
        """Sniff the first bytes once: refuse at once what the allow-list does not have."""
        detected = sniff(bytes(self.head))
        if detected is None or not is_allowed(detected, self.allowed):
            what = detected or "of no known file type (text or unknown binary)"
            raise file_problem(
                415,
                f"the content is {what}; allowed: {', '.join(self.allowed)}",
                "unsupported_type",
                detected=detected,
            )
        self.media_type = detected
        self.head = bytearray()
