"""`fmeaa publish FILE --repo R`: one workspace to every node, directly, with its services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmeaa.cluster.sync_lock import SyncLock
from fmeaa.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    AllowHttpOpt,
    CacheDirOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    OnlyOpt,
    ParallelOpt,
    ProgressObserver,
    RegionOpt,
    SecretOpt,
    TimeoutOpt,
    emit_json,
    reported_errors,
    resolve_credentials,
    resolve_inventory,
    settings,
)
from fmeaa.commands.content import print_results, results_document
from fmeaa.sync.content_source import LocalFiles
from fmeaa.sync.digest_cache import file_sha256
from fmeaa.sync.engine import SyncEngine
from fmeaa.sync.manifest import KNOWN_SERVICES, ContentError
from fmeaa.sync.plan import Change, ContentPlan, NodePlan
from fmeaa.sync.snapshot import Kind, Snapshot, file_entry, metadata_entry


def _only(plan: ContentPlan, desired: Snapshot) -> ContentPlan:
    """Keep the plan to the published entries: publish never judges anything else."""
    return ContentPlan({n: NodePlan(n, [a for a in p.actions
                                        if (a.kind, a.key) in desired and a.change != Change.EXTRA])
                        for n, p in plan.nodes.items()}, prune=False)


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
    as_json: JsonOpt = False,
) -> None:
    """Publish one file to a repository on EVERY node (never through the load balancer) and
    register its services; nodes that already hold the same bytes and services are skipped.
    Add the file to your content directory too, or the next `sync --prune` removes it."""
    services = sorted(set(service or ["fmejobsubmitter"]))
    with reported_errors():
        unknown = sorted(set(services) - set(KNOWN_SERVICES))
        if unknown:
            raise ContentError(f"unknown service(s) {unknown}; known: {', '.join(KNOWN_SERVICES)}")
        whole, chosen = resolve_inventory(inventory, cluster, region, allow_http, node)
        credentials = resolve_credentials(whole, secret_id)
        item_name = name or file.name
        desired = Snapshot([
            metadata_entry(Kind.REPOSITORY, {"name": repo, "description": ""}),
            file_entry(Kind.ITEM, f"{repo}/{item_name}", file.stat().st_size, file_sha256(file),
                       services, file.resolve()),
        ])
        targets = [n.name for n in chosen.nodes]
        with ProgressObserver(not as_json) as progress, \
                SyncEngine(whole, credentials, settings(parallel, timeout, cache_dir),
                           progress) as engine, SyncLock(engine.lock_path):
            engine.connect(targets)
            content_plan = _only(engine.plan(desired, targets, prune=False), desired)
            results = engine.apply(content_plan, LocalFiles())
            again = _only(engine.plan(desired, targets, prune=False), desired)
            converged = {n: not p.changes for n, p in again.nodes.items()}
            document = results_document(content_plan, results, engine, targets, converged)
    emit_json(document) if as_json else print_results(document)
    raise typer.Exit(EXIT_OK if document["ok"] else EXIT_FAILED)
