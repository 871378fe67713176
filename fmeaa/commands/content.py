"""`fmeaa plan`, `fmeaa sync` and `fmeaa verify`: desired content against every node."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fmeaa.cluster.credentials import CredentialSource
from fmeaa.cluster.sync_lock import SyncLock
from fmeaa.commands.common import (
    EXIT_CHANGES,
    EXIT_FAILED,
    EXIT_OK,
    AllowHttpOpt,
    CacheDirOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    OnlyOpt,
    ParallelOpt,
    PolicyOpt,
    ProgressObserver,
    RegionOpt,
    SecretOpt,
    SourceOpt,
    Targets,
    TimeoutOpt,
    emit_json,
    reported_errors,
    resolve_credentials,
    resolve_inventory,
    resolve_source,
    secret_resolver,
    settings,
    stdout,
)
from fmeaa.sync.apply import NodeResult
from fmeaa.sync.content_source import DirectorySource, NodeSource, snapshot_of_directory
from fmeaa.sync.engine import EngineSettings, SyncEngine, local_digest_cache
from fmeaa.sync.manifest import ContentError
from fmeaa.sync.parity import ParityReport, parity
from fmeaa.sync.plan import Change, ContentPlan
from fmeaa.sync.snapshot import Kind, Snapshot

PruneOpt = Annotated[bool, typer.Option(
    help="Also delete what nodes hold beyond the source (in the folders it manages).")]


class Job:
    """Validated inputs of one content command; nothing here has touched a node yet."""

    def __init__(self, source: str, inventory: Path | None, cluster: str | None,
                 region: str | None, secret_id: str | None, only: list[str] | None,
                 allow_http: bool, engine_settings: EngineSettings, policy: str = "one") -> None:
        whole, chosen = resolve_inventory(inventory, cluster, region, allow_http, only)
        self.targets = Targets(whole, chosen)
        self.region = region or whole.aws_region
        self.source = resolve_source(source, whole)
        self.credentials: CredentialSource = resolve_credentials(whole, secret_id)
        self.settings = engine_settings
        if policy not in ("one", "all"):
            raise ContentError(f"--schedule-policy must be 'one' or 'all' (got {policy!r})")
        self.policy = policy
        self.desired: Snapshot | None = None
        if isinstance(self.source, DirectorySource):
            self.desired = self._directory_snapshot(self.source)

    def _directory_snapshot(self, source: DirectorySource) -> Snapshot:
        names = {n.name for n in self.targets.whole.nodes}
        for s in source.content.manifest.schedules:
            if s.owner and s.owner not in names:
                raise ContentError(f"schedules[{s.key}]: owner {s.owner!r} is not a node of the "
                                   f"inventory ({', '.join(sorted(names))})")
        cache = local_digest_cache(self.settings)
        snapshot = snapshot_of_directory(source.content, cache,
                                         secret_resolver(self.region))
        cache.save()
        return snapshot

    def engine(self, observer: Any = None) -> SyncEngine:
        return SyncEngine(self.targets.whole, self.credentials, self.settings, observer)

    def load_desired(self, engine: SyncEngine) -> Snapshot:
        if isinstance(self.source, NodeSource):
            return engine.read_reference(self.source, self.policy)
        assert self.desired is not None
        return self.desired

    def target_names(self, include_source: bool = False) -> list[str]:
        names = self.targets.names
        if isinstance(self.source, NodeSource) and not include_source:
            names = [n for n in names if n != self.source.node]
        return names


def _job(source: str, inventory: Path | None, cluster: str | None, region: str | None,
         secret_id: str | None, only: list[str] | None, allow_http: bool, parallel: int,
         timeout: float, cache_dir: Path | None, deep: bool = False, policy: str = "one") -> Job:
    return Job(source, inventory, cluster, region, secret_id, only, allow_http,
               settings(parallel, timeout, cache_dir, deep), policy)


# --- rendering ------------------------------------------------------------------------------------
def plan_document(plan: ContentPlan, engine: SyncEngine, targets: list[str], source: str) -> dict:
    nodes: dict[str, Any] = {}
    for name in targets:
        status = engine.status[name]
        node_plan = plan.nodes.get(name)
        nodes[name] = {
            "url": status.url,
            "status": "ok" if node_plan is not None else "unreachable",
            "error": status.error,
            "summary": {c.value: node_plan.count(c) for c in Change} if node_plan else None,
            "bytesToSend": node_plan.bytes_to_send if node_plan else None,
            "actions": [{"change": a.change.value, "kind": a.kind.value, "key": a.key,
                         "detail": a.detail or None,
                         "digest": a.desired.short if a.desired else None,
                         "current": a.actual.short if a.actual else None}
                        for a in node_plan.actions] if node_plan else [],
        }
    return {"source": source, "prune": plan.prune, "changes": plan.has_changes, "nodes": nodes}


_STYLE = {"create": "green", "update": "yellow", "delete": "red", "extra": "magenta",
          "unchanged": "dim"}


def print_plan(document: dict, show_unchanged: bool) -> None:
    table = Table(title=f"plan: {document['source']} → nodes" + (" (prune)" if document["prune"]
                                                                  else ""))
    for column in ("node", "change", "kind", "key", "digest (now → wanted)"):
        table.add_column(column)
    for name, node in document["nodes"].items():
        if node["status"] != "ok":
            table.add_row(name, "[red]unreachable[/]", "", "", node["error"] or "")
            continue
        shown = [a for a in node["actions"] if show_unchanged or a["change"] != "unchanged"]
        for a in shown:
            detail = f" ({a['detail']})" if a["detail"] else ""
            digests = f"{a['current'] or '—'} → {a['digest'] or '—'}"
            table.add_row(name, f"[{_STYLE[a['change']]}]{a['change']}{detail}[/]", a["kind"],
                          a["key"], digests)
        summary = ", ".join(f"{v} {k}" for k, v in node["summary"].items() if v)
        table.add_row(name, "[bold]total[/]", "", summary, f"{node['bytesToSend']:,} bytes to send",
                      end_section=True)
    stdout.print(table)
    if any(a["change"] == "extra" for n in document["nodes"].values() for a in n["actions"]):
        stdout.print("[magenta]extra[/]: on the node but not in the source; `sync --prune` "
                     "deletes it.")


def results_document(plan: ContentPlan, results: dict[str, NodeResult], engine: SyncEngine,
                     targets: list[str], converged: dict[str, bool]) -> dict:
    nodes = {}
    for name in targets:
        node_plan = plan.nodes.get(name)
        result = results.get(name)
        if node_plan is None or result is None:
            nodes[name] = {"status": "unreachable", "error": engine.status[name].error,
                           "applied": 0, "bytesSent": 0, "failures": [], "inSync": False}
            continue
        nodes[name] = {
            "status": result.status, "error": None, "applied": result.applied,
            "created": node_plan.count(Change.CREATE), "updated": node_plan.count(Change.UPDATE),
            "deleted": node_plan.count(Change.DELETE) if plan.prune else 0,
            "unchanged": node_plan.count(Change.UNCHANGED),
            "bytesSent": result.bytes_sent,
            "failures": [{"action": a, "error": e} for a, e in result.failures],
            "inSync": converged.get(name, False),
        }
    return {"ok": all(n["status"] == "ok" and n["inSync"] for n in nodes.values()), "nodes": nodes}


def print_results(document: dict) -> None:
    table = Table(title="sync result per node")
    for column in ("node", "status", "created", "updated", "deleted", "unchanged", "bytes sent",
                   "in sync", "problem"):
        table.add_column(column)
    for name, n in document["nodes"].items():
        style = "green" if n["status"] == "ok" else "red"
        problem = n["error"] or "; ".join(f"{f['action']}: {f['error']}" for f in n["failures"])
        table.add_row(name, f"[{style}]{n['status']}[/]", str(n.get("created", "")),
                      str(n.get("updated", "")), str(n.get("deleted", "")),
                      str(n.get("unchanged", "")), f"{n['bytesSent']:,}",
                      "yes" if n["inSync"] else "[red]no[/]", problem)
    stdout.print(table)


def parity_document(report: ParityReport, source: str) -> dict:
    return {
        "source": source, "inSync": report.in_sync, "drift": report.drift_count,
        "unreadable": report.unreadable, "nodes": report.nodes,
        "rows": [{"kind": r.kind.value, "key": r.key, "status": r.status, "digests": r.cells,
                  "expected": r.expected, "driftedNodes": r.drifted_nodes,
                  **({"enabledOn": r.enabled_on} if r.kind is Kind.SCHEDULE else {})}
                 for r in report.rows],
    }


def print_parity(document: dict, show_all: bool) -> None:
    nodes = document["nodes"]
    table = Table(title=f"parity against {document['source']}")
    for column in ("kind", "key", *nodes, "status"):
        table.add_column(column)
    for row in document["rows"]:
        if not show_all and row["status"] == "in sync":
            continue
        cells = []
        for n in nodes:
            digest = row["digests"][n] or "—"
            good = row["digests"][n] == row["expected"][n] or row["status"] == "unmanaged"
            mark = "" if good else "[red]✗ [/]"
            if row["kind"] == "schedule" and row["digests"][n]:
                digest += " on" if n in row.get("enabledOn", []) else " off"
            cells.append(f"{mark}{digest}")
        style = {"in sync": "green", "drift": "red", "unmanaged": "dim"}[row["status"]]
        table.add_row(row["kind"], row["key"], *cells, f"[{style}]{row['status']}[/]")
    stdout.print(table)
    for name, why in document["unreadable"].items():
        stdout.print(f"[red]{name}: could not be read: {why}[/]")
    total = len(document["rows"])
    synced = sum(1 for r in document["rows"] if r["status"] == "in sync")
    verdict = "[green]in sync[/]" if document["inSync"] else f"[red]DRIFT in {document['drift']} entries[/]"
    stdout.print(f"{synced}/{total} entries in sync on {len(nodes)} node(s): {verdict}")
    owners = [r for r in document["rows"] if r["kind"] == "schedule"]
    for r in owners:
        where = ", ".join(r["enabledOn"]) or "no node"
        warn = " [red](fires more than once per trigger)[/]" if len(r["enabledOn"]) > 1 else ""
        stdout.print(f"schedule {r['key']}: enabled on {where}{warn}")


# --- commands -------------------------------------------------------------------------------------
def plan(
    source: SourceOpt,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, node: OnlyOpt = None, prune: PruneOpt = False,
    detailed_exitcode: Annotated[bool, typer.Option(
        help="Exit 0 when in sync, 2 when there are changes, 1 on error (Terraform style).")] = False,
    show_unchanged: Annotated[bool, typer.Option(help="List unchanged entries too.")] = False,
    schedule_policy: PolicyOpt = "one", parallel: ParallelOpt = 4, timeout: TimeoutOpt = 30.0,
    allow_http: AllowHttpOpt = False, cache_dir: CacheDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show, per node and entry, what `sync` would create, update or delete (by content digest).
    Changes nothing."""
    with reported_errors():
        job = _job(source, inventory, cluster, region, secret_id, node, allow_http, parallel,
                   timeout, cache_dir, policy=schedule_policy)
        document = run_plan(job, prune, show_progress=not as_json)
    emit_json(document) if as_json else print_plan(document, show_unchanged)
    if any(n["status"] != "ok" for n in document["nodes"].values()):
        raise typer.Exit(EXIT_FAILED)
    if detailed_exitcode and document["changes"]:
        raise typer.Exit(EXIT_CHANGES)
    raise typer.Exit(EXIT_OK)


def run_plan(job: Job, prune: bool, show_progress: bool = False) -> dict:
    with ProgressObserver(show_progress) as progress, job.engine(progress) as engine:
        desired = job.load_desired(engine)
        targets = job.target_names()
        engine.connect(targets)
        content_plan = engine.plan(desired, targets, prune)
        return plan_document(content_plan, engine, targets, job.source.label)


def sync(
    source: SourceOpt,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, node: OnlyOpt = None, prune: PruneOpt = False,
    schedule_policy: PolicyOpt = "one", parallel: ParallelOpt = 4, timeout: TimeoutOpt = 30.0,
    allow_http: AllowHttpOpt = False, cache_dir: CacheDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Make every node hold the source's content: each node directly, in parallel (bounded),
    retrying transient errors. A node that fails never stops the others; re-run to converge.
    Exit 1 if any node failed or is not in sync afterwards."""
    started = time.perf_counter()
    with reported_errors():
        job = _job(source, inventory, cluster, region, secret_id, node, allow_http, parallel,
                   timeout, cache_dir, policy=schedule_policy)
        document = run_sync(job, prune, show_progress=not as_json)
    # From validating the input to the last check; excludes only interpreter start-up.
    document["seconds"] = round(time.perf_counter() - started, 3)
    emit_json(document) if as_json else print_results(document)
    raise typer.Exit(EXIT_OK if document["ok"] else EXIT_FAILED)


def run_sync(job: Job, prune: bool, show_progress: bool = False) -> dict:
    """Plan, apply, then re-plan the changed nodes to prove they converged."""
    with ProgressObserver(show_progress) as progress, job.engine(progress) as engine, \
            SyncLock(engine.lock_path):
        desired = job.load_desired(engine)
        targets = job.target_names()
        engine.connect(targets)
        content_plan = engine.plan(desired, targets, prune)
        results = engine.apply(content_plan, job.source)
        changed = [n for n, p in content_plan.nodes.items() if p.changes]
        converged = {n: True for n, p in content_plan.nodes.items() if not p.changes}
        if changed:
            again = engine.plan(desired, changed, prune)
            converged.update({n: not p.changes for n, p in again.nodes.items()})
        return results_document(content_plan, results, engine, targets, converged)


def verify(
    source: SourceOpt,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, node: OnlyOpt = None,
    deep: Annotated[bool, typer.Option(
        help="Re-read every file's bytes instead of trusting remembered digests.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="List in-sync entries too.")] = False,
    schedule_policy: PolicyOpt = "one", parallel: ParallelOpt = 4, timeout: TimeoutOpt = 30.0,
    allow_http: AllowHttpOpt = False, cache_dir: CacheDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Parity matrix: every entry × every node, by digest, against the source. Exit 1 on any
    drift or unreadable node (for CI or cron)."""
    with reported_errors():
        job = _job(source, inventory, cluster, region, secret_id, node, allow_http, parallel,
                   timeout, cache_dir, deep=deep, policy=schedule_policy)
        document = run_verify(job, show_progress=not as_json)
    emit_json(document) if as_json else print_parity(document, show_all)
    raise typer.Exit(EXIT_OK if document["inSync"] else EXIT_FAILED)


def run_verify(job: Job, show_progress: bool = False) -> dict:
    with ProgressObserver(show_progress) as progress, job.engine(progress) as engine:
        desired = job.load_desired(engine)
        names = job.target_names(include_source=True)
        engine.connect(names)
        actual = engine.read_nodes(names, desired.resource_roots)
        unreadable = {n: engine.status[n].error or "unknown" for n in names if n not in actual}
        report = parity(desired, actual, names, job.targets.whole.nodes[0].name, unreadable)
    return parity_document(report, job.source.label)


