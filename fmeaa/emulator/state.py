"""One emulated FME node's state: its own "database" (dicts) and its own "System Share" (files).

Nothing is shared between nodes. File contents live on disk under the node's data directory and
are written by streaming, so memory does not grow with file size. With `persist=True` the
metadata is saved to `<data_dir>/state.json` after every change and reloaded on start.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Resource connections present on a fresh FME Server (names from Safe's REST API docs, as in
# fmeflow-cli's resources tests).
DEFAULT_RESOURCE_CONNECTIONS = (
    "FME_SHAREDRESOURCE_BACKUP", "FME_SHAREDRESOURCE_DATA", "FME_SHAREDRESOURCE_ENGINE",
    "FME_SHAREDRESOURCE_LOG", "FME_SHAREDRESOURCE_TEMP",
)
# Repositories and topics a fresh FME Server ships with. UNCONFIRMED exact lists: the emulator
# only needs "a fresh node is not empty", so sync tests cover pre-existing system content.
DEFAULT_REPOSITORIES = ("Samples",)
DEFAULT_TOPICS = ("SAMPLE_TOPIC",)


@dataclass
class StoredFile:
    """A file on this node's share: where its bytes are, and their size and sha256."""

    blob: str
    size: int
    sha256: str
    modified: float


@dataclass
class RepositoryItem:
    name: str
    type: str
    file: StoredFile
    services: list[str] = field(default_factory=list)
    last_publish: float = 0.0


class Items(dict[str, RepositoryItem]):
    """A repository's items, which also keeps them sorted by name for listing — as a database
    index would — rebuilt only after a change: listing 10,000 items page by page must not sort
    them once per page."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._sorted: list[RepositoryItem] | None = None

    def __setitem__(self, key: str, value: RepositoryItem) -> None:
        self._sorted = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._sorted = None
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self._sorted = None
        return super().pop(*args)

    def clear(self) -> None:
        self._sorted = None
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._sorted = None
        super().update(*args, **kwargs)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._sorted = None
        return super().setdefault(key, default)

    def by_name(self) -> list[RepositoryItem]:
        found = self._sorted
        if found is None:
            found = self._sorted = sorted(self.values(), key=lambda i: i.name)
        return found


@dataclass
class Repository:
    name: str
    description: str = ""
    owner: str = "admin"
    items: Items = field(default_factory=Items)

    def __post_init__(self) -> None:
        if not isinstance(self.items, Items):
            self.items = Items(self.items)


def write_atomically(partial: Path, final: Path, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Stream chunks into `partial`, then rename onto `final`: a broken upload leaves nothing
    half-written in place. Returns (size, sha256)."""
    digest, size = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(final)
    return size, digest.hexdigest()


def item_type(name: str) -> str:
    """FME's item type from the file extension (fmw = workspace, fmx = custom transformer…)."""
    return {".fmw": "WORKSPACE", ".fmx": "CUSTOMTRANSFORMER", ".fmt": "TEMPLATE",
            ".fds": "CUSTOMFORMAT"}.get(Path(name).suffix.lower(), "OTHER")


class NodeState:
    """All of one node's content. Every public method is thread-safe (the server is threaded)."""

    def __init__(self, data_dir: Path, persist: bool = False, username: str = "admin",
                 password: str = "") -> None:
        # Absolute: routes compare resolved paths with it (a relative state dir broke them).
        self.data_dir = data_dir.resolve()
        self.persist = persist
        self.username = username
        self.password = password or secrets.token_urlsafe(16)
        self.lock = threading.RLock()
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.repositories: dict[str, Repository] = {}
        self.schedules: dict[tuple[str, str], dict[str, Any]] = {}
        self.topics: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.publications: dict[str, dict[str, Any]] = {}
        self.connections: dict[str, dict[str, Any]] = {}  # v4 connections (secrets inside)
        self.deployment_parameters: dict[str, dict[str, Any]] = {}  # v4
        self.projects: dict[str, dict[str, Any]] = {}  # id → {id, name, …, items: [{type, id}]}
        self.project_imports: dict[str, dict[str, Any]] = {}  # task id → an import in progress
        self.token_ttl_s: float | None = None  # fault: tokens die after this many seconds
        self.tokens_issued = 0  # logins that returned a token
        self.token_refusals = 0  # tokens refused (unknown or expired): each one a 401
        self.running_jobs: list[dict[str, Any]] = []
        # Submitted jobs (smoke jobs): id → {id, repository, workspace, parameters, submitted,
        # outcome}. The emulator runs no workspace: a job ends after `job_seconds` in `outcome`.
        self.jobs: dict[int, dict[str, Any]] = {}
        self.job_seconds = 0.05
        self.failing_jobs: set[str] = set()  # fault: "REPO/WORKSPACE" (or "*") whose jobs fail
        # The licence in neutral terms; routes render it with each API's key names.
        self.license: dict[str, Any] = {"licensed": True, "expiration": "2027-12-31T00:00:00Z",
                                        "serialNumber": "", "requestStatus": "success",
                                        "requestMessage": "", "maximumEngines": 10,
                                        "maximumAuthors": 10}
        self.license_delay_s = 0.2  # how long a licence request takes to complete
        self._license_done_at: float | None = None
        (data_dir / "blobs").mkdir(parents=True, exist_ok=True)
        for connection in DEFAULT_RESOURCE_CONNECTIONS:
            (data_dir / "resources" / connection).mkdir(parents=True, exist_ok=True)
        if persist and (data_dir / "state.json").exists():
            self._load()
        else:
            for name in DEFAULT_REPOSITORIES:
                self.repositories[name] = Repository(name, "Sample workspaces")
            for name in DEFAULT_TOPICS:
                self.topics[name] = {"name": name, "description": "Sample topic"}

    # --- licensing ---------------------------------------------------------------------------
    def unlicense(self) -> None:
        """A clone of a BYOL image: new machine identity, so its old licence no longer applies."""
        with self.lock:
            self.license.update(licensed=False, expiration=None, serialNumber="",
                                requestStatus="none", requestMessage="")

    def start_license_request(self, serial: str, valid: bool) -> None:
        with self.lock:
            self.license.update(serialNumber=serial, requestStatus="requesting", valid=valid,
                                requestMessage="License request in progress.")
            self._license_done_at = time.time() + self.license_delay_s

    def license_view(self) -> dict[str, Any]:
        """The licence now (a pending request completes once its delay has passed): neutral keys
        `licensed`, `expiration`, `serialNumber`, `maximumEngines`, `maximumAuthors`,
        `requestStatus` (lower case: none, requesting, success, failed), `requestMessage`."""
        with self.lock:
            if self._license_done_at is not None and time.time() >= self._license_done_at:
                self._license_done_at = None
                if self.license.pop("valid", True):
                    self.license.update(licensed=True, requestStatus="success",
                                        expiration="2027-12-31T00:00:00Z",
                                        requestMessage="Success! Your FME Server has now been "
                                                       "licensed.")
                else:
                    self.license.update(requestStatus="failed",
                                        requestMessage="Invalid serial number")
            return {k: v for k, v in self.license.items() if k != "valid"}

    # --- jobs (drain waits for them) -----------------------------------------------------------
    def start_jobs(self, count: int, workspace: str = "emulated.fmw") -> None:
        """`count` jobs running on this node's engine (the sandbox's `jobs=N` fault). Only the
        keys that vary are kept; routes render the full V3/V4 job shapes around them."""
        with self.lock:
            first = max((int(j.get("id", 0)) for j in self.running_jobs), default=0) + 1
            self.running_jobs.extend({"id": first + i, "workspace": workspace,
                                      "repository": "Samples", "timeStarted": time.time()}
                                     for i in range(count))

    def submit_job(self, repository: str, workspace: str, parameters: dict[str, Any]) -> int:
        """A job of an existing workspace; it fails when the `failing_jobs` fault names it."""
        with self.lock:
            repo = self.repositories.get(repository)
            if repo is None or workspace not in repo.items:
                raise KeyError(f"{repository}/{workspace}")
            ids = [int(j.get("id", 0)) for j in self.running_jobs] + list(self.jobs)
            job_id = max(ids, default=0) + 1
            fails = bool({"*", f"{repository}/{workspace}"} & self.failing_jobs)
            self.jobs[job_id] = {"id": job_id, "repository": repository, "workspace": workspace,
                                 "parameters": dict(parameters), "submitted": time.time(),
                                 "outcome": "failure" if fails else "success"}
            return job_id

    def job_view(self, job_id: int) -> dict[str, Any] | None:
        """The job with its status now (neutral, lower case): queued, then its outcome once
        `job_seconds` have passed."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            done = time.time() >= job["submitted"] + self.job_seconds
            return {**job, "status": job["outcome"] if done else "queued",
                    "finished": job["submitted"] + self.job_seconds if done else None}

    # --- tokens ------------------------------------------------------------------------------
    def issue_token(self, seconds: int) -> tuple[str, float]:
        with self.lock:
            token = secrets.token_hex(20)
            self.tokens_issued += 1
            expiry = time.time() + min(seconds, self.token_ttl_s or seconds)
            self.tokens[token] = expiry
            return token, expiry

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expiry = self.tokens.get(token)
            valid = expiry is not None and expiry > time.time()
            self.token_refusals += not valid
            return valid

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # --- file storage (streamed) ---------------------------------------------------------------
    def store_stream(self, chunks: Iterable[bytes]) -> StoredFile:
        """Write chunks to a new blob; the blob only appears once fully written (atomic rename)."""
        blob = secrets.token_hex(12)
        final = self.data_dir / "blobs" / blob
        partial = final.with_suffix(".partial")
        size, sha256 = write_atomically(partial, final, chunks)
        return StoredFile(blob, size, sha256, time.time())

    def blob_path(self, stored: StoredFile) -> Path:
        return self.data_dir / "blobs" / stored.blob

    def drop_blob(self, stored: StoredFile) -> None:
        self.blob_path(stored).unlink(missing_ok=True)

    # --- resources: a real directory tree per connection ---------------------------------------
    def resource_root(self, connection: str) -> Path | None:
        root = self.data_dir / "resources" / connection
        return root if root.is_dir() else None

    @staticmethod
    def resolve_inside(root: Path, relative: str) -> Path | None:
        """`relative` under `root`, or None if it escapes (`..`, absolute paths)."""
        candidate = (root / relative.strip("/")).resolve()
        return candidate if candidate == root.resolve() or root.resolve() in candidate.parents \
            else None

    def write_resource(self, target: Path, chunks: Iterable[bytes], overwrite: bool = True) -> int:
        """Store a resource file. Without `overwrite`, create-if-absent atomically (a hard
        link fails if the name exists): of two concurrent uploads, exactly one succeeds and the
        other raises FileExistsError — what the cluster lock relies on."""
        if overwrite:
            return write_atomically(target.with_name(f".{target.name}.partial"), target, chunks)[0]
        staged = target.with_name(f".{target.name}.{secrets.token_hex(6)}.new")
        size = write_atomically(staged.with_suffix(".partial"), staged, chunks)[0]
        try:
            os.link(staged, target)
        finally:
            staged.unlink()
        return size

    @staticmethod
    def remove_tree(path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()

    # --- a fingerprint of everything it holds ------------------------------------------------
    def content_digest(self) -> str:
        """sha256 over the node's whole content — repositories, items (bytes and services),
        schedules, notifications, connections (credentials included), deployment parameters,
        projects and every file of every resource connection — but not tokens, licence or
        jobs: equal before and after a run proves the run changed nothing on this node."""
        with self.lock:
            document = {
                "repositories": {n: {"description": r.description,
                                     "items": {i.name: [i.type, i.file.size, i.file.sha256,
                                                        sorted(i.services)]
                                               for i in r.items.values()}}
                                 for n, r in self.repositories.items()},
                "schedules": {f"{c}/{n}": s for (c, n), s in self.schedules.items()},
                "topics": self.topics, "subscriptions": self.subscriptions,
                "publications": self.publications, "connections": self.connections,
                "deploymentParameters": self.deployment_parameters, "projects": self.projects,
            }
            digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode())
            resources = self.data_dir / "resources"
            for path in sorted(resources.rglob("*")):
                digest.update(str(path.relative_to(resources)).encode() + b"\0")
                if path.is_file():
                    digest.update(hashlib.sha256(path.read_bytes()).digest())
            return digest.hexdigest()

    # --- persistence -------------------------------------------------------------------------
    def save(self) -> None:
        if not self.persist:
            return
        with self.lock:
            document = {
                "repositories": {n: asdict(r) for n, r in self.repositories.items()},
                "schedules": [s for s in self.schedules.values()],
                "topics": self.topics, "subscriptions": self.subscriptions,
                "publications": self.publications, "connections": self.connections,
                "deploymentParameters": self.deployment_parameters, "projects": self.projects,
            }
            tmp = self.data_dir / "state.json.tmp"
            tmp.write_text(json.dumps(document))
            tmp.replace(self.data_dir / "state.json")

    def _load(self) -> None:
        document = json.loads((self.data_dir / "state.json").read_text())
        for name, repo in document["repositories"].items():
            items = {
                i["name"]: RepositoryItem(i["name"], i["type"], StoredFile(**i["file"]),
                                          i["services"], i["last_publish"])
                for i in repo.pop("items").values()
            }
            self.repositories[name] = Repository(items=items, **repo)
        self.schedules = {(s["category"], s["name"]): s for s in document["schedules"]}
        self.topics = document["topics"]
        self.subscriptions = document["subscriptions"]
        self.publications = document["publications"]
        self.connections = document.get("connections", {})
        self.deployment_parameters = document.get("deploymentParameters", {})
        self.projects = document.get("projects", {})
