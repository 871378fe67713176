"""The requests of a sync on the standard library's `http.client`: a keep-alive pool per node.

Why not httpx for these: a sync sends one request per workspace to every node, and httpx spends
about four times the CPU of `http.client` on each (its request and response models, URL
parsing, cookie jar): measured against the emulator on loopback, 0.8 ms against 0.19 ms per
20 KB upload (README, "Speed"). With no network latency to hide behind, that CPU is what a
sync costs. Streamed downloads (`LeanPool.stream`) and REST V4's multipart uploads
(`fmeaa.client.multipart`) go this way too, so a sync never imports httpx unless a node is
reached through a proxy or a test gives its own transport.

What it keeps of HTTP: HTTP/1.1 keep-alive (a connection the server said it closes, or that
the server closed while idle, is not reused), a timeout per connect and per read, TLS with the
client's context, bodies from bytes, a file or a multipart/form-data upload (streamed, with
their length: never chunked), no redirects, no
cookies and no compression (fmeaa asks for neither). Failures raise `LeanTransportError`,
which the transport turns into the same typed errors as httpx's.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import os
import select
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from email.message import Message
from typing import TYPE_CHECKING, Any, BinaryIO

from fmeaa.client.multipart import BLOCK, Multipart, encode

if TYPE_CHECKING:
    import ssl

USER_AGENT = "fmeaa"


class LeanTransportError(Exception):
    """No (complete) answer: `kind` is "connect", "timeout" or "broken" (mid-request)."""

    def __init__(self, kind: str, cause: BaseException) -> None:
        super().__init__(f"{kind}: {type(cause).__name__}")
        self.kind = kind
        self.cause_name = type(cause).__name__


class LeanResponse:
    """What the transport and the dialects read of an answer (httpx.Response's names)."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(self, status_code: int, headers: Message, content: bytes, reason: str) -> None:
        self.status_code = status_code
        self.headers = headers  # case-insensitive .get()
        self.content = content
        self.reason_phrase = reason

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class LeanStream:
    """An answer whose body is read as it arrives (downloads): `iter_bytes`, or `read` it all."""

    def __init__(self, answer: http.client.HTTPResponse) -> None:
        self._answer = answer
        self.status_code = answer.status
        self.headers = answer.headers
        self.reason_phrase = answer.reason
        self.content = b""

    def iter_bytes(self, size: int) -> Iterator[bytes]:
        while True:
            try:
                chunk = self._answer.read(size)
            except (OSError, http.client.HTTPException) as exc:
                raise _translated(exc, "broken") from None
            if not chunk:
                return
            yield chunk

    def read(self) -> bytes:
        self.content = b"".join(self.iter_bytes(BLOCK))
        return self.content

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class LeanPool:
    """Keep-alive connections to one server; thread-safe (each request takes a connection of
    its own; how many run at once is bounded by the caller)."""

    def __init__(self, base_url: str, timeout: float, context: ssl.SSLContext | None) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.context = context
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if _usable(conn):
                return conn
            conn.close()
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.context, blocksize=BLOCK)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout,
                                          blocksize=BLOCK)

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def stream(self, method: str, path: str, *, json: Any = None,
               headers: dict[str, str] | None = None) -> Iterator[LeanStream]:
        """A request whose answer's body is read inside the block; the connection is reused
        only if the block read it to its end."""
        sent = {"User-Agent": USER_AGENT, **(headers or {})}
        payload = _payload(method, sent, json=json)
        conn = self._open()
        try:
            conn.request(method, self.prefix + path, body=payload, headers=sent)
            answer = conn.getresponse()
        except BaseException as exc:
            conn.close()
            raise _translated(exc, "broken") from None
        try:
            yield LeanStream(answer)
        except BaseException:
            conn.close()
            raise
        if answer.isclosed() and not answer.will_close:
            self._give_back(conn)
        else:
            conn.close()

    def _open(self) -> http.client.HTTPConnection:
        """A connection, connected (a failure to connect is a LeanTransportError)."""
        conn = self._connection()
        try:
            if conn.sock is None:
                conn.connect()
        except BaseException as exc:
            conn.close()
            raise _translated(exc, "connect") from None
        return conn

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None,
                data: dict[str, Any] | None = None, body: BinaryIO | None = None,
                multipart: Multipart | None = None,
                headers: dict[str, str] | None = None) -> LeanResponse:
        """One request, its answer read whole. The body: `json`, a form (`data`), a file's
        bytes (`body`, from its position) or a multipart/form-data upload (`multipart`: its
        file opened here, so each call sends it from its start, in blocks)."""
        target = self.prefix + path
        if params:
            target += "?" + urllib.parse.urlencode(
                {k: _text(v) for k, v in params.items()}, doseq=True)
        sent = {"User-Agent": USER_AGENT, **(headers or {})}
        if multipart is not None:
            with multipart.path.open("rb") as file:
                form = encode(multipart, os.fstat(file.fileno()).st_size)
                sent["Content-Type"] = form.content_type
                sent["Content-Length"] = str(form.content_length)
                return self._exchange(method, target, form.chunks(file), sent)
        return self._exchange(method, target,
                              _payload(method, sent, json=json, data=data, body=body), sent)

    def _exchange(self, method: str, target: str, payload: bytes | BinaryIO | Iterable[bytes]
                  | None, sent: dict[str, str]) -> LeanResponse:
        """Send a request on a pooled connection and read its answer; the connection goes back
        to the pool unless the server said it closes it (or anything failed: then it is
        closed, and the failure raised as a LeanTransportError).

        A server may answer before it has read the whole body — a 401 or 413 to a large upload
        — and close the connection, which breaks the sending: the answer it sent counts, as
        httpx (httpcore) reads it too; a connection broken with no answer is "broken"."""
        conn = self._open()
        unsent: ConnectionError | None = None
        try:
            try:
                conn.request(method, target, body=payload, headers=sent)
            except ConnectionError as exc:
                unsent = exc
            try:
                answer = conn.getresponse()
                content = answer.read()
            except (OSError, http.client.HTTPException):
                if unsent is not None:
                    raise unsent from None
                raise
        except BaseException as exc:
            conn.close()
            raise _translated(exc, "broken") from None
        if unsent is not None or answer.will_close:
            conn.close()
        else:
            self._give_back(conn)
        return LeanResponse(answer.status, answer.headers, content, answer.reason)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _payload(method: str, sent: dict[str, str], *, json: Any = None,
             data: dict[str, Any] | None = None, body: BinaryIO | None = None
             ) -> bytes | BinaryIO | None:
    """A request's body — `json`, a form (`data`) or a file's bytes from its position — with
    its Content-Type or Content-Length set in `sent` (0 for a POST, PUT or PATCH without one)."""
    if json is not None:
        sent.setdefault("Content-Type", "application/json")
        return jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
    if data is not None:
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return urllib.parse.urlencode({k: _text(v) for k, v in data.items()},
                                      doseq=True).encode()
    if body is not None:
        sent["Content-Length"] = str(os.fstat(body.fileno()).st_size - body.tell())
        return body
    if method in ("POST", "PUT", "PATCH"):
        sent["Content-Length"] = "0"
    return None


def _text(value: Any) -> Any:
    """A query or form value as httpx sends it: true/false for booleans, "" for None."""
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else value


def _usable(conn: http.client.HTTPConnection) -> bool:
    """An idle connection may be reused unless the server closed it (or sent something
    unasked): its socket is then readable."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _translated(exc: BaseException, otherwise: str) -> BaseException:
    """A socket or protocol failure as a LeanTransportError; a timeout is one whether it hit
    the connect or a read (as httpx's ConnectTimeout and ReadTimeout are both timeouts)."""
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return LeanTransportError("timeout", exc)
    if isinstance(exc, OSError | http.client.HTTPException):
        return LeanTransportError(otherwise, exc)
    return exc
