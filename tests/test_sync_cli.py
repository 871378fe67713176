"""End to end: the real `fmeaa` CLI against 3 emulated FME nodes on loopback."""

from __future__ import annotations

import hashlib
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
    workspace = content / "workspaces/roads/validate_roads.fmw"
    old_sha = hashlib.sha256(workspace.read_bytes()).hexdigest()
    workspace.write_text("#! changed\n")
    new_sha = hashlib.sha256(b"#! changed\n").hexdigest()
    # An item's digest covers its bytes and its services (README, "How a sync works").
    digest = lambda sha: hashlib.sha256(f"{sha}|fmejobsubmitter".encode()).hexdigest()[:12]  # noqa: E731
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json", "--detailed-exitcode")
    assert plan.code == 2
    for node in plan.json["nodes"].values():
        changed = [a for a in node["actions"] if a["change"] not in ("unchanged", "extra")]
        assert changed == [{"change": "update", "kind": "item", "key": "Roads/validate_roads.fmw",
                            "detail": "file", "digest": digest(new_sha),
                            "current": digest(old_sha), "cause": "pending"}]
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
    assert pruned.code == 0 and pruned.json["nodes"]["fme-2"]["deleted"] == 1
    assert "Roads/stray.fmw" not in node_items(box, "fme-2")
    # Everything the source holds is still there, and so is what it never managed.
    assert all(len([k for k in node_items(box, n.name) if not k.startswith("Samples/")]) == 5
               for n in box.nodes)
    assert all("Samples" in n.state.repositories for n in box.nodes)


def test_prune_leaves_what_the_source_never_managed(env: tuple[Sandbox, Path, Path],
                                                    tmp_path: Path) -> None:
    """`sync --prune` acts only inside what the content directory manages: its repositories,
    its resource folders, the entries it lists. A repository published by hand, FME's `Samples`
    and `SAMPLE_TOPIC` are left alone, and verify calls them unmanaged — the same definition."""
    box, inv, content = env
    hand_made = tmp_path / "x.fmw"
    hand_made.write_text("#! published by hand\n")
    assert fmeaa("publish", hand_made, "--repo", "Extra", "-i", inv).code == 0
    stray = tmp_path / "stray.fmw"
    stray.write_text("#! published into a managed repository\n")
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert fmeaa("publish", stray, "--repo", "Roads", "-i", inv).code == 0
    plan = fmeaa("plan", "-s", content, "-i", inv, "--prune", "--json").json
    for node in plan["nodes"].values():
        assert [(a["change"], a["key"]) for a in node["actions"]
                if a["change"] not in ("unchanged",)] == [("delete", "Roads/stray.fmw")]
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert verify.code == 0  # identical everywhere: nothing to fix without --prune
    status = {r["key"]: r["status"] for r in verify.json["rows"] if r["status"] != "in sync"}
    assert status == {"Extra": "unmanaged", "Extra/x.fmw": "unmanaged", "Samples": "unmanaged",
                      "SAMPLE_TOPIC": "unmanaged", "Roads/stray.fmw": "extra",
                      **{k: "unmanaged" for k in status if k.startswith("Samples/")}}
    assert "sync --prune` deletes it" in fmeaa("verify", "-s", content, "-i", inv).out
    pruned = fmeaa("sync", "-s", content, "-i", inv, "--prune", "--json")
    assert pruned.code == 0
    assert all(n["deleted"] == 1 and n["inSync"] for n in pruned.json["nodes"].values())
    for n in box.nodes:
        assert {"Extra", "Samples"} <= set(n.state.repositories)
        assert "SAMPLE_TOPIC" in n.state.topics
        assert "Extra/x.fmw" in node_items(box, n.name)
        assert "Roads/stray.fmw" not in node_items(box, n.name)
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
    ("url-name", "repositories.0.items.0.name (Roads / a%2Fb.fmw): 'a%2Fb.fmw' contains '%'"),
    ("symlink-out", "'workspaces/roads/clip_roads.fmw' is a symbolic link to"),
    ("case-twin", "'Roads' (repositories.0) and 'roads' (repositories.1) differ only in case"),
    ("dot-target",
     "resources.0.target (FME_SHAREDRESOURCE_DATA): '../../etc': a folder inside the connection"),
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
    elif breakage == "url-name":
        manifest.write_text(text.replace("- file: workspaces/roads/clip_roads.fmw",
                                         "- name: a%2Fb.fmw\n        file: workspaces/roads/clip_roads.fmw"))
    elif breakage == "symlink-out":
        (content / "workspaces/roads/clip_roads.fmw").unlink()
        (content / "workspaces/roads/clip_roads.fmw").symlink_to(inv)  # any file outside
    elif breakage == "case-twin":
        manifest.write_text(text.replace("- name: Parcels\n", "- name: roads\n"))
    elif breakage == "dot-target":
        manifest.write_text(text.replace("target: /reference", "target: ../../etc"))
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
    # The export names each schedule's owner (fme-1), so the empty cluster has a node of that name.
    with Sandbox(1, root=tmp_path / "empty", password=TEST_PASSWORD) as fresh:
        fresh_inv = fresh.write_inventory(tmp_path / "fresh.json")
        assert fmeaa("sync", "-s", first, "-i", fresh_inv, "--prune").code == 0
        second = tmp_path / "export-2"
        assert fmeaa("export", "--from", "fme-1", second, "-i", fresh_inv).code == 0
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
    assert result.code == 1  # a node is unreachable (the report is whole all the same)
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


def test_non_ascii_file_names_sync_to_every_node(env: tuple[Sandbox, Path, Path]) -> None:
    """`ws/my roads é.fmw` and `file ü.csv` reach every node under their exact names (RFC 6266
    `filename*`), and the next plan finds nothing to do."""
    box, inv, content = env
    (content / "workspaces/roads/my roads é.fmw").write_text("#! accented\n")
    (content / "resources/data/file ü.csv").write_text("a,b\n")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(
        "      - file: workspaces/roads/validate_roads.fmw\n",
        "      - file: workspaces/roads/validate_roads.fmw\n"
        "      - file: 'workspaces/roads/my roads é.fmw'\n"))
    result = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert result.code == 0, result.out + result.err
    assert all(n["created"] == 17 and n["inSync"] for n in result.json["nodes"].values())
    for n in box.nodes:
        assert "Roads/my roads é.fmw" in node_items(box, n.name)
        assert (n.state.data_dir / "resources/FME_SHAREDRESOURCE_DATA/reference/file ü.csv"
                ).read_text() == "a,b\n"
    assert fmeaa("plan", "-s", content, "-i", inv, "--detailed-exitcode").code == 0


@pytest.mark.parametrize("phase", ["connect", "read", "apply"])
def test_an_unexpected_error_on_one_node_is_that_nodes_failure(
        env: tuple[Sandbox, Path, Path], monkeypatch: pytest.MonkeyPatch, phase: str) -> None:
    """Any exception on one node — not only an API error — fails that node, reported in its row;
    the other nodes go on, the run exits 1 without a traceback, and a re-run converges."""
    from fmeaa.client import FmeClient
    from fmeaa.sync.node_reader import NodeReader

    box, inv, content = env
    target = {"connect": (FmeClient, "ensure_token"), "read": (NodeReader, "read"),
              "apply": (FmeClient, "upload_item")}[phase]
    original = getattr(*target)

    def broken(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        client = getattr(self, "client", self)
        if client.node == "fme-2":
            raise UnicodeEncodeError("ascii", "é", 0, 1, "injected for the test")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(*target, broken)
    result = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert result.code == 1
    nodes = result.json["nodes"]
    assert nodes["fme-1"]["status"] == nodes["fme-3"]["status"] == "ok"
    assert nodes["fme-1"]["inSync"] and nodes["fme-3"]["inSync"]
    assert nodes["fme-2"]["status"] == "failed" and not nodes["fme-2"]["inSync"]
    said = (nodes["fme-2"]["error"] or "") + str(nodes["fme-2"]["failures"])
    assert "UnicodeEncodeError" in said and "injected for the test" in said
    assert len(node_items(box, "fme-1")) == len(node_items(box, "fme-3")) > 1
    monkeypatch.setattr(*target, original)
    again = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert again.code == 0 and again.json["nodes"]["fme-2"]["inSync"]


def test_a_node_that_answers_404_is_failed_not_unreachable(env: tuple[Sandbox, Path, Path]) -> None:
    """A node that answers is reachable: a 404 while reading it (here a repository whose name
    cannot travel in a URL path, made by hand on the node) is reported with path and status."""
    from fmeaa.emulator.state import Repository

    box, inv, content = env
    box.node("fme-2").state.repositories["a/b"] = Repository("a/b")
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json")
    assert plan.code == 1
    nodes = plan.json["nodes"]
    assert nodes["fme-2"]["status"] == "failed"
    assert "/repositories/a%2Fb/items -> 404" in nodes["fme-2"]["error"]
    assert nodes["fme-1"]["status"] == nodes["fme-3"]["status"] == "ok"
    table = fmeaa("plan", "-s", content, "-i", inv)
    assert "failed" in table.out and "unreachable" not in table.out
    sync = fmeaa("sync", "-s", content, "-i", inv, "--json").json["nodes"]
    assert sync["fme-2"]["status"] == "failed" and sync["fme-1"]["inSync"]
