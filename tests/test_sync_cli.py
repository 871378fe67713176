"""End to end: the real `fmeaa` CLI against 3 emulated FME nodes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa.cluster.sync_lock import SyncLock
from fmeaa.emulator import Sandbox
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa, node_items, snapshot_state


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, Path]]:
    """(sandbox, inventory, content dir) with credentials and a private digest cache."""
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        yield box, inventory, copy_example(tmp_path / "content")


def test_sync_change_plan_sync_verify(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    first = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert first.code == 0, first.out + first.err
    assert first.json["ok"] is True
    assert all(n["created"] == 15 and n["inSync"] for n in first.json["nodes"].values())
    items = {name: node_items(box, name) for name in ("fme-1", "fme-2", "fme-3")}
    assert items["fme-1"] == items["fme-2"] == items["fme-3"]
    assert items["fme-1"]["Roads/clip_roads.fmw"][2] == ["fmedatadownload", "fmejobsubmitter"]

    # Change exactly one workspace: the plan shows exactly that update on every node.
    (content / "workspaces/roads/validate_roads.fmw").write_text("#! changed\n")
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json", "--detailed-exitcode")
    assert plan.code == 2
    for node in plan.json["nodes"].values():
        changed = [a for a in node["actions"] if a["change"] not in ("unchanged", "extra")]
        assert changed == [{"change": "update", "kind": "item", "key": "Roads/validate_roads.fmw",
                            "detail": "file", "digest": changed[0]["digest"],
                            "current": changed[0]["current"]}]
        assert node["bytesToSend"] == len("#! changed\n")

    second = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert second.code == 0
    assert {n["bytesSent"] for n in second.json["nodes"].values()} == {len("#! changed\n")}
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert verify.code == 0 and verify.json["inSync"] is True
    assert fmeaa("plan", "-s", content, "-i", inv, "--detailed-exitcode").code == 0
    # A no-op re-run sends nothing.
    noop = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert noop.code == 0
    assert all(n["bytesSent"] == 0 and n["applied"] == 0 for n in noop.json["nodes"].values())


def test_schedule_policy_one_is_enabled_on_one_node_only(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    enabled = {n.name: n.state.schedules[("Parcels", "nightly-parcels")]["enabled"]
               for n in box.nodes}
    assert enabled == {"fme-1": True, "fme-2": False, "fme-3": False}
    report = fmeaa("verify", "-s", content, "-i", inv, "--json").json
    row = next(r for r in report["rows"] if r["key"] == "Parcels/nightly-parcels")
    assert row["enabledOn"] == ["fme-1"]
    # Someone enables it by hand on fme-3: verify reports drift (it would fire twice).
    box.node("fme-3").state.schedules[("Parcels", "nightly-parcels")]["enabled"] = True
    drift = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert drift.code == 1
    row = next(r for r in drift.json["rows"] if r["key"] == "Parcels/nightly-parcels")
    assert row["driftedNodes"] == ["fme-3"] and row["enabledOn"] == ["fme-1", "fme-3"]
    assert "fires more than once" in fmeaa("verify", "-s", content, "-i", inv).out


def test_reference_node_mode(env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    box, inv, _ = env
    from fmeaa.client import connect

    workspace = tmp_path / "published.fmw"
    workspace.write_bytes(b"#! published from Workbench\n" * 100)
    with connect("fme-2", box.node("fme-2").url, username="admin", password=TEST_PASSWORD) as c:
        c.login()
        c.create_repository("Workbench")
        c.upload_item("Workbench", workspace)
        c.set_services("Workbench", "published.fmw", ["fmedatadownload"])
        c.create_notification("topics", {"name": "DONE", "description": ""})
    result = fmeaa("sync", "-s", "node:fme-2", "-i", inv, "--json")
    assert result.code == 0, result.out
    assert set(result.json["nodes"]) == {"fme-1", "fme-3"}  # the reference is not a target
    for name in ("fme-1", "fme-3"):
        assert node_items(box, name)["Workbench/published.fmw"][2] == ["fmedatadownload"]
        assert "DONE" in box.node(name).state.topics
    assert fmeaa("verify", "-s", "node:fme-2", "-i", inv).code == 0


def test_prune_deletes_only_with_flag(env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    from fmeaa.client import connect

    stray = tmp_path / "stray.fmw"
    stray.write_text("not in git")
    with connect("fme-2", box.node("fme-2").url, username="admin", password=TEST_PASSWORD) as c:
        c.login()
        c.upload_item("Roads", stray)
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json").json
    extra = [a for a in plan["nodes"]["fme-2"]["actions"] if a["key"] == "Roads/stray.fmw"]
    assert [a["change"] for a in extra] == ["extra"]
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert "Roads/stray.fmw" in node_items(box, "fme-2")  # kept without --prune
    assert fmeaa("verify", "-s", content, "-i", inv).code == 1  # only on one node: drift
    pruned = fmeaa("sync", "-s", content, "-i", inv, "--prune", "--json")
    assert pruned.code == 0 and pruned.json["nodes"]["fme-2"]["deleted"] >= 1
    assert "Roads/stray.fmw" not in node_items(box, "fme-2")
    # Samples and SAMPLE_TOPIC are not in the content dir: pruned too, on every node.
    assert all("Samples" not in n.state.repositories for n in box.nodes)
    # Everything the source holds is still there.
    assert all(len(node_items(box, n.name)) == 5 for n in box.nodes)
    assert fmeaa("verify", "-s", content, "-i", inv).code == 0


def test_node_down_then_back_converges(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    box.node("fme-3").stop()
    result = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert result.code == 1
    nodes = result.json["nodes"]
    assert nodes["fme-1"]["status"] == nodes["fme-2"]["status"] == "ok"
    assert nodes["fme-3"]["status"] == "unreachable" and "connect" in nodes["fme-3"]["error"]
    assert len(node_items(box, "fme-1")) == 5
    box.node("fme-3").start()
    again = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert again.code == 0
    assert again.json["nodes"]["fme-1"]["applied"] == 0  # nothing re-sent to healthy nodes
    assert again.json["nodes"]["fme-3"]["created"] == 15
    assert fmeaa("verify", "-s", content, "-i", inv).code == 0


def test_transient_5xx_are_retried(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    box.node("fme-2").faults.error_rate = 0.25
    result = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert result.code == 0, result.out
    assert all(n["inSync"] for n in result.json["nodes"].values())
    box.node("fme-2").faults.error_rate = 0
    assert fmeaa("verify", "-s", content, "-i", inv).code == 0


@pytest.mark.parametrize("breakage, message", [
    ("bad-yaml", "malformed YAML at line 3"),
    ("unknown-key", "unknown key"),
    ("missing-file", "file 'workspaces/roads/clip_roads.fmw' does not exist"),
    ("bad-cron", "is not a Quartz cron expression"),
])
def test_bad_content_touches_no_node(env: tuple[Sandbox, Path, Path], breakage: str,
                                     message: str) -> None:
    box, inv, content = env
    manifest = content / "fmeaa-content.yaml"
    text = manifest.read_text()
    if breakage == "bad-yaml":
        manifest.write_text("version: 1\ntopics:\n\t- name: X\nschedules: []\n")
    elif breakage == "unknown-key":
        manifest.write_text(text.replace("description: Cadastre", "descripton: Cadastre"))
    elif breakage == "missing-file":
        (content / "workspaces/roads/clip_roads.fmw").unlink()
    else:
        manifest.write_text(text.replace('"0 0 2 * * ?"', '"0 2 * * *"'))
    before = snapshot_state(box)
    requests = [n.request_count for n in box.nodes]
    result = fmeaa("sync", "-s", content, "-i", inv)
    assert result.code == 1
    assert message in result.err
    assert [n.request_count for n in box.nodes] == requests  # not even contacted
    assert snapshot_state(box) == before


@pytest.mark.parametrize("change, message", [
    ("lb", "node 'fme-2': http://127.0.0.2:9 is the load balancer's address"),
    ("duplicate-name", "node name 'fme-1' appears twice"),
    ("duplicate-url", "nodes 'fme-1' and 'fme-2' have the same URL"),
    ("plain-http", "is plain HTTP, so credentials would cross the network unencrypted"),
])
def test_bad_inventory_touches_no_node(env: tuple[Sandbox, Path, Path], change: str,
                                       message: str) -> None:
    box, inv, content = env
    import json

    doc = json.loads(inv.read_text())
    second = doc["nodes"][1]
    if change == "lb":
        second["restUrl"] = doc["loadBalancer"]["url"]
    elif change == "duplicate-name":
        second["name"] = "fme-1"
    elif change == "duplicate-url":
        second["restUrl"] = doc["nodes"][0]["restUrl"]
    else:
        second["restUrl"] = "http://10.20.30.40:8080"
    inv.write_text(json.dumps(doc))
    requests = [n.request_count for n in box.nodes]
    result = fmeaa("sync", "-s", content, "-i", inv)
    assert result.code == 1
    assert message in result.err
    assert [n.request_count for n in box.nodes] == requests


def test_bad_credentials_change_nothing(env: tuple[Sandbox, Path, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    box, inv, content = env
    monkeypatch.setenv("FMEAA_PASSWORD", "wrong-password-123")
    before = snapshot_state(box)
    result = fmeaa("sync", "-s", content, "-i", inv)
    assert result.code == 1
    assert "rejected the credentials" in result.err and "no node was changed" in result.err
    assert "wrong-password-123" not in result.out + result.err
    assert snapshot_state(box) == before
    monkeypatch.delenv("FMEAA_PASSWORD")
    missing = fmeaa("sync", "-s", content, "-i", inv)
    assert missing.code == 1 and "FMEAA_PASSWORD" in missing.err


def test_concurrent_sync_is_refused(env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    _, inv, content = env
    with SyncLock(tmp_path / "cache" / "sandbox.lock"):
        result = fmeaa("sync", "-s", content, "-i", inv)
    assert result.code == 1 and "another fmeaa sync is running" in result.err
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0  # released


def test_export_round_trips(env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    _, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    first = tmp_path / "export-1"
    assert fmeaa("export", "--from", "fme-1", first, "-i", inv).code == 0
    with Sandbox(1, root=tmp_path / "empty", password=TEST_PASSWORD, prefix="empty") as fresh:
        fresh_inv = fresh.write_inventory(tmp_path / "fresh.json")
        assert fmeaa("sync", "-s", first, "-i", fresh_inv, "--prune").code == 0
        second = tmp_path / "export-2"
        assert fmeaa("export", "--from", "empty-1", second, "-i", fresh_inv).code == 0
    files_1 = {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()}
    files_2 = {p.relative_to(second): p.read_bytes() for p in second.rglob("*") if p.is_file()}
    manifest = Path("fmeaa-content.yaml")
    _, body_1 = files_1.pop(manifest).split(b"\n", 1)
    _, body_2 = files_2.pop(manifest).split(b"\n", 1)
    assert body_1 == body_2 and files_1 == files_2
    assert len(files_1) == 8  # 5 workspaces + 3 resource files


def test_publish_one_workspace_everywhere(env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    box, inv, _ = env
    workspace = tmp_path / "hotfix.fmw"
    workspace.write_text("#! hotfix\n")
    result = fmeaa("publish", workspace, "--repo", "Hotfixes", "--service", "fmedatadownload",
                   "-i", inv, "--json")
    assert result.code == 0, result.out
    for n in box.nodes:
        assert node_items(box, n.name)["Hotfixes/hotfix.fmw"][2] == ["fmedatadownload"]
    again = fmeaa("publish", workspace, "--repo", "Hotfixes", "--service", "fmedatadownload",
                  "-i", inv, "--json")
    assert all(n["applied"] == 0 for n in again.json["nodes"].values())


def test_nodes_lists_health_version_and_licence(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, _ = env
    box.node("fme-2").stop()
    result = fmeaa("nodes", "-i", inv, "--json")
    assert result.code == 0
    rows = {r["name"]: r for r in result.json["nodes"]}
    assert rows["fme-1"]["health"] == "healthy" and "FME Flow" in rows["fme-1"]["version"]
    assert rows["fme-1"]["licensed"] is True and rows["fme-1"]["licenseExpiry"]
    assert rows["fme-2"]["health"] == "unreachable"
    assert rows["fme-3"]["inLoadBalancer"] == "no target group"


def test_demo_rehearsal_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("FMEAA_PASSWORD", "operator-own-value")
    result = fmeaa("demo")
    assert result.code == 0, result.out
    assert "rehearsal passed" in result.out and "verify all 4 nodes" in result.out
    assert os.environ["FMEAA_PASSWORD"] == "operator-own-value"  # restored after the demo
    machine = fmeaa("demo", "--json")
    assert machine.code == 0 and machine.json["ok"] is True
    steps = machine.json["steps"]
    assert len(steps) == 7 and steps[5]["result"]["nodes"]["fme-4"]["created"] == 15
    # A cluster mid rolling upgrade: the previous release beside the newest (REST V4 only).
    assert steps[0]["result"]["versions"] == {"fme-1": "FME Flow 2025.2 (REST V3+V4)",
                                              "fme-2": "FME Flow 2026.1 (REST V4)",
                                              "fme-3": "FME Flow 2026.1 (REST V4)"}
    assert "FME Flow 2025.2 (REST V3+V4)" in result.out
    assert steps[6]["result"]["inSync"] and steps[6]["result"]["nodes"] == [
        "fme-1", "fme-2", "fme-3", "fme-4"]
