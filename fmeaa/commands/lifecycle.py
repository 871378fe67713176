"""`fmeaa drain`, `undrain`, `scale-in-check`, `seed` and `rolling`: options in, one operation of
`fmeaa.app` (see `fmeaa/app/lifecycle.py`), its result out."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from fmeaa import app
from fmeaa.app.results import ScaleInResult, ScheduleMoveResult
from fmeaa.app.smoke import Smoke
from fmeaa.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    AllowHttpOpt,
    CacheDirOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    ProgressObserver,
    RegionOpt,
    SecretOpt,
    SourceOpt,
    SourceSecretOpt,
    TimeoutOpt,
    cluster_ref,
    emit_json,
    reported_errors,
    stdout,
)
from fmeaa.commands.tables import Column, FittedTable

NodeArg = Annotated[str, typer.Argument(help="The node's name in the inventory.")]
WaitOpt = Annotated[float, typer.Option(
    "--wait", min=1, help="Seconds to wait for the load balancer (draining, health).")]
PollOpt = Annotated[float, typer.Option(min=0.05, hidden=True, help="Seconds between polls.")]
LicenseModeOpt = Annotated[str | None, typer.Option(
    "--license-mode", help="How nodes are licensed: 'marketplace' (pay-as-you-go image) or 'byol' "
                           "(request each node's licence with the serial). Default: the "
                           "inventory's license.mode.")]
MoveSchedulesOpt = Annotated[bool, typer.Option(
    "--move-schedules", help="Move the `one`-policy schedules the node runs to the next healthy "
                             "node in the load balancer (inventory order, wrapping); recorded on "
                             "the nodes so later syncs keep them there.")]
SmokeOpt = Annotated[str | None, typer.Option(
    "--smoke", help="REPOSITORY/WORKSPACE.fmw run on each node before it is put back; it must "
                    "end in SUCCESS.")]
SmokeParamOpt = Annotated[list[str] | None, typer.Option(
    "--smoke-param", help="A published parameter of the smoke job, NAME=VALUE (repeatable).")]
SmokeTimeoutOpt = Annotated[float, typer.Option(
    "--smoke-timeout", min=1, help="Seconds the smoke job may take.")]
BakeOpt = Annotated[float, typer.Option(
    "--bake", min=0, help="Seconds to let a node serve (then check its health) before the "
                          "next one.")]
SerialOpt = Annotated[str | None, typer.Option(
    "--serial-secret-id", help="With --license-mode byol: the Secrets Manager secret holding "
                               "{\"serialNumber\": …}. Default: the inventory's "
                               "license.serialSecretId.")]


def drain_command(
    node: NodeArg, inventory: InventoryOpt = None, cluster: ClusterOpt = None,
    region: RegionOpt = None, secret_id: SecretOpt = None,
    wait_jobs: Annotated[bool, typer.Option(
        help="Also wait until the node's running FME jobs have finished.")] = False,
    job_timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for jobs.")] = 3600,
    wait: WaitOpt = 600, force: Annotated[bool, typer.Option(
        help="Drain even if another node is already out of service (capacity below N−1).")] = False,
    move_schedules: MoveSchedulesOpt = False,
    poll: PollOpt = 5.0, timeout: TimeoutOpt = 30.0, allow_http: AllowHttpOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Take a node out of the load balancer: deregister it from the target group(s), wait for
    the ALB to finish draining its connections, with --move-schedules hand the `one` schedules
    it runs to the next node, and with --wait-jobs wait for its running jobs. Refuses when
    another node is already out (the cluster would drop below N−1)."""
    with reported_errors(), ProgressObserver(not as_json) as progress:
        result = app.drain(cluster_ref(inventory, cluster, region, secret_id,
                                       allow_http=allow_http), node,
                           wait_jobs=wait_jobs, job_timeout_s=job_timeout, force=force,
                           move_schedules=move_schedules,
                           timing=app.Timing(wait, poll, timeout), observer=progress)
    if as_json:
        emit_json(result.to_json())
        return
    stdout.print(f"{node} is out of the load balancer" + (" and runs no jobs" if wait_jobs else ""))
    if result.schedules is not None:
        print_moves(result.schedules)


def undrain_command(
    node: NodeArg, inventory: InventoryOpt = None, cluster: ClusterOpt = None,
    region: RegionOpt = None, wait: WaitOpt = 600, poll: PollOpt = 5.0,
    allow_http: AllowHttpOpt = False, as_json: JsonOpt = False,
) -> None:
    """Put a node back: register it with the target group(s) and wait until it is healthy."""
    with reported_errors(), ProgressObserver(not as_json) as progress:
        result = app.undrain(cluster_ref(inventory, cluster, region, allow_http=allow_http), node,
                             timing=app.Timing(wait, poll), observer=progress)
    emit_json(result.to_json()) if as_json else stdout.print(
        f"{node} is back in the load balancer and healthy")


def print_moves(result: ScheduleMoveResult) -> None:
    for m in result.moved:
        stdout.print(f"schedule {escape(m.schedule)}: moved from {m.from_node} to {m.to_node}")
    if not result.moved and not result.problems:
        stdout.print("no `one` schedule to move")
    for w in result.warnings:
        stdout.print(f"[yellow]warning: {escape(w)}[/]")
    for p in result.problems:
        stdout.print(f"[red]not moved: {escape(p)}[/]")


def print_scale_in(result: ScaleInResult) -> None:
    table = FittedTable(f"can {result.node} be removed?",
                        [Column("check", key=True), Column("result"), Column("detail")])
    for c in result.checks:
        table.add_row(escape(c.check), "[green]ok[/]" if c.ok else "[red]NO[/]", escape(c.detail))
    stdout.print(table.build(stdout.width))
    stdout.print(f"{result.node} is [green]safe to remove[/]" if result.safe
                 else f"{result.node} is [red]NOT safe to remove[/]")


def scale_in_check(
    node: NodeArg, inventory: InventoryOpt = None, cluster: ClusterOpt = None,
    region: RegionOpt = None, secret_id: SecretOpt = None,
    move_schedules: MoveSchedulesOpt = False, timeout: TimeoutOpt = 30.0,
    allow_http: AllowHttpOpt = False, as_json: JsonOpt = False,
) -> None:
    """Is NODE safe to remove? Exit 0 only if it is out of the load balancer, runs no jobs and
    is not the only node running any schedule (the owner of `one`-policy schedules); with
    --move-schedules, those schedules are handed to the next node first."""
    with reported_errors():
        result = app.scale_in_check(cluster_ref(inventory, cluster, region, secret_id,
                                                allow_http=allow_http), node,
                                    move_schedules=move_schedules,
                                    timing=app.Timing(timeout_s=timeout))
    if as_json:
        emit_json(result.to_json())
    else:
        if result.schedules is not None:
            print_moves(result.schedules)
        print_scale_in(result)
    raise typer.Exit(EXIT_OK if result.safe else EXIT_FAILED)


def seed_command(
    node: NodeArg,
    source: SourceOpt,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, source_secret_id: SourceSecretOpt = None,
    register: Annotated[bool, typer.Option(
        help="Register the node with the load balancer once it is in sync and licensed.")] = True,
    license_mode: LicenseModeOpt = None, serial_secret_id: SerialOpt = None,
    wait: WaitOpt = 600, poll: PollOpt = 5.0, allow_http: AllowHttpOpt = False,
    cache_dir: CacheDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Seed a new node (manual seed mode): wait for its health check, request its licence
    (BYOL), sync it, prove parity, then — only if it reports itself licensed — register it with
    the load balancer. Until then users cannot reach it."""
    with reported_errors(), ProgressObserver(not as_json) as progress:
        result = app.seed(cluster_ref(inventory, cluster, region, secret_id,
                                      allow_http=allow_http), node, source,
                          register=register, license_mode=license_mode,
                          serial_secret_id=serial_secret_id, cache_dir=cache_dir,
                          timing=app.Timing(wait, poll), observer=progress,
                          source_secret_id=source_secret_id)
    emit_json(result.to_json()) if as_json else stdout.print(
        f"{node} seeded ({result.applied} change(s), {result.bytes_sent:,} bytes), in sync"
        + (", registered and healthy" if result.registered else ", not registered"))


def rolling(
    command: Annotated[str, typer.Option(
        "--exec", help="Shell command run (by /bin/sh) for each node while it is drained; the "
                       "node is in $FMEAA_NODE, $FMEAA_NODE_URL and $FMEAA_INSTANCE_ID, e.g. "
                       "'ssh \"$FMEAA_NODE\" sudo dnf -y upgrade && …'.")],
    source: Annotated[str, typer.Option("--source", "-s", envvar="FMEAA_SOURCE",
                                        help="Content to re-check (and re-seed) after each node.")],
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None,
    start_from: Annotated[str | None, typer.Option(
        "--from", help="Resume at this node (in inventory order), e.g. after a failure left it "
                       "drained; the nodes before it are skipped.")] = None,
    license_mode: LicenseModeOpt = None, serial_secret_id: SerialOpt = None,
    wait: WaitOpt = 600, job_timeout: Annotated[float, typer.Option(
        min=1, help="Seconds to wait for each node's running jobs.")] = 3600,
    move_schedules: MoveSchedulesOpt = False, smoke: SmokeOpt = None,
    smoke_param: SmokeParamOpt = None, smoke_timeout: SmokeTimeoutOpt = 600, bake: BakeOpt = 0,
    poll: PollOpt = 5.0, allow_http: AllowHttpOpt = False, cache_dir: CacheDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rolling maintenance, one node at a time: drain (and wait for jobs) → run --exec → seed
    (sync + parity) → check its licence → undrain and wait healthy → next node. Never more than
    one node out of service. At the first failure it stops: a node whose --exec failed goes back
    only if it is healthy, licensed and in sync; the error says which node is left drained, the
    command that puts it back, and how to resume (--from NODE)."""
    with reported_errors(), ProgressObserver(not as_json) as progress:
        gate = Smoke.parse(smoke, smoke_param or [], smoke_timeout) if smoke else None
        result = app.rolling(cluster_ref(inventory, cluster, region, secret_id,
                                         allow_http=allow_http), command, source,
                             start_from=start_from, license_mode=license_mode,
                             serial_secret_id=serial_secret_id, job_timeout_s=job_timeout,
                             cache_dir=cache_dir, move_schedules=move_schedules, smoke=gate,
                             bake_s=bake, timing=app.Timing(wait, poll), observer=progress)
    if as_json:
        emit_json(result.to_json())
        return
    for m in result.schedules:
        stdout.print(f"schedule {escape(m.schedule)}: {m.from_node} → {m.to_node}")
    stdout.print(f"rolling maintenance done on {len(result.nodes)} node(s): "
                 f"{', '.join(result.nodes)}")
