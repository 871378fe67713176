"""Rollback: what each sync replaced is recorded on the nodes before it is applied (`Recorder`,
used by `sync`, `publish` and `rollback` itself), `history` lists it, and `rollback` restores
it — with a plan first and the guarantees of a sync: the cluster lock, each node on its own,
a re-plan that proves the nodes converged, and a re-run that finishes what a failed run left.
README, "Rollback"; the record format is `fmeaa/sync/history.py`, the node store
`fmeaa/sync/history_store.py`.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from fmeaa.app.locking import cluster_lock
from fmeaa.app.results import (
    Failure,
    HistoryChangeReport,
    HistoryResult,
    HistorySyncReport,
    NodeHistoryReport,
    NodeRollbackReport,
    PlannedAction,
    RollbackResult,
    SkippedEntry,
)
from fmeaa.app.targets import ClusterRef, resolve_targets
from fmeaa.cluster.cluster_lock import LockOwner
from fmeaa.cluster.sync_lock import SyncLock
from fmeaa.sync.apply import NodeResult, failure_text, is_unreachable
from fmeaa.sync.content_source import LocalFiles
from fmeaa.sync.engine import EngineSettings, Observer, SyncEngine
from fmeaa.sync.history import (
    DEFAULT_KEEP,
    FILE_KINDS,
    SYNC_ID,
    ChangeRecord,
    HistoryError,
    HistoryIndex,
    IndexEntry,
    RollbackPlan,
    SyncRecord,
    needs_bytes,
    new_sync_id,
    plan_rollback,
    resource_roots,
    undo_targets,
)
from fmeaa.sync.history_store import NodeHistory
from fmeaa.sync.plan import Change, ContentPlan, NodePlan
from fmeaa.sync.snapshot import Kind

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class HistoryPolicy:
    """Whether a run records what it replaces, and how many records each node keeps."""

    enabled: bool = True
    keep: int = DEFAULT_KEEP


RECORDED = HistoryPolicy()  # the default: record, keep DEFAULT_KEEP runs per node

class NodeFailure(str):
    """A node's failure text; `unreachable` when the node gave no HTTP answer at all."""

    unreachable: bool = False


def _each(names: Iterable[str], work: Callable[[str], T], parallel: int
          ) -> dict[str, tuple[T | None, NodeFailure | None]]:
    """`work` per node in parallel; each node's exception is that node's failure (its text)."""
    names = list(names)

    def one(name: str) -> tuple[str, T | None, NodeFailure | None]:
        try:
            return name, work(name), None
        except Exception as exc:  # an API or history error, or anything unforeseen: this node's
            failure = NodeFailure(failure_text(exc))
            failure.unreachable = is_unreachable(exc)
            return name, None, failure

    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names)))) as pool:
        return {n: (v, e) for n, v, e in pool.map(one, names)}


# --- recording --------------------------------------------------------------------------------------
class Recorder:
    """Records, on each node a run is about to change, what it will replace — before anything
    is applied there — and afterwards the run's outcome; then applies the retention."""

    def __init__(self, engine: SyncEngine, operation: str, source: str, owner: LockOwner | None,
                 policy: HistoryPolicy = RECORDED) -> None:
        owner = owner or LockOwner.me(operation)
        self.engine, self.operation, self.source, self.policy = engine, operation, source, policy
        self.sync_id = new_sync_id(owner.run_id)
        self.by = f"{owner.user}@{owner.host}"
        self.recorded: dict[str, tuple[NodeHistory, HistoryIndex]] = {}
        self.warnings: list[str] = []
        self._spool = tempfile.TemporaryDirectory(prefix="fmeaa-history-")

    def before_apply(self, plan: ContentPlan) -> dict[str, NodeResult]:
        """Record every node that has changes; node → its failed result when it could not be
        recorded (such a node must not be changed: nothing could put it back)."""
        if not self.policy.enabled:
            return {}
        work = {n: p for n, p in plan.nodes.items() if p.changes}
        done = _each(work, lambda n: self._record(n, work[n]), self.engine.settings.parallel)
        return {n: NodeResult(n, "unreachable" if error.unreachable else "failed", failures=[(
                    "record history", f"recording what it replaces failed, so nothing was "
                    f"changed there: {error} (`--no-history` syncs without a record)")])
                for n, (_, error) in done.items() if error}

    def _record(self, node: str, plan: NodePlan) -> None:
        history = NodeHistory(self.engine.clients[node], Path(self._spool.name))
        index = history.read_index()
        known = index.blobs
        changes = []
        for a in plan.changes:
            before, kept = a.actual, False
            if before is not None and a.kind in FILE_KINDS and \
                    (a.change is Change.DELETE or a.detail != "services"):
                before, kept = history.keep_bytes(before, known), True
            changes.append(ChangeRecord(a.kind, a.key, a.change.value, before,
                                        a.desired.digest if a.desired else None, kept))
            if a.kind is Kind.REPOSITORY and a.change is Change.DELETE:
                changes += [ChangeRecord(Kind.ITEM, item.key, "delete",
                                         history.keep_bytes(item, known), None, True)
                            for item in history.items_of(a.key)]
        record = SyncRecord(self.sync_id, node, self.operation,
                            datetime.now(UTC).isoformat(timespec="seconds"), self.by,
                            self.source, changes)
        history.write_record(record)  # the record first: the index never names a missing one
        index.add(record)
        history.write_index(index)
        self.recorded[node] = (history, index)

    def after_apply(self, results: Mapping[str, NodeResult]) -> None:
        """Each recorded node's outcome, then retention: records beyond `keep` are dropped, and
        the blobs no kept record needs. A failure here is a warning: the run itself is done."""
        def finish(node: str) -> None:
            history, index = self.recorded[node]
            result = results.get(node)
            index.mark(self.sync_id, "ok" if result is not None and result.ok else "failed")
            dropped, orphans = index.prune(self.policy.keep)
            history.write_index(index)  # before deleting: never an index naming deleted records
            for entry in dropped:
                history.delete_record(entry.id)
            for sha in orphans:
                history.delete_blob(sha)

        finished = [n for n in self.recorded if n in results]  # this apply's (a wave's) nodes
        for node, (_, error) in _each(finished, finish, self.engine.settings.parallel).items():
            if error:
                warning = f"{node}: the history record of {self.sync_id} could not be finished " \
                          f"({error}); it shows as 'applying'"
                log.warning(warning)
                self.warnings.append(warning)

    def close(self) -> None:
        self._spool.cleanup()


def apply_recorded(engine: SyncEngine, plan: ContentPlan, files: object,
                   recorder: Recorder | None) -> dict[str, NodeResult]:
    """Record (when a recorder is given), then apply the plan to the nodes that were recorded;
    a node whose record failed is that node's failure and is left unchanged."""
    refused = recorder.before_apply(plan) if recorder else {}
    results = engine.apply(ContentPlan({n: p for n, p in plan.nodes.items() if n not in refused},
                                       plan.prune), files)
    results.update(refused)
    if recorder:
        recorder.after_apply(results)
    return results


# --- fmeaa history ----------------------------------------------------------------------------------
def _sync_report(entry: IndexEntry, record: SyncRecord | None = None) -> HistorySyncReport:
    return HistorySyncReport(
        id=entry.id, operation=entry.operation, at=entry.at, by=entry.by, source=entry.source,
        status=entry.status, created=entry.counts.get("create", 0),
        updated=entry.counts.get("update", 0), deleted=entry.counts.get("delete", 0),
        changes=None if record is None else [
            HistoryChangeReport(kind=c.kind.value, key=c.key, change=c.change)
            for c in record.changes])


def history(ref: ClusterRef, *, limit: int = 10, show: str | None = None,
            settings: EngineSettings | None = None) -> HistoryResult:
    """The last `limit` recorded runs on each node, newest first (when, who, what changed);
    with `show`, that run's changes entry by entry. Reads only: takes no lock."""
    if show is not None and not SYNC_ID.match(show):
        raise HistoryError(f"--show {show!r} is not a sync id (like 20250301T120000.123Z-9f3a1c; "
                           "`fmeaa history` lists them)")
    targets = resolve_targets(ref)
    settings = settings or EngineSettings()
    nodes: dict[str, NodeHistoryReport] = {}
    with SyncEngine(targets.whole, targets.credentials(), settings) as engine, \
            tempfile.TemporaryDirectory(prefix="fmeaa-history-") as spool:
        engine.connect(targets.names)

        def read(node: str) -> NodeHistoryReport:
            store = NodeHistory(engine.clients[node], Path(spool))
            index = store.read_index()
            shown = [e for e in reversed(index.entries)
                     if show is None or e.id == show][:max(1, limit)]
            return NodeHistoryReport(status="ok", pruned_through=index.pruned_through, syncs=[
                _sync_report(e, store.read_record(e.id) if show else None) for e in shown])

        done = _each(engine.usable(targets.names), read, settings.parallel)
        for name in targets.names:
            report, error = done.get(name, (None, None))
            if report is not None:
                nodes[name] = report
            else:
                status = engine.status[name]
                nodes[name] = NodeHistoryReport(status=status.state if status.error else "failed",
                                                error=status.error or error)
    return HistoryResult(nodes=nodes)


# --- fmeaa rollback ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RollbackRequest:
    """`before`: put each node back as it was right before that sync (undoing it and every
    later one); `to`: as it was right after it (undoing every later one). Neither: before the
    newest recorded sync (not a rollback) of the chosen nodes."""

    cluster: ClusterRef
    before: str | None = None
    to: str | None = None
    dry_run: bool = False
    settings: EngineSettings = field(default_factory=EngineSettings)
    history: HistoryPolicy = field(default_factory=HistoryPolicy)


def _check(request: RollbackRequest) -> None:
    problems = []
    if request.before and request.to:
        problems.append("give --before SYNC_ID or --to SYNC_ID, not both")
    for option, value in (("--before", request.before), ("--to", request.to)):
        if value is not None and not SYNC_ID.match(value):
            problems.append(f"{option} {value!r} is not a sync id (like "
                            "20250301T120000.123Z-9f3a1c; `fmeaa history` lists them)")
    if problems:
        raise HistoryError("refusing the rollback:\n" + "\n".join(f"  - {p}" for p in problems))


def _target(request: RollbackRequest, indexes: Mapping[str, HistoryIndex]) -> tuple[str, bool]:
    """(sync id, inclusive): which runs to undo."""
    chosen = request.before or request.to
    if chosen is None:
        newest = max((e.id for i in indexes.values() for e in i.entries
                      if e.operation != "rollback"), default=None)
        if newest is None:
            raise HistoryError("no recorded sync to roll back on "
                               f"{', '.join(indexes) or 'any reachable node'}")
        return newest, True
    if not any(i.entry(chosen) for i in indexes.values()):
        raise HistoryError(f"no reachable node's history has the sync {chosen} "
                           "(`fmeaa history` lists them)")
    return chosen, request.before is not None


@dataclass
class _NodeRollback:
    records: list[SyncRecord] = field(default_factory=list)  # the runs undone, oldest first
    plan: RollbackPlan | None = None
    error: str | None = None

    @property
    def undoes(self) -> list[str]:
        return [r.id for r in self.records]


def _report(work: _NodeRollback, result: NodeResult | None, in_sync: bool
            ) -> NodeRollbackReport:
    plan = work.plan
    assert plan is not None
    actions = [PlannedAction(change=a.change.value, kind=a.kind.value, key=a.key,
                             detail=a.detail or None,
                             digest=a.desired.short if a.desired else None,
                             current=a.actual.short if a.actual else None)
               for a in plan.plan.actions]
    return NodeRollbackReport(
        status=result.status if result else "ok", undoes=list(reversed(work.undoes)),
        actions=actions, changed_since=plan.changed_since, in_sync=in_sync,
        skipped=[SkippedEntry(kind=k.value, key=key, reason=why) for k, key, why in plan.skipped],
        applied=result.applied if result else 0,
        failures=[Failure(action=a, error=e) for a, e in (result.failures if result else [])])


def rollback(request: RollbackRequest, observer: Observer | None = None) -> RollbackResult:
    """Put the chosen nodes back as their history says they were, entry by entry: what the
    undone runs created is deleted, what they changed or deleted is restored (the earlier bytes
    from the node's own kept blobs). A plan first; `dry_run` stops there."""
    _check(request)
    targets = resolve_targets(request.cluster)
    credentials = targets.credentials()
    names = targets.names
    parallel = request.settings.parallel
    with SyncEngine(targets.whole, credentials, request.settings, observer) as engine, \
            tempfile.TemporaryDirectory(prefix="fmeaa-rollback-") as spool, \
            (contextlib.nullcontext() if request.dry_run else SyncLock(engine.lock_path)), \
            (contextlib.nullcontext() if request.dry_run
             else cluster_lock(engine, "rollback")) as lock:
        engine.connect(names)
        stores = {n: NodeHistory(engine.clients[n], Path(spool)) for n in engine.usable(names)}
        read = _each(stores, lambda n: stores[n].read_index(), parallel)
        indexes = {n: i for n, (i, _) in read.items() if i is not None}
        work: dict[str, _NodeRollback] = {n: _NodeRollback(error=e)
                                          for n, (_, e) in read.items() if e}
        target, inclusive = _target(request, indexes)

        def records(node: str) -> list[SyncRecord]:
            return [stores[node].read_record(e.id)
                    for e in indexes[node].since(target, inclusive)]

        for node, (found, error) in _each(indexes, records, parallel).items():
            work[node] = _NodeRollback(found or [], error=error)
        undo = {n: undo_targets(w.records) for n, w in work.items() if not w.error}
        roots = resource_roots(key for u in undo.values() for (kind, key) in u
                               if kind is Kind.RESOURCE)
        actual = engine.read_nodes([n for n in undo if undo[n]], roots)
        for node, targets_here in undo.items():
            if not targets_here:
                work[node].plan = RollbackPlan(node, NodePlan(node))
            elif node in actual:
                work[node].plan = plan_rollback(node, targets_here, actual[node],
                                                indexes[node].blobs)
        result = RollbackResult(target=target, mode="before" if inclusive else "to",
                                dry_run=request.dry_run, ok=False, nodes={})
        if not request.dry_run:
            _apply(engine, work, stores, indexes, request, lock, roots, result)
        for node in names:
            w = work.get(node)
            if node in result.nodes:
                continue
            if w is None or w.plan is None:
                status = engine.status[node]
                result.nodes[node] = NodeRollbackReport(
                    status=status.state if status.error else "failed",
                    error=status.error or (w.error if w else None))
            else:
                result.nodes[node] = _report(w, None, not w.plan.plan.changes)
    result.nodes = {n: result.nodes[n] for n in names}  # inventory order
    # A dry run is fine when every node could be planned; a rollback when every node is back
    # as it was — and nothing was left out (`skipped` says which entries, and why).
    result.ok = all(n.status == "ok" and (request.dry_run or (n.in_sync and not n.skipped))
                    for n in result.nodes.values())
    return result


def _apply(engine: SyncEngine, work: dict[str, _NodeRollback], stores: Mapping[str, NodeHistory],
           indexes: Mapping[str, HistoryIndex], request: RollbackRequest, lock: object,
           roots: set[tuple[str, str]], result: RollbackResult) -> None:
    """Fetch the kept bytes each node needs, record, apply, re-plan to prove it."""
    planned = {n: w for n, w in work.items() if w.plan is not None and w.plan.plan.changes}

    def with_bytes(node: str) -> NodePlan:
        plan = work[node].plan.plan  # type: ignore[union-attr]
        local = {}
        for entry in needs_bytes(plan):
            sha = entry.file_sha256 or ""
            local[entry.id] = stores[node].fetch_blob(sha, stores[node].spool / f"blob-{sha}")
        return NodePlan(node, [
            replace(a, desired=replace(a.desired, local_file=str(local[a.desired.id])))
            if a.desired is not None and a.desired.id in local else a for a in plan.actions])

    fetched = _each(planned, with_bytes, request.settings.parallel)
    for node, (_, error) in fetched.items():
        if error:
            result.nodes[node] = NodeRollbackReport(
                status="failed", error=f"the kept bytes could not be read, so nothing was "
                                       f"changed there: {error}")
    plan = ContentPlan({n: p for n, (p, _) in fetched.items() if p is not None}, prune=True)
    recorder = Recorder(engine, "rollback",
                        f"rollback {result.mode} {result.target}",
                        getattr(lock, "owner", None), request.history)
    try:
        results = apply_recorded(engine, plan, LocalFiles(), recorder)
    finally:
        recorder.close()
    result.sync_id = recorder.sync_id if recorder.recorded else None
    undo = {n: undo_targets(work[n].records) for n in plan.nodes}
    # What the rollback wrote is fmeaa's writing: the ledgers say so (the newer source then
    # reads as pending, not as drift). A ledger that cannot be written costs downloads only.
    engine.write_ledgers(list(plan.nodes))
    again = engine.read_nodes(list(plan.nodes), roots)
    for node in plan.nodes:
        converged = node in again and not plan_rollback(
            node, undo[node], again[node], indexes[node].blobs).plan.changes
        result.nodes[node] = _report(work[node], results.get(node), converged)
