"""Where desired content comes from: a content directory, or a reference node.

Both produce a Snapshot plus a way to get each file's bytes as a local path for uploading.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmeaa.client import FmeClient
from fmeaa.sync.digest_cache import DigestCache, files_sha256
from fmeaa.sync.manifest import ContentDirectory, SecretRef
from fmeaa.sync.node_reader import NodeReader, spool_name
from fmeaa.sync.snapshot import (
    Entry,
    Kind,
    Snapshot,
    file_entry,
    metadata_entry,
    secret_parameters_digest,
    split_item_key,
    split_resource_key,
)

DEFAULT_NODE_CONNECTIONS = ("FME_SHAREDRESOURCE_DATA",)


def _resolve_properties(properties: dict[str, Any], resolve: Callable[[str], str]) -> dict[str, Any]:
    return {k: resolve(v.secret) if isinstance(v, SecretRef) else v for k, v in properties.items()}


def snapshot_of_directory(content: ContentDirectory, cache: DigestCache | None,
                          resolve_secret: Callable[[str], str]) -> Snapshot:
    """The desired snapshot of a validated content directory. Secret references are resolved
    here, in memory, and only ever sent to nodes."""
    m = content.manifest
    digests = files_sha256(content.files(), cache)
    entries: list[Entry] = []
    for repo in m.repositories:
        entries.append(metadata_entry(Kind.REPOSITORY, {"name": repo.name,
                                                        "description": repo.description}))
        for item in repo.items:
            path = content.item_path(item)
            entries.append(file_entry(Kind.ITEM, f"{repo.name}/{item.item_name}",
                                      path.stat().st_size, digests[path], item.services, path))
    for topic in m.topics:
        entries.append(metadata_entry(Kind.TOPIC, topic.model_dump(by_alias=True)))
    for kind, notifiers in ((Kind.SUBSCRIPTION, m.subscriptions), (Kind.PUBLICATION, m.publications)):
        for n in notifiers:
            body = n.model_dump(by_alias=True, exclude={"properties"})
            body["properties"] = _resolve_properties(n.properties, resolve_secret)
            entries.append(metadata_entry(kind, body))
    for s in m.schedules:
        body = {"name": s.name, "category": s.category, "description": s.description,
                "enabled": s.enabled, "recurrence": "cron", "cron": s.cron,
                "repository": s.repository, "workspace": s.workspace, "request": s.request}
        entries.append(metadata_entry(Kind.SCHEDULE, body, policy=s.policy.value, owner=s.owner))
    for c in m.connections or []:
        parameters = _resolve_properties(c.parameters, resolve_secret)
        body = {"name": c.name, "category": c.category, "type": c.type, "parameters": parameters}
        entries.append(metadata_entry(Kind.CONNECTION, body,
                                      secret_digest=secret_parameters_digest(parameters)))
    for p in m.projects or []:
        path = content.project_path(p)
        entries.append(file_entry(Kind.PROJECT, p.name, path.stat().st_size, digests[path],
                                  local_path=path))
    for d in m.deployment_parameters or []:
        entries.append(metadata_entry(Kind.DEPLOYMENT_PARAMETER,
                                      d.model_dump(by_alias=True, exclude_none=True)))
    roots = []
    for folder in m.resources:
        target = "/" + folder.target.strip("/")
        roots.append((folder.connection, target))
        for path, local in content.resource_files(folder):
            entries.append(file_entry(Kind.RESOURCE, f"{folder.connection}:{path}",
                                      local.stat().st_size, digests[local], local_path=local))
    unmanaged = [kind for kind, listed in ((Kind.CONNECTION, m.connections),
                                           (Kind.DEPLOYMENT_PARAMETER, m.deployment_parameters),
                                           (Kind.PROJECT, m.projects))
                 if listed is None]
    return Snapshot(entries, roots, unmanaged=unmanaged)


class LocalFiles:
    """Files already on local disk: each desired entry carries its own path."""

    def file_for(self, entry: Entry) -> Path:
        assert entry.local_path is not None
        return entry.local_path


class DirectorySource(LocalFiles):
    """Desired content from a version-controlled content directory."""

    def __init__(self, content: ContentDirectory) -> None:
        self.content = content
        self.label = f"content directory {content.root}"
        self.node: str | None = None


class NodeSource:
    """Desired content read from a reference node (where users publish from Workbench).

    Files are streamed to a spool directory on first need and shared by all target nodes."""

    def __init__(self, node: str, connections: tuple[str, ...] = DEFAULT_NODE_CONNECTIONS) -> None:
        self.node = node
        self.connections = connections
        self.label = f"reference node {node}"
        self.client: FmeClient | None = None
        self.spool: Path | None = None
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def read(self, client: FmeClient, cache: DigestCache, spool: Path,
             schedule_policy: str = "one") -> Snapshot:
        self.client, self.spool = client, spool
        actual = NodeReader(client, cache, keep_dir=spool).read(
            (c, "/") for c in self.connections)
        entries = []
        for e in actual.values():
            if e.kind in (Kind.CONNECTION, Kind.PROJECT):
                continue  # a node never returns credentials: connections need a content dir
            if e.kind is Kind.SCHEDULE:
                e = metadata_entry(Kind.SCHEDULE, e.body, policy=schedule_policy, owner=self.node)
            entries.append(e)
        # A node never returns credentials; projects travel as packages (fmeaa export writes them).
        unmanaged = [Kind.CONNECTION, Kind.PROJECT]
        if not client.supports("deploymentparameters.list"):
            unmanaged.append(Kind.DEPLOYMENT_PARAMETER)  # it has none to speak for
        return Snapshot(entries, actual.resource_roots, unmanaged=unmanaged)

    def file_for(self, entry: Entry) -> Path:
        assert self.client is not None and self.spool is not None
        if entry.local_path is not None and entry.local_path.exists():
            return entry.local_path
        name = spool_name(entry.kind, entry.key)
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            dest = self.spool / name
            if not dest.exists():
                if entry.kind is Kind.ITEM:
                    self.client.download_item(*split_item_key(entry.key), dest)
                else:
                    self.client.download_resource(*split_resource_key(entry.key), dest)
            return dest


