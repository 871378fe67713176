"""A `one` schedule the source no longer lists stays as sync leaves it: enabled on one node,
disabled on the others. That is the normal state of a `one` schedule, so `verify` calls it
unmanaged (as `sync` calls it extra), not drift; only a spread no policy gives is drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa.emulator import Sandbox
from fmeaa.sync.parity import parity
from fmeaa.sync.snapshot import Kind, Snapshot, metadata_entry
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa

NODES = ["fme-1", "fme-2", "fme-3"]


def schedule(enabled: bool, cron: str = "0 0 2 * * ?"):
    return metadata_entry(Kind.SCHEDULE, {"name": "old", "category": "C", "repository": "R",
                                          "workspace": "w.fmw", "cron": cron, "enabled": enabled})


def status(enabled_on: list[str], cron: dict[str, str] | None = None) -> str:
    actual = {n: Snapshot([schedule(n in enabled_on, (cron or {}).get(n, "0 0 2 * * ?"))])
              for n in NODES}
    report = parity(Snapshot(), actual, NODES, "fme-1")
    assert [r.key for r in report.rows] == ["C/old"]
    return report.rows[0].status


def test_unmanaged_schedule_statuses() -> None:
    assert status(["fme-2"]) == "unmanaged"  # a `one` schedule, owned by fme-2
    assert status([]) == "unmanaged"  # disabled everywhere
    assert status(NODES) == "unmanaged"  # an `all` schedule
    assert status(["fme-1", "fme-3"]) == "drift"  # fires twice: no policy gives that
    assert status(["fme-1"], cron={"fme-3": "0 0 3 * * ?"}) == "drift"  # definitions differ


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json"), copy_example(tmp_path / "content")


def test_sync_and_verify_agree_about_a_schedule_dropped_from_the_manifest(
        env: tuple[Sandbox, Path, Path]) -> None:
    _, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    manifest = content / "fmeaa-content.yaml"
    text = manifest.read_text()
    start = text.index("  - name: hourly-road-check")
    manifest.write_text(text[:start] + text[text.index("resources:"):])
    synced = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert synced.code == 0 and synced.json["ok"]
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json").json
    # No longer listed, so outside what the source manages: sync leaves it alone, plan says
    # nothing about it (README, "What a source manages")...
    assert not [a for n in plan["nodes"].values() for a in n["actions"]
                if a["key"] == "Roads/hourly-road-check"]
    # ...and verify agrees: not drift, although it is enabled on one node only.
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert verify.code == 0, verify.out
    row = next(r for r in verify.json["rows"] if r["key"] == "Roads/hourly-road-check")
    assert row["status"] == "unmanaged" and row["enabledOn"] == ["fme-1"]
