"""Read what one node holds into a Snapshot (I/O through the REST client).

Listings give names, sizes and dates; file digests come from the node's ledger or this
machine's DigestCache while size and date are unchanged, otherwise from streaming the bytes
(kept in `keep_dir` when the node is the reference node, so they need not be downloaded twice).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fmeaa.client import FmeClient, NotFoundError
from fmeaa.client.rest import service_names
from fmeaa.sync import ledger as ledgers
from fmeaa.sync.bounded import bounded_map
from fmeaa.sync.digest_cache import DigestCache
from fmeaa.sync.ledger import Ledger
from fmeaa.sync.snapshot import Entry, Kind, Snapshot, file_entry, metadata_entry, sha256_text

WRITTEN = "written-by-fmeaa"  # the cache stamp of a connection's last written credentials
# What the reader needs of a listed item (the rest of each item is dropped as pages arrive).
ITEM_FIELDS = ("name", "totalFileSize", "lastPublishDate", "lastSaveDate", "services")
NOTIFICATION_KINDS = {Kind.TOPIC: "topics", Kind.SUBSCRIPTION: "subscriptions",
                      Kind.PUBLICATION: "publications"}


def spool_name(kind: Kind, key: str) -> str:
    return hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:32]


class NodeReader:
    """Reads one node. Several requests run at once (`concurrency`; the client bounds what
    the node receives): the lists first, then each item's and file's own calls.

    With a ledger (`fmeaa.sync.ledger`), what the node says fmeaa wrote is trusted while the
    node's own stamps are the recorded ones: a file's digest without downloading it, an item's
    services without asking for them. `deep` trusts neither ledger nor cache: every byte is
    read (the ledger still says what fmeaa wrote, for drift)."""

    def __init__(self, client: FmeClient, cache: DigestCache, keep_dir: Path | None = None,
                 on_file: Callable[[], None] | None = None, *, ledger: Ledger | None = None,
                 load_ledger: bool = False, deep: bool = False, concurrency: int = 1,
                 expect: Mapping[str, int] | None = None) -> None:
        self.client = client
        self.cache = cache
        self.keep_dir = keep_dir
        self.on_file = on_file or (lambda: None)
        self.ledger = ledger
        self.load_ledger = load_ledger  # read the node's ledger too (into `self.ledger`)
        self.deep = deep
        self.concurrency = max(1, concurrency)
        # Repositories the source expects, with about how many items: listed at once with the
        # node's other lists instead of after them (a round trip less per read).
        self.expect = dict(expect or {})

    def read(self, resource_roots: Iterable[tuple[str, str]]) -> Snapshot:
        roots = sorted(set(resource_roots))
        c = self.client
        lists: dict[str, Callable[[], Any]] = {
            "repositories": c.repositories, "schedules": c.schedules,
            **{str(kind): (lambda p=path: c.notifications(p))
               for kind, path in NOTIFICATION_KINDS.items()}}
        if c.supports("connections.list"):  # FME Server before 2023 has none
            lists["connections"] = c.connections
        if c.supports("projects.list"):
            lists["projects"] = c.projects
        if c.supports("deploymentparameters.list"):
            lists["deployment-parameters"] = c.deployment_parameters
        if roots:
            lists["resource-connections"] = c.resource_connections
        if self.load_ledger:
            lists["ledger"] = lambda: ledgers.read(c)
        # More workers than the node's bound: the client holds what exceeds it, and a worker
        # is free the moment a slot is.
        with ThreadPoolExecutor(max_workers=2 * self.concurrency) as pool:
            # Everything that does not depend on another answer goes at once: the lists, the
            # items of the repositories the source expects, the resource folders.
            pending = {name: pool.submit(call) for name, call in lists.items()}
            early = {repo: pool.submit(c.items, repo, None, n, ITEM_FIELDS)
                     for repo, n in self.expect.items()}
            walks = {root: pool.submit(self._walk, *root) for root in roots}
            found = {name: future.result() for name, future in pending.items()}
            if self.load_ledger:
                self.ledger = found["ledger"]
            repos = found["repositories"]
            entries = [metadata_entry(Kind.REPOSITORY, repo) for repo in repos]
            for kind in NOTIFICATION_KINDS:
                entries.extend(metadata_entry(kind, body) for body in found[str(kind)])
            entries.extend(metadata_entry(Kind.SCHEDULE, body) for body in found["schedules"])
            entries.extend(self._connection(body) for body in found.get("connections", []))
            entries.extend(self._project(body) for body in found.get("projects", []))
            entries.extend(metadata_entry(Kind.DEPLOYMENT_PARAMETER, body)
                           for body in found.get("deployment-parameters", []))
            # Then each repository's items and each resource folder's files, and then what
            # each of those needs on its own (services, bytes).
            connections = set(found.get("resource-connections", []))
            file_lists = [(conn, walks[(conn, folder)].result()) for conn, folder in roots
                          if conn in connections]  # a folder of a missing connection: nothing
            late = [r["name"] for r in repos if r["name"] not in early]
            item_lists = list(pool.map(lambda name: (name, c.items(name, fields=ITEM_FIELDS)),
                                       late))
            item_lists += [(r["name"], self._early(early[r["name"]], r["name"]))
                           for r in repos if r["name"] in early]
            # Entries the ledger or cache vouch for need no request: only the others are work.
            work: list[Callable[[], Entry]] = []
            for repo, items in item_lists:
                for item in items:
                    known = self._known_item(repo, item)
                    if known is not None:
                        entries.append(known)
                    else:
                        work.append(lambda r=repo, i=item: self._item(r, i))
            for conn, files in file_lists:
                for f in files:
                    known = self._known_resource(conn, f)
                    if known is not None:
                        entries.append(known)
                    else:
                        work.append(lambda conn=conn, f=f: self._resource(conn, f))
            del item_lists, file_lists
            entries.extend(bounded_map(pool, lambda task: task(), work,
                                       ahead=8 * self.concurrency))
        return Snapshot(entries, roots)

    # --- the ledger and the local cache: what may be trusted without reading ----------------
    def _trusted(self, kind: Kind, key: str, size: int, stamp: Any) -> str | None:
        if self.deep:
            return None
        sha = self.cache.lookup(f"{kind}:{key}", size, stamp)
        if sha is None and self.ledger is not None:
            sha = self.ledger.trusted_sha256(kind, key, size, stamp)
        return sha

    def _connection(self, body: dict[str, Any]) -> Entry:
        """A connection as the node returns it (credential values are never returned): its
        secret digest is what fme-aa last wrote there (the node's ledger, else this machine's
        cache), or "unknown" (→ re-sent once)."""
        name = body["name"]
        written = self.ledger.secret_digest(name) if self.ledger is not None else None
        written = written or self.cache.lookup(f"{Kind.CONNECTION}:{name}", 0, WRITTEN)
        return metadata_entry(Kind.CONNECTION, body, secret_digest=written or "unknown")

    def _project(self, p: dict[str, Any]) -> Entry:
        """A project. A package cannot be read back byte for byte, so its digest is the package
        fmeaa last imported there while the node's `lastUpdated` is unchanged; else a digest no
        package has (→ re-imported)."""
        stamp = p.get("lastUpdated")
        key = f"{Kind.PROJECT}:{p['name']}"
        sha = self.ledger.trusted_sha256(Kind.PROJECT, p["name"], 0, stamp) \
            if self.ledger is not None and stamp is not None else None
        sha = sha or self.cache.lookup(key, 0, stamp)
        digest = sha or sha256_text(f"project {p['name']} changed on the node at {stamp}")
        return Entry(Kind.PROJECT, p["name"], digest, file_sha256=sha, stamp=stamp,
                     body={"id": p.get("id"), "name": p["name"], "lastUpdated": stamp})

    def _file(self, kind: Kind, key: str, size: int, stamp: Any,
              download: Callable[[Path | None], str]) -> tuple[str, Path | None]:
        sha = self._trusted(kind, key, size, stamp)
        if sha is not None:
            return sha, None
        keep = self.keep_dir / spool_name(kind, key) if self.keep_dir else None
        sha = download(keep)
        self.cache.record(f"{kind}:{key}", size, stamp, sha)
        self.on_file()
        return sha, keep

    @staticmethod
    def _listed(repo: str, item: dict[str, Any]) -> tuple[str, int, Any]:
        """An item's key, size and publish stamp, as its repository's list gives them."""
        return (f"{repo}/{item['name']}", int(item.get("totalFileSize") or 0),
                item.get("lastPublishDate") or item.get("lastSaveDate"))

    def _known_services(self, key: str, stamp: Any, item: dict[str, Any]) -> Any:
        services = item.get("services")
        if services is None and not self.deep and self.ledger is not None:
            services = self.ledger.trusted_services(key, stamp)  # publish stamp unchanged
        return services

    def _known_item(self, repo: str, item: dict[str, Any]) -> Entry | None:
        """The item's entry without a request, when its services and digest are known."""
        key, size, stamp = self._listed(repo, item)
        services = self._known_services(key, stamp, item)
        sha = self._trusted(Kind.ITEM, key, size, stamp) if services is not None else None
        if sha is None:
            return None
        return file_entry(Kind.ITEM, key, size, sha, service_names(list(services)), None, stamp)

    def _item(self, repo: str, item: dict[str, Any]) -> Entry:
        name = item["name"]
        key, size, stamp = self._listed(repo, item)
        services = self._known_services(key, stamp, item)
        if services is None:  # real lists carry none: one call per item whose stamp moved
            services = self.client.services(repo, name)
        sha, kept = self._file(Kind.ITEM, key, size, stamp,
                               lambda dest: self.client.download_item(repo, name, dest))
        return file_entry(Kind.ITEM, key, size, sha, service_names(list(services)), kept, stamp)

    def _early(self, listing: Future[list[dict[str, Any]]], repo: str) -> list[dict[str, Any]]:
        """A repository's items listed early; again if it did not exist yet back then."""
        try:
            return listing.result()
        except NotFoundError:
            return self.client.items(repo, fields=ITEM_FIELDS)

    def _walk(self, connection: str, folder: str) -> list[dict[str, Any]]:
        try:
            return list(self.client.walk_resources(connection, folder))
        except NotFoundError:
            return []

    def _known_resource(self, connection: str, f: dict[str, Any]) -> Entry | None:
        key = f"{connection}:{f['path']}"
        size = int(f.get("size") or 0)
        sha = self._trusted(Kind.RESOURCE, key, size, f.get("date"))
        return None if sha is None else file_entry(Kind.RESOURCE, key, size, sha,
                                                   stamp=f.get("date"))

    def _resource(self, connection: str, f: dict[str, Any]) -> Entry:
        path = f["path"]
        key = f"{connection}:{path}"
        size = int(f.get("size") or 0)
        sha, kept = self._file(Kind.RESOURCE, key, size, f.get("date"),
                               lambda dest: self.client.download_resource(connection, path, dest))
        return file_entry(Kind.RESOURCE, key, size, sha, local_path=kept, stamp=f.get("date"))
