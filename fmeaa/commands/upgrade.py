"""`fmeaa upgrade`: a new FME image or instance type on every node without an outage — options
in, `fmeaa.app.upgrade` (see `fmeaa/app/upgrade.py`), its steps out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmeaa import app
from fmeaa.app.results import UpgradeResult
from fmeaa.app.stack_runner import StackError
from fmeaa.app.upgrade import UpgradeError
from fmeaa.app.upgrade_plan import UpgradePlanError
from fmeaa.commands.common import (
    AllowHttpOpt,
    CacheDirOpt,
    JsonOpt,
    ProgressObserver,
    SecretOpt,
    TimeoutOpt,
    cluster_ref,
    emit_json,
    fail,
    reported_errors,
    stdout,
)
from fmeaa.commands.tables import Column, FittedTable


def print_upgrade(result: UpgradeResult) -> None:
    verb = "would run" if result.dry_run else "ran"
    table = FittedTable(f"upgrade ({result.strategy}) of stack {result.stack}: {verb} "
                        f"{len(result.steps)} step(s); at least {result.serving_at_least} "
                        "node(s) serve throughout", [
                            Column("step", key=True), Column("nodes"), Column("settings"),
                            Column("pulumi up"), Column("serving after", drop=1),
                            Column("logs archived", justify="right", drop=2)])
    for number, s in enumerate(result.steps, start=1):
        table.add_row(f"{number}. {s.action}", ", ".join(s.nodes), ", ".join(s.settings_changed),
                      "yes" if s.pulumi_up else "no",
                      "" if s.serving is None else ", ".join(s.serving),
                      "" if s.archived_log_files is None else f"{s.archived_log_files} file(s)")
    stdout.print(table.build(stdout.width))


def upgrade(
    stack: Annotated[str, typer.Option(help="The Pulumi stack name (its settings: Pulumi.STACK.yaml).")],
    inventory: Annotated[Path, typer.Option(
        "--inventory", "-i", envvar="FMEAA_INVENTORY",
        help="The node inventory (`pulumi stack output --json`); rewritten after every step.")],
    source: Annotated[str, typer.Option(
        "--source", "-s", envvar="FMEAA_SOURCE",
        help="Content new or rebuilt nodes are seeded with: a content directory or node:NAME.")],
    image: Annotated[str | None, typer.Option(help="The new AMI (ami-…).")] = None,
    instance_type: Annotated[str | None, typer.Option(help="The new EC2 instance type.")] = None,
    strategy: Annotated[str, typer.Option(
        help="surge: add a node at the new values, then remove an old one (N serve; FME "
             "upgrades). in-place: one node at a time keeps its share and database (N−1 "
             "serve; instance type, root volume, bootstrap).")] = "surge",
    batch: Annotated[int, typer.Option(min=1, help="surge: nodes added per round.")] = 1,
    node: Annotated[list[str] | None, typer.Option(
        "--node", "-n", help="in-place: only these nodes (repeatable).")] = None,
    archive_logs: Annotated[str | None, typer.Option(
        help="surge: copy each retired node's logs (FME_SHAREDRESOURCE_LOG) to s3://BUCKET/PREFIX "
             "first.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Show the steps; change nothing.")] = False,
    project_dir: Annotated[Path, typer.Option(help="Where Pulumi.yaml is.")] = Path(),
    secret_id: SecretOpt = None,
    wait: Annotated[float, typer.Option(
        "--wait", min=1, help="Seconds to wait for the load balancer and each node's health.")] = 1800,
    job_timeout: Annotated[float, typer.Option(
        min=1, help="Seconds to wait for a drained node's running jobs.")] = 3600,
    poll: Annotated[float, typer.Option(min=0.05, hidden=True)] = 5.0,
    timeout: TimeoutOpt = 30.0, allow_http: AllowHttpOpt = False,
    cache_dir: CacheDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Move every node to a new FME image (or instance type) without an outage, one `pulumi up`
    per step. Surge (default): a new node is created, seeded and serving before an old one is
    drained, its schedules moved, checked and removed. In-place: each node in turn is drained,
    rebuilt (`rollout`), seeded and registered again. A re-run continues an interrupted upgrade."""
    request = app.UpgradeRequest(
        stack=stack, project_dir=project_dir, source=source, image=image,
        instance_type=instance_type, strategy=strategy, batch=batch, nodes=tuple(node or ()),
        archive_logs=archive_logs, dry_run=dry_run, job_timeout_s=job_timeout,
        cluster=cluster_ref(inventory, None, None, secret_id, allow_http=allow_http))
    with reported_errors(), ProgressObserver(not as_json) as progress:
        try:
            result = app.upgrade(request, cache_dir=cache_dir,
                                 timing=app.Timing(wait, poll, timeout), observer=progress)
        except (UpgradeError, UpgradePlanError, StackError) as exc:
            raise fail(str(exc), kind=type(exc).__name__) from None
    emit_json(result.to_json()) if as_json else print_upgrade(result)
