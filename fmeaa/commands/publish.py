"""`fmeaa publish FILE --repo R`: one workspace to every node, directly, with its services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmeaa import app
from fmeaa.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    AllowHttpOpt,
    CacheDirOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    KeepHistoryOpt,
    NoHistoryOpt,
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
)
from fmeaa.commands.content import print_results
from fmeaa.sync.manifest import KNOWN_SERVICES


def publish(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="The workspace (or other item) file.")],
    repo: Annotated[str, typer.Option("--repo", "-r", help="Repository (created if missing).")],
    service: Annotated[list[str] | None, typer.Option(
        help=f"Service to register (repeatable): {', '.join(KNOWN_SERVICES)}.")] = None,
    name: Annotated[str | None, typer.Option(help="Item name; default: the file name.")] = None,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, node: OnlyOpt = None, parallel: ParallelOpt = 4,
    timeout: TimeoutOpt = 30.0, allow_http: AllowHttpOpt = False, cache_dir: CacheDirOpt = None,
    no_history: NoHistoryOpt = False, keep_history: KeepHistoryOpt = 20, as_json: JsonOpt = False,
) -> None:
    """Publish one file to a repository on EVERY node (never through the load balancer) and
    register its services; nodes that already hold the same bytes and services are skipped.
    Add the file to your content directory too: into a repository the content directory lists,
    the next `sync --prune` removes it (other repositories it leaves alone)."""
    request = app.PublishRequest(
        file=file, repo=repo, services=tuple(service or ["fmejobsubmitter"]), name=name,
        cluster=cluster_ref(inventory, cluster, region, secret_id, node, allow_http),
        settings=settings(parallel, timeout, cache_dir))
    with reported_errors(), ProgressObserver(not as_json) as progress:
        result = app.publish(request, progress, history_policy(no_history, keep_history))
    emit_json(result.to_json()) if as_json else print_results(result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)
