"""HTTP plumbing shared by every API of one node: headers, typed errors, retries of idempotent
calls, one re-login on a 401, streamed uploads (raw or multipart) and downloads (64 KiB chunks,
so memory does not grow with file size). Knows no endpoint: paths come from `api_table`.

Thread-safe: callers run several requests at once, and the node never receives more than
`max_concurrent` of them (a limit per node, over a pool of as many keep-alive connections). A
node that says it is overloaded — 429, or 503 with Retry-After — is given the time it asks for
(RFC 9110 §10.2.3; capped at `MAX_RETRY_AFTER_S`) before ANY request of this client goes to it
again, the refused request is sent again (it was not processed), up to `throttle_retries`
times, and the limit is halved; it grows back by one after as many answers as it allows
(additive increase, multiplicative decrease, as TCP does), so fmeaa settles at what the node
accepts instead of hammering it."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import re
import ssl
import sys
import threading
import time
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from fmeaa.client.errors import (
    EndpointMissingError,
    FmeApiError,
    NodeTimeoutError,
    NodeUnreachableError,
    TransferInterruptedError,
    error_for_status,
)
from fmeaa.client.lean_http import LeanPool, LeanTransportError
from fmeaa.client.multipart import Multipart
from fmeaa.client.retry import retrying

if TYPE_CHECKING:
    import httpx

    from fmeaa.client.lean_http import LeanResponse, LeanStream

    Response = httpx.Response | LeanResponse | LeanStream  # an answer, from httpx or `lean_http`

T = TypeVar("T")
PAGE_SIZE = 100
CHUNK = 64 * 1024
DEFAULT_MAX_CONCURRENT = 8  # requests in flight per node (fmeaa.sync.engine explains the value)
MAX_RETRY_AFTER_S = 120.0  # never wait longer than this for one Retry-After
THROTTLE_RETRIES = 6  # a request refused with 429/503+Retry-After is sent at most this often more

_SSL_CONTEXTS: dict[bool, ssl.SSLContext] = {}


def _ssl_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per kind for every client: building one costs 3–20 ms (the CA bundle),
    and a sync opens a client per node. Plain-http nodes never use theirs (no TLS, redirects
    are not followed); httpx only insists on having one."""
    if verify not in _SSL_CONTEXTS:
        import httpx

        _SSL_CONTEXTS[verify] = httpx.create_ssl_context(verify=verify)
    return _SSL_CONTEXTS[verify]


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
# What each kind of `LeanTransportError` is, as httpx's own errors map below.
_LEAN_FAILURES: dict[str, tuple[type[FmeApiError], str]] = {
    "connect": (NodeUnreachableError, "cannot connect"),
    "timeout": (NodeTimeoutError, "no answer in time"),
    "broken": (TransferInterruptedError, "connection broken mid-request"),
}


def proxied(url: str) -> bool:
    """Whether the environment sends requests to `url` through a proxy (HTTP(S)_PROXY,
    ALL_PROXY, minus NO_PROXY), as httpx and urllib read it: such a node is spoken to through
    httpx, which goes through the proxy; `lean_http` connects directly."""
    import os

    if not any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARIABLES):
        return False
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    return bool(proxies.get(parts.scheme) or proxies.get("all")) and \
        not urllib.request.proxy_bypass(parts.hostname or "")


def quote(segment: str) -> str:
    """One path segment, every reserved character escaped (names may hold '/', '?', '#'…)."""
    return urllib.parse.quote(segment, safe="")


def quote_path(path: str) -> str:
    """A resource path as escaped segments, without a leading or trailing '/'."""
    parts = [p for p in path.strip("/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"resource path {path!r} may not contain '.' or '..' segments")
    return "/".join(quote(p) for p in parts)


def clean_path(path: str) -> str:
    """A resource path as "/a/b" ("/" for the root), refusing '.' and '..' segments."""
    parts = [p for p in path.strip("/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"resource path {path!r} may not contain '.' or '..' segments")
    return "/" + "/".join(parts)


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


class Transport:
    """The HTTP side of one node's client."""

    def __init__(self, node: str, base_url: str, *, username: str | None = None,
                 password: str | None = None, token: str | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 read_retries: int = 0, max_concurrent: int = DEFAULT_MAX_CONCURRENT,
                 throttle_retries: int = THROTTLE_RETRIES,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self.read_retries = read_retries
        self._retrying = threading.local()  # inside a retry loop (per thread)
        self.base_url = base_url.rstrip("/")
        self._username, self._password = username, password
        self._token = token
        self.max_concurrent = max(1, max_concurrent)
        self.throttle_retries = throttle_retries
        self._sleep, self._clock = sleep, clock
        self._login_lock = threading.Lock()
        # The token the last re-login got, until a call succeeds with it: a node that refuses
        # the token it just issued is not asked for another (one re-login per expiry, however
        # many calls are in flight or follow).
        self._unproven: str | None = None
        self._flow = threading.Condition()  # guards the limit, the slots in use and the pause
        self.limit = self.max_concurrent  # requests allowed in flight now (halved on 429)
        self._in_use = 0
        self._since_change = 0  # since the limit last changed
        self._paused_until = 0.0  # clock(): the node asked for a pause until then
        self.throttled = 0  # how many answers asked this client to wait (429/503+Retry-After)
        self.timeout = timeout
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        # The requests of a sync on http.client (`lean_http` says why); httpx is imported only
        # for a node reached through a proxy, and when a transport is given (tests).
        https = self.base_url.startswith("https:")
        self._lean = LeanPool(self.base_url, timeout, _ssl_context(True) if https else None) \
            if transport is None and not proxied(self.base_url) else None

    @property
    def _http(self) -> httpx.Client:
        """The httpx client, made when first needed."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    import httpx

                    limits = httpx.Limits(max_connections=self.max_concurrent,
                                          max_keepalive_connections=self.max_concurrent)
                    self._client = httpx.Client(
                        base_url=self.base_url, timeout=self.timeout, transport=self._transport,
                        follow_redirects=False, limits=limits,
                        verify=_ssl_context(self.base_url.startswith("https:")))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._lean is not None:
            self._lean.close()

    def _plain(self, method: str, path: str, *, json: Any = None,
               basic: tuple[str, str] | None = None,
               headers: dict[str, str] | None = None) -> Response:
        """A call outside `request` (discovery, login), with HTTP Basic credentials if given."""
        if self._lean is None:
            return self._http.request(method, path, json=json, auth=basic, headers=headers)
        sent = dict(headers or {})
        if basic is not None:
            pair = f"{basic[0]}:{basic[1]}".encode()
            sent["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return self._lean.request(method, path, json=json, headers=sent)

    def __repr__(self) -> str:  # never show the token
        return f"{type(self).__name__}(node={self.node!r}, base_url={self.base_url!r})"

    # --- concurrency and back-off -------------------------------------------------------------
    @contextmanager
    def _slot(self) -> Iterator[None]:
        """One of the node's slots (at most `limit` in use), taken once its pause is over."""
        with self._flow:
            while self._in_use >= self.limit:
                self._flow.wait()
            self._in_use += 1
            wait = self._paused_until - self._clock()
        try:
            if wait > 0:
                self._sleep(wait)
            yield
        finally:
            with self._flow:
                self._in_use -= 1
                self._flow.notify()

    def _answered(self) -> None:
        """An answer that was not a throttle: the limit grows back, one slot at a time."""
        with self._flow:
            self._since_change += 1
            if self.limit < self.max_concurrent and self._since_change >= self.limit:
                self.limit += 1
                self._since_change = 0
                self._flow.notify()

    def _retry_after(self, response: Response, tries: int) -> float | None:
        """How long the node asks us to wait before trying again, or None when it does not
        (429 without the header: exponential, from 1 s)."""
        status = response.status_code
        header = response.headers.get("Retry-After")
        if status not in (429, 503) or (status == 503 and header is None):
            return None
        seconds = None
        if header is not None:
            try:
                seconds = float(header)
            except ValueError:
                when = email.utils.parsedate_to_datetime(header) if header.strip() else None
                seconds = when.timestamp() - time.time() if when is not None else None
        if seconds is None:
            seconds = 2.0 ** tries
        return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)

    def _pause(self, seconds: float) -> None:
        """The node is overloaded: hold every request of this client until `seconds` from now,
        and halve how many may be in flight."""
        with self._flow:
            self.throttled += 1
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self.limit = max(1, self.limit // 2)
            self._since_change = 0

    def _send_patiently(self, method: str, path: str,
                        send: Callable[[], Response]) -> Response:
        """One raw call in a slot, waiting out 429/503 + Retry-After (the calls that do not go
        through `request`: discovery, login). Any other answer is returned as it is."""
        throttled = 0
        while True:
            with self._slot(), self._transport_errors(method, path):
                response = send()
            wait = self._retry_after(response, throttled)
            if wait is None or throttled >= self.throttle_retries:
                return response
            throttled += 1
            self._pause(wait)

    def _relogin(self, used: str | None) -> bool:
        """Log in again after a 401 — once for all threads that met it with the same token, and
        not at all when `used` came from a re-login and no call has succeeded with it yet.
        False: the 401 stands."""
        with self._login_lock:
            if self._token and self._token != used:
                return True  # another thread already did
            if used is not None and used == self._unproven:
                return False
            self.login()
            self._unproven = self._token
            return True

    def _proved(self, used: str | None) -> None:
        """A call succeeded with `used`: a later 401 on it is an expiry worth a re-login."""
        if used is not None and used == self._unproven:
            self._unproven = None

    # --- errors -------------------------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", **(extra or {})}
        if self._token:
            headers["Authorization"] = f"fmetoken token={self._token}"
        return headers

    def fail(self, method: str, path: str, response: Response) -> FmeApiError:
        """The typed error for a response. A 404/405 without an error `message` means the
        endpoint itself is missing (a missing object comes with FME's JSON message)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        if response.status_code in (404, 405) and not message:
            return EndpointMissingError(self.node, method, path, response.status_code,
                                        "no such endpoint on this node")
        return error_for_status(self.node, method, path, response.status_code,
                                message or response.reason_phrase or "error")

    @contextmanager
    def _transport_errors(self, method: str, path: str) -> Iterator[None]:
        try:
            yield
        except LeanTransportError as exc:
            error, text = _LEAN_FAILURES[exc.kind]
            raise error(self.node, method, path, None, f"{text} ({exc.cause_name})") from None
        except Exception as exc:
            httpx = sys.modules.get("httpx")  # httpx's own errors, if it was used at all
            if httpx is None:
                raise
            if isinstance(exc, httpx.ConnectError):
                raise NodeUnreachableError(self.node, method, path, None,
                                           f"cannot connect ({type(exc).__name__})") from None
            if isinstance(exc, httpx.TimeoutException):
                raise NodeTimeoutError(self.node, method, path, None,
                                       f"no answer in time ({type(exc).__name__})") from None
            if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
                raise TransferInterruptedError(
                    self.node, method, path, None,
                    f"connection broken mid-request ({type(exc).__name__})") from None
            raise

    def idempotent(self, call: Callable[[], T]) -> T:
        """Run a call that is safe to repeat (reads, token requests), retrying transient
        failures `read_retries` times with backoff. Writes are retried by the sync's applier,
        which knows how to recover from a write whose answer was lost."""
        # A retried call that itself makes a retried call (login → version discovery) retries
        # once, at the outer level: nested loops would multiply the tries to a dead node.
        if not self.read_retries or getattr(self._retrying, "active", False):
            return call()
        self._retrying.active = True
        try:
            return retrying(call, attempts=self.read_retries + 1, initial_s=0.1, max_s=1.0)
        finally:
            self._retrying.active = False

    # --- requests -----------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: Any = None, json: Any = None,
                data: dict[str, Any] | None = None, file: Path | None = None,
                multipart: Multipart | None = None, headers: dict[str, str] | None = None,
                ok: tuple[int, ...] = (200, 201, 202, 204)) -> Response:
        """One call; on 401 with a token we obtained ourselves, log in again once and retry.
        GETs are also retried on transient failures (see `idempotent`)."""
        def once() -> Response:
            return self._request_once(method, path, params, json, data, file, multipart, headers,
                                      ok)
        return self.idempotent(once) if method == "GET" else once()

    def _request_once(self, method: str, path: str, params: Any, json: Any,
                      data: dict[str, Any] | None, file: Path | None,
                      multipart: Multipart | None, headers: dict[str, str] | None,
                      ok: tuple[int, ...]) -> Response:
        relogged, throttled = False, 0
        while True:
            used = self._token
            with self._slot(), self._transport_errors(method, path):
                if file is not None:
                    with file.open("rb") as body:
                        response = self._send(method, path, params, json, data, body, None,
                                              headers)
                else:
                    response = self._send(method, path, params, json, data, None, multipart,
                                          headers)
            wait = self._retry_after(response, throttled)
            if wait is None:
                self._answered()
            if response.status_code in ok:
                self._proved(used)
                return response
            if response.status_code == 401 and not relogged and self.can_login:
                relogged = True
                if self._relogin(used):
                    continue
            if wait is not None and throttled < self.throttle_retries:
                throttled += 1  # refused, not processed: sent again once the node is ready
                self._pause(wait)
                continue
            raise self.fail(method, path, response)

    def _send(self, method: str, path: str, params: Any, json: Any,
              data: dict[str, Any] | None, body: BinaryIO | None, multipart: Multipart | None,
              headers: dict[str, str] | None) -> Response:
        """One request on the lean pool, or on httpx (a node behind a proxy, a test's own
        transport); the only place that chooses."""
        if self._lean is not None:
            return self._lean.request(method, path, params=params, json=json, data=data,
                                      body=body, multipart=multipart,
                                      headers=self._headers(headers))
        if multipart is not None:
            with multipart.path.open("rb") as file:
                files = {multipart.field: (multipart.filename, file, "application/octet-stream")}
                return self._http.request(method, path, params=params,
                                          data=dict(multipart.fields), files=files,
                                          headers=self._headers(headers))
        return self._http.request(method, path, params=params, json=json, data=data,
                                  content=body, headers=self._headers(headers))

    @property
    def can_login(self) -> bool:
        return bool(self._username and self._password)

    def login(self) -> None:  # the client decides where tokens come from
        raise NotImplementedError

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def paged(self, path: str, params: dict[str, Any] | None = None, expect: int = 0,
              fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Every item of a V3/V4 list envelope (`limit`/`offset`): the first page says how many
        there are, the others are then asked for at once. `expect`: about how many the caller
        expects — every page up to there is asked for at once, saving a round trip (if the node
        gave pages shorter than asked, the list is read again page by page). `fields`: only
        these keys of each item are kept, page by page (10,000 full items are megabytes)."""
        def page(offset: int) -> dict[str, Any]:
            found = self.json("GET", path, params={**(params or {}), "limit": PAGE_SIZE,
                                                   "offset": offset})
            if fields:
                found["items"] = [{k: i[k] for k in fields if k in i}
                                  for i in found.get("items", [])]
            return found

        if expect > PAGE_SIZE:
            guessed = range(0, expect, PAGE_SIZE)
            with ThreadPoolExecutor(max_workers=min(len(guessed), self.max_concurrent)) as pool:
                pages = list(pool.map(page, guessed))
            sizes = [len(p.get("items", [])) for p in pages]
            if all(n == PAGE_SIZE for n in sizes[:-1]):
                items: list[dict[str, Any]] = [i for p in pages for i in p.get("items", [])]
                total = int(pages[-1].get("totalCount", 0))
                while len(items) < total:  # more than expected: read on to the end
                    later = page(len(items))
                    batch = later.get("items", [])
                    if not batch:
                        break
                    items.extend(batch)
                    total = int(later.get("totalCount", 0))
                return items
        first = page(0)
        items = list(first.get("items", []))
        total, step = int(first.get("totalCount", 0)), len(items)
        if step and step < total:
            offsets = range(step, total, step)
            with ThreadPoolExecutor(max_workers=min(len(offsets), self.max_concurrent)) as pool:
                for later in pool.map(page, offsets):
                    items.extend(later.get("items", []))
                    total = int(later.get("totalCount", total))
        while step and len(items) < total:  # the list grew meanwhile: read on to its end
            later = page(len(items))
            batch = later.get("items", [])
            if not batch:
                break
            items.extend(batch)
            total = int(later.get("totalCount", 0))
        return items

    def walk(self, root: str, list_folder: Callable[[str], tuple[list[T], list[str]]]
             ) -> list[T]:
        """Every file below `root`: `list_folder(folder)` gives a folder's files and its
        sub-folders; the folders of one depth are listed at once."""
        found: list[T] = []
        level = [root]
        with ThreadPoolExecutor(max_workers=self.max_concurrent) as pool:
            while level:
                listings = list(pool.map(list_folder, level))
                level = []
                for files, folders in listings:
                    found.extend(files)
                    level.extend(folders)
        return found

    # --- streamed downloads ---------------------------------------------------------------------
    def download(self, path: str, dest: Path | None, *, method: str = "GET", json: Any = None,
                 accept: str = "application/octet-stream") -> str:
        """Stream a response body to `dest` (None: only digest it); returns its sha256. The file
        appears only once complete (written beside it as `.NAME.partial`, then renamed)."""
        return self.idempotent(lambda: self._download_once(path, dest, method, json, accept))

    def _download_once(self, path: str, dest: Path | None, method: str, json: Any,
                       accept: str) -> str:
        relogged, throttled = False, 0
        while True:
            used = self._token
            digest = hashlib.sha256()
            streamed = self._lean.stream if self._lean is not None else self._http.stream
            with self._slot(), self._transport_errors(method, path), streamed(
                method, path, json=json, headers=self._headers({"Accept": accept})
            ) as response:
                wait = self._retry_after(response, throttled)
                if wait is None:
                    self._answered()
                if response.status_code != 200:
                    response.read()
                elif dest is None:
                    self._proved(used)
                    for chunk in response.iter_bytes(CHUNK):
                        digest.update(chunk)
                    return digest.hexdigest()
                else:
                    self._proved(used)
                    partial = dest.with_name(f".{dest.name}.partial")
                    with partial.open("wb") as out:
                        for chunk in response.iter_bytes(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                    partial.replace(dest)
                    return digest.hexdigest()
            if response.status_code == 401 and not relogged and self.can_login:
                relogged = True
                if self._relogin(used):
                    continue
            if wait is not None and throttled < self.throttle_retries:
                throttled += 1
                self._pause(wait)
                continue
            raise self.fail(method, path, response)
