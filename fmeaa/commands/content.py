"""`fmeaa plan`, `fmeaa sync` and `fmeaa verify`: parse options, call one operation of
`fmeaa.app`, render its result (a table, or `--json`) and exit with the documented code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fmeaa import app
from fmeaa.commands.common import (
    EXIT_CHANGES,
    EXIT_FAILED,
    EXIT_OK,
    AllowHttpOpt,
    CacheDirOpt,
    ClusterOpt,
    ConcurrencyOpt,
    DeepOpt,
    FailOnOpt,
    InventoryOpt,
    JsonOpt,
    KeepHistoryOpt,
    NoHistoryOpt,
    OnlyOpt,
    ParallelOpt,
    PolicyOpt,
    ProgressObserver,
    RegionOpt,
    SecretOpt,
    SourceOpt,
    SourceSecretOpt,
    TimeoutOpt,
    cause_exit_code,
    cluster_ref,
    emit_json,
    history_policy,
    parse_fail_on,
    reported_errors,
    settings,
    stdout,
)
from fmeaa.sync.engine import DEFAULT_NODE_CONCURRENCY
from fmeaa.sync.manifest import SchedulePolicy

if TYPE_CHECKING:
    from fmeaa.app.results import NodeSyncReport, ParityResult, PlanResult, RolloutResult, SyncResult

PruneOpt = Annotated[bool, typer.Option(
    help="Also delete what nodes hold beyond the source, only inside what it manages (the "
         "repositories and resource folders it lists; see README 'What a source manages').")]


def _request(source: str, inventory: Path | None, cluster: str | None, region: str | None,
             secret_id: str | None, only: list[str] | None, allow_http: bool, parallel: int,
             timeout: float, cache_dir: Path | None, deep: bool = False,
             policy: SchedulePolicy = SchedulePolicy.ONE,
             source_secret_id: str | None = None,
             node_concurrency: int | None = None) -> app.ContentRequest:
    return app.ContentRequest(source, cluster_ref(inventory, cluster, region, secret_id, only,
                                                  allow_http),
                              settings(parallel, timeout, cache_dir, deep, node_concurrency),
                              policy.value, source_secret_id)


# --- rendering ------------------------------------------------------------------------------------
_STYLE = {"create": "green", "update": "yellow", "delete": "red", "extra": "magenta",
          "unchanged": "dim", "ignored": "dim"}
_CAUSE_STYLE = {"pending": "yellow", "drift": "bold red", "extra": "magenta"}
CAUSES_EPILOG = ("Causes: pending = the source changed since the last sync (or fmeaa never "
                 "wrote it); drift = the node changed since fmeaa wrote it (its ledger says so); "
                 "extra = on the node, never written by fmeaa. Exit codes: 0 ok · 1 error or "
                 "unreachable node · 2 changes (plan --detailed-exitcode) or usage error · "
                 "with --fail-on: 3 drift, 4 pending, 5 extra (the most serious found).")


def print_plan(result: PlanResult, show_unchanged: bool) -> None:
    from rich.markup import escape

    from fmeaa.commands.tables import Column, FittedTable

    table = FittedTable(f"plan: {result.source} → nodes" + (" (prune)" if result.prune else ""),
                        [Column("node", key=True), Column("change"), Column("kind", drop=1),
                         Column("key", key=True), Column("digest (now → wanted)", drop=2)])
    for name, node in result.nodes.items():
        if node.status != "ok":
            table.add_row(name, f"[red]{node.status}[/]", "", "", "", end_section=True)
            continue
        shown = [a for a in node.actions if show_unchanged or a.change != "unchanged"]
        for a in shown:
            detail = f" ({a.detail})" if a.detail else ""
            cause = f" [{_CAUSE_STYLE[a.cause]}]{a.cause}[/]" if a.cause and a.cause != a.change \
                else ""
            digests = f"{a.current or '—'} → {a.digest or '—'}"
            table.add_row(name, f"[{_STYLE.get(a.change, 'cyan')}]{a.change}{detail}[/]{cause}",
                          a.kind, escape(a.key), digests)
        summary = ", ".join(f"{v} {k}" for k, v in (node.summary or {}).items() if v)
        table.add_row(name, "[bold]total[/]", "",
                      f"{summary or 'nothing'}; {node.bytes_to_send or 0:,} bytes to send", "",
                      end_section=True)
    stdout.print(table.build(stdout.width))
    for name, node in result.nodes.items():
        if node.status != "ok":
            stdout.print(f"[red]{name}: {node.status}: {escape(node.error or 'unknown')}[/]")
    if any(a.change == "extra" for n in result.nodes.values() for a in n.actions):
        stdout.print("[magenta]extra[/]: on the node but not in the source; `sync --prune` "
                     "deletes it.")
    if result.found("drift"):
        stdout.print("[bold red]drift[/]: the node no longer holds what fmeaa wrote there "
                     "(changed by hand?); `sync` writes the source's version back.")


def _changes(n: NodeSyncReport) -> str:
    """What the sync did on the node. `created`/`updated`/`deleted` are what was planned: on a
    node that failed, only `applied` of them were done."""
    counts = [(n.created, "created"), (n.updated, "updated"), (n.deleted, "deleted")]
    if n.status != "ok":
        planned = sum(v or 0 for v, _ in counts)
        return f"{n.applied} of {planned} change(s) applied" if planned else ""
    return ", ".join(f"{v} {k}" for v, k in counts if v) or "none"


def print_results(result: SyncResult) -> None:
    from rich.markup import escape

    from fmeaa.commands.tables import Column, FittedTable

    table = FittedTable("sync result per node", [
        Column("node", key=True), Column("status"), Column("changes"),
        Column("bytes sent", justify="right", drop=1),
        Column("unchanged", justify="right", drop=2), Column("in sync"),
        Column("problem")])
    for name, n in result.nodes.items():
        style = "green" if n.status == "ok" else "red"
        problem = n.error or "; ".join(f"{f.action}: {f.error}" for f in n.failures)
        table.add_row(name, f"[{style}]{n.status}[/]", _changes(n), f"{n.bytes_sent:,}",
                      "" if n.unchanged is None else str(n.unchanged),
                      "yes" if n.in_sync else "[red]no[/]", escape(problem))
    stdout.print(table.build(stdout.width))
    if result.sync_id:
        stdout.print(f"recorded as {result.sync_id} on the changed nodes: `fmeaa rollback "
                     f"--before {result.sync_id}` puts them back", highlight=False)


def print_parity(result: ParityResult, show_all: bool) -> None:
    from rich.markup import escape

    from fmeaa.commands.tables import Column, FittedTable

    nodes = result.nodes
    # Narrow terminals lose the digest columns first; the status names the drifted nodes.
    table = FittedTable(f"parity against {result.source}",
                        [Column("kind", drop=1), Column("key", key=True),
                         *(Column(n, drop=2) for n in nodes), Column("status")])
    for row in result.rows:
        if not show_all and row.status == "in sync":
            continue
        cells = []
        for n in nodes:
            digest = row.digests[n] or "—"
            good = row.digests[n] == row.expected[n] \
                or row.status in ("extra", "unmanaged", "ignored")
            mark = "" if good else "[red]✗ [/]"
            if row.kind == "schedule" and row.digests[n]:
                digest += " on" if n in (row.enabled_on or []) else " off"
            cells.append(f"{mark}{digest}")
        style = {"in sync": "green", "drift": "red", "pending": "yellow", "extra": "magenta",
                 "unmanaged": "dim", "ignored": "dim"}[row.status]
        where = f" on {', '.join(row.drifted_nodes)}" if row.status in ("drift", "pending") \
            and row.drifted_nodes else ""
        table.add_row(row.kind, escape(row.key), *cells, f"[{style}]{row.status}[/]{where}")
    stdout.print(table.build(stdout.width))
    statuses = {r.status for r in result.rows}
    if "extra" in statuses:
        stdout.print("[magenta]extra[/]: inside what the source manages but not in it, the same "
                     "on every node; `sync --prune` deletes it.")
    if "pending" in statuses:
        stdout.print("[yellow]pending[/]: the source changed since fmeaa last wrote it; "
                     "`sync` applies it.")
    if "drift" in statuses:
        stdout.print("[red]drift[/]: a node changed since fmeaa wrote it (or nodes disagree "
                     "about an entry outside the source); `sync` restores the source's version.")
    if "unmanaged" in statuses:
        stdout.print("[dim]unmanaged[/]: outside what the source manages, the same on every "
                     "node; fmeaa never changes it.")
    for name, why in result.unreadable.items():
        stdout.print(f"[red]{name}: could not be read: {escape(why)}[/]")
    synced = sum(1 for r in result.rows if r.status == "in sync")
    found = ", ".join(f"{n} {c}" for c, n in (("drift", result.drift),
                                               ("pending", result.pending)) if n)
    verdict = "[green]in sync[/]" if result.in_sync else f"[red]NOT IN SYNC: {found or 'nodes differ'}[/]"
    stdout.print(f"{synced}/{len(result.rows)} entries in sync on {len(nodes)} node(s): {verdict}")
    for r in result.rows:
        if r.kind != "schedule":
            continue
        enabled = r.enabled_on or []
        warn = " [red](fires more than once per trigger)[/]" if len(enabled) > 1 else ""
        stdout.print(f"schedule {escape(r.key)}: enabled on {', '.join(enabled) or 'no node'}{warn}")


# --- commands -------------------------------------------------------------------------------------
def plan(
    source: SourceOpt,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    source_secret_id: SourceSecretOpt = None,
    secret_id: SecretOpt = None, node: OnlyOpt = None, prune: PruneOpt = False,
    detailed_exitcode: Annotated[bool, typer.Option(
        help="Exit 0 when in sync, 2 when there are changes, 1 on error (Terraform style).")] = False,
    fail_on: FailOnOpt = None, deep: DeepOpt = False,
    show_unchanged: Annotated[bool, typer.Option(help="List unchanged entries too.")] = False,
    schedule_policy: PolicyOpt = SchedulePolicy.ONE, parallel: ParallelOpt = 4, timeout: TimeoutOpt = 30.0,
    node_concurrency: ConcurrencyOpt = DEFAULT_NODE_CONCURRENCY,
    allow_http: AllowHttpOpt = False, cache_dir: CacheDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show, per node and entry, what `sync` would create, update or delete (by content digest),
    and why: pending, drift or extra. Changes nothing."""
    causes = parse_fail_on(fail_on)
    with reported_errors(), ProgressObserver(not as_json) as progress:
        result = app.plan(_request(source, inventory, cluster, region, secret_id, node, allow_http,
                                   parallel, timeout, cache_dir, deep, schedule_policy,
                                   source_secret_id, node_concurrency), prune, progress)
    emit_json(result.to_json()) if as_json else print_plan(result, show_unchanged)
    if not result.all_reachable:
        raise typer.Exit(EXIT_FAILED)
    if causes:
        raise typer.Exit(cause_exit_code(result.found, causes))
    if detailed_exitcode and result.changes:
        raise typer.Exit(EXIT_CHANGES)
    raise typer.Exit(EXIT_OK)


def print_rollout(result: RolloutResult) -> None:
    from rich.markup import escape

    from fmeaa.commands.tables import Column, FittedTable

    table = FittedTable(f"rollout: {result.source} → nodes, wave by wave", [
        Column("wave", key=True), Column("nodes"), Column("sync"),
        Column("smoke job", drop=1), Column("status")])
    for w in result.waves:
        sync = ""
        if w.sync is not None:
            sync = "; ".join(f"{n}: {_changes(r) or r.status}" + ("" if r.in_sync else " (not in sync)")
                             for n, r in w.sync.nodes.items())
        smoke = ", ".join(f"{n}: {why}" for n, why in w.smoke.items())
        style = {"done": "green", "failed": "red", "skipped": "dim"}.get(w.status, "yellow")
        table.add_row(str(w.number), ", ".join(w.nodes), escape(sync), escape(smoke),
                      f"[{style}]{w.status}[/]")
    stdout.print(table.build(stdout.width))
    if result.sync_id:
        stdout.print(f"recorded as {result.sync_id} on the changed nodes", highlight=False)
    if result.stopped_at is not None:
        failed = result.waves[result.stopped_at - 1]
        stdout.print(f"[red]the rollout stopped at wave {failed.number}: "
                     f"{escape(failed.problem or '')}[/]")
        stdout.print("what to do next:")
        for step in result.next_steps:
            stdout.print(f"  - {escape(step)}", highlight=False)


def sync(
    source: SourceOpt,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    source_secret_id: SourceSecretOpt = None,
    secret_id: SecretOpt = None, node: OnlyOpt = None, prune: PruneOpt = False,
    canary: Annotated[str | None, typer.Option(
        help="Roll out to this node first, gated (smoke job, bake time), then to the rest.",
        rich_help_panel="Canary rollout")] = None,
    waves: Annotated[str | None, typer.Option(
        help="Roll out in waves: how many nodes hold the new content after each, as counts or "
             "percentages, e.g. 1,50%,100% (the canary, if given, is in the first).",
        rich_help_panel="Canary rollout")] = None,
    drain_canary: Annotated[bool, typer.Option(
        help="Take the first wave's node out of the load balancer while it changes.",
        rich_help_panel="Canary rollout")] = False,
    smoke: Annotated[str | None, typer.Option(
        help="REPOSITORY/WORKSPACE.fmw run on each node of a wave after its sync; the rollout "
             "goes on only if the job ends in SUCCESS.", rich_help_panel="Canary rollout")] = None,
    smoke_param: Annotated[list[str] | None, typer.Option(
        help="A published parameter of the smoke job, NAME=VALUE (repeatable).",
        rich_help_panel="Canary rollout")] = None,
    smoke_timeout: Annotated[float, typer.Option(
        min=1, help="Seconds the smoke job may take.", rich_help_panel="Canary rollout")] = 600,
    bake: Annotated[float, typer.Option(
        min=0, help="Seconds each wave serves (then its health is checked) before the next.",
        rich_help_panel="Canary rollout")] = 0,
    from_wave: Annotated[int, typer.Option(
        min=1, help="Resume a stopped rollout at this wave (the waves before it are skipped).",
        rich_help_panel="Canary rollout")] = 1,
    wait: Annotated[float, typer.Option(
        "--wait", min=1, help="Seconds to wait for the load balancer (--drain-canary).",
        rich_help_panel="Canary rollout")] = 600,
    poll: Annotated[float, typer.Option(min=0.05, hidden=True)] = 5.0,
    deep: DeepOpt = False,
    schedule_policy: PolicyOpt = SchedulePolicy.ONE, parallel: ParallelOpt = 4, timeout: TimeoutOpt = 30.0,
    node_concurrency: ConcurrencyOpt = DEFAULT_NODE_CONCURRENCY,
    allow_http: AllowHttpOpt = False, cache_dir: CacheDirOpt = None,
    no_history: NoHistoryOpt = False, keep_history: KeepHistoryOpt = 20, as_json: JsonOpt = False,
) -> None:
    """Make every node hold the source's content: each node directly, in parallel (bounded),
    retrying transient errors. Before a node changes, what it replaces is recorded on it
    (`fmeaa history`, `fmeaa rollback`). A node that fails never stops the others; re-run to
    converge. Afterwards each node's ledger records what fmeaa wrote there. With
    --canary/--waves, wave by wave, each gated, stopping at the first failure.
    Exit 1 if any node failed or is not in sync afterwards (or the rollout stopped)."""
    request = _request(source, inventory, cluster, region, secret_id, node, allow_http,
                       parallel, timeout, cache_dir, deep, schedule_policy, source_secret_id,
                       node_concurrency)
    history = history_policy(no_history, keep_history)
    staged = canary is not None or waves is not None
    with reported_errors(), ProgressObserver(not as_json) as progress:
        lone = [o for o, given in (("--drain-canary", drain_canary), ("--smoke", smoke),
                                   ("--smoke-param", smoke_param), ("--bake", bake),
                                   ("--from-wave", from_wave != 1)) if given]
        if lone and not staged:
            from fmeaa.cluster.node_lifecycle import LifecycleError
            raise LifecycleError(f"{', '.join(lone)}: only with --canary NODE or --waves …")
        if staged:
            from fmeaa.app.smoke import Smoke
            plan = app.Rollout(
                canary=canary, waves=tuple((waves or "").split(",")) if waves else (),
                drain_canary=drain_canary,
                smoke=Smoke.parse(smoke, smoke_param or [], smoke_timeout) if smoke else None,
                bake_s=bake, from_wave=from_wave)
            staged_result = app.rollout(request, plan, prune, history=history,
                                        timing=app.Timing(wait, poll, timeout),
                                        observer=progress)
        else:
            result = app.sync(request, prune, progress, history)
    if staged:
        emit_json(staged_result.to_json()) if as_json else print_rollout(staged_result)
        raise typer.Exit(EXIT_OK if staged_result.ok else EXIT_FAILED)
    emit_json(result.to_json()) if as_json else print_results(result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


def verify(
    source: SourceOpt,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    source_secret_id: SourceSecretOpt = None,
    secret_id: SecretOpt = None, node: OnlyOpt = None,
    deep: DeepOpt = False, fail_on: FailOnOpt = None,
    show_all: Annotated[bool, typer.Option("--all", help="List in-sync entries too.")] = False,
    schedule_policy: PolicyOpt = SchedulePolicy.ONE, parallel: ParallelOpt = 4, timeout: TimeoutOpt = 30.0,
    node_concurrency: ConcurrencyOpt = DEFAULT_NODE_CONCURRENCY,
    allow_http: AllowHttpOpt = False, cache_dir: CacheDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Parity matrix: every entry × every node, by digest, against the source, with the cause
    of each difference (pending, drift, extra). Exit 1 when not in sync or a node is
    unreadable; with --fail-on, the code of the most serious cause chosen (for CI or cron)."""
    causes = parse_fail_on(fail_on)
    with reported_errors(), ProgressObserver(not as_json) as progress:
        result = app.verify(_request(source, inventory, cluster, region, secret_id, node,
                                     allow_http, parallel, timeout, cache_dir, deep,
                                     schedule_policy, source_secret_id, node_concurrency),
                          progress)
    emit_json(result.to_json()) if as_json else print_parity(result, show_all)
    if result.unreadable:
        raise typer.Exit(EXIT_FAILED)
    if causes:
        raise typer.Exit(cause_exit_code(result.found, causes))
    raise typer.Exit(EXIT_OK if result.in_sync else EXIT_FAILED)
