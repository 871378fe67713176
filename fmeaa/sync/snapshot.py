"""What one FME node holds (or should hold), as comparable entries with content digests.

The same shape describes the desired content (from a content directory or a reference node)
and each node's actual content, so the planner compares like with like. Metadata bodies are
reduced to the fields fme-aa manages ("canonical" bodies) before digesting, so server-added
fields (ids, timestamps) never look like drift.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fmeaa.sync.manifest import SECRET_PARAMETER


class Kind(StrEnum):
    REPOSITORY = "repository"
    TOPIC = "topic"
    CONNECTION = "connection"
    DEPLOYMENT_PARAMETER = "deployment-parameter"
    ITEM = "item"
    RESOURCE = "resource"
    SUBSCRIPTION = "subscription"
    PUBLICATION = "publication"
    SCHEDULE = "schedule"
    PROJECT = "project"


# Creation order: what an entry depends on comes first (an item needs its repository, a
# subscription its topics, a schedule its workspace). Deletion runs in the reverse order.
APPLY_ORDER = (Kind.REPOSITORY, Kind.TOPIC, Kind.CONNECTION, Kind.DEPLOYMENT_PARAMETER, Kind.ITEM,
               Kind.RESOURCE, Kind.SUBSCRIPTION, Kind.PUBLICATION, Kind.SCHEDULE, Kind.PROJECT)
FILE_KINDS = (Kind.ITEM, Kind.RESOURCE, Kind.PROJECT)

# The fields of each metadata kind that fme-aa manages, with the server's defaults.
CANONICAL_FIELDS: dict[Kind, dict[str, Any]] = {
    Kind.REPOSITORY: {"name": "", "description": ""},
    Kind.TOPIC: {"name": "", "description": ""},
    Kind.SUBSCRIPTION: {"name": "", "description": "", "subscriberName": "", "topics": [],
                        "properties": {}},
    Kind.PUBLICATION: {"name": "", "description": "", "publisherName": "", "topics": [],
                       "properties": {}},
    Kind.CONNECTION: {"name": "", "category": "", "type": "", "parameters": {}},
    # A text parameter has no choiceSettings: {} (fmeflow-cli deploymentparameters_test.go).
    Kind.DEPLOYMENT_PARAMETER: {"name": "", "type": "text", "value": "", "choiceSettings": {}},
    Kind.SCHEDULE: {"name": "", "category": "", "description": "", "enabled": True,
                    "recurrence": "cron", "cron": "", "repository": "", "workspace": "",
                    "request": {}},
}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_body(kind: Kind, body: Mapping[str, Any]) -> dict[str, Any]:
    fields = CANONICAL_FIELDS[kind]
    result = {k: body.get(k, default) for k, default in fields.items()}
    if "topics" in result:
        result["topics"] = sorted(result["topics"] or [])
    if "choiceSettings" in result:  # absent, null and empty settings are one thing
        result["choiceSettings"] = {k: v for k, v in (result["choiceSettings"] or {}).items()
                                    if v not in (None, [], "")}
    return result


def body_digest(kind: Kind, body: Mapping[str, Any], secret_digest: str = "") -> str:
    # Repositories have no update call in the API: only their existence is compared.
    if kind is Kind.REPOSITORY:
        return sha256_text(str(body.get("name", "")))
    canonical = canonical_body(kind, body)
    if kind is Kind.CONNECTION:
        # Nodes never return credential values, so those are compared through `secret_digest`
        # (desired: of the resolved values; actual: what fme-aa last wrote, remembered locally).
        canonical["parameters"] = public_parameters(canonical["parameters"])
        return sha256_text(json.dumps(canonical, sort_keys=True, default=str) + "|" + secret_digest)
    return sha256_text(json.dumps(canonical, sort_keys=True, default=str))


def public_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parameters.items() if not SECRET_PARAMETER.search(k)}


def secret_parameters_digest(parameters: Mapping[str, Any]) -> str:
    secret = {k: v for k, v in parameters.items() if SECRET_PARAMETER.search(k)}
    return sha256_text(json.dumps(secret, sort_keys=True, default=str))


def item_digest(file_sha256: str, services: Iterable[str]) -> str:
    return sha256_text(f"{file_sha256}|{','.join(sorted(services))}")


NO_BODY: Mapping[str, Any] = MappingProxyType({})  # shared by entries without a body (files)


@dataclass(frozen=True, slots=True)  # slots: a sync holds several entries per workspace
class Entry:
    """One piece of content. `key` is unique within its kind:
    repository `R`, item `R/name`, resource `CONNECTION:/path`, topic/subscription/publication
    `name`, schedule `category/name`."""

    kind: Kind
    key: str
    digest: str
    size: int = 0
    file_sha256: str | None = None
    services: tuple[str, ...] = ()
    body: Mapping[str, Any] = field(default_factory=lambda: NO_BODY, compare=False, hash=False)
    # Where the bytes are on this machine, if they are: kept as text (a Path object costs four
    # times the memory, and a sync holds one per workspace); `local_path` gives the Path.
    local_file: str | None = field(default=None, compare=False, hash=False)
    secret_digest: str | None = None  # connections: digest of the credential parameters
    policy: str | None = None  # schedules: "all" | "one"
    owner: str | None = None  # schedules with policy "one": the node where it is enabled
    # The node's own date stamp (items: lastPublishDate, resources: date, projects:
    # lastUpdated): not part of the content, but what the ledger compares to trust a digest.
    stamp: str | int | float | None = field(default=None, compare=False, hash=False)

    @property
    def id(self) -> tuple[Kind, str]:
        return (self.kind, self.key)

    @property
    def short(self) -> str:
        return self.digest[:12]

    @property
    def local_path(self) -> Path | None:
        return None if self.local_file is None else Path(self.local_file)


def metadata_entry(kind: Kind, body: Mapping[str, Any], secret_digest: str = "",
                   **extra: Any) -> Entry:
    canonical = canonical_body(kind, body)
    key = f"{canonical['category']}/{canonical['name']}" if kind is Kind.SCHEDULE \
        else str(canonical["name"])
    return Entry(kind, key, body_digest(kind, canonical, secret_digest), body=canonical,
                 secret_digest=secret_digest or None, **extra)


_SERVICE_SETS: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per set of services


def file_entry(kind: Kind, key: str, size: int, file_sha256: str,
               services: Iterable[str] = (), local_path: Path | None = None,
               stamp: str | int | float | None = None) -> Entry:
    # A sync holds each file's entry several times (the source, every node, before and after):
    # equal digests and service sets are shared, not copied (memory: README, "Speed").
    key = sys.intern(key)
    services = tuple(sorted(services))
    if len(_SERVICE_SETS) < 1024:
        services = _SERVICE_SETS.setdefault(services, services)
    if file_sha256:
        file_sha256 = sys.intern(file_sha256)
    digest = sys.intern(item_digest(file_sha256, services)) if kind is Kind.ITEM \
        else file_sha256
    return Entry(kind, key, digest, size=size, file_sha256=file_sha256, services=services,
                 local_file=None if local_path is None else str(local_path), stamp=stamp)


def split_item_key(key: str) -> tuple[str, str]:
    repo, _, name = key.partition("/")
    return repo, name


def split_resource_key(key: str) -> tuple[str, str]:
    connection, _, path = key.partition(":")
    return connection, path


class Snapshot(Mapping[tuple[Kind, str], Entry]):
    """Entries by (kind, key), plus, for a desired snapshot, what its source manages."""

    def __init__(self, entries: Iterable[Entry] = (),
                 resource_roots: Iterable[tuple[str, str]] = (),
                 whole_kinds: Iterable[Kind] = (), silent_kinds: Iterable[Kind] = (),
                 ignore: Iterable[tuple[Kind, str]] = ()) -> None:
        self._entries = {e.id: e for e in entries}
        self.resource_roots = frozenset(resource_roots)  # (connection, "/folder")
        # Kinds this (desired) snapshot speaks for in full: every entry of them that a node
        # holds is managed (a reference node's content; connections under a `connections:` key).
        self.whole_kinds = frozenset(whole_kinds)
        # Kinds it says nothing about: not managed, and not even reported by verify (connections
        # without a `connections:` key; a reference node's connections).
        self.silent_kinds = frozenset(silent_kinds)
        # Known noise (the manifest's `ignore:`): (kind, glob of keys) a node rewrites itself.
        self.ignore = tuple(ignore)

    def __getitem__(self, key: tuple[Kind, str]) -> Entry:
        return self._entries[key]

    def __iter__(self) -> Iterator[tuple[Kind, str]]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def of(self, kind: Kind) -> list[Entry]:
        return sorted((e for e in self._entries.values() if e.kind is kind), key=lambda e: e.key)

    def manages(self, entry: Entry) -> bool:
        """Whether an entry a node holds is this (desired) snapshot's business — the ONE
        definition of "managed" that plan, prune and verify share. Managed are: what the source
        lists; every item of a repository it lists; every file below a resource folder it lists;
        every entry of a kind it speaks for in full (`whole_kinds`). A managed entry the source
        does not hold is `extra` (deleted with --prune); anything else is never touched."""
        if entry.kind in self.silent_kinds:
            return False
        if entry.id in self._entries or entry.kind in self.whole_kinds:
            return True
        if entry.kind is Kind.ITEM:
            return (Kind.REPOSITORY, split_item_key(entry.key)[0]) in self._entries
        if entry.kind is Kind.RESOURCE:
            return self.covers_resource(entry.key)
        return False

    def ignores(self, entry: Entry) -> bool:
        """Whether an entry is known noise: never updated, deleted or reported (it is still
        created on a node that lacks it, when the source lists it)."""
        return any(kind == entry.kind and fnmatch.fnmatchcase(entry.key, pattern)
                   for kind, pattern in self.ignore)

    def covers_resource(self, key: str) -> bool:
        """True if the resource lies in a folder this (desired) snapshot manages."""
        connection, path = split_resource_key(key)
        for root_connection, folder in self.resource_roots:
            # The root folder "/" strips to "": every path below it starts with "/".
            if connection == root_connection and (path == folder
                                                  or path.startswith(folder.rstrip("/") + "/")):
                return True
        return False

    def with_entries(self, entries: Iterable[Entry]) -> Snapshot:
        return Snapshot(entries, self.resource_roots, self.whole_kinds, self.silent_kinds,
                        self.ignore)

    def replacing(self, entries: Mapping[tuple[Kind, str], Entry]) -> Snapshot:
        """This snapshot with some entries replaced (by id); the others are shared."""
        copy = self.with_entries(())
        copy._entries = {**self._entries, **entries}
        return copy


# What a reference node speaks for: everything it holds but connections (a node never returns
# their credentials) and resources (only the folders it is read from).
REFERENCE_NODE_KINDS = tuple(k for k in Kind if k not in (Kind.CONNECTION, Kind.RESOURCE))


def schedule_for_node(entry: Entry, node: str, default_owner: str) -> Entry:
    """A schedule as `node` must hold it: with policy "one", enabled only on its owner, since a
    schedule enabled on N nodes fires N times."""
    if entry.kind is not Kind.SCHEDULE or entry.policy != "one":
        return entry
    owner = entry.owner or default_owner
    enabled = bool(entry.body.get("enabled", True)) and node == owner
    body = {**entry.body, "enabled": enabled}
    return replace(entry, body=body, digest=body_digest(Kind.SCHEDULE, body), owner=owner)
