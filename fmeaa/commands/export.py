"""`fmeaa export --from NODE DIR`: a node's content as a version-controllable content directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmeaa import app
from fmeaa.commands.common import (
    AllowHttpOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    ProgressObserver,
    RegionOpt,
    SecretOpt,
    SourceSecretOpt,
    TimeoutOpt,
    cluster_ref,
    emit_json,
    reported_errors,
    stdout,
)
from fmeaa.sync.content_source import DEFAULT_NODE_CONNECTIONS


def export(
    directory: Annotated[Path, typer.Argument(help="Where to write the content directory.")],
    from_node: Annotated[str, typer.Option(
        "--from", help="The node to export, or url:https://SERVER for an FME server outside the "
                       "cluster (read only; no inventory needed).")],
    connection: Annotated[list[str] | None, typer.Option(
        help="Resource connections to include (repeatable; default FME_SHAREDRESOURCE_DATA).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Write into a non-empty directory.")] = False,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, source_secret_id: SourceSecretOpt = None,
    timeout: TimeoutOpt = 30.0, allow_http: AllowHttpOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a node's (or an outside server's) repositories, workspaces (with services), topics,
    subscriptions, publications, schedules, connections and resource files as a content
    directory. Each schedule's policy and owner are read from every node of the inventory (a
    url: server's enabled schedules become `one` schedules of the cluster). Secret-looking
    properties and connection credentials become `env:` references to fill in."""
    request = app.ExportRequest(
        directory=directory, from_node=from_node, force=force, timeout_s=timeout,
        connections=tuple(connection or DEFAULT_NODE_CONNECTIONS),
        source_secret_id=source_secret_id,
        cluster=cluster_ref(inventory, cluster, region, secret_id, allow_http=allow_http))
    with reported_errors(), ProgressObserver(not as_json) as progress:
        result = app.export(request, progress)
    if as_json:
        emit_json(result.to_json())
        return
    stdout.print(f"exported {from_node}: {result.files} file(s), {result.bytes:,} bytes → "
                 f"{directory}")
    if result.connections_without_credentials:
        stdout.print("nodes never return credentials: these connections were written with "
                     "credential references to fill in (a sync refuses until they resolve): "
                     + ", ".join(result.connections_without_credentials))
    if result.secret_variables:
        stdout.print("set these before syncing (secret values were not exported): "
                     + ", ".join(result.secret_variables))
