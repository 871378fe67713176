"""Where desired content comes from: a content directory, a reference node, or a server
outside the cluster (the one being migrated from).

Each produces a Snapshot plus a way to get each file's bytes as a local path for uploading.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmeaa.client import FmeClient
from fmeaa.cluster.credentials import CredentialsError
from fmeaa.sync.digest_cache import DigestCache, files_sha256
from fmeaa.sync.manifest import SECRET_PARAMETER, ContentDirectory, ContentError, SecretRef
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
    # Items by their paths as text: a sync holds one per workspace (memory: README, "Speed").
    item_files = [content.item_file(i) for r in m.repositories for i in r.items]
    resource_files = {id(f): content.resource_files(f) for f in m.resources}
    others = [os.fspath(content.project_path(p)) for p in m.projects or []]
    others += [os.fspath(local) for found in resource_files.values() for _, local in found]
    digests = files_sha256(item_files + others, cache)
    del others
    entries: list[Entry] = []
    files = iter(item_files)
    for repo in m.repositories:
        entries.append(metadata_entry(Kind.REPOSITORY, {"name": repo.name,
                                                        "description": repo.description}))
        for item in repo.items:
            path = next(files)
            entries.append(file_entry(Kind.ITEM, f"{repo.name}/{item.item_name}",
                                      os.stat(path).st_size, digests[path], item.services, path))
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
        entries.append(file_entry(Kind.PROJECT, p.name, path.stat().st_size,
                                  digests[os.fspath(path)], local_path=path))
    for d in m.deployment_parameters or []:
        entries.append(metadata_entry(Kind.DEPLOYMENT_PARAMETER,
                                      d.model_dump(by_alias=True, exclude_none=True)))
    roots = []
    for folder in m.resources:
        target = "/" + folder.target.strip("/")
        roots.append((folder.connection, target))
        for path, local in resource_files[id(folder)]:
            entries.append(file_entry(Kind.RESOURCE, f"{folder.connection}:{path}",
                                      local.stat().st_size, digests[os.fspath(local)],
                                      local_path=local))
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
        # None once the desired snapshot is built (its entries carry what the sync needs of
        # the files): a manifest of 10,000 workspaces is megabytes of models.
        self.content: ContentDirectory | None = content
        self.label = f"content directory {content.root}"
        self.node: str | None = None


class ServerSource:
    """Desired content read from a running FME server through a REST client: a reference node
    of the inventory (`NodeSource`), or a server outside the cluster (`UrlSource`).

    Files are streamed to a spool directory on first need and shared by all target nodes."""

    def __init__(self, label: str, owner: str | None,
                 connections: tuple[str, ...] = DEFAULT_NODE_CONNECTIONS) -> None:
        self.label = label
        self.owner = owner  # owner of replicated `one` schedules; None: the cluster's default
        self.connections = connections
        self.node: str | None = None  # the inventory node it is, if any
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
                continue  # connections: see `_connections`; projects travel as packages
            if e.kind is Kind.SCHEDULE:
                e = metadata_entry(Kind.SCHEDULE, e.body, policy=schedule_policy, owner=self.owner)
            entries.append(e)
        # Projects travel as packages (`fmeaa export` writes them).
        silent = [Kind.PROJECT]
        connections = self._connections(actual.of(Kind.CONNECTION)) \
            if client.supports("connections.list") else None
        if connections is None:
            silent.append(Kind.CONNECTION)
        else:
            entries += connections
        if not client.supports("deploymentparameters.list"):
            silent.append(Kind.DEPLOYMENT_PARAMETER)  # it has none to speak for
        return Snapshot(entries, actual.resource_roots,
                        whole_kinds=[k for k in (*REFERENCE_NODE_KINDS, Kind.CONNECTION)
                                     if k not in silent],
                        silent_kinds=silent)

    def _connections(self, found: list[Entry]) -> list[Entry] | None:
        """The server's connections as desired entries, or None when this source does not
        manage connections. A server never returns credentials, so by default it does not."""
        return None

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


class NodeSource(ServerSource):
    """Desired content read from a reference node (where users publish from Workbench): one of
    the cluster's nodes, and the owner of the `one` schedules it replicates. Its connections are
    not replicated (a node never returns credentials: use a content directory)."""

    def __init__(self, node: str, connections: tuple[str, ...] = DEFAULT_NODE_CONNECTIONS) -> None:
        super().__init__(f"reference node {node}", owner=node, connections=connections)
        self.node = node


# The credential parameter a connection is given when the server shows none (servers never
# return credential values, nor, it seems, their names: fmeflow-cli's samples show USER_NAME
# without PASSWORD). Which name each connection type uses is UNCONFIRMED; PASSWORD is the
# database one.
PLACEHOLDER_CREDENTIAL = "PASSWORD"


def secret_variable(*parts: str) -> str:
    """The environment variable that holds one credential: FMEAA_SECRET_<OWNER>_<PARAMETER>
    (the names `fmeaa export` writes into a manifest's references)."""
    return "FMEAA_SECRET_" + "_".join(re.sub(r"[^A-Za-z0-9]", "_", p).upper() for p in parts)


def credential_names(parameters: dict[str, Any]) -> list[str]:
    """A connection's credential parameters: those the server shows, else the placeholder."""
    return sorted(k for k in parameters if SECRET_PARAMETER.search(k)) or [PLACEHOLDER_CREDENTIAL]


def resolve_connection_credentials(connections: list[dict[str, Any]],
                                   resolve: Callable[[str], str]) -> dict[str, dict[str, str]]:
    """Each connection's credentials, from `env:FMEAA_SECRET_<CONNECTION>_<PARAMETER>` (or
    whatever `resolve` makes of that reference); every one that cannot be resolved is refused at
    once, so no connection is ever sent without its credentials."""
    references = _References(resolve)
    resolved = {}
    for body in connections:
        name = body["name"]
        wanted = {p: SecretRef(secret=f"env:{secret_variable(name, p)}")
                  for p in credential_names(dict(body.get("parameters") or {}))}
        resolved[name] = references.properties(f"connections[{name}].parameters", wanted)
    if references.problems:
        listed = "\n".join(f"  - {p}" for p in references.problems)
        raise ContentError(
            f"{len(references.problems)} connection credential(s) of the source server cannot "
            f"be resolved; nothing was sent to any node:\n{listed}\nA server never returns "
            "credentials: set each variable named, or export the server (`fmeaa export --from "
            "url:…`) and sync the content directory instead")
    return resolved


class UrlSource(ServerSource):
    """Desired content read from an FME server OUTSIDE the cluster (`url:https://old-server`):
    the server being migrated from. It is read and never written (its client refuses every
    write operation: `fmeaa.client.read_only`), and it is never a node: no lock, no parity
    column, no target. Its `one` schedules are owned by the cluster's default owner. Its
    connections come over with their credentials from the environment (`credentials`, resolved
    before any node is contacted); a server without connections (FME Server before 2023) speaks
    for none."""

    def __init__(self, url: str, credentials: dict[str, dict[str, str]] | None,
                 connections: tuple[str, ...] = DEFAULT_NODE_CONNECTIONS) -> None:
        super().__init__(f"server {url}", owner=None, connections=connections)
        self.url = url
        self.credentials = credentials or {}

    def _connections(self, found: list[Entry]) -> list[Entry] | None:
        entries = []
        for e in found:
            if e.key not in self.credentials:  # created on the server after validation
                raise ContentError(f"connection {e.key!r} appeared on {self.url} after its "
                                   "credentials were checked: run the command again")
            parameters = {**dict(e.body.get("parameters") or {}), **self.credentials[e.key]}
            body = {"name": e.key, "category": e.body.get("category", ""),
                    "type": e.body.get("type", ""), "parameters": parameters}
            entries.append(metadata_entry(Kind.CONNECTION, body,
                                          secret_digest=secret_parameters_digest(parameters)))
        return entries
