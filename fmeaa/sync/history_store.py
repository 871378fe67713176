"""One node's history, kept on the node itself: `FME_SHAREDRESOURCE_BACKUP/fme-aa/history/` —
`index.json`, `syncs/<sync-id>.json` and `blobs/<sha256>` (the earlier bytes of replaced files,
content-addressed: a file kept by ten records is stored once).

Why on the node: like the cluster lock (fmeaa/cluster/cluster_lock.py), it is the one place
every operator's machine reaches with the credentials it already has, and the backup connection
is node-local and never synced, so history never shows up as content. Each node keeps the
history of its own content: a rollback restores each node from its own records.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from fmeaa.client import FmeApiError, FmeClient, NotFoundError
from fmeaa.client.rest import service_names
from fmeaa.cluster.cluster_lock import LOCK_CONNECTION, LOCK_DIRECTORY
from fmeaa.sync.history import HistoryError, HistoryIndex, SyncRecord
from fmeaa.sync.snapshot import Entry, Kind, file_entry, split_item_key, split_resource_key

HISTORY_CONNECTION = LOCK_CONNECTION
HISTORY_DIR = f"{LOCK_DIRECTORY}/history"
SYNCS_DIR = f"{HISTORY_DIR}/syncs"
BLOBS_DIR = f"{HISTORY_DIR}/blobs"
INDEX_NAME = "index.json"


class NodeHistory:
    """Read and write one node's history through its REST client; `spool` is a local scratch
    directory of this run."""

    def __init__(self, client: FmeClient, spool: Path) -> None:
        self.client = client
        self.spool = spool / client.node
        self.spool.mkdir(parents=True, exist_ok=True)

    @property
    def node(self) -> str:
        return self.client.node

    # --- JSON documents -----------------------------------------------------------------------
    def _read_json(self, directory: str, name: str) -> dict | None:
        dest = self.spool / f"read-{name}"
        try:
            self.client.download_resource(HISTORY_CONNECTION, f"{directory}/{name}", dest)
        except NotFoundError:
            return None
        try:
            return json.loads(dest.read_text())
        except ValueError as exc:
            raise HistoryError(f"{self.node}: {HISTORY_CONNECTION}/{directory}/{name} is not "
                               f"readable JSON ({exc}); move it aside to start a new history"
                               ) from None
        finally:
            dest.unlink(missing_ok=True)

    def _write_json(self, directory: str, name: str, document: dict | SyncRecord) -> None:
        path = self.spool / name
        with path.open("w", encoding="utf-8") as out:
            if isinstance(document, SyncRecord):
                document.write_json(out)  # streamed: a record can hold 10,000 changes
            else:
                json.dump(document, out, indent=1)
        try:  # replaces the file whole: safe to repeat after a transient error
            self.client.idempotent(lambda: self.client.upload_resource(
                HISTORY_CONNECTION, directory, path, name=name, overwrite=True))
        finally:
            path.unlink(missing_ok=True)

    def read_index(self) -> HistoryIndex:
        doc = self._read_json(HISTORY_DIR, INDEX_NAME)
        if doc is None:
            return HistoryIndex()
        try:
            return HistoryIndex.from_doc(doc)
        except (ValueError, KeyError, TypeError) as exc:
            raise HistoryError(f"{self.node}: {HISTORY_CONNECTION}/{HISTORY_DIR}/{INDEX_NAME} is "
                               f"not a history index ({exc}); move it aside to start a new "
                               "history") from None

    def write_index(self, index: HistoryIndex) -> None:
        self._write_json(HISTORY_DIR, INDEX_NAME, index.to_doc())

    def read_record(self, sync_id: str) -> SyncRecord:
        doc = self._read_json(SYNCS_DIR, f"{sync_id}.json")
        if doc is None:
            raise HistoryError(f"{self.node}: the record of {sync_id} is missing from "
                               f"{HISTORY_CONNECTION}/{SYNCS_DIR}")
        return SyncRecord.from_doc(doc)

    def write_record(self, record: SyncRecord) -> None:
        self._write_json(SYNCS_DIR, f"{record.id}.json", record)

    def _delete(self, path: str) -> None:
        """Delete, retried after a transient error (gone already, by then, is done)."""
        def once() -> None:
            with contextlib.suppress(NotFoundError):
                self.client.delete_resource(HISTORY_CONNECTION, path)
        self.client.idempotent(once)

    def delete_record(self, sync_id: str) -> None:
        self._delete(f"{SYNCS_DIR}/{sync_id}.json")

    def items_of(self, repository: str) -> list[Entry]:
        """The items of a repository a run is about to delete (deleting the repository deletes
        them, so the plan lists no action of their own), to be kept with it."""
        found = []
        for item in self.client.items(repository):
            name = item["name"]
            services = item.get("services")
            if services is None:
                services = self.client.services(repository, name)
            found.append(file_entry(Kind.ITEM, f"{repository}/{name}",
                                    int(item.get("totalFileSize") or 0), "",
                                    service_names(services)))
        return found

    # --- blobs --------------------------------------------------------------------------------
    def keep_bytes(self, entry: Entry, known: set[str]) -> Entry:
        """Download the node's current bytes of `entry` and keep them as a blob (unless one with
        the same sha256 is already kept). Returns the entry with the sha256 of what was read:
        the node's bytes, not a remembered digest, are what a rollback restores."""
        dest = self.spool / "current"
        try:
            if entry.kind is Kind.ITEM:
                sha = self.client.download_item(*split_item_key(entry.key), dest)
            else:
                sha = self.client.download_resource(*split_resource_key(entry.key), dest)
            size = dest.stat().st_size
            if sha not in known:  # named by its sha256: safe to repeat
                self.client.idempotent(lambda: self.client.upload_resource(
                    HISTORY_CONNECTION, BLOBS_DIR, dest, name=sha, overwrite=True))
                known.add(sha)
        finally:
            dest.unlink(missing_ok=True)
        if sha == entry.file_sha256 and size == entry.size:
            return entry
        return file_entry(entry.kind, entry.key, size, sha, entry.services)

    def fetch_blob(self, sha: str, dest: Path) -> Path:
        """A kept blob, downloaded to `dest` and checked against its name."""
        got = self.client.download_resource(HISTORY_CONNECTION, f"{BLOBS_DIR}/{sha}", dest)
        if got != sha:
            dest.unlink(missing_ok=True)
            raise FmeApiError(self.node, "GET", f"{BLOBS_DIR}/{sha}", None,
                              f"the kept bytes read back with sha256 {got[:12]}…, not "
                              f"{sha[:12]}…: the blob is damaged, it cannot be restored")
        return dest

    def delete_blob(self, sha: str) -> None:
        self._delete(f"{BLOBS_DIR}/{sha}")
