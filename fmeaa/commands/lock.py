"""`fmeaa unlock`: break the cluster lock a dead run left on the nodes (see
`fmeaa/app/locking.py`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from fmeaa import app
from fmeaa.app.results import UnlockResult
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
    stdout,
)


def print_unlock(result: UnlockResult) -> None:
    if not result.holders:
        stdout.print("no cluster lock to break")
    else:
        stdout.print(f"broke the cluster lock of {escape(result.holders)} (removed from "
                     f"{', '.join(result.removed_from) or 'no node'})")
    for node, why in result.failed.items():
        stdout.print(f"[red]{node}[/]: not checked ({escape(why)})")


def unlock_command(
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None,
    force: Annotated[bool, typer.Option(
        help="Break the lock even if it is younger than an hour (its run may still be going: "
             "only when you know it is dead).")] = False,
    timeout: TimeoutOpt = 10.0, allow_http: AllowHttpOpt = False, as_json: JsonOpt = False,
) -> None:
    """Break the cluster lock left by a run that died (killed, or its machine lost): removes the
    lock file from every node. A lock younger than an hour is refused without --force; a lock
    whose process is gone from this host is broken anyway. Exit 1 if a node could not be
    checked (re-run when it is back)."""
    with reported_errors():
        result = app.unlock(cluster_ref(inventory, cluster, region, secret_id,
                                        allow_http=allow_http), force=force, timeout_s=timeout)
    emit_json(result.to_json()) if as_json else print_unlock(result)
    raise typer.Exit(EXIT_FAILED if result.failed else EXIT_OK)
