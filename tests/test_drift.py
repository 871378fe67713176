"""Drift with a cause (issue 15, item 3): `plan` and `verify` tell apart what the SOURCE changed
since the last sync (pending), what a NODE changed since fmeaa wrote it (drift — the node's
ledger says what fmeaa wrote) and what is on a node that fmeaa never wrote (extra); `--fail-on`
gives each its exit code; the manifest's `ignore:` silences known noise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fmeaa.client import connect
from fmeaa.emulator import Sandbox
from fmeaa.sync.manifest import ENTRY_KINDS, ContentError, load_content_dir
from fmeaa.sync.snapshot import Kind
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "operator"))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json"), copy_example(tmp_path / "content")


def causes(plan: dict, key: str) -> dict[str, tuple[str, str | None]]:
    """node → (change, cause) of the entry `key`, where it is not unchanged."""
    return {name: (a["change"], a["cause"]) for name, node in plan["nodes"].items()
            for a in node["actions"] if a["key"] == key and a["change"] != "unchanged"}


def row(verify: dict, key: str) -> dict:
    return next(r for r in verify["rows"] if r["key"] == key)


def hand_publish(box: Sandbox, node: str, repo: str, file: Path, name: str) -> None:
    """What an administrator does in FME Workbench, straight to one node."""
    with connect(node, box.node(node).url, username="admin", password=TEST_PASSWORD) as c:
        c.upload_item(repo, file, name, overwrite=name in box.node(node).state.repositories[
            repo].items)


def test_hand_editing_an_item_on_one_node_is_drift_not_pending(
        env: tuple[Sandbox, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    edited = tmp_path / "edited.fmw"
    edited.write_text("#! fixed in production by hand\n")
    hand_publish(box, "fme-2", "Roads", edited, "clip_roads.fmw")
    # Seen from a fresh machine (a CI runner): the nodes' ledgers carry what fmeaa wrote.
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "runner"))
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json")
    assert causes(plan.json, "Roads/clip_roads.fmw") == {"fme-2": ("update", "drift")}
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert verify.code == 1  # not in sync (the default, as before --fail-on)
    found = row(verify.json, "Roads/clip_roads.fmw")
    assert found["status"] == "drift" and found["causes"] == {"fme-2": "drift"}
    assert verify.json["drift"] == 1 and verify.json["pending"] == 0
    assert fmeaa("verify", "-s", content, "-i", inv, "--fail-on", "drift").code == 3
    assert fmeaa("verify", "-s", content, "-i", inv, "--fail-on", "pending,extra").code == 0
    assert fmeaa("plan", "-s", content, "-i", inv, "--fail-on", "drift,pending").code == 3
    text = fmeaa("verify", "-s", content, "-i", inv).out
    assert "drift" in text and "fme-2" in text

    # The source moves too: the other nodes are pending, fme-2 is still drift.
    (content / "workspaces/roads/clip_roads.fmw").write_text("#! the next release\n")
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json")
    assert causes(plan.json, "Roads/clip_roads.fmw") == {
        "fme-1": ("update", "pending"), "fme-2": ("update", "drift"),
        "fme-3": ("update", "pending")}
    assert fmeaa("verify", "-s", content, "-i", inv, "--fail-on", "pending").code == 4
    # A sync writes the source's version back everywhere: in sync, nothing to report.
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert fmeaa("verify", "-s", content, "-i", inv, "--fail-on", "pending,drift,extra").code == 0


def test_a_changed_source_is_pending_everywhere(env: tuple[Sandbox, Path, Path]) -> None:
    _, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(
        "description: Published when the nightly parcel load finishes", "description: new"))
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json", "--fail-on", "pending")
    assert plan.code == 4
    assert causes(plan.json, "PARCELS_LOADED") == {n: ("update", "pending")
                                                  for n in ("fme-1", "fme-2", "fme-3")}
    assert plan.json["causes"] == {"drift": 0, "pending": 3, "extra": 0}
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert row(verify.json, "PARCELS_LOADED")["status"] == "pending"
    assert fmeaa("verify", "-s", content, "-i", inv, "--fail-on", "drift").code == 0


def test_metadata_edited_or_deleted_on_a_node_is_drift(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    box.node("fme-3").state.topics["PARCELS_LOADED"]["description"] = "edited by hand"
    with connect("fme-1", box.node("fme-1").url, username="admin", password=TEST_PASSWORD) as c:
        c.login()
        c.delete_item("Roads", "validate_roads.fmw")
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json").json
    assert causes(plan, "PARCELS_LOADED") == {"fme-3": ("update", "drift")}
    assert causes(plan, "Roads/validate_roads.fmw") == {"fme-1": ("create", "drift")}


def test_extra_is_what_fmeaa_never_wrote_and_pending_what_the_source_dropped(
        env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    stray = tmp_path / "stray.fmw"
    stray.write_text("#! published by hand into a managed repository\n")
    hand_publish(box, "fme-2", "Roads", stray, "stray.fmw")
    manifest = content / "fmeaa-content.yaml"
    raw = yaml.safe_load(manifest.read_text())
    roads = next(r for r in raw["repositories"] if r["name"] == "Roads")
    dropped = roads["items"].pop()  # an item fmeaa synced, now gone from the source
    dropped_key = f"Roads/{Path(dropped['file']).name}"
    raw["schedules"] = [s for s in raw.get("schedules", [])
                        if s.get("workspace") != Path(dropped["file"]).name]
    manifest.write_text(yaml.safe_dump(raw))
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json").json
    assert causes(plan, "Roads/stray.fmw") == {"fme-2": ("extra", "extra")}
    assert causes(plan, dropped_key) == {n: ("extra", "pending")
                                         for n in ("fme-1", "fme-2", "fme-3")}
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert row(verify.json, "Roads/stray.fmw")["status"] == "extra"
    assert row(verify.json, dropped_key)["status"] == "pending"
    assert fmeaa("verify", "-s", content, "-i", inv, "--fail-on", "extra").code == 5
    assert fmeaa("verify", "-s", content, "-i", inv, "--fail-on", "pending,extra").code == 4


def test_ignored_entries_are_never_updated_deleted_or_reported(
        env: tuple[Sandbox, Path, Path]) -> None:
    """A file a node rewrites itself in a managed resource folder is known noise."""
    box, inv, content = env
    manifest = content / "fmeaa-content.yaml"
    raw = yaml.safe_load(manifest.read_text())
    folder = raw["resources"][0]
    target = "/" + folder["target"].strip("/")
    connection = folder.get("connection", "FME_SHAREDRESOURCE_DATA")
    local = content / folder["source"] / "cache.state"
    local.write_text("initial state\n")
    raw["ignore"] = [{"kind": "resource", "key": f"{connection}:{target}/*.state"},
                     {"kind": "resource", "key": f"{connection}:{target}/*.log"}]
    manifest.write_text(yaml.safe_dump(raw))
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0  # created where it is missing
    share = box.node("fme-2").state.data_dir / "resources" / connection / target.strip("/")
    assert (share / "cache.state").read_text() == "initial state\n"
    (share / "cache.state").write_text("rewritten by a workspace on fme-2\n")
    (share / "run.log").write_text("a log the node wrote\n")
    plan = fmeaa("plan", "-s", content, "-i", inv, "--prune", "--json", "--fail-on",
                 "pending,drift,extra")
    assert plan.code == 0
    ignored = {(a["key"], a["change"]) for a in plan.json["nodes"]["fme-2"]["actions"]
               if a["change"] == "ignored"}
    assert ignored == {(f"{connection}:{target}/cache.state", "ignored"),
                       (f"{connection}:{target}/run.log", "ignored")}
    assert fmeaa("sync", "-s", content, "-i", inv, "--prune").code == 0
    assert (share / "cache.state").read_text() == "rewritten by a workspace on fme-2\n"
    assert (share / "run.log").exists()
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert verify.code == 0
    assert row(verify.json, f"{connection}:{target}/run.log")["status"] == "ignored"


def test_ignore_rules_are_validated_with_everything_else(tmp_path: Path) -> None:
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    raw = yaml.safe_load(manifest.read_text())
    raw["ignore"] = [{"kind": "workspace", "key": "Roads/*"}, {"kind": "item", "key": " "}]
    raw["topics"].append({"name": "bad/name"})
    manifest.write_text(yaml.safe_dump(raw))
    with pytest.raises(ContentError) as caught:
        load_content_dir(content)
    text = str(caught.value)
    assert "ignore.0.kind" in text and "ignore.1.key" in text and "topics" in text


def test_ignore_kinds_are_the_entry_kinds() -> None:
    assert set(ENTRY_KINDS) == {k.value for k in Kind}


def test_fail_on_names_a_wrong_cause(env: tuple[Sandbox, Path, Path]) -> None:
    _, inv, content = env
    wrong = fmeaa("verify", "-s", content, "-i", inv, "--fail-on", "drift,bogus")
    assert wrong.code == 2 and wrong.out == ""
    assert "bogus" in wrong.err and "--fail-on" in wrong.err
