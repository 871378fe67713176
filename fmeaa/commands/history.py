"""`fmeaa history` and `fmeaa rollback`: options in, one operation of `fmeaa.app` (see
`fmeaa/app/history.py`), its result out."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from fmeaa import app
from fmeaa.app.results import HistoryResult, RollbackResult
from fmeaa.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    AllowHttpOpt,
    CacheDirOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    KeepHistoryOpt,
    OnlyOpt,
    ParallelOpt,
    ProgressObserver,
    RegionOpt,
    SecretOpt,
    TimeoutOpt,
    cluster_ref,
    emit_json,
    history_policy,
    reported_errors,
    settings,
    stdout,
)
from fmeaa.commands.tables import Column, FittedTable

_STYLE = {"create": "green", "update": "yellow", "delete": "red", "unchanged": "dim"}


def print_history(result: HistoryResult) -> None:
    table = FittedTable("recorded runs per node (newest first)", [
        Column("node", key=True), Column("sync id", key=True), Column("when", drop=2),
        Column("who", drop=1), Column("run"), Column("changes"), Column("status")])
    for name, node in result.nodes.items():
        if node.status != "ok":
            table.add_row(name, "", "", "", "", f"[red]{escape(node.error or '')}[/]",
                          f"[red]{node.status}[/]", end_section=True)
            continue
        if not node.syncs:
            table.add_row(name, "—", "", "", "", "nothing recorded", "", end_section=True)
        for i, s in enumerate(node.syncs):
            counts = ", ".join(f"{v} {k}" for k, v in (("created", s.created),
                                                      ("updated", s.updated),
                                                      ("deleted", s.deleted)) if v)
            status = {"ok": "[green]ok[/]", "failed": "[red]failed[/]"}.get(
                s.status, "[yellow]unfinished[/]")
            table.add_row(name, s.id, s.at, escape(s.by), s.operation, counts or "none", status,
                          end_section=i == len(node.syncs) - 1)
    stdout.print(table.build(stdout.width))
    shown = [(name, s) for name, node in result.nodes.items() for s in node.syncs
             if s.changes is not None]
    if shown:
        changes = FittedTable(f"what {shown[0][1].id} changed", [
            Column("node", key=True), Column("change"), Column("kind", drop=1),
            Column("key", key=True)])
        for name, s in shown:
            for i, c in enumerate(s.changes or []):
                changes.add_row(name, f"[{_STYLE.get(c.change, 'cyan')}]{c.change}[/]", c.kind,
                                escape(c.key), end_section=i == len(s.changes or []) - 1)
        stdout.print(changes.build(stdout.width))


def history_command(
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, node: OnlyOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="Runs shown per node.")] = 10,
    show: Annotated[str | None, typer.Option(
        help="One run (its sync id): every entry it created, updated or deleted.")] = None,
    parallel: ParallelOpt = 4, timeout: TimeoutOpt = 30.0, allow_http: AllowHttpOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The runs recorded on each node (sync, publish, rollback), newest first: when, who, what
    changed, and whether it finished. Exit 1 if a node's history could not be read."""
    with reported_errors():
        result = app.history(cluster_ref(inventory, cluster, region, secret_id, node, allow_http),
                             limit=limit, show=show,
                             settings=settings(parallel, timeout, None))
    emit_json(result.to_json()) if as_json else print_history(result)
    raise typer.Exit(EXIT_OK if result.all_read else EXIT_FAILED)


def print_rollback(result: RollbackResult) -> None:
    what = "right before" if result.mode == "before" else "right after"
    verb = "would put" if result.dry_run else "puts"
    table = FittedTable(f"rollback: {verb} each node back as it was {what} {result.target}", [
        Column("node", key=True), Column("change"), Column("kind", drop=1),
        Column("key", key=True), Column("result")])
    for name, n in result.nodes.items():
        if n.error:
            table.add_row(name, f"[red]{n.status}[/]", "", "", escape(n.error), end_section=True)
            continue
        rows = [a for a in n.actions if a.change != "unchanged"]
        failed = {f.action: f.error for f in n.failures}
        for a in rows:
            detail = f" ({a.detail})" if a.detail else ""
            error = next((e for act, e in failed.items() if act.endswith(f" {a.key}")), None)
            outcome = "" if result.dry_run else (f"[red]{escape(error)}[/]" if error else "done")
            table.add_row(name, f"[{_STYLE.get(a.change, 'cyan')}]{a.change}{detail}[/]",
                          a.kind, escape(a.key), outcome)
        for s in n.skipped:
            table.add_row(name, "[red]not restored[/]", s.kind, escape(s.key), escape(s.reason))
        summary = "nothing to undo" if not n.undoes else f"undoes {', '.join(n.undoes)}"
        state = "" if result.dry_run else ("[green]as it was[/]" if n.in_sync
                                           else "[red]NOT as it was[/]")
        table.add_row(name, "[bold]total[/]", "", summary, state, end_section=True)
    stdout.print(table.build(stdout.width))
    overwrites = "would overwrite" if result.dry_run else "overwrites"
    for name, n in result.nodes.items():
        for key in n.changed_since:
            stdout.print(f"[yellow]{name}: {escape(key)} was changed on the node after the run "
                         f"wrote it; the rollback {overwrites} that too[/]")
    if result.sync_id:
        stdout.print(f"this rollback is recorded as {result.sync_id}: `fmeaa rollback --before "
                     f"{result.sync_id}` undoes it", highlight=False)


def rollback_command(
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, node: OnlyOpt = None,
    before: Annotated[str | None, typer.Option(
        help="Put each node back as it was right before this sync: undoes it and every later "
             "run. Default: the newest recorded sync.")] = None,
    to: Annotated[str | None, typer.Option(
        help="Put each node back as it was right after this sync: undoes every later run.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show the plan only; change nothing (takes no lock).")] = False,
    parallel: ParallelOpt = 4, timeout: TimeoutOpt = 30.0, allow_http: AllowHttpOpt = False,
    cache_dir: CacheDirOpt = None, keep_history: KeepHistoryOpt = 20, as_json: JsonOpt = False,
) -> None:
    """Restore what recorded runs replaced, on each node from its own history: entries they
    created are deleted, entries they changed or deleted come back with their earlier bytes and
    definition. Prints the plan, then applies it under the cluster lock; re-run to finish a
    failed node. Exit 1 if a node failed, is not back as it was, or holds entries a rollback
    cannot restore (connections' credentials, project packages: listed)."""
    request = app.RollbackRequest(
        cluster=cluster_ref(inventory, cluster, region, secret_id, node, allow_http),
        before=before, to=to, dry_run=dry_run,
        settings=settings(parallel, timeout, cache_dir),
        history=history_policy(False, keep_history))
    with reported_errors(), ProgressObserver(not as_json) as progress:
        result = app.rollback(request, progress)
    emit_json(result.to_json()) if as_json else print_rollback(result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)
