"""A streaming multipart/form-data reader for the emulator's V4 uploads (every V4 upload a public
caller makes is multipart: resources part `files`, project import part `file` — fmeflow-cli
projects_upload.go, eea/Products.Reportek). Parts are read one after the other and a file part's
bytes are handed on in chunks, so a large upload never sits in memory."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

CHUNK = 64 * 1024


class MultipartError(ValueError):
    """The body is not the multipart document its Content-Type announces."""


@dataclass
class Part:
    name: str
    filename: str | None
    body: Iterator[bytes]  # consume it before asking for the next part

    def text(self) -> str:
        return b"".join(self.body).decode()


def boundary_of(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type.startswith("multipart/form-data") or not match:
        raise MultipartError("expected Content-Type: multipart/form-data with a boundary")
    return match.group(1)


class MultipartReader:
    def __init__(self, chunks: Iterable[bytes], boundary: str) -> None:
        self._chunks = iter(chunks)
        self._buffer = b"\r\n"  # so the first delimiter looks like every other one
        self._eof = False
        self._delimiter = b"\r\n--" + boundary.encode()
        self._done = False

    def _fill(self, size: int) -> None:
        while len(self._buffer) < size and not self._eof:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                self._eof = True

    def _until_delimiter(self) -> Iterator[bytes]:
        """Bytes up to the next delimiter (which is consumed), in chunks."""
        keep = len(self._delimiter)
        while True:
            self._fill(keep + CHUNK)
            at = self._buffer.find(self._delimiter)
            if at >= 0:
                if at:
                    yield self._buffer[:at]
                self._buffer = self._buffer[at + keep:]
                return
            if self._eof:
                raise MultipartError("multipart body ends without its closing boundary")
            safe = len(self._buffer) - keep + 1
            if safe > 0:
                yield self._buffer[:safe]
                self._buffer = self._buffer[safe:]

    def parts(self) -> Iterator[Part]:
        for _ in self._until_delimiter():  # the preamble
            pass
        while True:
            self._fill(2)
            if self._buffer.startswith(b"--"):
                return
            self._fill(16 * 1024)
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                raise MultipartError("a multipart part has no header end")
            headers = self._buffer[:end].decode("utf-8", "replace")
            self._buffer = self._buffer[end + 4:]
            disposition = next((line for line in headers.split("\r\n")
                                if line.lower().startswith("content-disposition:")), "")
            name = re.search(r'\bname="([^"]*)"', disposition)
            filename = re.search(r'\bfilename="([^"]*)"', disposition)
            body = self._until_delimiter()
            yield Part(name.group(1) if name else "",
                       _unescape(filename.group(1)) if filename else None, body)
            for _ in body:  # whatever the caller left unread
                pass


def _unescape(filename: str) -> str:
    """Undo the escapes HTML's multipart/form-data encoding (WHATWG, which httpx and browsers
    follow) puts in a quoted filename: `"` as %22, CR and LF as %0D and %0A. Whether FME's
    server decodes them the same way is UNCONFIRMED; fmeaa's name validation refuses `%`, so a
    name never depends on it for anything but the quote."""
    return filename.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
