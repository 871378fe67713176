"""The main job on every FME version fmeaa supports: sync, verify, export and `nodes` on nodes
without REST V3 (FME Flow 2026.1), with V3 beside V4 (2023.2), on FME Server without V4 (2022.2),
and on a cluster in the middle of a rolling upgrade (one node 2025.2, the others 2026.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fmeaa.emulator import Sandbox
from tests.conftest import ROOT, TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa, node_items

CLUSTERS = {
    "2026.1": ("2026.1", {}),
    "2023.2": ("2023.2", {}),
    "2022.2": ("2022.2", {}),
    "mixed": ("2026.1", {"fme-1": "2025.2"}),
}


@pytest.mark.parametrize("cluster", list(CLUSTERS))
def test_sync_then_verify_exit_0_on_every_version(cluster: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    version, per_node = CLUSTERS[cluster]
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = copy_example(tmp_path / "content")
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD, fme_version=version,
                 versions=per_node) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        synced = fmeaa("sync", "-s", content, "-i", inventory, "--json")
        assert synced.code == 0, synced.out + synced.err
        assert all(n["created"] == 15 and n["inSync"] for n in synced.json["nodes"].values())
        verify = fmeaa("verify", "-s", content, "-i", inventory, "--json", "--deep")
        assert verify.code == 0 and verify.json["inSync"] is True
        items = [node_items(box, n.name) for n in box.nodes]
        assert items[0] == items[1] == items[2] and len(items[0]) == 5
        assert items[0]["Parcels/parcel_report.fmw"][2] == ["fmejobsubmitter", "fmenotification"]
        for node in box.nodes:
            v3 = httpx.get(node.url + "/fmerest/v3/healthcheck").status_code
            assert (v3 == 200) is node.version.has_v3
        # A change on one file is one update per node, whatever API the node speaks.
        (content / "resources/data/boundary.geojson").write_text('{"type": "changed"}')
        again = fmeaa("sync", "-s", content, "-i", inventory, "--json")
        assert again.code == 0 and {n["applied"] for n in again.json["nodes"].values()} == {1}
        nodes = fmeaa("nodes", "-i", inventory, "--json")
        rows = {r["name"]: (r["version"], r["api"]) for r in nodes.json["nodes"]}
        for node in box.nodes:
            build, api = rows[node.name]
            assert build == node.version.build_string
            assert api == ("v3+v4" if node.version.has_v3 and node.version.has_v4
                           else "v4" if node.version.has_v4 else "v3")


def test_export_round_trips_on_a_node_without_v3(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD,
                 versions={"fme-2": "2025.2"}) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        assert fmeaa("sync", "-s", copy_example(tmp_path / "content"), "-i", inventory,
                     "--node", "fme-1").code == 0
        exported = fmeaa("export", "--from", "fme-1", tmp_path / "exported", "-i", inventory)
        assert exported.code == 0, exported.out + exported.err
        assert fmeaa("sync", "-s", tmp_path / "exported", "-i", inventory,
                     "--node", "fme-2").code == 0
        again = fmeaa("export", "--from", "fme-2", tmp_path / "again", "-i", inventory)
        assert again.code == 0
        # Equal but for where the `one` schedules run (enabled on their owner, fme-1, only).
        def manifest(directory: str) -> list[str]:
            lines = (tmp_path / directory / "fmeaa-content.yaml").read_text().splitlines()[1:]
            return [line for line in lines if not line.startswith(("  enabled:", "  policy:"))]
        assert manifest("exported") == manifest("again")
        assert "repositories/Roads/clip_roads.fmw" in "\n".join(manifest("again"))


def test_sandbox_command_emulates_2026_1_and_the_sync_works_on_it(tmp_path: Path) -> None:
    """The issue's acceptance: `fmeaa sandbox --fme-version 2026.1` nodes answer 404 to GET
    /fmerest/v3/healthcheck, and `fmeaa sync` then `fmeaa verify` of examples/content exit 0."""
    inventory = tmp_path / "nodes.json"
    env = {**os.environ, "FMEAA_PASSWORD": TEST_PASSWORD,
           "FMEAA_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fmeaa", "sandbox", "--nodes", "2", "--fme-version", "2026.1",
         "--inventory", str(inventory), "--state-dir", str(tmp_path / "state"),
         "--duration", "60"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not inventory.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        nodes = json.loads(inventory.read_text())["nodes"]
        for node in nodes:
            assert httpx.get(node["restUrl"] + "/fmerest/v3/healthcheck").status_code == 404
        for command in ("sync", "verify"):
            run = subprocess.run([sys.executable, "-m", "fmeaa", command, "-s",
                                  str(ROOT / "examples" / "content"), "-i", str(inventory)],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stdout + run.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
