"""The ledger: a record of what fmeaa wrote, kept on each node itself.

Why on the node: any machine — a new CI runner with an empty cache, a colleague's laptop —
must be able to tell, without downloading a byte, that an entry is still what fmeaa last wrote
there, and a changed entry must say whether the *source* moved (pending) or the *node* did
(drift). A local cache cannot do either; the node can carry its own record.

Where: `FME_SHAREDRESOURCE_BACKUP/fme-aa/` (beside the cluster lock, `fmeaa/cluster/
cluster_lock.py`: node-local, never synced, kept across FME restarts — UNCONFIRMED for every
cleanup setting). Two JSON files:

- `ledger.json`, the base: `{"fmeaaLedger": 1, "node", "generation", "updatedAt",
  "entries": {"KIND:KEY": ENTRY}}`;
- `ledger-delta.json`, what changed since that base: `{"fmeaaLedgerDelta": 1, "base":
  GENERATION, "put": {"KIND:KEY": ENTRY}, "drop": ["KIND:KEY", …]}`, so a sync that changes 1 %
  of 10,000 entries sends a few hundred bytes, not the whole record. A delta is folded into a
  new base (generation + 1) once it holds more than a quarter of the entries; a delta whose
  `base` is not the base's generation is stale (left by a run that stopped between writing a
  new base and deleting the delta) and ignored.

ENTRY (`LedgerEntry`), one per entry the node holds as fmeaa wrote or confirmed it:
`digest` (the entry's digest as the planner compares it, `fmeaa.sync.snapshot.Entry.digest`),
`size` and `stamp` (the node's own size and date for it: an item's lastPublishDate, a
resource's date, a project's lastUpdated; absent for metadata), `sha256` (of the file bytes),
`services` (items), `secretDigest` (connections: of the credentials fmeaa sent), `writtenAt`
(epoch seconds), `syncId` and `user` (the run that wrote it).

Public API: `read(client) -> Ledger`, `write(client, ledger) -> str`, `Ledger` (`get`,
`record`, `settle`, and the trust rules `trusted_sha256` / `trusted_services`), `LedgerEntry`.
Reading never fails a run: a missing, unreadable or damaged ledger reads as empty (entries are
then downloaded and hashed, as with no ledger at all).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fmeaa.client import FmeApiError, FmeClient, NotFoundError
from fmeaa.sync.snapshot import Entry, Kind, Snapshot

LEDGER_CONNECTION = "FME_SHAREDRESOURCE_BACKUP"
LEDGER_DIRECTORY = "fme-aa"
BASE_NAME = "ledger.json"
DELTA_NAME = "ledger-delta.json"
BASE_PATH = f"{LEDGER_DIRECTORY}/{BASE_NAME}"
DELTA_PATH = f"{LEDGER_DIRECTORY}/{DELTA_NAME}"
COMPACT_MIN = 64  # a delta up to this many changes is never folded (small ledgers)

Stamp = str | int | float | None


def entry_key(kind: Kind | str, key: str) -> str:
    """"KIND:KEY", interned: every node's ledger and digest cache hold it (memory)."""
    return sys.intern(f"{kind}:{key}")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What fmeaa wrote (or found identical and confirmed) for one entry on one node."""

    digest: str
    size: int = 0
    stamp: Stamp = None  # None: written, the node's stamp not seen yet (adopted on next read)
    sha256: str | None = None
    services: tuple[str, ...] = ()
    secret_digest: str | None = None
    written_at: float = 0.0
    sync_id: str = ""
    user: str = ""

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        doc = {"digest": raw["digest"], "size": raw["size"], "stamp": raw["stamp"],
               "sha256": raw["sha256"], "services": list(raw["services"]),
               "secretDigest": raw["secret_digest"], "writtenAt": raw["written_at"],
               "syncId": raw["sync_id"], "user": raw["user"]}
        return {k: v for k, v in doc.items() if v not in (None, [], "")}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LedgerEntry:
        return cls(digest=str(doc["digest"]), size=int(doc.get("size") or 0),
                   stamp=doc.get("stamp"), sha256=doc.get("sha256"),
                   services=tuple(sorted(doc.get("services") or ())),
                   secret_digest=doc.get("secretDigest"),
                   written_at=float(doc.get("writtenAt") or 0.0),
                   sync_id=str(doc.get("syncId") or ""), user=str(doc.get("user") or ""))

    @classmethod
    def of(cls, entry: Entry, sync_id: str, user: str, at: float | None = None) -> LedgerEntry:
        """The record of an entry as a node holds it (`entry` read from the node)."""
        return cls(digest=entry.digest, size=entry.size, stamp=entry.stamp,
                   sha256=entry.file_sha256, services=tuple(entry.services),
                   secret_digest=entry.secret_digest, written_at=time.time() if at is None else at,
                   sync_id=sync_id, user=user)


@dataclass(frozen=True)
class SyncRun:
    """Who writes: stamped on each entry a run writes (`fmeaa history` and drift reports)."""

    sync_id: str
    user: str


@dataclass
class Ledger:
    """One node's ledger: entries by "KIND:KEY". Thread-safe for `record` (appliers run
    several actions of one node at once)."""

    node: str
    entries: dict[str, LedgerEntry] = field(default_factory=dict)
    generation: int = 0  # of the base this ledger was read from (0: none)
    damaged: str | None = None  # why what the node holds could not be used, if so
    _base: dict[str, LedgerEntry] = field(default_factory=dict, repr=False)
    _read: dict[str, LedgerEntry] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, kind: Kind | str, key: str) -> LedgerEntry | None:
        return self.entries.get(entry_key(kind, key))

    def digests(self) -> dict[tuple[Kind, str], str]:
        """Recorded digests by entry id (what the planner needs for causes)."""
        found = {}
        for k, e in self.entries.items():
            kind, _, key = k.partition(":")
            with contextlib.suppress(ValueError):  # a kind this version does not know
                found[(Kind(kind), key)] = e.digest
        return found

    # --- trust: what a reader may take from the ledger instead of downloading -----------------
    def trusted_sha256(self, kind: Kind, key: str, size: int, stamp: Stamp) -> str | None:
        """The file digest fmeaa recorded, while the node's size and date stamp are the ones
        recorded (an entry written whose stamp was not known yet takes any stamp once, if the
        size matches: the first listing after an upload)."""
        found = self.get(kind, key)
        if found is None or found.sha256 is None or found.size != size:
            return None
        return found.sha256 if found.stamp is None or found.stamp == stamp else None

    def trusted_services(self, key: str, stamp: Stamp) -> tuple[str, ...] | None:
        """An item's services as fmeaa set them, while its publish stamp has not moved."""
        found = self.get(Kind.ITEM, key)
        if found is None or stamp is None or found.stamp not in (None, stamp):
            return None
        return found.services

    def secret_digest(self, key: str) -> str | None:
        found = self.get(Kind.CONNECTION, key)
        return found.secret_digest if found else None

    # --- changes ----------------------------------------------------------------------------
    def record(self, kind: Kind, key: str, entry: LedgerEntry) -> None:
        """What an applier just wrote (its stamp as the node answered, or None)."""
        with self._lock:
            self.entries[entry_key(kind, key)] = entry

    def forget(self, kind: Kind, key: str) -> None:
        with self._lock:
            self.entries.pop(entry_key(kind, key), None)

    def settle(self, wanted: Snapshot, actual: Snapshot, run: SyncRun) -> None:
        """After a sync: record every entry the node now holds as `wanted` has it (with the
        node's current stamps). An entry that differs keeps its previous record — the node
        holds something fmeaa did not write (drift), or an update failed (still pending) — and
        records of entries gone from the node are dropped unless the source still wants them
        (fmeaa wrote it and it vanished: drift). Ignored entries are left as they were."""
        now = time.time()
        with self._lock:
            new: dict[str, LedgerEntry] = {}
            for id, have in actual.items():
                k = entry_key(*id)
                if wanted.ignores(have):
                    if k in self.entries:
                        new[k] = self.entries[k]
                    continue
                want = wanted.get(id)
                before = self.entries.get(k)
                if want is not None and want.digest == have.digest:
                    if before is not None and before.digest == have.digest and before.sync_id:
                        new[k] = LedgerEntry.of(have, before.sync_id, before.user,
                                                before.written_at)  # same content, new stamps
                    else:
                        new[k] = LedgerEntry.of(have, run.sync_id, run.user, now)
                elif before is not None:
                    new[k] = before
            for k, before in self.entries.items():
                if k in new:
                    continue
                kind, _, key = k.partition(":")
                known = kind in Kind.__members__.values()
                unseen = not known or (kind == Kind.RESOURCE and not actual.covers_resource(key))
                if unseen or (Kind(kind), key) in wanted:  # not read now, or fmeaa wrote it and
                    new[k] = before  # it vanished (drift)
            self.entries = new

    # --- serialisation ------------------------------------------------------------------------
    def write_base(self, path: Path, generation: int) -> None:
        """The base document, written entry by entry (10,000 entries never sit in memory as
        one string)."""
        head = json.dumps({"fmeaaLedger": 1, "node": self.node, "generation": generation,
                           "updatedAt": time.time()}, separators=(",", ":"))
        with path.open("w", encoding="utf-8") as out:
            out.write(head[:-1] + ',"entries":{')
            for i, (k, e) in enumerate(sorted(self.entries.items())):
                out.write(("," if i else "") + json.dumps(k) + ":"
                          + json.dumps(e.to_json(), separators=(",", ":")))
            out.write("}}")

    def changes_from_base(self) -> tuple[list[str], list[str]]:
        """Keys put (new or changed) and dropped since the base this ledger was read from."""
        put = sorted(k for k, e in self.entries.items() if self._base.get(k) != e)
        return put, sorted(k for k in self._base if k not in self.entries)

    def delta_document(self, put: list[str], drop: list[str]) -> bytes:
        doc = {"fmeaaLedgerDelta": 1, "node": self.node, "base": self.generation,
               "updatedAt": time.time(), "put": {k: self.entries[k].to_json() for k in put},
               "drop": drop}
        return json.dumps(doc, separators=(",", ":")).encode()

    def _loaded(self, base: dict[str, LedgerEntry], generation: int) -> None:
        """Remember what the node holds now (after a read or a write)."""
        self._base = dict(base)
        self._read = dict(self.entries)
        self.generation = generation

    @property
    def changed(self) -> bool:
        """Whether the entries differ from what the node holds."""
        return self.entries != self._read


def _entries(raw: Mapping[str, Any]) -> dict[str, LedgerEntry]:
    return {str(k): LedgerEntry.from_json(v) for k, v in raw.items()}


def _download(client: FmeClient, path: str, spool: Path) -> dict[str, Any] | None:
    """A JSON document of the ledger folder; None when the node has none."""
    target = spool / Path(path).name
    try:
        client.download_resource(LEDGER_CONNECTION, path, target)
    except NotFoundError:
        return None
    doc = json.loads(target.read_bytes())
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not a JSON object")
    return doc


def read(client: FmeClient) -> Ledger:
    """The node's ledger (base + delta). Empty when it has none; empty with `damaged` set when
    it cannot be read or parsed (the run then trusts nothing, which costs downloads only)."""
    ledger = Ledger(client.node)
    with tempfile.TemporaryDirectory(prefix="fmeaa-ledger-") as tmp, \
            ThreadPoolExecutor(max_workers=1) as pool:
        try:
            later = pool.submit(_download, client, DELTA_PATH, Path(tmp))  # both at once
            base_doc = _download(client, BASE_PATH, Path(tmp))
            delta = later.result()
            if base_doc is None:
                return ledger
            base = _entries(base_doc["entries"])
            generation = int(base_doc.get("generation") or 1)
            entries = dict(base)
            if delta is not None and int(delta.get("base") or -1) == generation:
                entries.update(_entries(delta.get("put") or {}))
                for gone in delta.get("drop") or []:
                    entries.pop(str(gone), None)
        except FmeApiError as exc:
            ledger.damaged = f"ledger not read: {exc.detail if exc.status is None else exc}"
            return ledger
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            ledger.damaged = f"ledger damaged ({type(exc).__name__}): it will be rewritten"
            return ledger
    ledger.entries = entries
    ledger._loaded(base, generation)
    return ledger


def needs_writing(ledger: Ledger) -> bool:
    """Whether `write` would store anything: the entries changed, or what the node holds is
    damaged (rewritten whole)."""
    return ledger.changed or ledger.damaged is not None


def write(client: FmeClient, ledger: Ledger) -> str:
    """Store the ledger on its node, if it changed: as a delta against the base it was read
    from, or as a new base (then the delta is deleted) when the delta would be large. Returns
    "unchanged", "delta" or "base". Raises FmeApiError when the node refuses."""
    if not needs_writing(ledger):
        return "unchanged"
    with tempfile.TemporaryDirectory(prefix="fmeaa-ledger-") as tmp:
        put, drop = ledger.changes_from_base()
        compact = ledger.generation == 0 or ledger.damaged is not None \
            or len(put) + len(drop) > max(COMPACT_MIN, len(ledger.entries) // 4)
        if not compact:
            path = Path(tmp) / DELTA_NAME
            path.write_bytes(ledger.delta_document(put, drop))
            client.upload_resource(LEDGER_CONNECTION, LEDGER_DIRECTORY, path, name=DELTA_NAME,
                                   overwrite=True)
            ledger._read = dict(ledger.entries)
            return "delta"
        generation = ledger.generation + 1
        path = Path(tmp) / BASE_NAME
        ledger.write_base(path, generation)
        client.upload_resource(LEDGER_CONNECTION, LEDGER_DIRECTORY, path, name=BASE_NAME,
                               overwrite=True)
        with contextlib.suppress(NotFoundError):  # a delta of an older base is ignored anyway
            client.delete_resource(LEDGER_CONNECTION, DELTA_PATH)
        ledger.damaged = None
        ledger._loaded(ledger.entries, generation)
        return "base"

