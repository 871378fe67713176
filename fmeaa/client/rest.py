"""Typed client for the FME Server REST API v3, and a v4 adapter for FME Flow 2023.2+.

One client talks to ONE node, directly (never the load balancer). Paths and shapes follow Safe's
REST API documentation and safesoftware/fmeflow-cli (`cmd/*.go`). Uploads and downloads stream
(64 KiB chunks), so memory does not grow with file size. A 401 on a token
we obtained triggers one re-login, then an error.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from fmeaa.client.errors import (
    TRANSIENT,
    AuthenticationError,
    FmeApiError,
    NodeTimeoutError,
    NodeUnreachableError,
    NotFoundError,
    TransferInterruptedError,
    error_for_status,
)

T = TypeVar("T")
V3 = "/fmerest/v3"
V4 = "/fmeapiv4"
PAGE_SIZE = 100
TOKEN_SECONDS = 3600
CHUNK = 64 * 1024
NotificationKind = Literal["topics", "subscriptions", "publications"]


_SSL_CONTEXTS: dict[bool, ssl.SSLContext] = {}


def _ssl_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per kind for every client: building one costs 3–20 ms (the CA bundle),
    and a sync opens a client per node. Plain-http nodes never use theirs (no TLS, redirects
    are not followed); httpx only insists on having one."""
    if verify not in _SSL_CONTEXTS:
        _SSL_CONTEXTS[verify] = httpx.create_ssl_context(verify=verify)
    return _SSL_CONTEXTS[verify]


def service_names(raw: list[Any]) -> list[str]:
    """Sorted service names, whether a server lists them as names or as {name, …} objects."""
    return sorted(s["name"] if isinstance(s, dict) else str(s) for s in raw)


def content_disposition(name: str) -> str:
    """The upload header naming the file. A plain ASCII name goes as Safe's documentation shows
    it (`attachment; filename="x.fmw"`); any other name also as RFC 5987 `filename*` (UTF-8,
    percent-encoded), which RFC 6266 recipients prefer, with an ASCII stand-in in `filename`.
    (HTTP header values are ASCII: a raw `é` cannot be sent at all.) Whether FME reads
    `filename*` is UNCONFIRMED; the emulator does, as RFC 6266 asks."""
    if re.fullmatch(r"[\x20-\x7e]*", name) and not re.search(r'["\\%]', name):
        return f'attachment; filename="{name}"'
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = re.sub(r'[^\x20-\x7e]|["\\%]', "_", ascii_name) or "file"
    return (f'attachment; filename="{fallback}"; '
            f"filename*=UTF-8''{urllib.parse.quote(name, safe='')}")


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _quote_path(path: str) -> str:
    parts = [p for p in path.strip("/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"resource path {path!r} may not contain '.' or '..' segments")
    return "/".join(_quote(p) for p in parts)


class FmeClient:
    """FME Server REST API v3 for one node."""

    api_version = "v3"

    def __init__(self, node: str, base_url: str, *, username: str | None = None,
                 password: str | None = None, token: str | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 read_retries: int = 0) -> None:
        self.node = node
        self.read_retries = read_retries
        self.base_url = base_url.rstrip("/")
        self._username, self._password = username, password
        self._token = token
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  follow_redirects=False,
                                  verify=_ssl_context(self.base_url.startswith("https:")))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FmeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never show the token
        return f"{type(self).__name__}(node={self.node!r}, base_url={self.base_url!r})"

    # --- transport and errors -----------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", **(extra or {})}
        if self._token:
            headers["Authorization"] = f"fmetoken token={self._token}"
        return headers

    def _fail(self, method: str, path: str, response: httpx.Response) -> FmeApiError:
        try:
            message = str(response.json().get("message", "")) or response.reason_phrase
        except (ValueError, AttributeError):
            message = response.reason_phrase or "error"
        return error_for_status(self.node, method, path, response.status_code, message)

    @contextmanager
    def _transport_errors(self, method: str, path: str) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise NodeUnreachableError(self.node, method, path, None,
                                       f"cannot connect ({type(exc).__name__})") from None
        except httpx.TimeoutException as exc:
            raise NodeTimeoutError(self.node, method, path, None,
                                   f"no answer in time ({type(exc).__name__})") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise TransferInterruptedError(self.node, method, path, None,
                                           f"connection broken mid-request ({type(exc).__name__})"
                                           ) from None

    def _idempotent(self, call: Callable[[], T]) -> T:
        """Run a call that is safe to repeat (reads, token requests), retrying transient
        failures `read_retries` times with backoff. Writes are retried by the sync's applier,
        which knows how to recover from a write whose answer was lost."""
        if not self.read_retries:
            return call()
        for attempt in Retrying(retry=retry_if_exception_type(TRANSIENT),
                                stop=stop_after_attempt(self.read_retries + 1),
                                wait=wait_exponential(multiplier=0.1, max=1.0), reraise=True):
            with attempt:
                return call()
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None, data: dict[str, Any] | None = None,
                file: Path | None = None, headers: dict[str, str] | None = None,
                ok: tuple[int, ...] = (200, 201, 204)) -> httpx.Response:
        """One call; on 401 with a token we obtained ourselves, log in again once and retry.
        GETs are also retried on transient failures (see `_idempotent`)."""
        once = lambda: self._request_once(method, path, params, json, data, file, headers, ok)  # noqa: E731
        return self._idempotent(once) if method == "GET" else once()

    def _request_once(self, method: str, path: str, params: dict[str, Any] | None, json: Any,
                      data: dict[str, Any] | None, file: Path | None,
                      headers: dict[str, str] | None, ok: tuple[int, ...]) -> httpx.Response:
        for attempt in (1, 2):
            with self._transport_errors(method, path):
                if file is not None:
                    with file.open("rb") as body:
                        response = self._send(method, path, params, json, data, body, headers)
                else:
                    response = self._send(method, path, params, json, data, None, headers)
            if response.status_code in ok:
                return response
            if response.status_code == 401 and attempt == 1 and self._can_login:
                self.login()
                continue
            raise self._fail(method, path, response)
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, params: dict[str, Any] | None, json: Any,
              data: dict[str, Any] | None, body: BinaryIO | None,
              headers: dict[str, str] | None) -> httpx.Response:
        return self._http.request(method, path, params=params, json=json, data=data,
                                  content=body, headers=self._headers(headers))

    @property
    def _can_login(self) -> bool:
        return bool(self._username and self._password)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def _paged(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a v3/v4 list envelope, page by page (`limit`/`offset`)."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._json("GET", path, params={**(params or {}), "limit": PAGE_SIZE,
                                                   "offset": offset})
            batch = page.get("items", [])
            items.extend(batch)
            offset += len(batch)
            if not batch or offset >= int(page.get("totalCount", 0)):
                return items

    # --- auth, health, info -------------------------------------------------------------------
    def login(self) -> None:
        """Exchange user/password (HTTP Basic) for a token: POST /tokens → 201 (fmeflow-cli)."""
        self._idempotent(self._login_once)

    def _login_once(self) -> None:
        if not self._can_login:
            raise AuthenticationError(self.node, "POST", self._token_path, None,
                                      "no credentials to log in with")
        self._token = None
        path = self._token_path
        with self._transport_errors("POST", path):
            response = self._http.post(path, json=self._token_body(),
                                       auth=(self._username or "", self._password or ""),
                                       headers={"Accept": "application/json"})
        if response.status_code != 201:
            raise self._fail("POST", path, response)
        self._token = response.json()["token"]

    _token_path = f"{V3}/tokens"

    def _token_body(self) -> dict[str, Any]:
        return {"name": f"fmeaa-{self.node}", "description": "fmeaa sync", "restricted": False,
                "enabled": True, "expirationTimeout": TOKEN_SECONDS, "user": self._username}

    def ensure_token(self) -> None:
        if not self._token:
            self.login()

    def health(self) -> dict[str, Any]:
        """The health endpoint (no token needed). Raises when the node is not healthy."""
        return self._json("GET", self._health_path)

    _health_path = f"{V3}/healthcheck"

    def info(self) -> dict[str, Any]:
        return self._json("GET", f"{V3}/info")

    # --- repositories and items ---------------------------------------------------------------
    def repositories(self) -> list[dict[str, Any]]:
        return self._paged(f"{V3}/repositories")

    def repository(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"{V3}/repositories/{_quote(name)}")

    def create_repository(self, name: str, description: str = "") -> dict[str, Any]:
        # v3 takes a form body (fmeflow-cli repositories_create.go).
        return self._json("POST", f"{V3}/repositories",
                          data={"name": name, "description": description})

    def delete_repository(self, name: str) -> None:
        self.request("DELETE", f"{self._repo_base}/{_quote(name)}")

    _repo_base = f"{V3}/repositories"

    def items(self, repository: str, item_type: str | None = None) -> list[dict[str, Any]]:
        params = {"type": item_type} if item_type else None
        return self._paged(f"{V3}/repositories/{_quote(repository)}/items", params)

    def item(self, repository: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"{V3}/repositories/{_quote(repository)}/items/{_quote(name)}")

    def upload_item(self, repository: str, file: Path, name: str | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
        """Publish a file (streamed). New: POST → 201 (409 if it exists); overwrite: PUT → 200."""
        name = name or file.name
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Disposition": content_disposition(name)}
        base = f"{V3}/repositories/{_quote(repository)}/items"
        if overwrite:
            return self._json("PUT", f"{base}/{_quote(name)}", file=file, headers=headers)
        return self._json("POST", base, file=file, headers=headers)

    def download_item(self, repository: str, name: str, dest: Path | None) -> str:
        """Stream the item's bytes to `dest` (None: only digest them); returns their sha256."""
        path = f"{V3}/repositories/{_quote(repository)}/items/{_quote(name)}"
        return self._download(path, dest)

    def delete_item(self, repository: str, name: str) -> None:
        self.request("DELETE", f"{V3}/repositories/{_quote(repository)}/items/{_quote(name)}")

    def services(self, repository: str, name: str) -> list[str]:
        path = f"{V3}/repositories/{_quote(repository)}/items/{_quote(name)}/services"
        return service_names(self._json("GET", path))

    def set_services(self, repository: str, name: str, services: list[str]) -> list[str]:
        path = f"{V3}/repositories/{_quote(repository)}/items/{_quote(name)}/services"
        result = self._json("PUT", path, data={"services": sorted(services)})
        return service_names(result)

    # --- schedules ----------------------------------------------------------------------------
    def schedules(self) -> list[dict[str, Any]]:
        return self._paged(f"{V3}/schedules")

    def schedule(self, category: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"{V3}/schedules/{_quote(category)}/{_quote(name)}")

    def create_schedule(self, schedule: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"{V3}/schedules", json=schedule)

    def replace_schedule(self, category: str, name: str, schedule: dict[str, Any]) -> dict[str, Any]:
        return self._json("PUT", f"{V3}/schedules/{_quote(category)}/{_quote(name)}", json=schedule)

    def delete_schedule(self, category: str, name: str) -> None:
        self.request("DELETE", f"{V3}/schedules/{_quote(category)}/{_quote(name)}")

    # --- notifications ------------------------------------------------------------------------
    def notifications(self, kind: NotificationKind) -> list[dict[str, Any]]:
        return self._paged(f"{V3}/notifications/{kind}")

    def notification(self, kind: NotificationKind, name: str) -> dict[str, Any]:
        return self._json("GET", f"{V3}/notifications/{kind}/{_quote(name)}")

    def create_notification(self, kind: NotificationKind, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"{V3}/notifications/{kind}", json=body)

    def replace_notification(self, kind: NotificationKind, name: str,
                             body: dict[str, Any]) -> dict[str, Any]:
        return self._json("PUT", f"{V3}/notifications/{kind}/{_quote(name)}", json=body)

    def delete_notification(self, kind: NotificationKind, name: str) -> None:
        self.request("DELETE", f"{V3}/notifications/{kind}/{_quote(name)}")

    # --- resources (shared files) -------------------------------------------------------------
    def resource_connections(self) -> list[str]:
        return sorted(c["name"] for c in self._json("GET", f"{V3}/resources/connections"))

    def _fs(self, connection: str, path: str = "") -> str:
        tail = _quote_path(path)
        return f"{V3}/resources/connections/{_quote(connection)}/filesys" + (f"/{tail}" if tail else "")

    def list_resources(self, connection: str, path: str = "", depth: int = 1) -> dict[str, Any]:
        return self._json("GET", self._fs(connection, path), params={"depth": depth})

    def walk_resources(self, connection: str, path: str = "") -> Iterator[dict[str, Any]]:
        """Every FILE entry below `path`, recursively (one listing per directory)."""
        listing = self.list_resources(connection, path, depth=1)
        for entry in listing.get("contents", []):
            if entry["type"] == "DIR":
                yield from self.walk_resources(connection, entry["path"])
            else:
                yield entry

    def upload_resource(self, connection: str, directory: str, file: Path, name: str | None = None,
                        overwrite: bool = True, create_directories: bool = True) -> dict[str, Any]:
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Disposition": content_disposition(name or file.name)}
        params = {"overwrite": str(overwrite).lower(),
                  "createDirectories": str(create_directories).lower()}
        return self._json("POST", self._fs(connection, directory), params=params, file=file,
                          headers=headers)

    def make_resource_directory(self, connection: str, parent: str, name: str) -> None:
        self.request("POST", self._fs(connection, parent), data={"directoryname": name},
                     params={"createDirectories": "true"})

    def download_resource(self, connection: str, path: str, dest: Path | None) -> str:
        return self._download(self._fs(connection, path), dest)

    def delete_resource(self, connection: str, path: str) -> None:
        self.request("DELETE", self._fs(connection, path))

    def _download(self, path: str, dest: Path | None) -> str:
        return self._idempotent(lambda: self._download_once(path, dest))

    def _download_once(self, path: str, dest: Path | None) -> str:
        digest = hashlib.sha256()
        for attempt in (1, 2):
            with self._transport_errors("GET", path), self._http.stream(
                "GET", path, headers=self._headers({"Accept": "application/octet-stream"})
            ) as response:
                if response.status_code == 401 and attempt == 1 and self._can_login:
                    response.read()
                    self.login()
                    continue
                if response.status_code != 200:
                    response.read()
                    raise self._fail("GET", path, response)
                if dest is None:
                    for chunk in response.iter_bytes(CHUNK):
                        digest.update(chunk)
                    return digest.hexdigest()
                partial = dest.with_name(f".{dest.name}.partial")
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                partial.replace(dest)
                return digest.hexdigest()
        raise AssertionError("unreachable")

    # --- connections (FME Flow REST v4 only; bodies hold credentials: never log them) --------
    def connections(self) -> list[dict[str, Any]]:
        raise NotImplementedError("connections need REST v4 (FME Flow 2023.2+); use FmeClientV4")

    # --- jobs and licensing -------------------------------------------------------------------
    def running_jobs(self) -> list[dict[str, Any]]:
        return self._paged(f"{V3}/transformations/jobs/running")

    def license_status(self) -> dict[str, Any]:
        return self._json("GET", f"{V3}/licensing/license/status")

    def request_license(self, serial_number: str, **contact: str) -> None:
        """Ask Safe's licensing server for this machine's licence (asynchronous: poll
        `license_request_status`). `contact`: firstName, lastName, email, company…"""
        self.request("POST", f"{V3}/licensing/request",
                     data={"serialNumber": serial_number, **contact}, ok=(200, 202, 204))

    def refresh_license(self) -> None:
        self.request("POST", f"{V3}/licensing/refresh", ok=(200, 202, 204))

    def license_request_status(self) -> dict[str, Any]:
        return self._json("GET", f"{V3}/licensing/request/status")


class FmeClientV4(FmeClient):
    """FME Flow (REST v4) adapter: v4 for what v4 offers here (tokens, health, repositories);
    the rest through v3, which FME Flow 2023–2024 still serves alongside v4."""

    api_version = "v4"
    _token_path = f"{V4}/tokens"
    _health_path = f"{V4}/healthcheck/liveness"
    _repo_base = f"{V4}/repositories"

    def _token_body(self) -> dict[str, Any]:
        return {"name": f"fmeaa-{self.node}", "description": "fmeaa sync", "enabled": True,
                "secondsToExpiry": TOKEN_SECONDS}

    def repositories(self) -> list[dict[str, Any]]:
        return self._paged(f"{V4}/repositories")

    def repository(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"{V4}/repositories/{_quote(name)}")

    def create_repository(self, name: str, description: str = "") -> dict[str, Any]:
        return self._json("POST", f"{V4}/repositories",
                          json={"name": name, "description": description})

    def connections(self) -> list[dict[str, Any]]:
        return self._paged(f"{V4}/connections")

    def connection(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"{V4}/connections/{_quote(name)}")

    def create_connection(self, body: dict[str, Any]) -> None:
        self.request("POST", f"{V4}/connections", json=body)

    def replace_connection(self, name: str, body: dict[str, Any]) -> None:
        self.request("PUT", f"{V4}/connections/{_quote(name)}", json=body)

    def delete_connection(self, name: str) -> None:
        self.request("DELETE", f"{V4}/connections/{_quote(name)}")


def connect(node: str, base_url: str, *, username: str | None = None, password: str | None = None,
            token: str | None = None, api: Literal["auto", "v3", "v4"] = "auto",
            timeout: float = 30.0, read_retries: int = 0) -> FmeClient:
    """A client for one node; with api="auto", v4 when the node answers the v4 health check."""
    kwargs: dict[str, Any] = dict(username=username, password=password, token=token, timeout=timeout,
                                  read_retries=read_retries)
    if api == "v3":
        return FmeClient(node, base_url, **kwargs)
    if api == "v4":
        return FmeClientV4(node, base_url, **kwargs)
    probe = FmeClientV4(node, base_url, **kwargs)
    try:
        probe.health()
        return probe
    except NotFoundError:
        probe.close()
        return FmeClient(node, base_url, **kwargs)
