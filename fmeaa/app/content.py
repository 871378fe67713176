"""The content operations: `plan`, `sync`, `verify` and `publish`.

Each takes a typed request, validates everything before any node is contacted (inventory,
content directory, schedule owners, credentials), drives the sync engine and returns a typed
result document. Front ends (the CLI, the rehearsal, a Python caller) only render it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fmeaa.app.history import RECORDED, HistoryPolicy, Recorder, apply_recorded
from fmeaa.app.locking import cluster_lock
from fmeaa.app.results import (
    CAUSES,
    Failure,
    NodePlanReport,
    NodeSyncReport,
    ParityResult,
    ParityRowReport,
    PlannedAction,
    PlanResult,
    SyncResult,
)
from fmeaa.app.schedules import honour_moves
from fmeaa.app.sources import OpenSource, SourceServer, is_url_source, open_url_source
from fmeaa.app.targets import ClusterRef, Targets, resolve_targets
from fmeaa.cluster.sync_lock import SyncLock
from fmeaa.sync.apply import NodeResult
from fmeaa.sync.content_source import (
    DirectorySource,
    LocalFiles,
    NodeSource,
    UrlSource,
    resolve_references,
    snapshot_of_directory,
)
from fmeaa.sync.digest_cache import file_sha256
from fmeaa.sync.engine import EngineSettings, Observer, SyncEngine, local_digest_cache
from fmeaa.sync.manifest import KNOWN_SERVICES, ContentError, load_content_dir
from fmeaa.sync.parity import ParityReport, parity
from fmeaa.sync.plan import Change, ContentPlan, NodePlan, PlanTally
from fmeaa.sync.projects import PreviewRow, preview_projects
from fmeaa.sync.snapshot import Kind, Snapshot, file_entry, metadata_entry

SchedulePolicy = Literal["one", "all"]


@dataclass(frozen=True)
class ContentRequest:
    """`source`: a content directory, `node:NAME` (a reference node of the inventory) or
    `url:https://server` (a server outside the cluster, read only; its credentials from
    `source_secret_id` or $FMEAA_SOURCE_PASSWORD)."""

    source: str
    cluster: ClusterRef
    settings: EngineSettings = field(default_factory=EngineSettings)
    schedule_policy: str = "one"  # with node:/url: sources: 'one' or 'all'
    source_secret_id: str | None = None


class ContentJob:
    """A validated content request; nothing here has touched a node yet. The content files
    are hashed only by `load_desired`, so `sync` can take this machine's lock first: a second
    sync refused there costs no pass over a large content directory. (The cluster lock comes
    later, only when the plan has something to write: see `sync`.)"""

    def __init__(self, request: ContentRequest) -> None:
        self.targets: Targets = resolve_targets(request.cluster)
        self.settings = request.settings
        if request.schedule_policy not in ("one", "all"):
            raise ContentError(f"--schedule-policy must be 'one' or 'all' "
                               f"(got {request.schedule_policy!r})")
        self.policy = request.schedule_policy
        self.server: OpenSource | None = None
        if not is_url_source(request.source):
            self.source: DirectorySource | NodeSource | UrlSource = self._source(request.source)
        self.credentials = self.targets.credentials()
        if is_url_source(request.source):
            # Contacts the source server only (logs in, lists its connections), never a node.
            self.server = open_url_source(
                request.source, SourceServer(request.source, request.source_secret_id,
                                             self.targets.region, request.cluster.allow_http),
                self.targets.whole, self.settings, self.targets.secret_resolver())
            self.source = self.server.source
        # Secret references are validation: all resolved (or all refused) before any node is
        # contacted, the cluster lock included. Hashing the files waits for the lock.
        self.references = resolve_references(self.source.content, self.targets.secret_resolver()) \
            if isinstance(self.source, DirectorySource) and self.source.content else None

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def __enter__(self) -> ContentJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _source(self, source: str) -> DirectorySource | NodeSource:
        if source.startswith("node:"):
            name = source.removeprefix("node:")
            self.targets.whole.node(name)  # must exist
            return NodeSource(name)
        # Schedule owners are checked with everything else, against the whole inventory.
        return DirectorySource(load_content_dir(Path(source),
                                                nodes=[n.name for n in self.targets.whole.nodes]))

    def _directory_snapshot(self, source: DirectorySource) -> Snapshot:
        """Hashes the content files (remembered digests first)."""
        assert self.references is not None and source.content is not None  # hashed once
        cache = local_digest_cache(self.settings)
        snapshot = snapshot_of_directory(source.content, cache, self.references)
        cache.save()
        source.content = None  # memory: the entries hold what the sync needs of the files
        return snapshot

    def engine(self, observer: Observer | None = None) -> SyncEngine:
        return SyncEngine(self.targets.whole, self.credentials, self.settings, observer)

    def load_desired(self, engine: SyncEngine) -> Snapshot:
        if self.server is not None:
            return self.server.read(self.policy)
        if isinstance(self.source, NodeSource):
            return engine.read_reference(self.source, self.policy)
        return self._directory_snapshot(self.source)

    def load_connected(self, engine: SyncEngine, names: list[str]) -> Snapshot:
        """`load_desired`, with the engine logged in to `names`. A content directory is hashed
        while the logins go on (they wait on the network, the hashing on the disk); rejected
        credentials still stop the run before anything is read from a node."""
        if not isinstance(self.source, DirectorySource):
            desired = self.load_desired(engine)
            engine.connect(names)
            return desired
        with ThreadPoolExecutor(max_workers=1) as pool:
            logins = pool.submit(engine.connect, names)
            try:
                desired = self.load_desired(engine)
            finally:
                logins.result()  # CredentialsRejectedError from here
        return desired

    def honour_moves(self, desired: Snapshot, engine: SyncEngine) -> Snapshot:
        """`one` schedules where the cluster's move record puts them (read from every node the
        engine is connected to), so a sync never undoes `fmeaa schedules move`."""
        clients = {n: engine.clients[n] for n in engine.usable(engine.clients)}
        return honour_moves(desired, clients, engine.default_owner,
                            [n.name for n in self.targets.whole.nodes])

    def target_names(self, include_source: bool = False) -> list[str]:
        names = self.targets.names
        if isinstance(self.source, NodeSource) and not include_source:
            names = [n for n in names if n != self.source.node]
        return names


# --- result documents ------------------------------------------------------------------------------
def _preview_actions(rows: list[PreviewRow | str]) -> list[PlannedAction]:
    """A project import's preview as plan rows: one per item, with the node's own action."""
    return [PlannedAction(change="preview", kind="project-item",
                          key=f"{r.project}: {r.type} {r.id}", detail=r.action)
            if isinstance(r, PreviewRow) else
            PlannedAction(change="preview", kind="project-item", key=r.split(":")[0], detail=r)
            for r in rows]


def plan_result(plan: ContentPlan, engine: SyncEngine, targets: list[str], source: str,
                previews: dict[str, list[PreviewRow | str]] | None = None) -> PlanResult:
    nodes: dict[str, NodePlanReport] = {}
    for name in targets:
        status = engine.status[name]
        node_plan = plan.nodes.get(name)
        if node_plan is None:
            nodes[name] = NodePlanReport(url=status.url, status=status.state, error=status.error)
            continue
        nodes[name] = NodePlanReport(
            url=status.url, status="ok", error=status.error,
            summary={c.value: node_plan.count(c) for c in Change},
            causes=node_plan.causes(),
            bytes_to_send=node_plan.bytes_to_send,
            actions=[PlannedAction(change=a.change.value, kind=a.kind.value, key=a.key,
                                   detail=a.detail or None,
                                   digest=a.desired.short if a.desired else None,
                                   current=a.actual.short if a.actual else None,
                                   cause=a.cause.value if a.cause else None)
                     for a in node_plan.actions]
            + _preview_actions((previews or {}).get(name, [])))
    found = {c: sum((n.causes or {}).get(c, 0) for n in nodes.values()) for c in CAUSES}
    return PlanResult(source=source, prune=plan.prune, changes=plan.has_changes, nodes=nodes,
                      causes=found)


def sync_result(plan: PlanTally, results: dict[str, NodeResult], engine: SyncEngine,
                targets: list[str], converged: dict[str, bool],
                unrecorded: dict[str, str] | None = None) -> SyncResult:
    nodes: dict[str, NodeSyncReport] = {}
    for name in targets:
        node_plan = plan.nodes.get(name)
        result = results.get(name)
        if node_plan is None or result is None:
            status = engine.status[name]
            nodes[name] = NodeSyncReport(status=status.state if status.error else "failed",
                                         error=status.error)
            continue
        nodes[name] = NodeSyncReport(
            status=result.status, applied=result.applied,
            created=node_plan.count(Change.CREATE), updated=node_plan.count(Change.UPDATE),
            deleted=node_plan.count(Change.DELETE) if plan.prune else 0,
            unchanged=node_plan.count(Change.UNCHANGED), bytes_sent=result.bytes_sent,
            failures=[Failure(action=a, error=e) for a, e in result.failures],
            in_sync=converged.get(name, False),
            ledger_error=(unrecorded or {}).get(name))
    return SyncResult(ok=all(n.status == "ok" and n.in_sync for n in nodes.values()), nodes=nodes)


def parity_result(report: ParityReport, source: str) -> ParityResult:
    return ParityResult(
        source=source, in_sync=report.in_sync, drift=report.drift_count,
        pending=report.count("pending"), extra=report.count("extra"),
        unreadable=report.unreadable, nodes=report.nodes,
        rows=[ParityRowReport(kind=r.kind.value, key=r.key, status=r.status, digests=r.cells,
                              expected=r.expected, drifted_nodes=r.drifted_nodes,
                              causes=r.causes,
                              enabled_on=r.enabled_on if r.kind is Kind.SCHEDULE else None)
              for r in report.rows])


# --- operations ------------------------------------------------------------------------------------
def plan(request: ContentRequest, prune: bool = False, observer: Observer | None = None
         ) -> PlanResult:
    """What `sync` would create, update or delete on each node, by content digest."""
    with ContentJob(request) as job, job.engine(observer) as engine:
        targets = job.target_names()
        desired = job.honour_moves(job.load_connected(engine, targets), engine)
        content_plan = engine.plan(desired, targets, prune)
        previews = preview_projects(engine.clients, content_plan, job.source,
                                    request.settings.parallel)
        return plan_result(content_plan, engine, targets, job.source.label, previews)


def sync_nodes(engine: SyncEngine, job: ContentJob, desired: Snapshot, names: list[str],
               prune: bool, recorder: Recorder | None) -> SyncResult:
    """Plan `names`, record what will be replaced, apply (each node directly, in parallel),
    then re-plan the changed nodes to prove they converged. The caller holds the locks."""
    content_plan = engine.plan(desired, names, prune)
    results = apply_recorded(engine, content_plan, job.source, recorder)
    changed = [n for n, p in content_plan.nodes.items() if p.changes]
    converged = {n: True for n, p in content_plan.nodes.items() if not p.changes}
    tally = content_plan.tallied()
    # Memory stays flat: the plan's actions and the changed nodes' snapshots from before the
    # apply are let go before those nodes are read again.
    del content_plan
    engine.forget_snapshots(changed)
    if changed:
        converged.update({n: not p.changes
                          for n, p in engine.plan(desired, changed, prune).nodes.items()})
    unrecorded = engine.record_ledgers(desired, names)  # what fmeaa wrote, kept on each node
    result = sync_result(tally, results, engine, names, converged, unrecorded)
    if recorder is not None and recorder.recorded:
        result.sync_id = recorder.sync_id
    return result


def sync(request: ContentRequest, prune: bool = False, observer: Observer | None = None,
         history: HistoryPolicy = RECORDED) -> SyncResult:
    """Plan, record on each node what it will replace (`history`), apply (each node directly,
    in parallel), then re-plan the changed nodes to prove they converged. One node's failure
    never stops the others.

    The cluster lock is taken optimistically: the nodes are first read and planned without it,
    and when that finds nothing to write (no action, no ledger to update) the sync is done —
    a no-op neither takes the lock nor writes anything. Otherwise the lock is taken and the
    nodes are read and planned again under it (another run may have changed them meanwhile):
    nothing is ever written without the lock, and only from a plan made while holding it."""
    started = time.perf_counter()
    with ContentJob(request) as job, job.engine(observer) as engine, SyncLock(engine.lock_path):
        targets = job.target_names()
        loaded = job.load_connected(engine, targets)
        desired = job.honour_moves(loaded, engine)
        first = engine.plan(desired, targets, prune)
        if not engine.writes_needed(first, desired, targets):
            result = sync_result(first.tallied(), {n: NodeResult(n) for n in first.nodes},
                                 engine, targets, {n: True for n in first.nodes})
        else:
            del first  # planned again under the lock
            engine.forget_reads()
            with cluster_lock(engine, "sync") as lock:
                desired = job.honour_moves(loaded, engine)  # moves are read again, too
                recorder = Recorder(engine, "sync", job.source.label, lock.owner, history)
                try:
                    result = sync_nodes(engine, job, desired, targets, prune, recorder)
                finally:
                    recorder.close()
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def verify(request: ContentRequest, observer: Observer | None = None) -> ParityResult:
    """Parity matrix: every entry × every node, by digest, against the source."""
    with ContentJob(request) as job, job.engine(observer) as engine:
        names = job.target_names(include_source=True)
        desired = job.honour_moves(job.load_connected(engine, names), engine)
        actual = engine.read_nodes(names, desired.resource_roots, desired)
        unreadable = {n: engine.status[n].error or "unknown" for n in names if n not in actual}
        report = parity(desired, actual, names, job.targets.whole.nodes[0].name, unreadable,
                        recorded=engine.recorded())
    return parity_result(report, job.source.label)


@dataclass(frozen=True)
class PublishRequest:
    file: Path
    repo: str
    cluster: ClusterRef
    services: tuple[str, ...] = ("fmejobsubmitter",)
    name: str | None = None  # item name; default: the file's name
    settings: EngineSettings = field(default_factory=EngineSettings)


def _only_published(plan: ContentPlan, desired: Snapshot) -> ContentPlan:
    """Keep the plan to the published entries: publish never judges anything else."""
    return ContentPlan({n: NodePlan(n, [a for a in p.actions
                                        if (a.kind, a.key) in desired and a.change != Change.EXTRA])
                        for n, p in plan.nodes.items()}, prune=False)


def publish(request: PublishRequest, observer: Observer | None = None,
            history: HistoryPolicy = RECORDED) -> SyncResult:
    """One file to a repository on every chosen node, with its services; nodes that already
    hold the same bytes and services are skipped. What it replaces is recorded (`history`)."""
    services = sorted(set(request.services))
    unknown = sorted(set(services) - set(KNOWN_SERVICES))
    if unknown:
        raise ContentError(f"unknown service(s) {unknown}; known: {', '.join(KNOWN_SERVICES)}")
    targets = resolve_targets(request.cluster)
    credentials = targets.credentials()
    file = request.file
    names = targets.names
    with SyncEngine(targets.whole, credentials, request.settings, observer) as engine, \
            SyncLock(engine.lock_path), cluster_lock(engine, "publish") as lock:
        desired = Snapshot([
            metadata_entry(Kind.REPOSITORY, {"name": request.repo, "description": ""}),
            file_entry(Kind.ITEM, f"{request.repo}/{request.name or file.name}",
                       file.stat().st_size, file_sha256(file), services, file.resolve()),
        ])
        engine.connect(names)
        content_plan = _only_published(engine.plan(desired, names, prune=False), desired)
        recorder = Recorder(engine, "publish", f"publish {file.name} to {request.repo}",
                            lock.owner, history)
        try:
            results = apply_recorded(engine, content_plan, LocalFiles(), recorder)
        finally:
            recorder.close()
        again = _only_published(engine.plan(desired, names, prune=False), desired)
        converged = {n: not p.changes for n, p in again.nodes.items()}
        # No ledger write: the ledger records what syncs from a source wrote; a published file
        # is outside the source (an extra, or drift where the source lists that item).
        result = sync_result(content_plan.tallied(), results, engine, names, converged)
        result.sync_id = recorder.sync_id if recorder.recorded else None
        return result
