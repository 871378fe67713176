"""The `export` operation: one node's content as a version-controllable content directory."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from fmeaa.app.results import ExportReport
from fmeaa.app.targets import ClusterRef, resolve_targets
from fmeaa.client import connect
from fmeaa.sync.content_source import DEFAULT_NODE_CONNECTIONS
from fmeaa.sync.engine import Observer
from fmeaa.sync.export import export_node
from fmeaa.sync.manifest import ContentError


@dataclass(frozen=True)
class ExportRequest:
    directory: Path
    from_node: str
    cluster: ClusterRef
    connections: tuple[str, ...] = DEFAULT_NODE_CONNECTIONS  # resource connections to include
    force: bool = False  # write into a non-empty directory
    timeout_s: float = 30.0


def export(request: ExportRequest, observer: Observer | None = None) -> ExportReport:
    """Write the node's repositories, workspaces, topics, notifications, schedules, connections
    and resource files; secret-looking properties become `env:` references."""
    directory = request.directory
    if directory.exists() and any(directory.iterdir()) and not request.force:
        raise ContentError(f"{directory} is not empty; pass --force to write into it")
    targets = resolve_targets(request.cluster)
    node = targets.whole.node(request.from_node)
    creds = targets.credentials().for_node(request.from_node)
    with connect(node.name, node.rest_url, **creds.login(), timeout=request.timeout_s) as client, \
            tempfile.TemporaryDirectory(prefix="fmeaa-export-") as spool:
        client.ensure_token()
        (observer or Observer()).note(f"exporting {request.from_node}…")
        result = export_node(client, directory, request.connections, Path(spool))
    return ExportReport(directory=str(directory), node=request.from_node, files=result.files,
                        bytes=result.bytes, secret_variables=result.secret_variables,
                        connections_without_credentials=result.connections)
