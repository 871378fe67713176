"""Read what one node holds into a Snapshot (I/O through the REST client).

Listings give names, sizes and dates; file digests come from the DigestCache while size and
date are unchanged, otherwise from streaming the bytes (kept in `keep_dir` when the node is
the reference node, so they need not be downloaded twice).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fmeaa.client import FmeClient, NotFoundError
from fmeaa.client.rest import service_names
from fmeaa.sync.digest_cache import DigestCache
from fmeaa.sync.snapshot import Entry, Kind, Snapshot, file_entry, metadata_entry, sha256_text

WRITTEN = "written-by-fmeaa"  # the cache stamp of a connection's last written credentials
NOTIFICATION_KINDS = {Kind.TOPIC: "topics", Kind.SUBSCRIPTION: "subscriptions",
                      Kind.PUBLICATION: "publications"}


def spool_name(kind: Kind, key: str) -> str:
    return hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:32]


class NodeReader:
    def __init__(self, client: FmeClient, cache: DigestCache, keep_dir: Path | None = None,
                 on_file: Callable[[], None] | None = None) -> None:
        self.client = client
        self.cache = cache
        self.keep_dir = keep_dir
        self.on_file = on_file or (lambda: None)

    def read(self, resource_roots: Iterable[tuple[str, str]]) -> Snapshot:
        roots = sorted(set(resource_roots))
        entries: list[Entry] = []
        for repo in self.client.repositories():
            entries.append(metadata_entry(Kind.REPOSITORY, repo))
            entries.extend(self._items(repo["name"]))
        for kind, path in NOTIFICATION_KINDS.items():
            entries.extend(metadata_entry(kind, body) for body in self.client.notifications(path))
        entries.extend(metadata_entry(Kind.SCHEDULE, body) for body in self.client.schedules())
        if self.client.supports("connections.list"):  # FME Server before 2023 has none
            entries.extend(self._connections())
        if self.client.supports("projects.list"):
            entries.extend(self._projects())
        if self.client.supports("deploymentparameters.list"):
            entries.extend(metadata_entry(Kind.DEPLOYMENT_PARAMETER, body)
                           for body in self.client.deployment_parameters())
        connections = set(self.client.resource_connections()) if roots else set()
        for connection, folder in roots:
            if connection in connections:
                entries.extend(self._resources(connection, folder))
        return Snapshot(entries, roots)

    def _connections(self) -> list[Entry]:
        """Connections as the node returns them (credential values are never returned): their
        secret digest is what fme-aa last wrote there, or "unknown" (→ re-sent once)."""
        found = []
        for body in self.client.connections():
            written = self.cache.lookup(f"{Kind.CONNECTION}:{body['name']}", 0, WRITTEN)
            found.append(metadata_entry(Kind.CONNECTION, body, secret_digest=written or "unknown"))
        return found

    def _projects(self) -> list[Entry]:
        """A node's projects. A package cannot be read back byte for byte, so a project's digest
        is the package fmeaa last imported there while the node's `lastUpdated` is unchanged;
        else a digest no package has (→ re-imported)."""
        found = []
        for p in self.client.projects():
            stamp = p.get("lastUpdated")
            sha = self.cache.lookup(f"{Kind.PROJECT}:{p['name']}", 0, stamp)
            digest = sha or sha256_text(f"project {p['name']} changed on the node at {stamp}")
            found.append(Entry(Kind.PROJECT, p["name"], digest, file_sha256=sha,
                               body={"id": p.get("id"), "name": p["name"], "lastUpdated": stamp}))
        return found

    def _file(self, kind: Kind, key: str, size: int, stamp: Any,
              download: Callable[[Path | None], str]) -> tuple[str, Path | None]:
        cache_key = f"{kind}:{key}"
        keep = self.keep_dir / spool_name(kind, key) if self.keep_dir else None
        sha = self.cache.lookup(cache_key, size, stamp)
        if sha is None:
            sha = download(keep)
            self.cache.record(cache_key, size, stamp, sha)
            self.on_file()
            return sha, keep
        return sha, None

    def _items(self, repo: str) -> list[Entry]:
        found = []
        for item in self.client.items(repo):
            name = item["name"]
            services = item.get("services")
            if services is None:  # not every server version lists them with the item
                services = self.client.services(repo, name)
            services = service_names(services)
            size = int(item.get("totalFileSize") or 0)
            stamp = item.get("lastPublishDate") or item.get("lastSaveDate")
            sha, kept = self._file(Kind.ITEM, f"{repo}/{name}", size, stamp,
                                   lambda dest, n=name: self.client.download_item(repo, n, dest))
            found.append(file_entry(Kind.ITEM, f"{repo}/{name}", size, sha, services, kept))
        return found

    def _resources(self, connection: str, folder: str) -> list[Entry]:
        found = []
        try:
            files = list(self.client.walk_resources(connection, folder))
        except NotFoundError:
            return []
        for f in files:
            path = f["path"]
            key = f"{connection}:{path}"
            size = int(f.get("size") or 0)
            sha, kept = self._file(Kind.RESOURCE, key, size, f.get("date"),
                                   lambda dest, p=path: self.client.download_resource(
                                       connection, p, dest))
            found.append(file_entry(Kind.RESOURCE, key, size, sha, local_path=kept))
        return found
