"""HTTP front of one emulated FME node: the REST v3 subset fmeaa uses, plus v4 health, tokens
and repositories. Paths, the `fmetoken` auth rule, status codes and JSON shapes follow
Safe's REST API documentation and the real-server samples in safesoftware/fmeflow-cli
(`cmd/*_test.go`); choices that are UNCONFIRMED are marked where they are
made, in the route modules under `routes/`.

Built on the standard library's ThreadingHTTPServer: no dependency, and the socket-level
control that the "connection dropped mid-upload" fault needs.

This module is the core: faults, the request handler, responses and the router (the server that
listens is `listener.py`), plus
the helpers every route family shares. The routes themselves live in `fmeaa.emulator.routes`, one
module per resource family; they register on ROUTER when imported (see the end of this file).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from fmeaa.emulator.faults import Throttled
from fmeaa.emulator.headers import disposition_filename
from fmeaa.emulator.state import NodeState

if TYPE_CHECKING:
    from fmeaa.emulator.listener import EmulatorHTTPServer

V3 = "/fmerest/v3"
V4 = "/fmeapiv4"
CHUNK = 64 * 1024
KNOWN_SERVICES = ("fmedatadownload", "fmedatastreaming", "fmejobsubmitter", "fmekmllink",
                  "fmenotification")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UnknownEndpoint(ApiError):
    """No route for this method and path on this node's version. Real servers answer with their
    framework's default error document, which has no `message` (Spring's `timestamp, status,
    error, path` — UNCONFIRMED for FME); clients tell "no such endpoint" from "no such object"
    by that."""

    def __init__(self, status: int, path: str) -> None:
        super().__init__(status, "Not Found" if status == 404 else "Method Not Allowed")
        self.path = path

    def body(self) -> dict[str, Any]:
        return {"timestamp": _iso(time.time()), "status": self.status, "error": self.message,
                "path": self.path}


class DroppedConnection(Exception):
    """Raised to abort a request by closing the socket (the client sees a broken connection)."""


def _iso(epoch: float) -> str:
    """A V3 date: whole seconds ("2022-12-07T18:50:52Z", fmeflow-cli workspaces_test.go)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ms(epoch: float) -> str:
    """A V4 date: milliseconds ("2022-12-07T18:50:52.635Z", the same file's V4 samples)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _page(items: list[Any], query: dict[str, str],
          render: Callable[[Any], dict[str, Any]] | None = None, *,
          default_limit: int = -1) -> dict[str, Any]:
    """FME's list envelope. A V3 list asked for no page answers everything with `offset: -1,
    limit: -1` (fmeflow-cli repositories_test.go, workspaces_test.go responseV3); a V4 list
    answers its first 100 with `offset: 0, limit: 100` (repositories_test.go responseV4,
    connections_test.go), so V4 routes pass `default_limit=100`. `render` turns only the chosen
    page into JSON, as a database LIMIT would (listing 1,000 items page by page must not cost
    1,000 renders per page)."""
    try:
        limit = int(query.get("limit", str(default_limit)))
        offset = int(query.get("offset", "-1" if default_limit < 0 else "0"))
    except ValueError:
        raise ApiError(400, "limit and offset must be integers") from None
    start = max(offset, 0)
    chosen = items[start:] if limit < 0 else items[start:start + limit]
    if render is not None:
        chosen = [render(i) for i in chosen]
    return {"offset": offset, "limit": limit, "totalCount": len(items), "items": chosen}


def _page_for(h: FmeRequestHandler, items: list[Any],
              render: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """`_page` with the default page of the request's API (a route serving V3 and V4)."""
    return _page(items, h.query, render, default_limit=100 if h.path.startswith(V4) else -1)


def _filename(disposition: str | None) -> str | None:
    """The upload's file name (`headers.disposition_filename`); a bad one is a 400."""
    try:
        return disposition_filename(disposition)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


class FmeRequestHandler(BaseHTTPRequestHandler):
    _counted = False  # this request is counted in its node's in-flight requests
    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every keep-alive response on loopback.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests own stdout
        return

    # --- plumbing ----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        node = self.server.node
        parsed = urllib.parse.urlsplit(self.path)
        raw_path = urllib.parse.unquote(parsed.path)
        path = raw_path.rstrip("/") or "/"
        self._query_pairs = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
        self.query = dict(self._query_pairs)
        self._body_consumed = False
        faults = node.faults
        version = node.version
        route, params = self.server.router.match(
            self.command, path, lambda r: version.serves(r.api, r.since, r.unconfirmed))
        in_flight = node.count_request(self.command, route)
        self._counted = True
        try:
            if faults.latency_s:
                time.sleep(faults.latency_s)
            if version.strict_trailing_slash and raw_path != path and path.startswith(V4):
                raise UnknownEndpoint(404, raw_path)  # 2026.1+: Spring 6 path matching
            if route is None:
                raise UnknownEndpoint(404 if params is None else 405, path)
            if not route.public:
                if faults.throttles(in_flight):
                    raise Throttled()
                if faults.roll_error():
                    raise ApiError(503, "Service temporarily unavailable (injected fault)")
                self._authenticate(route.basic, route.basic_or_token)
            result = route.handler(self, **(params or {}))
            if isinstance(result, Response):
                result.send(self)
            else:
                Response(200, result).send(self)
        except DroppedConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except UnknownEndpoint as exc:
            self._drain_body()
            Response(exc.status, exc.body()).send(self)
        except ApiError as exc:
            self._drain_body()
            Response(exc.status, {"message": exc.message}).send(self)
        except Throttled:
            node.throttled += 1
            self._drain_body()
            Response(429, {"message": "Too many requests (injected fault)"},
                     headers={"Retry-After": f"{faults.retry_after_s:g}"}).send(self)
        finally:
            self.answered()

    def answered(self) -> None:
        """This request no longer counts as in flight. Called before the answer's first byte
        goes out: a client that has the answer may send its next request at once, and that one
        must not be counted beside this one (a bounded client would seem to exceed its bound)."""
        if self._counted:
            self._counted = False
            self.server.node.request_done()

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def query_all(self, name: str) -> list[str]:
        """Every value of a repeated query parameter (`?status=queued&status=running`)."""
        return [v for k, v in self._query_pairs if k == name]

    def _authenticate(self, basic: bool, basic_or_token: bool = False) -> None:
        state = self.server.node.state
        header = self.headers.get("Authorization", "")
        if basic_or_token and header.startswith("Basic "):
            basic = True
        if basic:
            if header.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    user, password = "", ""
                if user == state.username and password == state.password:
                    return
            raise ApiError(401, "Authentication failed: invalid user name or password")
        match = re.fullmatch(r"fmetoken token=(\S+)", header)
        if not match or not state.token_valid(match.group(1)):
            raise ApiError(401, "Authentication failed: missing, invalid or expired token")

    def json_body(self) -> dict[str, Any]:
        raw = b"".join(self.body_chunks())
        try:
            value = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"malformed JSON body: {exc.msg}") from None
        if not isinstance(value, dict):
            raise ApiError(400, "JSON body must be an object")
        return value

    def form_body(self) -> dict[str, list[str]]:
        raw = b"".join(self.body_chunks()).decode()
        return urllib.parse.parse_qs(raw, keep_blank_values=True)

    def body_chunks(self) -> Iterator[bytes]:
        """The request body in chunks (Content-Length or chunked), honouring the drop fault."""
        self._body_consumed = True
        drop_after = self.server.node.faults.drop_upload_after
        read = 0
        for chunk in self._raw_chunks():
            read += len(chunk)
            if drop_after is not None and read > drop_after:
                raise DroppedConnection()
            yield chunk

    def _raw_chunks(self) -> Iterator[bytes]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(CHUNK, remaining))
                    if not data:
                        raise DroppedConnection()
                    remaining -= len(data)
                    yield data
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            data = self.rfile.read(min(CHUNK, remaining))
            if not data:
                raise DroppedConnection()
            remaining -= len(data)
            yield data

    def _drain_body(self) -> None:
        if not self._body_consumed:
            try:
                for _ in self._raw_chunks():
                    pass
            except DroppedConnection:
                self.close_connection = True
            self._body_consumed = True


class Response:
    def __init__(self, status: int, body: Any = None, file: Any = None, size: int = 0,
                 content_type: str = "application/json", unlink_after: bool = False,
                 headers: dict[str, str] | None = None, what: str = "other") -> None:
        self.status, self.body, self.file, self.size = status, body, file, size
        self.what = what  # a file download's kind, for the counters: item, resource:CONN…
        self.content_type = content_type
        self.unlink_after = unlink_after  # `file` is a spool of this response only
        self.headers = headers or {}

    def send(self, handler: FmeRequestHandler) -> None:
        handler._drain_body()
        handler.send_response(self.status)
        for name, value in self.headers.items():
            handler.send_header(name, value)
        if self.file is not None:
            kind = self.content_type if self.content_type != "application/json" \
                else "application/octet-stream"
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(self.size))
            handler.answered()
            handler.end_headers()
            handler.server.node.count_download(self.what, self.size)
            try:
                with self.file.open("rb") as source:
                    while chunk := source.read(CHUNK):
                        handler.wfile.write(chunk)
            finally:
                if self.unlink_after:
                    self.file.unlink(missing_ok=True)
            return
        payload = b"" if self.body is None or self.status == 204 else json.dumps(self.body).encode()
        if payload:
            handler.send_header("Content-Type", self.content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.answered()
        handler.end_headers()
        handler.wfile.write(payload)


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Any]
    public: bool = False
    basic: bool = False
    basic_or_token: bool = False
    api: str = "other"  # "v3" | "v4" | "other": which API family the path belongs to
    since: int = 0  # first build that serves it (fmeaa.emulator.versions)
    unconfirmed: bool = False  # a V4 path no public source confirms (served only without V3)
    template: str = ""  # the path as registered ("/fmerest/v3/repositories/{repo}"): counters


def api_of(template: str) -> str:
    return "v3" if template.startswith(V3) else "v4" if template.startswith(V4) else "other"


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, public: bool = False, basic: bool = False,
            basic_or_token: bool = False, since: int = 0, unconfirmed: bool = False
            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        regex = regex.replace("(?P<path>[^/]+)", "(?P<path>.*)")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.routes.append(Route(method, re.compile(f"^{regex}$"), fn, public, basic,
                                     basic_or_token, api_of(template), since, unconfirmed,
                                     template))
            return fn
        return register

    def match(self, method: str, path: str, served: Callable[[Route], bool] = lambda r: True
              ) -> tuple[Route | None, dict[str, str] | None]:
        """The route for method and path among those `served` by this node's version; else
        (None, None) for an unknown path (404) or (None, {}) for a known path and another
        method (405)."""
        path_known = False
        for route in self.routes:
            m = route.pattern.match(path)
            if m and served(route):
                path_known = True
                if route.method == method:
                    return route, m.groupdict()
        return None, ({} if path_known else None)


ROUTER = Router()
route = ROUTER.add


def _state(h: FmeRequestHandler) -> NodeState:
    return h.server.node.state


def _changed(h: FmeRequestHandler) -> None:
    _state(h).save()


# Route modules register themselves on ROUTER when imported, and they import the names above from
# this module: so they are imported last, once everything they need exists.
import fmeaa.emulator.routes  # noqa: E402, F401
