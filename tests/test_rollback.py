"""Rollback end to end: every sync records on the nodes what it replaces, `fmeaa history` lists
it and `fmeaa rollback` puts the exact earlier bytes and definitions back (README, "Rollback")."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa.client import connect
from fmeaa.client.errors import ServerError
from fmeaa.emulator import Sandbox
from fmeaa.sync.history import (
    ChangeRecord,
    HistoryIndex,
    SyncRecord,
    plan_rollback,
    undo_targets,
)
from fmeaa.sync.history_store import BLOBS_DIR, HISTORY_CONNECTION, HISTORY_DIR, NodeHistory
from fmeaa.sync.plan import Change
from fmeaa.sync.snapshot import Kind, Snapshot, file_entry, metadata_entry
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, exact_state, fmeaa, snapshot_state


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, Path]]:
    """A cluster mid-upgrade (fme-1 on 2025.2: REST V3 and V4; the others 2026.1: V4 only),
    so the history is written and read through both APIs."""
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD,
                 versions={"fme-1": "2025.2"}) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json"), copy_example(tmp_path / "content")


def change_everything(content: Path) -> None:
    """One sync's worth of change of every restorable kind: new bytes for a workspace and a
    data file, a workspace and a data file removed (pruned), a schedule's cron, a topic's
    description, a new repository."""
    (content / "workspaces/roads/clip_roads.fmw").write_text("#! clip roads, v2\n")
    data = content / "resources/data"
    first = sorted(p for p in data.rglob("*") if p.is_file())
    first[0].write_bytes(b"new bytes\x00\x01")
    first[-1].unlink()
    (content / "workspaces/new").mkdir()
    (content / "workspaces/new/fresh.fmw").write_text("#! fresh\n")
    manifest = (content / "fmeaa-content.yaml").read_text()
    manifest = manifest.replace('"0 0 2 * * ?"', '"0 30 4 * * ?"')
    manifest = manifest.replace("Published when the nightly parcel load finishes", "renamed")
    manifest = manifest.replace("      - file: workspaces/roads/roads_to_geojson.fmw\n"
                                "        services: [fmedatastreaming]\n", "")
    manifest = manifest.replace("repositories:\n", "repositories:\n  - name: Fresh\n    items:\n"
                                "      - file: workspaces/new/fresh.fmw\n", 1)
    (content / "fmeaa-content.yaml").write_text(manifest)


def test_a_rollback_restores_the_exact_previous_bytes_on_every_node(
        env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    box, inv, content = env
    old = copy_example(tmp_path / "old-content")
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    before = exact_state(box)
    change_everything(content)
    bad = fmeaa("sync", "-s", content, "-i", inv, "--prune", "--json")
    assert bad.code == 0, bad.out
    sync_id = bad.json["syncId"]
    changed = exact_state(box)
    for node in ("fme-1", "fme-2", "fme-3"):
        assert changed[node]["items"] != before[node]["items"]
        assert changed[node]["files"] != before[node]["files"]
        assert changed[node]["schedules"] != before[node]["schedules"]

    plan = fmeaa("rollback", "-i", inv, "--dry-run", "--json")  # a plan, and nothing changes
    assert plan.code == 0, plan.out
    assert plan.json["target"] == sync_id and plan.json["mode"] == "before"
    for node in plan.json["nodes"].values():
        assert node["undoes"] == [sync_id]
        changes = {(a["change"], a["kind"], a["key"]) for a in node["actions"]}
        assert ("delete", "repository", "Fresh") in changes
        assert ("create", "item", "Roads/roads_to_geojson.fmw") in changes
        assert ("update", "item", "Roads/clip_roads.fmw") in changes
        assert ("update", "schedule", "Parcels/nightly-parcels") in changes
    assert exact_state(box) == changed

    done = fmeaa("rollback", "-i", inv, "--json")
    assert done.code == 0, done.out
    assert all(n["status"] == "ok" and n["inSync"] for n in done.json["nodes"].values())
    assert exact_state(box) == before  # every byte and definition, on every node
    assert fmeaa("verify", "-s", old, "-i", inv).code == 0
    # Re-running converges: nothing left to do; the rollback is itself recorded (undoable).
    again = fmeaa("rollback", "-i", inv, "--json")
    assert again.code == 0 and again.json["target"] == sync_id
    assert all(n["applied"] == 0 for n in again.json["nodes"].values())
    assert exact_state(box) == before
    undo = fmeaa("rollback", "-i", inv, "--before", done.json["syncId"])
    assert undo.code == 0, undo.out
    assert exact_state(box) == changed


def test_history_lists_when_who_and_what_changed(env: tuple[Sandbox, Path, Path]) -> None:
    _, inv, content = env
    first = fmeaa("sync", "-s", content, "-i", inv, "--json").json["syncId"]
    (content / "workspaces/roads/clip_roads.fmw").write_text("#! v2\n")
    second = fmeaa("sync", "-s", content, "-i", inv, "--json").json["syncId"]
    assert fmeaa("sync", "-s", content, "-i", inv, "--json").json["syncId"] is None  # no change
    listed = fmeaa("history", "-i", inv, "--json")
    assert listed.code == 0
    for node in listed.json["nodes"].values():
        assert [s["id"] for s in node["syncs"]] == [second, first]  # newest first
        newest = node["syncs"][0]
        assert (newest["operation"], newest["status"], newest["updated"]) == ("sync", "ok", 1)
        assert "@" in newest["by"] and newest["source"].startswith("content directory")
    shown = fmeaa("history", "-i", inv, "--show", second, "--json")
    assert shown.json["nodes"]["fme-2"]["syncs"][0]["changes"] == [
        {"kind": "item", "key": "Roads/clip_roads.fmw", "change": "update"}]
    table = fmeaa("history", "-i", inv, "--show", second)
    assert second in table.out and "Roads/clip_roads.fmw" in table.out


def test_rollback_to_a_sync_undoes_only_the_later_ones(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    workspace = content / "workspaces/roads/clip_roads.fmw"
    fmeaa("sync", "-s", content, "-i", inv)
    workspace.write_text("#! v2\n")
    v2 = fmeaa("sync", "-s", content, "-i", inv, "--json").json["syncId"]
    at_v2 = exact_state(box)
    workspace.write_text("#! v3\n")
    fmeaa("sync", "-s", content, "-i", inv)
    workspace.write_text("#! v4\n")
    fmeaa("sync", "-s", content, "-i", inv)
    result = fmeaa("rollback", "-i", inv, "--to", v2, "--json")
    assert result.code == 0, result.out
    assert len(result.json["nodes"]["fme-1"]["undoes"]) == 2
    assert exact_state(box) == at_v2


def test_publish_is_recorded_and_rolled_back(env: tuple[Sandbox, Path, Path],
                                            tmp_path: Path) -> None:
    box, inv, content = env
    fmeaa("sync", "-s", content, "-i", inv)
    before = exact_state(box)
    hotfix = tmp_path / "clip_roads.fmw"
    hotfix.write_text("#! hotfix\n")
    published = fmeaa("publish", hotfix, "--repo", "Roads", "-i", inv,
                      "--service", "fmejobsubmitter", "--service", "fmedatadownload", "--json")
    assert published.code == 0 and published.json["syncId"]
    assert exact_state(box) != before
    assert fmeaa("rollback", "-i", inv).code == 0
    assert exact_state(box) == before


def test_a_node_down_fails_alone_and_the_rerun_converges(env: tuple[Sandbox, Path, Path]
                                                         ) -> None:
    box, inv, content = env
    fmeaa("sync", "-s", content, "-i", inv)
    before = exact_state(box)
    change_everything(content)
    sync_id = fmeaa("sync", "-s", content, "-i", inv, "--prune", "--json").json["syncId"]
    changed = exact_state(box)
    box.node("fme-3").stop()
    partial = fmeaa("rollback", "-i", inv, "--before", sync_id, "--json")
    assert partial.code == 1
    assert partial.json["nodes"]["fme-3"]["status"] == "unreachable"
    now = exact_state(box)
    assert now["fme-1"] == before["fme-1"] and now["fme-2"] == before["fme-2"]
    assert now["fme-3"] == changed["fme-3"]
    box.node("fme-3").start()
    rerun = fmeaa("rollback", "-i", inv, "--json")  # the same default target: the sync
    assert rerun.code == 0, rerun.out
    assert rerun.json["nodes"]["fme-1"]["applied"] == 0
    assert exact_state(box) == before


def test_a_sync_that_failed_half_way_is_rolled_back_exactly(
        env: tuple[Sandbox, Path, Path]) -> None:
    """Records are written before anything is applied, so a run that broke off mid-way (here:
    fme-2 drops every large upload) is undone like any other: what it did apply goes back."""
    box, inv, content = env
    fmeaa("sync", "-s", content, "-i", inv)
    before = exact_state(box)
    change_everything(content)
    (content / "workspaces/roads/clip_roads.fmw").write_bytes(b"x" * 200_000)
    box.node("fme-2").faults.drop_upload_after = 100_000
    broken = fmeaa("sync", "-s", content, "-i", inv, "--prune", "--json")
    assert broken.code == 1 and broken.json["nodes"]["fme-2"]["status"] == "failed"
    assert exact_state(box)["fme-2"] != before["fme-2"]  # some of it was applied there
    status = fmeaa("history", "-i", inv, "--node", "fme-2", "--json")
    assert status.json["nodes"]["fme-2"]["syncs"][0]["status"] == "failed"
    box.node("fme-2").faults.drop_upload_after = None
    assert fmeaa("rollback", "-i", inv).code == 0
    assert exact_state(box) == before


def test_a_node_whose_history_cannot_be_written_is_not_changed(
        env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    box, inv, content = env
    fmeaa("sync", "-s", content, "-i", inv)
    garbage = tmp_path / "index.json"
    garbage.write_text("{not json")
    with connect("fme-2", box.node("fme-2").url, username="admin",
                 password=TEST_PASSWORD) as client:
        client.upload_resource(HISTORY_CONNECTION, HISTORY_DIR, garbage)
    before = snapshot_state(box)
    (content / "workspaces/roads/clip_roads.fmw").write_text("#! v2\n")
    result = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert result.code == 1
    fme2 = result.json["nodes"]["fme-2"]
    assert fme2["status"] == "failed" and fme2["applied"] == 0
    assert "index.json is not readable JSON" in fme2["failures"][0]["error"]
    assert "--no-history" in fme2["failures"][0]["error"]
    assert snapshot_state(box)["fme-2"] == before["fme-2"]
    assert result.json["nodes"]["fme-1"]["inSync"] and result.json["nodes"]["fme-3"]["inSync"]
    assert fmeaa("sync", "-s", content, "-i", inv, "--no-history").code == 0


def test_retention_keeps_the_last_n_runs_and_the_bytes_they_need(
        env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    workspace = content / "workspaces/roads/clip_roads.fmw"
    ids = [fmeaa("sync", "-s", content, "-i", inv, "--keep-history", "2", "--json")
           .json["syncId"]]
    for version in ("v2", "v3", "v4"):
        workspace.write_text(f"#! {version}\n")
        ids.append(fmeaa("sync", "-s", content, "-i", inv, "--keep-history", "2", "--json")
                   .json["syncId"])
    listed = fmeaa("history", "-i", inv, "--json").json["nodes"]["fme-1"]
    assert [s["id"] for s in listed["syncs"]] == ids[:1:-1]
    assert listed["prunedThrough"] == ids[1]
    blobs = box.node("fme-1").state.data_dir / "resources" / HISTORY_CONNECTION / BLOBS_DIR
    kept = {p.name for p in blobs.iterdir()}
    v2, v3 = (hashlib.sha256(f"#! {v}\n".encode()).hexdigest() for v in ("v2", "v3"))
    assert kept == {v2, v3}  # what the kept runs replaced; the original's bytes are gone
    too_old = fmeaa("rollback", "-i", inv, "--before", ids[1], "--json")
    assert too_old.code == 1
    assert "no reachable node's history has the sync" in too_old.err


def test_bad_rollback_requests_are_refused_and_touch_nothing(
        env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    nothing = fmeaa("rollback", "-i", inv)
    assert nothing.code == 1 and "no recorded sync to roll back" in nothing.err
    fmeaa("sync", "-s", content, "-i", inv)
    before = snapshot_state(box)
    both = fmeaa("rollback", "-i", inv, "--before", "nope", "--to", "20250101T000000.000Z-abcdef")
    assert both.code == 1
    assert "not both" in both.err and "'nope' is not a sync id" in both.err
    unknown = fmeaa("rollback", "-i", inv, "--to", "20250101T000000.000Z-abcdef")
    assert unknown.code == 1 and "has the sync 20250101T000000.000Z-abcdef" in unknown.err
    assert snapshot_state(box) == before


# --- the pure parts ---------------------------------------------------------------------------------
def _record(sync_id: str, *changes: ChangeRecord) -> SyncRecord:
    return SyncRecord(sync_id, "fme-1", "sync", "2025-01-01T00:00:00+00:00", "me@here", "src",
                      list(changes))


def test_undoing_several_runs_goes_back_to_the_oldest_before() -> None:
    v1, v2, v3 = (file_entry(Kind.ITEM, "R/a.fmw", 3, f"sha{v}", ["fmejobsubmitter"])
                  for v in (1, 2, 3))
    targets = undo_targets([
        _record("a", ChangeRecord(Kind.ITEM, "R/a.fmw", "update", v1, v2.digest, True)),
        _record("b", ChangeRecord(Kind.ITEM, "R/a.fmw", "update", v2, v3.digest, True),
                ChangeRecord(Kind.TOPIC, "T", "create", None, "d")),
    ])
    assert targets[(Kind.ITEM, "R/a.fmw")].before == v1
    assert targets[(Kind.ITEM, "R/a.fmw")].wrote == v3.digest
    topic = metadata_entry(Kind.TOPIC, {"name": "T", "description": "x"})
    plan = plan_rollback("fme-1", targets, Snapshot([v3, topic]), blobs={"sha1"})
    assert [(a.change, a.kind, a.key) for a in plan.plan.changes] == [
        (Change.UPDATE, Kind.ITEM, "R/a.fmw"), (Change.DELETE, Kind.TOPIC, "T")]
    assert plan.changed_since == ["topic T"]  # the node's topic is not what the run wrote
    gone = plan_rollback("fme-1", targets, Snapshot([v3]), blobs=set())
    assert gone.skipped == [(Kind.ITEM, "R/a.fmw", "its earlier bytes are no longer kept")]


def test_a_connection_created_is_removed_but_an_earlier_one_is_not_guessed() -> None:
    earlier = metadata_entry(Kind.CONNECTION, {"name": "pg", "category": "database",
                                               "type": "PostgreSQL", "parameters": {}})
    now = metadata_entry(Kind.CONNECTION, {"name": "new", "category": "database",
                                           "type": "PostgreSQL", "parameters": {}})
    targets = undo_targets([_record(
        "a", ChangeRecord(Kind.CONNECTION, "pg", "update", earlier, "x"),
        ChangeRecord(Kind.CONNECTION, "new", "create", None, now.digest))])
    plan = plan_rollback("fme-1", targets, Snapshot([now, earlier]), blobs=set())
    assert [(a.change, a.key) for a in plan.plan.changes] == [(Change.DELETE, "new")]
    assert [(k, key) for k, key, _ in plan.skipped] == [(Kind.CONNECTION, "pg")]
    assert "credentials" in plan.skipped[0][2]


def test_history_and_rollback_tables_fit_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync id and the entry key are printed whole on every row."""
    from io import StringIO

    from rich.console import Console

    from fmeaa.app.results import (
        HistoryChangeReport,
        HistoryResult,
        HistorySyncReport,
        NodeHistoryReport,
        NodeRollbackReport,
        PlannedAction,
        RollbackResult,
        SkippedEntry,
    )
    from fmeaa.commands import history

    console = Console(file=StringIO(), width=80, color_system=None)
    monkeypatch.setattr(history, "stdout", console)
    sync_id, resource = "20250301T120000.123Z-9f3a1c", "FME_SHAREDRESOURCE_DATA:/reference/zones.csv"
    run = HistorySyncReport(id=sync_id, operation="sync", at="2025-03-01T12:00:00+00:00",
                            by="alice@a-rather-long-laptop-name", source="content directory /x",
                            status="ok", updated=1, changes=[HistoryChangeReport(
                                kind="resource", key=resource, change="update")])
    history.print_history(HistoryResult(nodes={n: NodeHistoryReport(status="ok", syncs=[run])
                                               for n in ("fme-1", "fme-2", "fme-3")}))
    history.print_rollback(RollbackResult(target=sync_id, mode="before", dry_run=False, ok=False,
                                          nodes={"fme-1": NodeRollbackReport(
                                              status="ok", undoes=[sync_id], in_sync=True,
                                              actions=[PlannedAction(change="update",
                                                                     kind="resource",
                                                                     key=resource)],
                                              skipped=[SkippedEntry(kind="connection", key="pg",
                                                                    reason="a node never …")])}))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert all(len(line) <= 80 for line in lines)
    assert len([line for line in lines if sync_id in line]) >= 4
    assert len([line for line in lines if resource in line]) == 4
    skipped = next(i for i, line in enumerate(lines) if "│ pg " in line)
    assert "not" in lines[skipped] and "restored" in lines[skipped + 1]


def test_after_a_rollback_the_newer_source_is_pending_not_drift(
        env: tuple[Sandbox, Path, Path]) -> None:
    """A rollback is fmeaa writing: each node's ledger records what it put back, so the source
    it rolled back from reads as pending (fmeaa has not written it), not as a hand edit."""
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    (content / "workspaces/roads/clip_roads.fmw").write_text("#! clip roads, v2\n")
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert fmeaa("rollback", "-i", inv, "--json").code == 0
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json", "--cache-dir", str(box.root / "c"))
    rows = [r for r in verify.json["rows"] if r["key"] == "Roads/clip_roads.fmw"]
    assert rows and {r["status"] for r in rows} == {"pending"}, rows


def test_history_writes_are_retried_after_a_transient_error(sandbox: Sandbox,
                                                            tmp_path: Path) -> None:
    """Writing a record is safe to repeat (each file is replaced whole), so a node's transient
    5xx costs a retry, not the node's sync ("recording what it replaces failed")."""
    node = sandbox.nodes[0]
    with connect(node.name, node.url, username="admin", password=TEST_PASSWORD,
                 read_retries=2) as client:
        client.login()
        real, calls = client.upload_resource, []

        def flaky(*args: object, **kwargs: object) -> None:
            calls.append(args)
            if len(calls) == 1:
                raise ServerError(node.name, "POST", "upload", 503, "Service unavailable")
            real(*args, **kwargs)  # type: ignore[arg-type]

        client.upload_resource = flaky  # type: ignore[method-assign]
        history = NodeHistory(client, tmp_path)
        index = HistoryIndex()
        index.add(SyncRecord("20260101T000000Z-abcdef12", node.name, "sync", "2026-01-01",
                             "ops@host", "content", []))
        history.write_index(index)
        assert len(calls) == 2
        assert [e.id for e in history.read_index().entries] == ["20260101T000000Z-abcdef12"]
