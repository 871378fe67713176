"""Schedules that survive their owner: a `one` schedule moves off a drained, removed or
unreachable owner, stays enabled on exactly one node, and later syncs keep it there (README,
"Schedules that survive their owner"). Emulated nodes, moto in server mode for the ALB."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa.client import connect
from fmeaa.cluster.schedule_owners import (
    OWNERS_CONNECTION,
    OWNERS_PATH,
    ScheduleOwners,
    effective_owner,
    next_owner,
)
from fmeaa.emulator import Sandbox
from tests.aws_server import make_cluster, sandbox_inventory
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import EXAMPLE, fmeaa, snapshot_state

FAST = ["--poll", "0.05"]
SCHEDULES = ("Parcels/nightly-parcels", "Roads/hourly-road-check")  # both `one`, no owner


@pytest.fixture
def cluster(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Sandbox, Path]]:
    """3 nodes in the ALB's target groups, in sync with the example (fme-1 runs the schedules)."""
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    made = make_cluster("sandbox", ["fme-1", "fme-2", "fme-3"], other_cluster=False,
                        registered=["fme-1", "fme-2", "fme-3"])
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inv = sandbox_inventory(box, made, tmp_path / "nodes.json")
        assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
        yield box, inv


def enabled_on(box: Sandbox) -> dict[str, list[str]]:
    """Where each schedule is enabled, read from the emulated nodes themselves."""
    found: dict[str, list[str]] = {}
    for node in box.nodes:
        for (category, name), body in node.state.schedules.items():
            found.setdefault(f"{category}/{name}", [])
            if body.get("enabled"):
                found[f"{category}/{name}"].append(node.name)
    return found


def owners_record(box: Sandbox, node: str) -> ScheduleOwners | None:
    path = box.node(node).state.data_dir / "resources" / OWNERS_CONNECTION / OWNERS_PATH
    return ScheduleOwners.from_bytes(path.read_bytes()) if path.exists() else None


def test_draining_the_owner_moves_its_schedules_and_syncs_keep_them_there(
        cluster: tuple[Sandbox, Path]) -> None:
    box, inv = cluster
    assert enabled_on(box) == {s: ["fme-1"] for s in SCHEDULES}
    drained = fmeaa("drain", "fme-1", "-i", inv, "--move-schedules", "--json", *FAST)
    assert drained.code == 0, drained.err
    moved = drained.json["schedules"]["moved"]
    assert {(m["schedule"], m["fromNode"], m["toNode"]) for m in moved} == {
        (s, "fme-1", "fme-2") for s in SCHEDULES}
    assert enabled_on(box) == {s: ["fme-2"] for s in SCHEDULES}  # fires on exactly one node
    # The move is recorded on every node, so a sync from any machine keeps it there.
    for node in ("fme-1", "fme-2", "fme-3"):
        record = owners_record(box, node)
        assert record is not None and record.overrides[SCHEDULES[0]].owner == "fme-2"
    again = fmeaa("sync", "-s", EXAMPLE, "-i", inv, "--json")
    assert again.code == 0 and all(n["applied"] == 0 for n in again.json["nodes"].values())
    assert enabled_on(box) == {s: ["fme-2"] for s in SCHEDULES}
    verify = fmeaa("verify", "-s", EXAMPLE, "-i", inv, "--json")
    assert verify.code == 0, verify.out
    assert {r["key"]: r["enabledOn"] for r in verify.json["rows"] if r["kind"] == "schedule"} \
        == {s: ["fme-2"] for s in SCHEDULES}
    assert fmeaa("scale-in-check", "fme-1", "-i", inv).code == 0  # it owns nothing now
    # Back in service, the schedules move back on request, and the override is gone.
    assert fmeaa("undrain", "fme-1", "-i", inv, *FAST).code == 0
    back = fmeaa("schedules", "move", "--to", "fme-1", "-i", inv, "--json")
    assert back.code == 0, back.out
    assert enabled_on(box) == {s: ["fme-1"] for s in SCHEDULES}
    assert owners_record(box, "fme-3").overrides == {}  # type: ignore[union-attr]
    assert fmeaa("verify", "-s", EXAMPLE, "-i", inv).code == 0


def test_without_the_record_a_sync_would_move_them_back(cluster: tuple[Sandbox, Path]) -> None:
    """What the record is for: the manifest names no owner, so without it fme-1 (the default)
    would run the schedules again, drained or not."""
    box, inv = cluster
    assert fmeaa("drain", "fme-1", "-i", inv, "--move-schedules", *FAST).code == 0
    for node in box.nodes:
        (node.state.data_dir / "resources" / OWNERS_CONNECTION / OWNERS_PATH).unlink()
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
    assert enabled_on(box) == {s: ["fme-1"] for s in SCHEDULES}


def test_scale_in_check_moves_the_schedules_first(cluster: tuple[Sandbox, Path]) -> None:
    box, inv = cluster
    assert fmeaa("drain", "fme-1", "-i", inv, *FAST).code == 0
    refused = fmeaa("scale-in-check", "fme-1", "-i", inv, "--json")
    assert refused.code == 1
    result = fmeaa("scale-in-check", "fme-1", "-i", inv, "--move-schedules", "--json")
    assert result.code == 0, result.out
    assert result.json["safe"] and len(result.json["schedules"]["moved"]) == 2
    assert enabled_on(box) == {s: ["fme-2"] for s in SCHEDULES}


def test_rolling_moves_schedules_and_each_runs_on_exactly_one_node_throughout(
        cluster: tuple[Sandbox, Path], tmp_path: Path) -> None:
    box, inv = cluster
    log = tmp_path / "enabled.log"
    probe = tmp_path / "probe.py"  # while each node is out: where is each schedule enabled?
    probe.write_text(
        "import json, os, subprocess, sys\n"
        f"out = subprocess.run([sys.executable, '-m', 'fmeaa', 'verify', '-s', {str(EXAMPLE)!r},"
        f" '-i', {str(inv)!r}, '--json'], capture_output=True, text=True).stdout\n"
        "rows = [r for r in json.loads(out)['rows'] if r['kind'] == 'schedule']\n"
        f"open({str(log)!r}, 'a').write(os.environ['FMEAA_NODE'] + ' ' + "
        "json.dumps({r['key']: r['enabledOn'] for r in rows}) + '\\n')\n")
    result = fmeaa("rolling", "--exec", f"{sys.executable} {probe}", "-s", EXAMPLE, "-i", inv,
                   "--move-schedules", "--json", *FAST)
    assert result.code == 0, result.err
    seen = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert [(node, json.loads(where)) for node, where in seen] == [
        ("fme-1", {s: ["fme-2"] for s in SCHEDULES}),  # fme-1 is out: fme-2 runs them
        ("fme-2", {s: ["fme-3"] for s in SCHEDULES}),
        ("fme-3", {s: ["fme-1"] for s in SCHEDULES})]  # wrapping round: back to the owner
    moves = [(m["fromNode"], m["toNode"]) for m in result.json["schedules"]]
    assert moves == [("fme-1", "fme-2")] * 2 + [("fme-2", "fme-3")] * 2 + [("fme-3", "fme-1")] * 2
    assert enabled_on(box) == {s: ["fme-1"] for s in SCHEDULES}
    assert owners_record(box, "fme-2").overrides == {}  # type: ignore[union-attr]
    assert fmeaa("verify", "-s", EXAMPLE, "-i", inv).code == 0


def test_an_unreachable_owner_hands_over_and_the_next_sync_disables_it_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inv = box.write_inventory(tmp_path / "nodes.json")
        assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
        box.node("fme-1").stop()
        unknown = fmeaa("schedules", "move", "-i", inv, "--json")
        assert unknown.code == 1
        assert "fme-1 cannot be read" in unknown.json["problems"][0]
        assert enabled_on(box) == {s: ["fme-1"] for s in SCHEDULES}  # nothing moved
        moved = fmeaa("schedules", "move", "-i", inv, "-s", EXAMPLE, "--json")
        assert moved.code == 0, moved.out
        assert {(m["schedule"], m["toNode"], m["disabledOnFrom"])
                for m in moved.json["moved"]} == {(s, "fme-2", False) for s in SCHEDULES}
        assert any("fme-1 could not be reached" in w for w in moved.json["warnings"])
        box.node("fme-1").start()  # it comes back still running them: two nodes fire
        assert enabled_on(box) == {s: ["fme-1", "fme-2"] for s in SCHEDULES}
        assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
        assert enabled_on(box) == {s: ["fme-2"] for s in SCHEDULES}


def test_bad_moves_are_refused_and_touch_nothing(cluster: tuple[Sandbox, Path]) -> None:
    box, inv = cluster
    before = snapshot_state(box)
    bad = fmeaa("schedules", "move", "--from", "fme-9", "--to", "fme-8", "--schedule", "x",
                "-i", inv)
    assert bad.code == 1
    assert "--from fme-9: no such node" in bad.err and "--to fme-8: no such node" in bad.err
    assert "--schedule 'x': expected CATEGORY/NAME" in bad.err
    assert fmeaa("drain", "fme-3", "-i", inv, *FAST).code == 0
    unfit = fmeaa("schedules", "move", "--to", "fme-3", "-i", inv)
    assert unfit.code == 1 and "--to fme-3 cannot run schedules: out of the load balancer" \
        in unfit.err
    assert snapshot_state(box) == before
    with connect("fme-2", box.node("fme-2").url, username="admin",
                 password=TEST_PASSWORD) as client:
        assert not [f for f in client.walk_resources(OWNERS_CONNECTION, "/fme-aa")
                    if f["path"].endswith("schedule-owners.json")]


# --- the rules --------------------------------------------------------------------------------------
def test_the_next_owner_is_the_next_fit_node_in_inventory_order() -> None:
    order = ["fme-1", "fme-2", "fme-3", "fme-4"]
    fit = {"fme-1": True, "fme-2": False, "fme-3": True, "fme-4": True}
    assert next_owner(order, "fme-1", fit) == "fme-3"  # fme-2 is not fit
    assert next_owner(order, "fme-4", fit) == "fme-1"  # wrapping round
    assert next_owner(order, "fme-3", {"fme-3": True}) is None


def test_an_override_counts_while_the_manifest_names_the_owner_it_replaced() -> None:
    owners = ScheduleOwners()
    owners.moved("P/n", "fme-2", "fme-1", "me@here", "now", "drain fme-1")
    nodes = ["fme-1", "fme-2", "fme-3"]
    assert effective_owner("P/n", "fme-1", owners, nodes) == "fme-2"
    assert effective_owner("P/n", "fme-3", owners, nodes) == "fme-3"  # the manifest changed
    assert effective_owner("P/n", "fme-1", owners, ["fme-1", "fme-3"]) == "fme-1"  # fme-2 gone
    owners.moved("P/n", "fme-3", "fme-2", "me@here", "now", "drain fme-2")
    assert owners.overrides["P/n"].replaces == "fme-1"  # still what the manifest says
    owners.moved("P/n", "fme-1", "fme-3", "me@here", "now", "back")
    assert owners.overrides == {}
    assert ScheduleOwners.from_bytes(owners.to_bytes()) == owners
