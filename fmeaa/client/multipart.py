"""multipart/form-data bodies for REST V4 uploads (items, resources, project packages), sent by
`lean_http` on the standard library's `http.client` instead of httpx.

Why a module of its own: the bytes must be what httpx sent before, byte for byte but for the
random boundary, so a real FME node sees the same request as ever — parts in httpx's order (the
text fields, then the file), names and filenames quoted as httpx 0.28 quotes them
(`httpx/_multipart.py`, `_format_form_param`, after WHATWG's HTML form encoding: `"` as `%22`,
`\\` doubled, control characters but ESC percent-encoded, everything else — non-ASCII too —
as raw UTF-8), and `Content-Type: application/octet-stream` for the file. The file itself is
never read whole: `Body.chunks` streams it, and its length is known up front (the file's size),
so the request carries an exact Content-Length and is never chunked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOCK = 64 * 1024  # the file is read and sent in blocks of this size

_ESCAPES = {'"': "%22", "\\": "\\\\",
            **{chr(c): f"%{c:02X}" for c in range(0x20) if c != 0x1B}}
_ESCAPED = re.compile("|".join(re.escape(c) for c in _ESCAPES))


@dataclass(frozen=True)
class Multipart:
    """A streamed multipart/form-data upload: the file as part `field`, plus small text parts."""

    field: str
    filename: str
    path: Path
    fields: tuple[tuple[str, str], ...] = ()


def form_param(key: str, value: str) -> bytes:
    """`key="value"` of a Content-Disposition, with `value` escaped as httpx escapes it."""
    escaped = _ESCAPED.sub(lambda m: _ESCAPES[m.group(0)], value)
    return f'{key}="{escaped}"'.encode()


@dataclass(frozen=True)
class Body:
    """One upload's body: `head` (the text parts and the file part's headers), the file's
    `size` bytes, then `tail` (the closing boundary)."""

    boundary: str
    head: bytes
    size: int
    tail: bytes

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def chunks(self, file: BinaryIO) -> Iterator[bytes]:
        """The body from `file`'s current position: the head goes with the first block and the
        tail with the last (a small upload is one send). Exactly `size` bytes of the file are
        sent; a file that shrank meanwhile is an error (ValueError, naming it), not a short
        body the node would wait for."""
        pending, left = self.head, self.size
        while left:
            block = file.read(min(BLOCK, left))
            if not block:
                raise ValueError(f"{getattr(file, 'name', 'the file')} shrank while being "
                                 f"uploaded ({left} of {self.size} bytes missing): run again")
            left -= len(block)
            if len(pending) < BLOCK:
                pending += block
            else:
                yield pending
                pending = block
        yield pending + self.tail


def encode(upload: Multipart, size: int, boundary: str | None = None) -> Body:
    """The body of `upload` whose file holds `size` bytes; `boundary`: random unless given."""
    boundary = boundary or os.urandom(16).hex()
    delimiter = f"--{boundary}\r\n".encode()
    head = b"".join(
        delimiter + b"Content-Disposition: form-data; " + form_param("name", name)
        + b"\r\n\r\n" + value.encode() + b"\r\n"
        for name, value in upload.fields)
    filename = b"; " + form_param("filename", upload.filename) if upload.filename else b""
    head += (delimiter + b"Content-Disposition: form-data; " + form_param("name", upload.field)
             + filename + b"\r\nContent-Type: application/octet-stream\r\n\r\n")
    return Body(boundary, head, size, f"\r\n--{boundary}--\r\n".encode())
