"""One sync at a time per cluster, whoever runs it and from wherever: a lock kept on the nodes.

The local `SyncLock` (an flock in the cache directory) only stops two runs on one machine with
one cache directory. Two operators on two machines see the same cluster, and nothing else: so
the lock is a small file each run creates on the nodes themselves, through the FME REST API
every operator already uses, and a run holds the cluster only if it created that file on a
**majority** of the inventory's nodes (⌊N/2⌋+1). Two majorities always share a node, so two runs
can never both hold it; a minority of nodes being down does not block syncing.

What this relies on in FME (README, "The cluster lock"):
- resource upload `POST …/resources/connections/{c}/filesys/{dir}?overwrite=false` refuses to
  replace an existing file. The `overwrite` parameter is in public use (scripts calling FME's
  REST v3 upload pass `overwrite=true` to replace); the status FME answers for an existing file
  with `overwrite=false`, and whether that check is atomic under concurrent uploads, are
  UNCONFIRMED. So any 4xx answer counts as "exists, read the holder", and each claim is read
  back: a node whose file does not carry this run's id is never counted as ours.
- `FME_SHAREDRESOURCE_BACKUP` survives FME restarts and is never synced (it is node-local, see
  `fmeaa/sync/manifest.py`) and, unlike `_TEMP`, is not emptied by FME's system cleanup
  (UNCONFIRMED for every cleanup setting).

A lock whose holder died stays behind (the nodes cannot know the holder is gone). A run on the
same host takes over a lock whose process no longer exists (so a killed sync never blocks the
next one there); from anywhere else, `fmeaa unlock` breaks it (refusing a lock younger than
`STALE_AFTER_S` without --force).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

from fmeaa.client import FmeApiError, FmeClient, NotFoundError
from fmeaa.cluster.sync_lock import SyncLockedError

LOCK_CONNECTION = "FME_SHAREDRESOURCE_BACKUP"
LOCK_DIRECTORY = "fme-aa"
LOCK_NAME = "sync.lock"
LOCK_PATH = f"{LOCK_DIRECTORY}/{LOCK_NAME}"
STALE_AFTER_S = 3600.0  # `fmeaa unlock` breaks younger locks only with --force

log = logging.getLogger(__name__)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class LockOwner:
    """Who holds the lock: shown to the operator who is refused, and kept on the nodes."""

    user: str
    host: str
    pid: int
    operation: str
    run_id: str  # tells two runs of one process (or of one pid, reused) apart
    created_at: float  # epoch seconds, this machine's clock

    @classmethod
    def me(cls, operation: str) -> LockOwner:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(user=user, host=socket.gethostname(), pid=os.getpid(), operation=operation,
                   run_id=secrets.token_hex(6), created_at=time.time())

    def age_s(self, now: float | None = None) -> float:
        return (now if now is not None else time.time()) - self.created_at

    def describe(self, now: float | None = None) -> str:
        return (f"{self.user}@{self.host} (pid {self.pid}, {self.operation}, run {self.run_id}, "
                f"started {_age(self.age_s(now))} ago)")

    @property
    def dead_here(self) -> bool:
        """Its process was on this host and no longer exists: certainly not running."""
        return self.host == socket.gethostname() and not _pid_alive(self.pid)

    def to_bytes(self) -> bytes:
        return json.dumps({"fmeaaLock": 1, **asdict(self)}, indent=1).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> LockOwner | None:
        try:
            doc = json.loads(raw)
            return cls(user=str(doc["user"]), host=str(doc["host"]), pid=int(doc["pid"]),
                       operation=str(doc["operation"]), run_id=str(doc["run_id"]),
                       created_at=float(doc["created_at"]))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass
class NodeLock:
    """What one node says about the lock."""

    node: str
    holder: LockOwner | None = None  # None: no lock file there
    error: str | None = None  # the node could not be read or written
    unreadable: bool = False  # a file is there, but it is not a lock document


def read_holder(client: FmeClient, spool: Path) -> NodeLock:
    """The lock file on this node, if any."""
    target = spool / f"{client.node}.read"
    try:
        client.download_resource(LOCK_CONNECTION, LOCK_PATH, target)
    except NotFoundError:
        return NodeLock(client.node)
    except FmeApiError as exc:
        return NodeLock(client.node, error=exc.reason)
    holder = LockOwner.from_bytes(target.read_bytes())
    target.unlink(missing_ok=True)
    return NodeLock(client.node, holder=holder, unreadable=holder is None)


def remove_lock_file(client: FmeClient) -> None:
    with contextlib.suppress(NotFoundError):
        client.delete_resource(LOCK_CONNECTION, LOCK_PATH)


def _parallel(clients: Mapping[str, FmeClient], work: Callable[[str, FmeClient], NodeLock]
              ) -> dict[str, NodeLock]:
    if not clients:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(clients))) as pool:
        done = pool.map(lambda item: work(*item), clients.items())
        return {n.node: n for n in done}


def holders_text(found: Mapping[str, NodeLock], now: float | None = None) -> str:
    """`alice@laptop (…) on fme-1, fme-2; …` — each holder once, with its nodes."""
    by_run: dict[str, tuple[LockOwner, list[str]]] = {}
    for name, entry in found.items():
        if entry.holder is not None:
            by_run.setdefault(entry.holder.run_id, (entry.holder, []))[1].append(name)
    return "; ".join(f"{owner.describe(now)} on {', '.join(nodes)}"
                     for owner, nodes in by_run.values())


@dataclass
class ClusterLock:
    """Context manager: hold the cluster for one run, or raise SyncLockedError naming who does.

    `clients`: logged-in clients of the reachable nodes; `nodes`: every node of the inventory
    (the majority is counted over all of them, reachable or not)."""

    clients: Mapping[str, FmeClient]
    nodes: Sequence[str]
    operation: str = "sync"
    down: Mapping[str, str] = field(default_factory=dict)  # node → why it has no client
    owner: LockOwner | None = None
    held: list[str] = field(default_factory=list)
    _spool: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def quorum(self) -> int:
        return len(self.nodes) // 2 + 1

    def __enter__(self) -> ClusterLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    # --- acquire ------------------------------------------------------------------------------
    def acquire(self) -> None:
        self.owner = self.owner or LockOwner.me(self.operation)
        self._spool = tempfile.TemporaryDirectory(prefix="fmeaa-lock-")
        mine = Path(self._spool.name) / LOCK_NAME
        mine.write_bytes(self.owner.to_bytes())
        reachable = {n: c for n, c in self.clients.items() if n in self.nodes}
        claims = _parallel(reachable, lambda name, client: self._claim(client, mine))
        ours = sorted(n for n, c in claims.items() if c.holder == self.owner)
        if len(ours) >= self.quorum:
            self.held = ours
            return
        self.held = ours
        self.release()
        others = {n: c for n, c in claims.items() if c.holder is not None and c.holder != self.owner}
        failed = {n: c.error for n, c in claims.items() if c.error}
        failed.update({n: self.down.get(n) or "not reachable" for n in self.nodes
                       if n not in reachable})
        text = f"the cluster is being changed by another fmeaa run: {holders_text(others)}. " \
            if others else "cannot take the cluster lock: "
        text += (f"a run needs the lock on a majority of the nodes ({self.quorum} of "
                 f"{len(self.nodes)}) and got {len(ours)}")
        if failed:
            text += " (" + "; ".join(f"{n}: {e}" for n, e in sorted(failed.items())) + ")"
        if others:
            text += (". Wait for it to finish. If that run is dead (killed on another machine), "
                     "break its lock with `fmeaa unlock` (README, \"The cluster lock\")")
        raise SyncLockedError(text)

    def _claim(self, client: FmeClient, mine: Path) -> NodeLock:
        """Create the lock file on one node unless one is there; take over one whose process
        died on this host. Read back: only a file carrying our run id counts."""
        spool = Path(self._spool.name)  # type: ignore[union-attr]
        for _ in range(2):
            refused: str | None = None
            try:
                client.upload_resource(LOCK_CONNECTION, LOCK_DIRECTORY, mine, name=LOCK_NAME,
                                       overwrite=False, create_directories=True)
            except FmeApiError as exc:
                if exc.status is None or exc.status >= 500:
                    return NodeLock(client.node, error=exc.reason)
                refused = exc.reason  # 4xx: a lock file is (probably) there; read whose below
            found = read_holder(client, spool)
            if refused and found.holder is None and not found.unreadable and not found.error:
                found.error = refused  # refused, yet no lock file: say why
                return found
            if found.holder is not None and found.holder != self.owner and found.holder.dead_here:
                log.info("%s: taking over the lock of %s (its process is gone)", client.node,
                         found.holder.describe())
                remove_lock_file(client)
                continue
            return found
        return read_holder(client, spool)

    # --- release ------------------------------------------------------------------------------
    def release(self) -> None:
        """Remove our lock file where we hold it (never someone else's: a lock broken with
        `fmeaa unlock` and taken by another run is left alone)."""
        if not self.held or self._spool is None:
            self._cleanup()
            return
        spool = Path(self._spool.name)

        def give_back(name: str, client: FmeClient) -> NodeLock:
            found = read_holder(client, spool)
            if found.holder == self.owner:
                try:
                    remove_lock_file(client)
                except FmeApiError as exc:
                    found.error = exc.reason
            return found

        done = _parallel({n: self.clients[n] for n in self.held}, give_back)
        left = sorted(n for n, f in done.items() if f.error)
        if left:
            log.warning("the cluster lock could not be removed from %s; the next run on this "
                        "host takes it over, others need `fmeaa unlock`", ", ".join(left))
        self.held = []
        self._cleanup()

    def _cleanup(self) -> None:
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None


def inspect_lock(clients: Mapping[str, FmeClient]) -> dict[str, NodeLock]:
    """Every reachable node's lock file (for `fmeaa unlock`)."""
    with tempfile.TemporaryDirectory(prefix="fmeaa-lock-") as tmp:
        return _parallel(clients, lambda name, client: read_holder(client, Path(tmp)))


def break_lock(clients: Mapping[str, FmeClient]) -> dict[str, NodeLock]:
    """Remove the lock file from every reachable node; per node, what was there."""
    with tempfile.TemporaryDirectory(prefix="fmeaa-lock-") as tmp:
        def remove(name: str, client: FmeClient) -> NodeLock:
            found = read_holder(client, Path(tmp))
            if found.holder is not None or found.unreadable:
                try:
                    remove_lock_file(client)
                except FmeApiError as exc:
                    found.error = exc.reason
            return found
        return _parallel(clients, remove)
