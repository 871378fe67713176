"""Remembered content digests, so a no-op sync does not re-read every byte.

FME's REST API lists an item's size and publish date but no checksum. Like rsync's quick
check, a digest is reused while (size, stamp) is unchanged, and recomputed (by streaming the
bytes) when either moves. Entries written right after an upload have no stamp yet; the next
listing adopts the stamp if the size matches. `verify --deep` ignores the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from fmeaa.sync.bounded import bounded_map

P = TypeVar("P", Path, str)

CHUNK = 1024 * 1024


class DigestCache:
    """key → (size, stamp, sha256), persisted as one JSON file (written atomically)."""

    def __init__(self, path: Path | None, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self._lock = threading.Lock()
        self._entries: dict[str, list] = {}
        if path is not None and enabled and path.is_file():
            try:
                self._entries = json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                self._entries = {}  # a damaged cache only costs re-hashing

    def lookup(self, key: str, size: int, stamp: str | int | None) -> str | None:
        if not self.enabled:
            return None
        with self._lock:
            found = self._entries.get(key)
            if not found or found[0] != size:
                return None
            if found[1] is None and stamp is not None:  # first listing after our own upload
                found[1] = stamp
                return found[2]
            return found[2] if found[1] == stamp else None

    def record(self, key: str, size: int, stamp: str | int | None, sha256: str) -> None:
        key = sys.intern(key)  # the same text as the node's ledger key: one copy, not two
        with self._lock:
            self._entries[key] = [size, stamp, sha256]

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def save(self) -> None:
        if self.path is None or not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with self._lock:
            tmp.write_text(json.dumps(self._entries))
        tmp.replace(self.path)


def _remembered(path: Path | str, cache: DigestCache | None) -> str | None:
    if cache is None:
        return None
    stat = os.stat(path)
    return cache.lookup(os.fspath(path), stat.st_size, stat.st_mtime_ns)  # absolute paths


def file_sha256(path: Path | str, cache: DigestCache | None = None) -> str:
    """sha256 of a local file, streamed; cached by (size, mtime_ns)."""
    if hit := _remembered(path, cache):
        return hit
    stat = os.stat(path)
    key = os.fspath(path)
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    if cache is not None:
        cache.record(key, stat.st_size, stat.st_mtime_ns, digest.hexdigest())
    return digest.hexdigest()


def files_sha256(paths: Sequence[P], cache: DigestCache | None = None) -> dict[P, str]:
    """Digests of many files: remembered ones first (a no-op run hashes nothing), the rest on
    all cores (hashlib releases the GIL on large buffers)."""
    digests = {p: hit for p in paths if (hit := _remembered(p, cache))}
    misses = [p for p in paths if p not in digests]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        digests.update(zip(misses, bounded_map(pool, lambda p: file_sha256(p, cache), misses,
                                               ahead=64), strict=True))
    return digests
