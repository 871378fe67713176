"""`fmeaa export --from NODE DIR`: a node's content as a version-controllable content directory."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from fmeaa.client import connect
from fmeaa.commands.common import (
    AllowHttpOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    RegionOpt,
    SecretOpt,
    TimeoutOpt,
    emit_json,
    fail,
    reported_errors,
    resolve_credentials,
    resolve_inventory,
    stdout,
    working,
)
from fmeaa.sync.content_source import DEFAULT_NODE_CONNECTIONS
from fmeaa.sync.export import export_node


def export(
    directory: Annotated[Path, typer.Argument(help="Where to write the content directory.")],
    from_node: Annotated[str, typer.Option("--from", help="The node to export.")],
    connection: Annotated[list[str] | None, typer.Option(
        help="Resource connections to include (repeatable; default FME_SHAREDRESOURCE_DATA).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Write into a non-empty directory.")] = False,
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, timeout: TimeoutOpt = 30.0, allow_http: AllowHttpOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a node's repositories, workspaces (with services), topics, subscriptions,
    publications, schedules and resource files as a content directory. Secret-looking
    properties become `env:` references."""
    if directory.exists() and any(directory.iterdir()) and not force:
        raise fail(f"{directory} is not empty; pass --force to write into it")
    with reported_errors():
        whole, _ = resolve_inventory(inventory, cluster, region, allow_http)
        node = whole.node(from_node)
        creds = resolve_credentials(whole, secret_id).for_node(from_node)
        with connect(node.name, node.rest_url, **creds.login(), timeout=timeout) as client, \
                tempfile.TemporaryDirectory(prefix="fmeaa-export-") as spool:
            client.ensure_token()
            with working(f"exporting {from_node}…", not as_json):
                    result = export_node(client, directory,
                                     tuple(connection or DEFAULT_NODE_CONNECTIONS), Path(spool))
    document = {"directory": str(directory), "node": from_node, "files": result.files,
                "bytes": result.bytes, "secretVariables": result.secret_variables,
                "connectionsWithoutCredentials": result.connections}
    if as_json:
        emit_json(document)
        return
    stdout.print(f"exported {from_node}: {result.files} file(s), {result.bytes:,} bytes → {directory}")
    if result.connections:
        stdout.print("connections exported without credentials (nodes never return them); add "
                     "each one's password/token as a secret reference before syncing: "
                     + ", ".join(result.connections))
    if result.secret_variables:
        stdout.print("set these before syncing (secret values were not exported): "
                     + ", ".join(result.secret_variables))
