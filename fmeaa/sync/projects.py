"""Project imports, previewed: what importing each planned package would do on each node, item
by item (FME Flow's own import preview), so the plan shows it before anything is imported."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from fmeaa.client import FmeApiError, FmeClient
from fmeaa.sync.plan import Change, ContentPlan
from fmeaa.sync.snapshot import Entry, Kind


class FileProvider(Protocol):
    def file_for(self, entry: Entry) -> Any: ...


@dataclass(frozen=True)
class PreviewRow:
    project: str
    type: str  # workspace, schedule, connection, deploymentParameter…
    id: str
    action: str  # the node's previewAction: new, overwritten, skipped…


def preview_projects(clients: dict[str, FmeClient], plan: ContentPlan, files: FileProvider,
                     parallel: int = 4) -> dict[str, list[PreviewRow | str]]:
    """node → its preview rows, or an error text per package that could not be previewed. Each
    preview uploads the package and deletes the import again; nothing is imported."""
    def one(node: str) -> tuple[str, list[PreviewRow | str]]:
        rows: list[PreviewRow | str] = []
        for action in plan.nodes[node].changes:
            if action.kind is not Kind.PROJECT or action.change is Change.DELETE:
                continue
            assert action.desired is not None
            try:
                items = clients[node].preview_project(files.file_for(action.desired))
            except FmeApiError as exc:
                rows.append(f"{action.key}: no preview ({exc})")
                continue
            rows += [PreviewRow(action.key, str(i.get("type")), str(i.get("id")),
                                str(i.get("previewAction"))) for i in items]
        return node, rows

    nodes = [n for n, p in plan.nodes.items() if n in clients
             and any(a.kind is Kind.PROJECT and a.change is not Change.DELETE for a in p.changes)]
    if not nodes:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(nodes)))) as pool:
        return dict(pool.map(one, nodes))
