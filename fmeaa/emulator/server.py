"""HTTP front of one emulated FME node: the REST v3 subset fmeaa uses, plus v4 health, tokens
and repositories. Paths, the `fmetoken` auth rule, status codes and JSON shapes follow
`../shared/fme-rest-api.md` (sources there); choices that are UNCONFIRMED are marked here.

Built on the standard library's ThreadingHTTPServer: no dependency, and the socket-level
control that the "connection dropped mid-upload" fault needs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fmeaa.emulator.state import NodeState, Repository, RepositoryItem, item_type

V3 = "/fmerest/v3"
V4 = "/fmeapiv4"
CHUNK = 64 * 1024
BUILD = "FME Flow 2024.1 - Build 24612 - linux-x64"  # shape from fmeflow-cli info_v3_test.go
KNOWN_SERVICES = ("fmedatadownload", "fmedatastreaming", "fmejobsubmitter", "fmekmllink",
                  "fmenotification")


@dataclass
class Faults:
    """Faults injected into this node; change them at any time (tests, `sandbox`)."""

    latency_s: float = 0.0  # added before every response
    error_rate: float = 0.0  # share of non-health requests answered 503
    drop_upload_after: int | None = None  # close the connection after reading this many bytes
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def roll_error(self) -> bool:
        with self._lock:
            return self.error_rate > 0 and self._rng.random() < self.error_rate


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DroppedConnection(Exception):
    """Raised to abort a request by closing the socket (the client sees a broken connection)."""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page(items: list[Any], query: dict[str, str],
          render: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """FME's list envelope; limit/offset of -1 mean "everything" (v3 convention). `render`
    turns only the chosen page into JSON, as a database LIMIT would (listing 1,000 items page by
    page must not cost 1,000 renders per page)."""
    try:
        limit = int(query.get("limit", "100"))
        offset = int(query.get("offset", "0"))
    except ValueError:
        raise ApiError(400, "limit and offset must be integers") from None
    start = max(offset, 0)
    chosen = items[start:] if limit < 0 else items[start:start + limit]
    if render is not None:
        chosen = [render(i) for i in chosen]
    return {"offset": offset, "limit": limit, "totalCount": len(items), "items": chosen}


def _filename(disposition: str | None) -> str | None:
    if not disposition:
        return None
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition)
    return urllib.parse.unquote(match.group(1)) if match else None


class FmeRequestHandler(BaseHTTPRequestHandler):
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
        path = urllib.parse.unquote(parsed.path).rstrip("/") or "/"
        self.query = dict(urllib.parse.parse_qsl(parsed.query))
        self._body_consumed = False
        node.request_count += 1
        faults = node.faults
        try:
            if faults.latency_s:
                time.sleep(faults.latency_s)
            route, params = self.server.router.match(self.command, path)
            if route is None:
                raise ApiError(404 if params is None else 405, f"no such endpoint: {path}")
            if not route.public:
                if faults.roll_error():
                    raise ApiError(503, "Service temporarily unavailable (injected fault)")
                self._authenticate(route.basic)
            result = route.handler(self, **params)
            if isinstance(result, Response):
                result.send(self)
            else:
                Response(200, result).send(self)
        except DroppedConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except ApiError as exc:
            self._drain_body()
            Response(exc.status, {"message": exc.message}).send(self)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def _authenticate(self, basic: bool) -> None:
        state = self.server.node.state
        header = self.headers.get("Authorization", "")
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
                 content_type: str = "application/json") -> None:
        self.status, self.body, self.file, self.size = status, body, file, size
        self.content_type = content_type

    def send(self, handler: FmeRequestHandler) -> None:
        handler._drain_body()
        handler.send_response(self.status)
        if self.file is not None:
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Content-Length", str(self.size))
            handler.end_headers()
            with self.file.open("rb") as source:
                while chunk := source.read(CHUNK):
                    handler.wfile.write(chunk)
            return
        payload = b"" if self.body is None or self.status == 204 else json.dumps(self.body).encode()
        if payload:
            handler.send_header("Content-Type", self.content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Any]
    public: bool = False
    basic: bool = False


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, public: bool = False, basic: bool = False
            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        regex = regex.replace("(?P<path>[^/]+)", "(?P<path>.*)")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.routes.append(Route(method, re.compile(f"^{regex}$"), fn, public, basic))
            return fn
        return register

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str] | None]:
        path_known = False
        for route in self.routes:
            m = route.pattern.match(path)
            if m:
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


# --- emulator-only: counters for tests and the benchmark (not part of FME's API) -------------
@route("GET", "/__emulator__/stats", public=True)
def emulator_stats(h: FmeRequestHandler) -> Any:
    node = h.server.node
    return {"node": node.name, "requests": node.request_count, "uploadedBytes": node.uploaded_bytes}


# --- health, info, tokens ------------------------------------------------------------------------
@route("GET", f"{V3}/healthcheck", public=True)
def v3_health(h: FmeRequestHandler) -> Any:
    return {"status": "ok"}


@route("GET", f"{V4}/healthcheck", public=True)
@route("GET", f"{V4}/healthcheck/liveness", public=True)
@route("GET", f"{V4}/healthcheck/readiness", public=True)
def v4_health(h: FmeRequestHandler) -> Any:
    return {"status": "ok", "message": "FME Flow is healthy."}


@route("GET", f"{V3}/info")
def v3_info(h: FmeRequestHandler) -> Any:
    return {"build": BUILD, "currentTime": _iso(time.time()), "licenseManagement": True,
            "timeZone": "UTC", "version": "FME Flow 2024.1"}


def _token_request(h: FmeRequestHandler, seconds_key: str) -> tuple[dict[str, Any], str, float]:
    body = h.json_body()
    seconds = body.get(seconds_key, 3600)
    if not isinstance(seconds, int) or seconds <= 0:
        raise ApiError(422, f"{seconds_key} must be a positive integer")
    token, expiry = _state(h).issue_token(seconds)
    return body, token, expiry


@route("POST", f"{V3}/tokens", basic=True)
def v3_token(h: FmeRequestHandler) -> Any:
    body, token, expiry = _token_request(h, "expirationTimeout")
    return Response(201, {"token": token, "expirationDate": _iso(expiry),
                          "name": body.get("name", "fmeaa"), "user": _state(h).username,
                          "enabled": True, "restricted": False})


@route("POST", f"{V4}/tokens", basic=True)
def v4_token(h: FmeRequestHandler) -> Any:
    body, token, expiry = _token_request(h, "secondsToExpiry")
    return Response(201, {"token": token, "expiration": _iso(expiry),
                          "owner": _state(h).username, "name": body.get("name", "fmeaa")})


# --- repositories --------------------------------------------------------------------------------
def _repo(h: FmeRequestHandler, name: str) -> Repository:
    repo = _state(h).repositories.get(name)
    if repo is None:
        raise ApiError(404, f"Repository '{name}' does not exist")
    return repo


def _repo_json(r: Repository, v4: bool = False) -> dict[str, Any]:
    base = {"name": r.name, "description": r.description, "owner": r.owner, "sharable": True}
    if v4:
        base.update(workspaceCount=sum(1 for i in r.items.values() if i.type == "WORKSPACE"),
                    fileCount=len(r.items),
                    totalFileSize=sum(i.file.size for i in r.items.values()))
    return base


@route("GET", f"{V3}/repositories")
def v3_repositories(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        repos = [_repo_json(r) for r in sorted(_state(h).repositories.values(), key=lambda r: r.name)]
    return _page(repos, h.query)


@route("GET", f"{V4}/repositories")
def v4_repositories(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        repos = [_repo_json(r, v4=True)
                 for r in sorted(_state(h).repositories.values(), key=lambda r: r.name)]
    return _page(repos, h.query)


def _create_repository(h: FmeRequestHandler, name: str, description: str) -> Response:
    if not name or "/" in name:
        raise ApiError(422, "repository name is required and may not contain '/'")
    with _state(h).lock:
        if name in _state(h).repositories:
            raise ApiError(409, f"Repository '{name}' already exists")
        _state(h).repositories[name] = Repository(name, description)
    _changed(h)
    return Response(201, _repo_json(_state(h).repositories[name]))


@route("POST", f"{V3}/repositories")
def v3_create_repository(h: FmeRequestHandler) -> Any:
    form = h.form_body()  # v3 takes form-urlencoded (fmeflow-cli repositories_create.go)
    return _create_repository(h, form.get("name", [""])[0], form.get("description", [""])[0])


@route("POST", f"{V4}/repositories")
def v4_create_repository(h: FmeRequestHandler) -> Any:
    body = h.json_body()
    return _create_repository(h, str(body.get("name", "")), str(body.get("description", "")))


@route("GET", f"{V3}/repositories/{{repo}}")
@route("GET", f"{V4}/repositories/{{repo}}")
def get_repository(h: FmeRequestHandler, repo: str) -> Any:
    return _repo_json(_repo(h, repo), v4=h.path.startswith(V4))


@route("DELETE", f"{V3}/repositories/{{repo}}")
@route("DELETE", f"{V4}/repositories/{{repo}}")
def delete_repository(h: FmeRequestHandler, repo: str) -> Any:
    with _state(h).lock:
        removed = _repo(h, repo)
        del _state(h).repositories[repo]
    for item in removed.items.values():
        _state(h).drop_blob(item.file)
    _changed(h)
    return Response(204)


# --- repository items ----------------------------------------------------------------------------
def _item_json(repo: Repository, item: RepositoryItem) -> dict[str, Any]:
    # Field names follow the v4 sample in fmeflow-cli; v3 names are UNCONFIRMED. `sha256` is an
    # emulator extension the client ignores (it digests downloaded bytes itself).
    return {"name": item.name, "title": item.name.rsplit(".", 1)[0], "description": "",
            "type": item.type, "repositoryName": repo.name, "fileCount": 1,
            "totalFileSize": item.file.size, "lastSaveDate": _iso(item.file.modified),
            "lastPublishDate": _iso(item.last_publish), "services": list(item.services)}


def _item(h: FmeRequestHandler, repo: str, name: str) -> tuple[Repository, RepositoryItem]:
    r = _repo(h, repo)
    item = r.items.get(name)
    if item is None:
        raise ApiError(404, f"Item '{name}' does not exist in repository '{repo}'")
    return r, item


@route("GET", f"{V3}/repositories/{{repo}}/items")
def list_items(h: FmeRequestHandler, repo: str) -> Any:
    r = _repo(h, repo)
    wanted = h.query.get("type")
    with _state(h).lock:
        items = [i for i in sorted(r.items.values(), key=lambda i: i.name)
                 if not wanted or i.type == wanted.upper()]
        return _page(items, h.query, lambda i: _item_json(r, i))


def _upload_item(h: FmeRequestHandler, repo: str, name: str | None, replace: bool) -> Response:
    if h.headers.get("Content-Type", "").split(";")[0] != "application/octet-stream":
        raise ApiError(415 if replace else 400, "expected Content-Type: application/octet-stream")
    r = _repo(h, repo)
    filename = name or _filename(h.headers.get("Content-Disposition"))
    if not filename:
        raise ApiError(400, "Content-Disposition with a filename is required")
    exists = filename in r.items
    if replace and not exists:
        raise ApiError(404, f"Item '{filename}' does not exist in repository '{repo}'")
    if not replace and exists:
        raise ApiError(409, f"Item '{filename}' already exists in repository '{repo}'")
    stored = _state(h).store_stream(h.body_chunks())  # a dropped upload leaves nothing behind
    h.server.node.uploaded_bytes += stored.size
    with _state(h).lock:
        old = r.items.get(filename)
        services = old.services if old else ["fmejobsubmitter"]  # UNCONFIRMED default service
        r.items[filename] = RepositoryItem(filename, item_type(filename), stored, services,
                                           time.time())
    if old:
        _state(h).drop_blob(old.file)
    _changed(h)
    return Response(200 if replace else 201, _item_json(r, r.items[filename]))


@route("POST", f"{V3}/repositories/{{repo}}/items")
def create_item(h: FmeRequestHandler, repo: str) -> Any:
    return _upload_item(h, repo, None, replace=False)


@route("PUT", f"{V3}/repositories/{{repo}}/items/{{item}}")
def replace_item(h: FmeRequestHandler, repo: str, item: str) -> Any:
    return _upload_item(h, repo, item, replace=True)


@route("GET", f"{V3}/repositories/{{repo}}/items/{{item}}")
def get_item(h: FmeRequestHandler, repo: str, item: str) -> Any:
    r, found = _item(h, repo, item)
    if "application/octet-stream" in h.headers.get("Accept", ""):
        return Response(200, file=_state(h).blob_path(found.file), size=found.file.size)
    return _item_json(r, found)


@route("DELETE", f"{V3}/repositories/{{repo}}/items/{{item}}")
def delete_item(h: FmeRequestHandler, repo: str, item: str) -> Any:
    r, found = _item(h, repo, item)
    with _state(h).lock:
        del r.items[item]
    _state(h).drop_blob(found.file)
    _changed(h)
    return Response(204)


@route("GET", f"{V3}/repositories/{{repo}}/items/{{item}}/services")
def get_services(h: FmeRequestHandler, repo: str, item: str) -> Any:
    _, found = _item(h, repo, item)
    return [{"name": s, "displayName": s} for s in found.services]  # UNCONFIRMED shape


@route("PUT", f"{V3}/repositories/{{repo}}/items/{{item}}/services")
def set_services(h: FmeRequestHandler, repo: str, item: str) -> Any:
    _, found = _item(h, repo, item)
    services = h.form_body().get("services", [])
    unknown = sorted(set(services) - set(KNOWN_SERVICES))
    if unknown:
        raise ApiError(422, f"unknown service(s): {', '.join(unknown)}")
    with _state(h).lock:
        found.services = sorted(set(services))
    _changed(h)
    return [{"name": s, "displayName": s} for s in found.services]


# --- schedules -----------------------------------------------------------------------------------
SCHEDULE_REQUIRED = ("name", "category", "repository", "workspace")


def _validate_schedule(body: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in SCHEDULE_REQUIRED if not body.get(k)]
    if missing:
        raise ApiError(422, f"missing schedule field(s): {', '.join(missing)}")
    if body.get("recurrence", "cron") == "cron" and len(str(body.get("cron", "")).split()) not in (6, 7):
        # FME uses Quartz cron: seconds minutes hours day-of-month month day-of-week [year].
        raise ApiError(422, "cron must be a Quartz expression with 6 or 7 fields")
    return {"enabled": True, "description": "", "request": {}, **body}


@route("GET", f"{V3}/schedules")
def list_schedules(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        items = [s for _, s in sorted(_state(h).schedules.items())]
    return _page(items, h.query)


@route("POST", f"{V3}/schedules")
def create_schedule(h: FmeRequestHandler) -> Any:
    body = _validate_schedule(h.json_body())
    key = (body["category"], body["name"])
    with _state(h).lock:
        if key in _state(h).schedules:
            raise ApiError(409, f"Schedule '{key[0]}/{key[1]}' already exists")
        _state(h).schedules[key] = body
    _changed(h)
    return Response(201, body)


def _schedule(h: FmeRequestHandler, category: str, name: str) -> dict[str, Any]:
    found = _state(h).schedules.get((category, name))
    if found is None:
        raise ApiError(404, f"Schedule '{category}/{name}' does not exist")
    return found


@route("GET", f"{V3}/schedules/{{category}}/{{name}}")
def get_schedule(h: FmeRequestHandler, category: str, name: str) -> Any:
    return _schedule(h, category, name)


@route("PUT", f"{V3}/schedules/{{category}}/{{name}}")
def replace_schedule(h: FmeRequestHandler, category: str, name: str) -> Any:
    _schedule(h, category, name)
    body = _validate_schedule({**h.json_body(), "category": category, "name": name})
    with _state(h).lock:
        _state(h).schedules[(category, name)] = body
    _changed(h)
    return body


@route("DELETE", f"{V3}/schedules/{{category}}/{{name}}")
def delete_schedule(h: FmeRequestHandler, category: str, name: str) -> Any:
    _schedule(h, category, name)
    with _state(h).lock:
        del _state(h).schedules[(category, name)]
    _changed(h)
    return Response(204)


# --- notifications: topics, subscriptions, publications -----------------------------------------
def _collection(h: FmeRequestHandler, kind: str) -> dict[str, dict[str, Any]]:
    return getattr(_state(h), kind)


def _check_topics(h: FmeRequestHandler, body: dict[str, Any]) -> None:
    topics = body.get("topics", [])
    if not isinstance(topics, list):
        raise ApiError(400, "topics must be a list")
    missing = sorted(set(topics) - set(_state(h).topics))
    if missing:
        raise ApiError(422, f"unknown topic(s): {', '.join(missing)}")


def _register_notification_kind(kind: str, needs_topics: bool) -> None:
    base = f"{V3}/notifications/{kind}"

    @route("GET", base)
    def list_all(h: FmeRequestHandler) -> Any:
        with _state(h).lock:
            items = [v for _, v in sorted(_collection(h, kind).items())]
        return _page(items, h.query)

    @route("POST", base)
    def create(h: FmeRequestHandler) -> Any:
        body = h.json_body()
        name = body.get("name")
        if not name:
            raise ApiError(422, "name is required")
        if needs_topics:
            _check_topics(h, body)
        with _state(h).lock:
            if name in _collection(h, kind):
                raise ApiError(409, f"'{name}' already exists in {kind}")
            _collection(h, kind)[name] = body
        _changed(h)
        return Response(201, body)

    def existing(h: FmeRequestHandler, name: str) -> dict[str, Any]:
        found = _collection(h, kind).get(name)
        if found is None:
            raise ApiError(404, f"'{name}' does not exist in {kind}")
        return found

    @route("GET", f"{base}/{{name}}")
    def get_one(h: FmeRequestHandler, name: str) -> Any:
        return existing(h, name)

    @route("PUT", f"{base}/{{name}}")
    def replace(h: FmeRequestHandler, name: str) -> Any:
        existing(h, name)
        body = {**h.json_body(), "name": name}
        if needs_topics:
            _check_topics(h, body)
        with _state(h).lock:
            _collection(h, kind)[name] = body
        _changed(h)
        return body

    @route("DELETE", f"{base}/{{name}}")
    def delete(h: FmeRequestHandler, name: str) -> Any:
        existing(h, name)
        if kind == "topics":
            users = [s["name"] for coll in ("subscriptions", "publications")
                     for s in _collection(h, coll).values() if name in s.get("topics", [])]
            if users:  # UNCONFIRMED: the real server's rule; dependents must go first
                raise ApiError(409, f"topic '{name}' is used by: {', '.join(sorted(users))}")
        with _state(h).lock:
            del _collection(h, kind)[name]
        _changed(h)
        return Response(204)


for _kind, _needs in (("topics", False), ("subscriptions", True), ("publications", True)):
    _register_notification_kind(_kind, _needs)


# --- connections (v4; bodies hold credentials — the emulator never logs them) ------------------
def _connection(h: FmeRequestHandler, name: str) -> dict[str, Any]:
    found = _state(h).connections.get(name)
    if found is None:
        raise ApiError(404, f"Connection '{name}' does not exist")
    return found


def _valid_connection(body: dict[str, Any]) -> dict[str, Any]:
    if not body.get("name") or not body.get("category"):
        raise ApiError(422, "connection needs 'name' and 'category'")  # UNCONFIRMED field set
    return body


# Credential parameters are never returned (fmeflow-cli's connection samples carry USER_NAME
# but no PASSWORD); which names count is UNCONFIRMED.
_HIDDEN_PARAMETER = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)


def _connection_view(body: dict[str, Any]) -> dict[str, Any]:
    parameters = {k: v for k, v in (body.get("parameters") or {}).items()
                  if not _HIDDEN_PARAMETER.search(k)}
    return {**body, "owner": "admin", "shareable": True, "parameters": parameters}


@route("GET", f"{V4}/connections")
def list_connections(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        return _page([v for _, v in sorted(_state(h).connections.items())], h.query,
                     _connection_view)


@route("POST", f"{V4}/connections")
def create_connection(h: FmeRequestHandler) -> Any:
    body = _valid_connection(h.json_body())
    with _state(h).lock:
        if body["name"] in _state(h).connections:
            raise ApiError(409, f"Connection '{body['name']}' already exists")
        _state(h).connections[body["name"]] = body
    _changed(h)
    return Response(201)


@route("GET", f"{V4}/connections/{{name}}")
def get_connection(h: FmeRequestHandler, name: str) -> Any:
    return _connection_view(_connection(h, name))


@route("PUT", f"{V4}/connections/{{name}}")
def replace_connection(h: FmeRequestHandler, name: str) -> Any:
    _connection(h, name)
    body = _valid_connection({**h.json_body(), "name": name})
    with _state(h).lock:
        _state(h).connections[name] = body
    _changed(h)
    return Response(204)


@route("DELETE", f"{V4}/connections/{{name}}")
def delete_connection(h: FmeRequestHandler, name: str) -> Any:
    _connection(h, name)
    with _state(h).lock:
        del _state(h).connections[name]
    _changed(h)
    return Response(204)


# --- resources (shared files) --------------------------------------------------------------------
@route("GET", f"{V3}/resources/connections")
def resource_connections(h: FmeRequestHandler) -> Any:
    names = sorted(p.name for p in (_state(h).data_dir / "resources").iterdir() if p.is_dir())
    return [{"name": n, "type": "SYSTEM", "displayName": n} for n in names]


def _resource_path(h: FmeRequestHandler, connection: str, path: str) -> Any:
    root = _state(h).resource_root(connection)
    if root is None:
        raise ApiError(404, f"Resource connection '{connection}' does not exist")
    target = NodeState.resolve_inside(root, path)
    if target is None:
        raise ApiError(400, "path escapes the resource connection")
    return root, target


def _entry(root: Any, p: Any, depth: int) -> dict[str, Any]:
    rel = "/" + str(p.relative_to(root)).replace("\\", "/").lstrip(".")
    stat = p.stat()
    entry = {"name": p.name if p != root else "", "path": rel.rstrip("/") or "/",
             "type": "DIR" if p.is_dir() else "FILE", "size": 0 if p.is_dir() else stat.st_size,
             "date": _iso(stat.st_mtime)}
    if p.is_dir():
        children = sorted(c for c in p.iterdir() if not c.name.startswith("."))
        entry["contents"] = [_entry(root, c, depth - 1) for c in children] if depth > 0 else []
    return entry


@route("GET", f"{V3}/resources/connections/{{connection}}/filesys")
@route("GET", f"{V3}/resources/connections/{{connection}}/filesys/{{path}}")
def list_resource(h: FmeRequestHandler, connection: str, path: str = "") -> Any:
    root, target = _resource_path(h, connection, path)
    if not target.exists():
        raise ApiError(404, f"'{path}' does not exist in {connection}")
    if target.is_file() and "application/octet-stream" in h.headers.get("Accept", ""):
        return Response(200, file=target, size=target.stat().st_size)
    return _entry(root, target, int(h.query.get("depth", "1")))


@route("POST", f"{V3}/resources/connections/{{connection}}/filesys")
@route("POST", f"{V3}/resources/connections/{{connection}}/filesys/{{path}}")
def upload_resource(h: FmeRequestHandler, connection: str, path: str = "") -> Any:
    _, directory = _resource_path(h, connection, path)
    create_dirs = h.query.get("createDirectories", "false").lower() == "true"
    if not directory.exists():
        if not create_dirs:
            raise ApiError(404, f"directory '{path}' does not exist (createDirectories=false)")
        directory.mkdir(parents=True)
    if not directory.is_dir():
        raise ApiError(409, f"'{path}' is a file, not a directory")
    content_type = h.headers.get("Content-Type", "").split(";")[0]
    if content_type == "application/x-www-form-urlencoded":
        name = h.form_body().get("directoryname", [""])[0]
        if not name or "/" in name:
            raise ApiError(422, "directoryname is required")
        new_dir = directory / name
        if new_dir.exists():
            raise ApiError(409, f"'{name}' already exists")
        new_dir.mkdir()
        return Response(201, {"name": name, "type": "DIR"})
    filename = _filename(h.headers.get("Content-Disposition"))
    if content_type != "application/octet-stream" or not filename or "/" in filename:
        raise ApiError(400, "upload needs application/octet-stream and a Content-Disposition filename")
    target = directory / filename
    overwrite = h.query.get("overwrite", "false").lower() == "true"
    if target.exists() and not overwrite:
        raise ApiError(409, f"'{filename}' already exists (overwrite=false)")
    size = _state(h).write_resource(target, h.body_chunks())
    h.server.node.uploaded_bytes += size
    return Response(201, {"name": filename, "type": "FILE", "size": size})


@route("DELETE", f"{V3}/resources/connections/{{connection}}/filesys/{{path}}")
def delete_resource(h: FmeRequestHandler, connection: str, path: str) -> Any:
    root, target = _resource_path(h, connection, path)
    if target == root.resolve() or not target.exists():
        raise ApiError(404, f"'{path}' does not exist in {connection}")
    NodeState.remove_tree(target)
    return Response(204)


# --- jobs and licensing (for drain and seeding) --------------------------------------------------
@route("GET", f"{V3}/transformations/jobs/running")
def running_jobs(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        return _page(list(_state(h).running_jobs), h.query)


@route("GET", f"{V3}/licensing/license/status")
def license_status(h: FmeRequestHandler) -> Any:
    return {k: v for k, v in _state(h).license_view().items() if k != "serialNumber"}


# Licensing is asynchronous: a request is answered 202 and completes later (fmeflow-cli
# request.go polls request/status). Status codes and field names here are UNCONFIRMED.
SERIAL = re.compile(r"^[A-Z0-9]{4}(-[A-Z0-9]{4}){2,3}$")


@route("POST", f"{V3}/licensing/request")
def license_request(h: FmeRequestHandler) -> Any:
    form = h.form_body()
    serial = form.get("serialNumber", [""])[0]
    if not serial:
        raise ApiError(422, "serialNumber is required")
    _state(h).start_license_request(serial, valid=bool(SERIAL.match(serial)))
    return Response(202, {"status": "REQUESTING"})


@route("POST", f"{V3}/licensing/refresh")
def license_refresh(h: FmeRequestHandler) -> Any:
    state = _state(h)
    if not state.license.get("serialNumber"):
        raise ApiError(409, "no serial number on record: request a licence first")
    state.start_license_request(state.license["serialNumber"], valid=True)
    return Response(202, {"status": "REQUESTING"})


@route("GET", f"{V3}/licensing/request/status")
def license_request_status(h: FmeRequestHandler) -> Any:
    view = _state(h).license_view()
    return {"status": view["requestStatus"], "message": view.get("requestMessage", "")}


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    router = ROUTER

    def __init__(self, address: tuple[str, int], node: Any) -> None:
        self.node = node
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, FmeRequestHandler)

    # Track live connections so a node taken "down" also drops its keep-alive connections,
    # as a crashed or stopped server would.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            live = list(self._open)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
