"""The cluster lock around the operations that change content (`sync`, `publish`, `seed`,
`rolling`), and
`unlock`, which breaks a lock its holder left behind. The mechanism — a lock file on a majority
of the nodes — is `fmeaa/cluster/cluster_lock.py`; README, "The cluster lock"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fmeaa.app.results import UnlockResult
from fmeaa.app.targets import ClusterRef, Targets, resolve_targets
from fmeaa.cluster.cluster_lock import (
    STALE_AFTER_S,
    ClusterLock,
    break_lock,
    holders_text,
    inspect_lock,
)
from fmeaa.cluster.sync_lock import SyncLockedError
from fmeaa.sync.engine import EngineSettings, SyncEngine


@contextmanager
def cluster_lock(engine: SyncEngine, operation: str) -> Iterator[ClusterLock]:
    """Log in to every node of the inventory (not only the targets: the lock needs a majority
    of all of them) and hold the cluster lock until the block ends, however it ends."""
    names = [n.name for n in engine.inventory.nodes]
    engine.connect(names)  # rejected credentials stop everything here, before any write
    usable = engine.usable(names)
    down = {n: engine.status[n].error or "not reachable" for n in names if n not in usable}
    with ClusterLock({n: engine.clients[n] for n in usable}, names, operation, down=down) as lock:
        yield lock


@contextmanager
def cluster_held(targets: Targets, operation: str, timeout_s: float = 30.0
                 ) -> Iterator[ClusterLock]:
    """The cluster lock for an operation that has no sync engine of its own (`seed`,
    `rolling`): its own logins to every node, kept until the block ends."""
    with SyncEngine(targets.whole, targets.credentials(), EngineSettings(timeout_s=timeout_s)) \
            as engine, cluster_lock(engine, operation) as lock:
        yield lock


def unlock(ref: ClusterRef, force: bool = False, timeout_s: float = 10.0) -> UnlockResult:
    """Remove the cluster lock from every reachable node. Refuses a lock younger than
    STALE_AFTER_S — its run may still be going — unless `force`, or unless its process is known
    to be gone (same host, pid no longer running)."""
    targets = resolve_targets(ref)
    names = [n.name for n in targets.whole.nodes]
    with SyncEngine(targets.whole, targets.credentials(), EngineSettings(timeout_s=timeout_s)) \
            as engine:
        engine.connect(names)
        usable = engine.usable(names)
        clients = {n: engine.clients[n] for n in usable}
        unreachable = {n: engine.status[n].error or "not reachable" for n in names
                       if n not in usable}
        found = inspect_lock(clients)
        held = {n: f for n, f in found.items() if f.holder is not None or f.unreadable}
        young = [f.holder for f in held.values() if f.holder is not None
                 and f.holder.age_s() < STALE_AFTER_S and not f.holder.dead_here]
        if young and not force:
            raise SyncLockedError(
                f"refusing to break the cluster lock of {holders_text(held)}: it is younger than "
                f"{STALE_AFTER_S / 3600:.0f} h, so that run may still be going. If you are sure it "
                "is gone (killed, or its machine is off), pass --force")
        removed = break_lock(clients) if held else {}
    return UnlockResult(
        holders=holders_text(held),
        removed_from=sorted(n for n, f in removed.items()
                            if (f.holder is not None or f.unreadable) and not f.error),
        failed={n: f.error for n, f in removed.items() if f.error} | unreachable)
