"""The REST client for one FME node: FME Server 2021 … FME Flow 2026, each in its own API.

One client talks to ONE node, directly (never the load balancer). When it first needs to, it
learns what the node serves — its build (`GET /fmeinfo/version`, the first call of Safe's own
CLI) and whether REST V3 still answers — and then picks, per operation, the endpoint of
`api_table` (V4 where the node has it, V3 only where it must). Callers call operations; they never
ask which API answered: every answer comes back in one neutral shape (V3's key names and
upper-case enums). Uploads and downloads stream (64 KiB chunks). A 401 on a token we obtained
triggers one re-login, then an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fmeaa.client.api_table import TABLE, V3, Endpoint, NodeApi, first_v4_build
from fmeaa.client.errors import (
    AuthenticationError,
    EndpointMissingError,
    FmeApiError,
    UnsupportedOperationError,
)
from fmeaa.client.transport import DEFAULT_MAX_CONCURRENT, Transport, content_disposition
from fmeaa.client.v3 import V3 as V3Api
from fmeaa.client.v3 import service_names
from fmeaa.client.v4 import V4 as V4Api

if TYPE_CHECKING:
    import httpx

NotificationKind = Literal["topics", "subscriptions", "publications"]
# A job's final statuses, in V3's terms (jobs_v3_test.go; V4's success/failure/cancelled upper-
# cased, jobs_v4_test.go). Only SUCCESS is a success.
JOB_DONE = frozenset({"SUCCESS", "FME_FAILURE", "JOB_FAILURE", "FAILURE", "ABORTED", "CANCELLED"})
Preference = Literal["auto", "v3", "v4"]
__all__ = ["JOB_DONE", "FmeClient", "connect", "content_disposition", "service_names"]


class FmeClient(Transport):
    """Every operation fmeaa performs on a node, in that node's API."""

    def __init__(self, node: str, base_url: str, *, prefer: Preference = "auto",
                 **kwargs: Any) -> None:
        super().__init__(node, base_url, **kwargs)
        self.prefer = prefer
        self._api: NodeApi | None = None
        self._discovery_lock = threading.Lock()
        self._dialects: dict[str, Any] = {"v3": V3Api(self), "v4": V4Api(self)}

    def __enter__(self) -> FmeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what the node serves -----------------------------------------------------------------
    @property
    def api(self) -> NodeApi:
        """The node's build and APIs (learnt once: two small requests)."""
        if self._api is None:
            with self._discovery_lock:  # several threads may ask first: one discovery
                if self._api is None:
                    self._api = self.idempotent(self._discover)
        return self._api

    def _discover(self) -> NodeApi:
        with ThreadPoolExecutor(max_workers=2) as pool:  # two independent calls: one round trip
            v3 = pool.submit(self._answers, f"{V3}/healthcheck")
            version = self._version_document()
            has_v3 = v3.result()
        return NodeApi(int(version.get("buildNumber") or 0), str(version.get("buildString", "")),
                       has_v3)

    def _answers(self, path: str) -> bool:
        """Whether a public endpoint exists (anything but 404/405)."""
        response = self._send_patiently("GET", path, lambda: self._plain(
            "GET", path, headers={"Accept": "application/json"}))
        return response.status_code not in (404, 405)

    def _version_document(self) -> dict[str, Any]:
        """GET /fmeinfo/version with the token, or with Basic credentials before there is one
        (fmeflow-cli login.go). {} when the node predates it."""
        path = self._table_row("version").path
        auth = (self._username or "", self._password or "") if self.can_login else None
        response = self._send_patiently("GET", path, lambda: self._plain(
            "GET", path, basic=auth, headers=self._headers()))
        if response.status_code == 200:
            return response.json()
        if response.status_code in (404, 405):
            return {}
        raise self.fail("GET", path, response)

    @staticmethod
    def _table_row(op: str) -> Endpoint:
        return next(e for e in TABLE if e.op == op)

    def endpoint(self, op: str) -> Endpoint:
        """The endpoint `op` uses on this node, or UnsupportedOperationError saying why not."""
        found = self.api.endpoint(op, self.prefer)
        if found is None:
            since = first_v4_build(op)
            needs = f"REST V4 (from build {since})" if since else "an endpoint"
            raise UnsupportedOperationError(
                self.node, "-", op, None,
                f"'{op}' needs {needs}, which this node ({self.api.label}, REST "
                f"{self.api.apis() or 'unknown'}) does not serve: upgrade the node, or leave "
                "this kind of content out of the manifest")
        return found

    def supports(self, op: str) -> bool:
        return self.api.endpoint(op, self.prefer) is not None

    def _run(self, op: str, *args: Any) -> Any:
        ep = self.endpoint(op)
        impl = getattr(self._dialects[ep.api], op.replace(".", "_"))
        try:
            return impl(ep, *args)
        except EndpointMissingError as exc:
            raise EndpointMissingError(self.node, exc.method, exc.path, exc.status,
                                       self._advice(ep)) from None

    def _advice(self, ep: Endpoint) -> str:
        docs = f"{self.base_url}/fmeapiv4/docs/index.html"
        if ep.confirmed:
            return (f"this node ({self.api.label}) has no such endpoint for '{ep.op}', which "
                    f"{ep.source} uses from build {ep.since or 'any'}: check the node's version "
                    f"and its API documentation ({docs})")
        return (f"this node ({self.api.label}) has no such endpoint: fmeaa's path for '{ep.op}' "
                f"is UNCONFIRMED ({ep.source}). Look the operation up in the node's API "
                f"documentation ({docs}) and correct fmeaa/client/api_table.py, or carry this "
                "content in an FME Flow project (.fsproject) instead")

    # --- auth and health ----------------------------------------------------------------------
    def login(self) -> None:
        """Exchange user/password (HTTP Basic) for a token: POST …/tokens → 201."""
        self.idempotent(self._login_once)

    def _login_once(self) -> None:
        if not self.can_login:
            raise AuthenticationError(self.node, "POST", "/tokens", None,
                                      "no credentials to log in with")
        ep = self.endpoint("tokens.create")
        body = self._dialects[ep.api].token_body(f"fmeaa-{self.node}", self._username)
        response = self._send_patiently("POST", ep.path, lambda: self._plain(
            "POST", ep.path, json=body, basic=(self._username or "", self._password or ""),
            headers={"Accept": "application/json"}))
        if response.status_code != 201:
            self._token = None
            raise self.fail("POST", ep.path, response)
        self._token = response.json()["token"]

    def ensure_token(self) -> None:
        if not self._token:
            self.login()
        else:
            self.api  # noqa: B018 - a token-only login is proven by discovery's version call

    def health(self) -> dict[str, Any]:
        """The health endpoint (no token needed). Raises when the node is not healthy. Before
        the node's version is known (no credentials), the first health endpoint that exists."""
        if self._api is not None:
            return self._run("health")
        rows = [e for e in TABLE if e.op == "health"]
        for ep in rows:
            try:
                return self._dialects[ep.api].health(ep)
            except EndpointMissingError:
                if ep is rows[-1]:
                    raise
        raise AssertionError("unreachable")

    def version(self) -> dict[str, Any]:
        """{buildNumber, buildString, apis}: what `fmeaa nodes` shows."""
        api = self.api
        return {"buildNumber": api.build, "buildString": api.label, "apis": api.apis()}

    # --- repositories and items ---------------------------------------------------------------
    def repositories(self) -> list[dict[str, Any]]:
        return self._run("repositories.list")

    def repository(self, name: str) -> dict[str, Any]:
        return self._run("repositories.get", name)

    def create_repository(self, name: str, description: str = "") -> None:
        self._run("repositories.create", name, description)

    def delete_repository(self, name: str) -> None:
        self._run("repositories.delete", name)

    def items(self, repository: str, item_type: str | None = None, expect: int = 0,
              fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """{name, type (WORKSPACE…), totalFileSize, lastPublishDate, lastSaveDate, …}; no
        services (real lists carry none: see `services`). `expect`: about how many there are,
        if known (all pages are then asked for at once); `fields`: only these keys (and
        `type`) of each item."""
        return self._run("items.list", repository, item_type, expect, fields)

    def item(self, repository: str, name: str) -> dict[str, Any]:
        return self._run("items.get", repository, name)

    def upload_item(self, repository: str, file: Path, name: str | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
        """Publish a file (streamed): new (409 if it exists) or overwrite (404 if it does not)."""
        return self._run("items.replace" if overwrite else "items.create", repository,
                         name or file.name, file)

    def download_item(self, repository: str, name: str, dest: Path | None) -> str:
        """Stream the item's bytes to `dest` (None: only digest them); returns their sha256."""
        return self._run("items.download", repository, name, dest)

    def delete_item(self, repository: str, name: str) -> None:
        self._run("items.delete", repository, name)

    def services(self, repository: str, name: str) -> list[str]:
        """The item's registered services, as V3 names (fmejobsubmitter…), sorted."""
        return self._run("services.get", repository, name)

    def set_services(self, repository: str, name: str, services: list[str]) -> list[str]:
        return self._run("services.set", repository, name, services)

    # --- schedules and notifications ------------------------------------------------------------
    def schedules(self) -> list[dict[str, Any]]:
        return self._run("schedules.list")

    def create_schedule(self, schedule: dict[str, Any]) -> None:
        self._run("schedules.create", schedule)

    def replace_schedule(self, category: str, name: str, schedule: dict[str, Any]) -> None:
        self._run("schedules.replace", category, name, schedule)

    def delete_schedule(self, category: str, name: str) -> None:
        self._run("schedules.delete", category, name)

    def notifications(self, kind: NotificationKind) -> list[dict[str, Any]]:
        return self._run("notifications.list", kind)

    def create_notification(self, kind: NotificationKind, body: dict[str, Any]) -> None:
        self._run("notifications.create", kind, body)

    def replace_notification(self, kind: NotificationKind, name: str, body: dict[str, Any]
                             ) -> None:
        self._run("notifications.replace", kind, name, body)

    def delete_notification(self, kind: NotificationKind, name: str) -> None:
        self._run("notifications.delete", kind, name)

    # --- resources (shared files) -------------------------------------------------------------
    def resource_connections(self) -> list[str]:
        return self._run("resources.connections")

    def walk_resources(self, connection: str, path: str = "") -> Iterator[dict[str, Any]]:
        """Every file below `path` as {path, size, date}, recursively."""
        return iter(self._run("resources.list", connection, path))

    def upload_resource(self, connection: str, directory: str, file: Path,
                        name: str | None = None, overwrite: bool = True,
                        create_directories: bool = True) -> None:
        """Upload into `directory`, creating missing folders. With `overwrite=False` an
        existing file is refused (a 4xx; the cluster lock relies on it — UNCONFIRMED on real
        FME, see README "The cluster lock")."""
        if not create_directories:
            raise ValueError("uploads always create missing folders")
        self._run("resources.upload", connection, directory, file, name or file.name, overwrite)

    def download_resource(self, connection: str, path: str, dest: Path | None) -> str:
        return self._run("resources.download", connection, path, dest)

    def delete_resource(self, connection: str, path: str) -> None:
        self._run("resources.delete", connection, path)

    # --- connections and deployment parameters (REST V4; bodies hold credentials) -------------
    def connections(self) -> list[dict[str, Any]]:
        return self._run("connections.list")

    def connection(self, name: str) -> dict[str, Any]:
        return self._run("connections.get", name)

    def create_connection(self, body: dict[str, Any]) -> None:
        self._run("connections.create", body)

    def replace_connection(self, name: str, body: dict[str, Any]) -> None:
        """Updates everything but the type (a V4 update carries none): see `apply`."""
        self._run("connections.replace", name, body)

    def delete_connection(self, name: str) -> None:
        self._run("connections.delete", name)

    def deployment_parameters(self) -> list[dict[str, Any]]:
        return self._run("deploymentparameters.list")

    def create_deployment_parameter(self, body: dict[str, Any]) -> None:
        self._run("deploymentparameters.create", body)

    def replace_deployment_parameter(self, name: str, body: dict[str, Any]) -> None:
        self._run("deploymentparameters.replace", name, body)

    def delete_deployment_parameter(self, name: str) -> None:
        self._run("deploymentparameters.delete", name)

    # --- FME Flow projects (REST V4) --------------------------------------------------------------
    def projects(self) -> list[dict[str, Any]]:
        """{id, name, description, version, owner, lastUpdated, …} (fmeflow-cli projects.go)."""
        return self._run("projects.list")

    def delete_project(self, project_id: str) -> None:
        """The project only; what it carried stays (`/delete-all` would remove that too)."""
        self._run("projects.delete", project_id)

    def export_project(self, project_id: str, dest: Path) -> str:
        """Stream the project's package (.fsproject) to `dest`; returns its sha256."""
        return self._run("projects.export", project_id, dest)

    def preview_project(self, package: Path, timeout_s: float = 300, poll_s: float = 1.0
                        ) -> list[dict[str, Any]]:
        """What importing `package` would do on this node — its items with `previewAction` —
        without importing: upload, wait for the preview, read it, delete the import."""
        task = self._start_import(package, timeout_s, poll_s)
        try:
            return self._run("projects.import_items", task, False)
        finally:
            self._run("projects.import_delete", task)

    def import_project(self, package: Path, timeout_s: float = 600, poll_s: float = 1.0
                       ) -> list[dict[str, Any]]:
        """Import `package` with every selectable item, overwriting (fmeflow-cli
        projects_upload.go): upload → preview → run → wait until imported. Returns the preview."""
        task = self._start_import(package, timeout_s, poll_s)
        preview = self._run("projects.import_items", task, False)
        selectable = self._run("projects.import_items", task, True)
        self._run("projects.import_run", task,
                  [{"type": i["type"], "id": i["id"]} for i in selectable])
        self._wait(f"import of {package.name}", timeout_s, poll_s,
                   lambda: self._run("projects.import_get", task).get("status"),
                   done="imported", waiting=("importing", "submitted"))
        return preview

    def _start_import(self, package: Path, timeout_s: float, poll_s: float) -> str:
        task = self._run("projects.import_upload", package)
        self._wait(f"preview of {package.name}", timeout_s, poll_s,
                   lambda: self._run("projects.task", task).get("status"),
                   done="success", waiting=("submitted", "generatingPreview"))
        return task

    def _wait(self, what: str, timeout_s: float, poll_s: float, status: Any, done: str,
              waiting: tuple[str, ...]) -> None:
        deadline = time.monotonic() + timeout_s
        pause = min(0.05, poll_s)  # quick tasks answer quickly; slow ones are polled less often
        while True:
            now = status()
            if now == done:
                return
            if now not in waiting:
                raise FmeApiError(self.node, "GET", what, None,
                                  f"{what} ended with status {now!r}; see the node's Projects "
                                  "page for its log")
            if time.monotonic() >= deadline:
                raise FmeApiError(self.node, "GET", what, None,
                                  f"{what} still {now!r} after {timeout_s:.0f} s")
            time.sleep(pause)
            pause = min(pause * 2, poll_s)

    # --- jobs and licensing (answers in V3's terms) ---------------------------------------------
    def running_jobs(self) -> list[dict[str, Any]]:
        return self._run("jobs.running")

    def submit_job(self, repository: str, workspace: str,
                   parameters: dict[str, str] | None = None) -> int:
        """Run a workspace once on this node's engines (asynchronous): the job's id."""
        return self._run("jobs.submit", repository, workspace, dict(parameters or {}))

    def job(self, job_id: int) -> dict[str, Any]:
        """{id, status, statusMessage}; status in V3's upper case: QUEUED, PULLED/RUNNING while
        it runs, then SUCCESS, or FME_FAILURE / JOB_FAILURE / FAILURE / ABORTED / CANCELLED."""
        return self._run("jobs.get", job_id)

    def run_job(self, repository: str, workspace: str, parameters: dict[str, str] | None = None,
                timeout_s: float = 600, poll_s: float = 1.0) -> dict[str, Any]:
        """Submit a job and wait until it finishes: its last status document. Raises
        FmeApiError when it is still not finished after `timeout_s`."""
        job_id = self.submit_job(repository, workspace, parameters)
        deadline = time.monotonic() + timeout_s
        pause = min(0.05, poll_s)
        while True:
            status = self.job(job_id)
            if status["status"] in JOB_DONE:
                return status
            if time.monotonic() >= deadline:
                raise FmeApiError(self.node, "GET", f"job {job_id}", None,
                                  f"job {job_id} ({repository}/{workspace}) still "
                                  f"{status['status'] or 'pending'} after {timeout_s:.0f} s")
            time.sleep(pause)
            pause = min(pause * 2, poll_s)

    def license_status(self) -> dict[str, Any]:
        """{isLicensed, isLicenseExpired, expiryDate, serialNumber, maximumEngines,
        maximumAuthors}."""
        return self._run("license.status")

    def request_license(self, serial_number: str, **contact: str) -> None:
        """Ask Safe's licensing server for this machine's licence (asynchronous: poll
        `license_request_status`). `contact`: firstName, lastName, email, company…"""
        self._run("license.request", serial_number, contact)

    def refresh_license(self) -> None:
        self._run("license.refresh")

    def license_request_status(self) -> dict[str, Any]:
        """{status: NONE | REQUESTING | SUCCESS | FAILED, message}."""
        return self._run("license.request_status")


def connect(node: str, base_url: str, *, username: str | None = None, password: str | None = None,
            token: str | None = None, prefer: Preference = "auto", timeout: float = 30.0,
            read_retries: int = 0, transport: httpx.BaseTransport | None = None,
            max_concurrent: int = DEFAULT_MAX_CONCURRENT) -> FmeClient:
    """A client for one node. Nothing is sent until the first call. `prefer`: "auto" (the
    api_table rule), "v3" (V3 wherever the node still serves it) or "v4" (V4 wherever the node's
    build has a row, UNCONFIRMED ones included) — for tests and to work around one endpoint.
    `max_concurrent`: requests in flight to this node at once, at most."""
    return FmeClient(node, base_url, prefer=prefer, username=username, password=password,
                     token=token, timeout=timeout, read_retries=read_retries,
                     transport=transport, max_concurrent=max_concurrent)

