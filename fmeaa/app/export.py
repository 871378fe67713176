"""The `export` operation: one node's content as a version-controllable content directory."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from fmeaa.app.results import ExportReport
from fmeaa.app.targets import ClusterRef, Targets, resolve_targets
from fmeaa.client import FmeApiError, connect
from fmeaa.sync.content_source import DEFAULT_NODE_CONNECTIONS
from fmeaa.sync.engine import Observer
from fmeaa.sync.export import ScheduleSpread, export_node
from fmeaa.sync.manifest import ContentError


@dataclass(frozen=True)
class ExportRequest:
    directory: Path
    from_node: str
    cluster: ClusterRef
    connections: tuple[str, ...] = DEFAULT_NODE_CONNECTIONS  # resource connections to include
    force: bool = False  # write into a non-empty directory
    timeout_s: float = 30.0


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
    if directory.exists() and any(directory.iterdir()) and not request.force:
        raise ContentError(f"{directory} is not empty; pass --force to write into it")
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
