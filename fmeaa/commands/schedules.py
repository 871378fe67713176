"""`fmeaa schedules move`: options in, one operation of `fmeaa.app` (see
`fmeaa/app/schedules.py`), its result out."""

from __future__ import annotations

from typing import Annotated

import typer

from fmeaa.app.schedules import MoveRequest, move_schedules
from fmeaa.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    AllowHttpOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    RegionOpt,
    SecretOpt,
    TimeoutOpt,
    cluster_ref,
    emit_json,
    reported_errors,
)
from fmeaa.commands.lifecycle import print_moves

schedules_app = typer.Typer(
    name="schedules", no_args_is_help=True, rich_markup_mode="markdown",
    help="Where `one`-policy schedules run (`fmeaa verify` shows where each is enabled).")


@schedules_app.command("move")
def move_command(
    from_node: Annotated[str | None, typer.Option(
        "--from", help="Move the `one` schedules this node runs.")] = None,
    to_node: Annotated[str | None, typer.Option(
        "--to", help="Move them to this node (default: the next healthy node in the load "
                     "balancer after their owner, in inventory order, wrapping).")] = None,
    schedule: Annotated[list[str] | None, typer.Option(
        "--schedule", help="Only this schedule, CATEGORY/NAME (repeatable).")] = None,
    source: Annotated[str | None, typer.Option(
        "--source", "-s", help="Content directory: needed only when an owner cannot be read "
                               "(its manifest says which schedules that node runs).")] = None,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, timeout: TimeoutOpt = 30.0, allow_http: AllowHttpOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Move `one`-policy schedules to another node: disabled on their owner first, then enabled
    on the new one (never on two at once), and recorded on the nodes so that later syncs keep
    them there. Without --from/--to: every schedule whose owner is unreachable, unhealthy or
    out of the load balancer. Exit 1 if any could not be moved."""
    with reported_errors():
        result = move_schedules(MoveRequest(
            cluster_ref(inventory, cluster, region, secret_id, allow_http=allow_http),
            from_node=from_node, to_node=to_node, schedules=tuple(schedule or ()),
            source=source, timeout_s=timeout))
    emit_json(result.to_json()) if as_json else print_moves(result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)
