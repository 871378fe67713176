"""A second sync is refused before it reads the content: the lock is taken first, so a refusal
costs no hashing of a large content directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fmeaa.cluster.sync_lock import SyncLock
from fmeaa.emulator import Sandbox
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa


def test_a_locked_sync_reads_no_content_file(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = copy_example(tmp_path / "content")
    opened: list[Path] = []
    real_open = Path.open

    def recording_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if content in self.parents and self.name != "fmeaa-content.yaml":
            opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", recording_open)
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        with SyncLock(tmp_path / "cache" / "sandbox.lock"):
            refused = fmeaa("sync", "-s", content, "-i", inventory)
        assert refused.code == 1 and "another fmeaa sync is running" in refused.err
        assert opened == []
        assert all(n.request_count == 0 for n in box.nodes)
        # Unlocked, the same sync reads the files (so the recording above would have seen them).
        assert fmeaa("sync", "-s", content, "-i", inventory).code == 0
        assert any(p.suffix == ".fmw" for p in opened)
