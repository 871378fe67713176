"""Where desired content comes from: a content directory, or a reference node.

Both produce a Snapshot plus a way to get each file's bytes as a local path for uploading.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmeaa.client import FmeClient
from fmeaa.cluster.credentials import CredentialsError
from fmeaa.sync.digest_cache import DigestCache, files_sha256
from fmeaa.sync.manifest import ContentDirectory, ContentError, SecretRef
from fmeaa.sync.node_reader import NodeReader, spool_name
from fmeaa.sync.snapshot import (
    REFERENCE_NODE_KINDS,
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


class _References:
    """Resolves a manifest's secret references, collecting every one that cannot be resolved
    (with where it is), so that one refusal lists them all before any node is contacted."""

    def __init__(self, resolve: Callable[[str], str]) -> None:
        self.resolve = resolve
        self.problems: list[str] = []

    def properties(self, where: str, properties: dict[str, Any]) -> dict[str, Any]:
        resolved = {}
        for name, value in properties.items():
            if not isinstance(value, SecretRef):
                resolved[name] = value
                continue
            try:
                resolved[name] = self.resolve(value.secret)
            except CredentialsError as exc:
                self.problems.append(f"{where}.{name}: {exc}")
        return resolved

    def check(self) -> None:
        if self.problems:
            listed = "\n".join(f"  - {p}" for p in self.problems)
            raise ContentError(
                f"{len(self.problems)} secret reference(s) cannot be resolved; nothing was sent "
                f"to any node:\n{listed}\nSet each variable named (a connection written by "
                "`fmeaa export` needs its credentials filled in this way), or point the reference "
                "at a secret: {secret: 'aws-sm:SECRET_ID#key'}")


@dataclass(frozen=True)
class ResolvedReferences:
    """The manifest's secret references, resolved (in memory only): notifier properties and
    connection parameters with their values."""

    notifier_properties: dict[tuple[Kind, str], dict[str, Any]]
    connection_parameters: dict[str, dict[str, Any]]


def resolve_references(content: ContentDirectory, resolve_secret: Callable[[str], str]
                       ) -> ResolvedReferences:
    """Resolve every secret reference of the manifest; every unresolvable one is refused at
    once. Cheap, and part of validation: run before any node is contacted."""
    m = content.manifest
    references = _References(resolve_secret)
    notifier_properties = {
        (kind, n.name): references.properties(f"{section}[{n.name}].properties", n.properties)
        for kind, section, notifiers in ((Kind.SUBSCRIPTION, "subscriptions", m.subscriptions),
                                         (Kind.PUBLICATION, "publications", m.publications))
        for n in notifiers}
    connection_parameters = {
        c.name: references.properties(f"connections[{c.name}].parameters", c.parameters)
        for c in m.connections or []}
    references.check()
    return ResolvedReferences(notifier_properties, connection_parameters)


def snapshot_of_directory(content: ContentDirectory, cache: DigestCache | None,
                          references: ResolvedReferences | Callable[[str], str]) -> Snapshot:
    """The desired snapshot of a validated content directory: hashes its files. `references`
    are the resolved secret references (or a resolver, to resolve them first); values stay in
    memory and are only ever sent to nodes."""
    m = content.manifest
    if not isinstance(references, ResolvedReferences):
        references = resolve_references(content, references)
    notifier_properties = references.notifier_properties
    connection_parameters = references.connection_parameters
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
            body["properties"] = notifier_properties[(kind, n.name)]
            entries.append(metadata_entry(kind, body))
    for s in m.schedules:
        body = {"name": s.name, "category": s.category, "description": s.description,
                "enabled": s.enabled, "recurrence": "cron", "cron": s.cron,
                "repository": s.repository, "workspace": s.workspace, "request": s.request}
        entries.append(metadata_entry(Kind.SCHEDULE, body, policy=s.policy.value, owner=s.owner))
    for c in m.connections or []:
        parameters = connection_parameters[c.name]
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
    # Listed repositories, folders and entries are managed (see Snapshot.manages); a
    # `connections:`, `deploymentParameters:` or `projects:` key, even `[]`, claims every entry
    # of its kind on the nodes, and without the key the kind is never touched.
    claims = ((Kind.CONNECTION, m.connections), (Kind.DEPLOYMENT_PARAMETER, m.deployment_parameters),
              (Kind.PROJECT, m.projects))
    return Snapshot(entries, roots, whole_kinds=[k for k, listed in claims if listed is not None],
                    silent_kinds=[k for k, listed in claims if listed is None],
                    ignore=[(Kind(rule.kind), rule.key) for rule in m.ignore])


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
             schedule_policy: str = "one", concurrency: int = 1) -> Snapshot:
        self.client, self.spool = client, spool
        actual = NodeReader(client, cache, keep_dir=spool, concurrency=concurrency).read(
            (c, "/") for c in self.connections)
        entries = []
        for e in actual.values():
            if e.kind in (Kind.CONNECTION, Kind.PROJECT):
                continue  # a node never returns credentials: connections need a content dir
            if e.kind is Kind.SCHEDULE:
                e = metadata_entry(Kind.SCHEDULE, e.body, policy=schedule_policy, owner=self.node)
            entries.append(e)
        # A node never returns credentials; projects travel as packages (fmeaa export writes them).
        silent = [Kind.CONNECTION, Kind.PROJECT]
        if not client.supports("deploymentparameters.list"):
            silent.append(Kind.DEPLOYMENT_PARAMETER)  # it has none to speak for
        return Snapshot(entries, actual.resource_roots,
                        whole_kinds=[k for k in REFERENCE_NODE_KINDS if k not in silent],
                        silent_kinds=silent)

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


