"""The `export` operation: one node's content as a version-controllable content directory."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from fmeaa.app.results import ExportReport
from fmeaa.app.sources import SourceServer, connect_source, is_url_source
from fmeaa.app.targets import ClusterRef, Targets, resolve_targets
from fmeaa.client import FmeApiError, FmeClient, connect
from fmeaa.sync.content_source import DEFAULT_NODE_CONNECTIONS
from fmeaa.sync.engine import EngineSettings, Observer
from fmeaa.sync.export import ScheduleSpread, export_node
from fmeaa.sync.manifest import ContentError


@dataclass(frozen=True)
class ExportRequest:
    directory: Path
    from_node: str  # a node of the inventory, or url:https://SERVER (read only)
    cluster: ClusterRef
    connections: tuple[str, ...] = DEFAULT_NODE_CONNECTIONS  # resource connections to include
    force: bool = False  # write into a non-empty directory
    timeout_s: float = 30.0
    source_secret_id: str | None = None  # with url: (else $FMEAA_SOURCE_PASSWORD)


def schedule_spreads(targets: Targets, timeout_s: float) -> dict[str, ScheduleSpread]:
    """Where each schedule exists and is enabled, over every node of the inventory: the only
    way to tell a `one` schedule owned elsewhere from one disabled everywhere. Refuses (before
    anything is written) when a node cannot be read, since its schedules could be the owners."""
    present: dict[str, list[str]] = {}
    enabled: dict[str, list[str]] = {}
    unreadable: list[str] = []
    for node in targets.whole.nodes:
        creds = targets.credentials().for_node(node.name)
        try:
            with connect(node.name, node.rest_url, **creds.login(), timeout=timeout_s) as client:
                client.ensure_token()
                bodies = client.schedules()
        except FmeApiError as exc:
            unreadable.append(f"{node.name} ({exc})")
            continue
        for body in bodies:
            key = f"{body.get('category', '')}/{body.get('name', '')}"
            present.setdefault(key, []).append(node.name)
            if body.get("enabled", True):
                enabled.setdefault(key, []).append(node.name)
    if unreadable:
        raise ContentError(
            "cannot export schedules: a node enables a schedule only for itself, so each "
            "schedule's policy and owner are read from every node of the inventory, and "
            f"{'; '.join(unreadable)} could not be read. Bring it back and export again")
    return {k: ScheduleSpread(k, tuple(v), tuple(enabled.get(k, ()))) for k, v in present.items()}


def export(request: ExportRequest, observer: Observer | None = None) -> ExportReport:
    """Write the node's repositories, workspaces, topics, notifications, schedules (policy and
    owner reconstructed from every node), connections and resource files; secret-looking
    properties and connection credentials become `env:` references."""
    directory = request.directory
    if directory.exists() and not directory.is_dir():
        raise ContentError(f"{directory}: not a directory; give the directory to export into "
                           "(created if missing)")
    if directory.exists() and any(directory.iterdir()) and not request.force:
        raise ContentError(f"{directory} is not empty; pass --force to write into it")
    if is_url_source(request.from_node):
        return _export_server(request, observer or Observer())
    targets = resolve_targets(request.cluster)
    node = targets.whole.node(request.from_node)
    creds = targets.credentials().for_node(request.from_node)
    spreads = schedule_spreads(targets, request.timeout_s)
    with connect(node.name, node.rest_url, **creds.login(), timeout=request.timeout_s) as client, \
            tempfile.TemporaryDirectory(prefix="fmeaa-export-") as spool:
        client.ensure_token()
        (observer or Observer()).note(f"exporting {request.from_node}…")
        result = export_node(client, directory, request.connections, Path(spool), spreads,
                             [n.name for n in targets.whole.nodes])
    return ExportReport(directory=str(directory), node=request.from_node, files=result.files,
                        bytes=result.bytes, secret_variables=result.secret_variables,
                        connections_without_credentials=result.connections)


def _export_server(request: ExportRequest, observer: Observer) -> ExportReport:
    """Export a server outside the cluster (`url:`, the one being migrated from), read only. The
    inventory is optional: given, the server's URL is checked against its load balancer and
    nodes. Its enabled schedules become `one` schedules of the cluster's default owner."""
    ref = request.cluster
    targets = resolve_targets(ref) if ref.inventory is not None or ref.cluster is not None \
        else None
    region = targets.region if targets is not None else ref.region
    server = SourceServer(request.from_node, request.source_secret_id, region, ref.allow_http)
    client: FmeClient
    with connect_source(request.from_node, server, targets.whole if targets else None,
                        EngineSettings(timeout_s=request.timeout_s)) as client, \
            tempfile.TemporaryDirectory(prefix="fmeaa-export-") as spool:
        observer.note(f"exporting {client.base_url}…")
        result = export_node(client, request.directory, request.connections, Path(spool),
                             None, [])
    return ExportReport(directory=str(request.directory), node=request.from_node,
                        files=result.files, bytes=result.bytes,
                        secret_variables=result.secret_variables,
                        connections_without_credentials=result.connections)
