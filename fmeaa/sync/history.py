"""What a sync replaced on one node, so that it can be put back: the records `fmeaa history` lists
and `fmeaa rollback` restores (README, "Rollback"). Pure: no I/O here (the node store is
`fmeaa/sync/history_store.py`).

Per node and per run that changed it, one record: every entry the run created, updated or
deleted, with the entry as it was before — its definition and, for files, the sha256 of the bytes,
which the node keeps as a content-addressed blob beside the records — and the digest the run
wrote. An index lists the records (oldest first) with the blobs each one holds, so a sync reads
one small file per changed node, and pruning knows which blobs are still needed.

Undoing records composes: for every entry touched by the runs being undone, the oldest of them
says what the entry was before any of them ran.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from fmeaa.sync.plan import Change, NodePlan, plan_node
from fmeaa.sync.snapshot import Entry, Kind, Snapshot

FORMAT = 1
DEFAULT_KEEP = 20  # records each node keeps (README, "Rollback": retention)
SYNC_ID = re.compile(r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}$")
FILE_KINDS = (Kind.ITEM, Kind.RESOURCE)

# What a rollback cannot put back exactly, and why. Removing such an entry that a run created is
# still exact (a delete); restoring its earlier state is not.
NOT_RESTORABLE = {
    Kind.CONNECTION: "a node never returns a connection's credentials, so its earlier state cannot "
                     "be re-sent whole: sync the content directory of that time instead",
    Kind.PROJECT: "a project package cannot be read back from a node byte for byte: sync the "
                  "content directory of that time (its .fsproject) instead",
}


class HistoryError(RuntimeError):
    """A node's history cannot be read or written, or does not reach the sync asked for."""


def new_sync_id(run_id: str, now: datetime | None = None) -> str:
    """`20250301T120000.123Z-9f3a1c`: sortable by time (UTC, milliseconds), then the run."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{run_id[:6].ljust(6, '0')}"


# --- entries as JSON ----------------------------------------------------------------------------
def entry_doc(e: Entry) -> dict[str, Any]:
    """An entry as a record keeps it. Never a connection's `secret_digest` (a digest of
    credentials has no business on a share), never a local path."""
    return {"kind": e.kind.value, "key": e.key, "digest": e.digest, "size": e.size,
            "fileSha256": e.file_sha256, "services": list(e.services), "body": dict(e.body),
            "policy": e.policy, "owner": e.owner}


def entry_from_doc(doc: Mapping[str, Any]) -> Entry:
    return Entry(Kind(doc["kind"]), str(doc["key"]), str(doc["digest"]), size=int(doc["size"]),
                 file_sha256=doc.get("fileSha256"), services=tuple(doc.get("services") or ()),
                 body=dict(doc.get("body") or {}), policy=doc.get("policy"),
                 owner=doc.get("owner"))


# --- one run on one node ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)  # slots: one per changed entry per node
class ChangeRecord:
    kind: Kind
    key: str
    change: str  # create | update | delete
    before: Entry | None  # None: the entry did not exist before the run
    wrote: str | None  # the digest the run wrote (None: it deleted the entry)
    kept_bytes: bool = False  # the earlier bytes were kept as a blob (not for a services change)

    @property
    def id(self) -> tuple[Kind, str]:
        return (self.kind, self.key)


@dataclass
class SyncRecord:
    id: str
    node: str
    operation: str  # sync | publish | rollback
    at: str  # ISO-8601 UTC
    by: str  # user@host
    source: str
    changes: list[ChangeRecord] = field(default_factory=list)

    @property
    def blobs(self) -> set[str]:
        """The blobs this record needs: the earlier bytes of every file it replaced."""
        return {c.before.file_sha256 for c in self.changes
                if c.kept_bytes and c.before is not None and c.before.file_sha256}

    def to_doc(self) -> dict[str, Any]:
        return {**self._head(), "changes": [_change_doc(c) for c in self.changes]}

    def _head(self) -> dict[str, Any]:
        return {"fmeaaHistory": FORMAT, "id": self.id, "node": self.node,
                "operation": self.operation, "at": self.at, "by": self.by, "source": self.source}

    def write_json(self, out: TextIO) -> None:
        """`to_doc` as JSON, written change by change: the record of a sync that creates
        10,000 workspaces never sits in memory as one document (memory: README, "Speed")."""
        out.write(json.dumps(self._head())[:-1] + ',"changes":[')
        for i, c in enumerate(self.changes):
            out.write(("," if i else "") + json.dumps(_change_doc(c)))
        out.write("]}")

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> SyncRecord:
        return cls(str(doc["id"]), str(doc["node"]), str(doc["operation"]), str(doc["at"]),
                   str(doc["by"]), str(doc.get("source", "")),
                   [ChangeRecord(Kind(c["kind"]), str(c["key"]), str(c["change"]),
                                 entry_from_doc(c["before"]) if c.get("before") else None,
                                 c.get("wrote"), bool(c.get("keptBytes")))
                    for c in doc.get("changes", [])])


def _change_doc(c: ChangeRecord) -> dict[str, Any]:
    return {"kind": c.kind.value, "key": c.key, "change": c.change,
            "before": entry_doc(c.before) if c.before else None,
            "wrote": c.wrote, "keptBytes": c.kept_bytes}


# --- the index of one node's records -------------------------------------------------------------
@dataclass
class IndexEntry:
    id: str
    operation: str
    at: str
    by: str
    source: str
    status: str  # applying (not finished: interrupted, or still running) | ok | failed
    counts: dict[str, int]  # create / update / delete → how many
    blobs: list[str]


@dataclass
class HistoryIndex:
    entries: list[IndexEntry] = field(default_factory=list)  # oldest first
    pruned_through: str | None = None  # the newest record dropped by retention

    @property
    def blobs(self) -> set[str]:
        return {b for e in self.entries for b in e.blobs}

    def entry(self, sync_id: str) -> IndexEntry | None:
        return next((e for e in self.entries if e.id == sync_id), None)

    def add(self, record: SyncRecord, status: str = "applying") -> None:
        counts = {c: sum(1 for ch in record.changes if ch.change == c)
                  for c in ("create", "update", "delete")}
        self.entries.append(IndexEntry(record.id, record.operation, record.at, record.by,
                                       record.source, status, counts, sorted(record.blobs)))

    def mark(self, sync_id: str, status: str) -> None:
        found = self.entry(sync_id)
        if found is not None:
            found.status = status

    def prune(self, keep: int) -> tuple[list[IndexEntry], set[str]]:
        """Drop all but the newest `keep` records: (dropped entries, blobs no kept record
        needs)."""
        if keep < 1 or len(self.entries) <= keep:
            return [], set()
        dropped, self.entries = self.entries[:-keep], self.entries[-keep:]
        self.pruned_through = max([self.pruned_through or "", *(e.id for e in dropped)])
        orphans = {b for e in dropped for b in e.blobs} - self.blobs
        return dropped, orphans

    def since(self, sync_id: str, inclusive: bool) -> list[IndexEntry]:
        """The records from `sync_id` on (`inclusive`) or after it, oldest first. A node the run
        `sync_id` did not change holds no record of it: then by id, which sorts by time. Raises
        HistoryError when retention has already dropped records that old."""
        ids = [e.id for e in self.entries]
        if sync_id in ids:
            start = ids.index(sync_id) + (0 if inclusive else 1)
            return self.entries[start:]
        if self.pruned_through and sync_id <= self.pruned_through:
            raise HistoryError(f"its history no longer reaches {sync_id} (it keeps the last "
                               f"{len(self.entries)} syncs; the newest dropped is "
                               f"{self.pruned_through})")
        return [e for e in self.entries if e.id > sync_id]

    def to_doc(self) -> dict[str, Any]:
        return {"fmeaaHistoryIndex": FORMAT, "prunedThrough": self.pruned_through,
                "syncs": [{"id": e.id, "operation": e.operation, "at": e.at, "by": e.by,
                           "source": e.source, "status": e.status, "counts": e.counts,
                           "blobs": e.blobs} for e in self.entries]}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> HistoryIndex:
        if doc.get("fmeaaHistoryIndex") != FORMAT:
            raise ValueError(f"not a history index of format {FORMAT}")
        return cls([IndexEntry(str(s["id"]), str(s["operation"]), str(s["at"]), str(s["by"]),
                               str(s.get("source", "")), str(s["status"]),
                               {k: int(v) for k, v in (s.get("counts") or {}).items()},
                               [str(b) for b in s.get("blobs", [])])
                    for s in doc.get("syncs", [])], doc.get("prunedThrough"))


# --- undoing records ----------------------------------------------------------------------------
@dataclass(frozen=True)
class UndoTarget:
    """What one entry goes back to: `before` from the oldest record undone (None: remove it),
    `wrote` from the newest (to tell whether someone changed it on the node since)."""

    kind: Kind
    key: str
    before: Entry | None
    wrote: str | None


def undo_targets(records: Sequence[SyncRecord]) -> dict[tuple[Kind, str], UndoTarget]:
    """Compose the records being undone (oldest first): per entry, the oldest `before`."""
    targets: dict[tuple[Kind, str], UndoTarget] = {}
    for record in records:
        for c in record.changes:
            first = targets.get(c.id)
            targets[c.id] = UndoTarget(c.kind, c.key, first.before if first else c.before,
                                       c.wrote)
    return targets


@dataclass
class RollbackPlan:
    node: str
    plan: NodePlan
    skipped: list[tuple[Kind, str, str]] = field(default_factory=list)  # (kind, key, why)
    changed_since: list[str] = field(default_factory=list)  # keys changed on the node since


def resource_roots(keys: Iterable[str]) -> set[tuple[str, str]]:
    """The folders to read so that every resource key is seen: each one's parent folder."""
    roots = set()
    for key in keys:
        connection, _, path = key.partition(":")
        roots.add((connection, path.rsplit("/", 1)[0] or "/"))
    return roots


def plan_rollback(node: str, targets: Mapping[tuple[Kind, str], UndoTarget], actual: Snapshot,
                  blobs: set[str]) -> RollbackPlan:
    """The actions that put every target entry back as it was (pure). Only the entries the
    undone runs touched are looked at; anything else on the node is left alone. `blobs`: the
    bytes the node's history still holds."""
    desired: list[Entry] = []
    held: list[Entry] = []
    skipped: list[tuple[Kind, str, str]] = []
    changed_since: list[str] = []
    for target_id, target in sorted(targets.items()):
        now = actual.get(target_id)
        before = target.before
        if before is not None and target.kind in NOT_RESTORABLE:
            skipped.append((target.kind, target.key, NOT_RESTORABLE[target.kind]))
            continue
        if before is not None and target.kind in FILE_KINDS and before.file_sha256 not in blobs \
                and not (now is not None and now.file_sha256 == before.file_sha256):
            skipped.append((target.kind, target.key, "its earlier bytes are no longer kept"))
            continue
        if (now.digest if now else None) != target.wrote:
            changed_since.append(f"{target.kind} {target.key}")
        if before is not None:
            desired.append(before)
        if now is not None:
            held.append(now)
    # Every kind is "managed" here: an entry a run created and the node still holds is deleted.
    plan = plan_node(node, Snapshot(desired, whole_kinds=list(Kind)), Snapshot(held), prune=True)
    return RollbackPlan(node, plan, skipped, changed_since)


def needs_bytes(plan: NodePlan) -> list[Entry]:
    """The entries whose earlier bytes must be uploaded again (not a services-only update)."""
    return [a.desired for a in plan.changes
            if a.desired is not None and a.kind in FILE_KINDS and a.change is not Change.DELETE
            and a.detail != "services"]
