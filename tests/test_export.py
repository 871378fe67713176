"""`fmeaa export`: what it writes must sync back without changing what runs where.

Schedules: a node only knows whether a schedule is enabled on itself, so export reads every node
of the inventory to reconstruct each schedule's policy and owner. Connections: nodes never
return credentials, so export writes references the operator must fill, and a sync with an
unfilled one is refused before any node is contacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fmeaa.emulator import Sandbox
from fmeaa.sync.export import ScheduleSpread, reconstruct_schedule_policy
from fmeaa.sync.manifest import ContentError
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa, snapshot_state

NIGHTLY = ("Parcels", "nightly-parcels")
HOURLY = ("Roads", "hourly-road-check")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json"), copy_example(tmp_path / "content")


def exported_schedules(directory: Path) -> dict[str, dict]:
    manifest = yaml.safe_load((directory / "fmeaa-content.yaml").read_text())
    return {f"{s['category']}/{s['name']}": s for s in manifest["schedules"]}


def enabled_where(box: Sandbox, key: tuple[str, str]) -> list[str]:
    return [n.name for n in box.nodes if n.state.schedules[key]["enabled"]]


def test_export_from_a_non_owner_keeps_each_schedule_on_its_owner(
        env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    box, inv, content = env
    manifest = content / "fmeaa-content.yaml"
    # nightly-parcels runs on fme-3 only; hourly-road-check on every node.
    manifest.write_text(manifest.read_text()
                        .replace("load_parcels.fmw\n    cron: \"0 0 2 * * ?\"\n    policy: one",
                                 "load_parcels.fmw\n    cron: \"0 0 2 * * ?\"\n    policy: one\n"
                                 "    owner: fme-3")
                        .replace("validate_roads.fmw\n    cron: \"0 0 * * * ?\"\n    policy: one",
                                 "validate_roads.fmw\n    cron: \"0 0 * * * ?\"\n    policy: all"))
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert enabled_where(box, NIGHTLY) == ["fme-3"]
    # fme-2 owns nothing: its own copy of nightly-parcels is disabled.
    out = tmp_path / "export"
    result = fmeaa("export", "--from", "fme-2", out, "-i", inv)
    assert result.code == 0, result.out + result.err
    schedules = exported_schedules(out)
    nightly, hourly = schedules["Parcels/nightly-parcels"], schedules["Roads/hourly-road-check"]
    assert (nightly["policy"], nightly.get("owner"), nightly["enabled"]) == ("one", "fme-3", True)
    assert (hourly["policy"], hourly["enabled"]) == ("all", True) and "owner" not in hourly
    # Syncing the export back changes nothing about where schedules run.
    assert fmeaa("sync", "-s", out, "-i", inv).code == 0
    assert enabled_where(box, NIGHTLY) == ["fme-3"]
    assert enabled_where(box, HOURLY) == ["fme-1", "fme-2", "fme-3"]


def test_export_refuses_when_a_node_cannot_be_read(env: tuple[Sandbox, Path, Path],
                                                   tmp_path: Path) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    box.node("fme-3").stop()
    result = fmeaa("export", "--from", "fme-2", tmp_path / "export", "-i", inv)
    assert result.code == 1
    assert "fme-3" in result.err and "schedule" in result.err
    assert not (tmp_path / "export").exists()  # nothing written


def test_reconstructed_policy_for_every_spread() -> None:
    nodes = ["fme-1", "fme-2", "fme-3"]
    def spread(enabled: list[str], present: list[str] | None = None) -> ScheduleSpread:
        return ScheduleSpread("Roads/x", tuple(present or nodes), tuple(enabled))
    assert reconstruct_schedule_policy(spread(["fme-2"]), nodes) == {
        "enabled": True, "policy": "one", "owner": "fme-2"}
    assert reconstruct_schedule_policy(spread(nodes), nodes) == {"enabled": True, "policy": "all"}
    assert reconstruct_schedule_policy(spread([]), nodes) == {"enabled": False, "policy": "all"}
    # Missing on a node but enabled on exactly one: still that node's schedule.
    assert reconstruct_schedule_policy(spread(["fme-1"], ["fme-1", "fme-2"]), nodes) == {
        "enabled": True, "policy": "one", "owner": "fme-1"}
    # Enabled on two of three nodes: no policy gives that; export says so instead of guessing.
    with pytest.raises(ContentError, match=r"Roads/x.*enabled on fme-1, fme-2 of 3"):
        reconstruct_schedule_policy(spread(["fme-1", "fme-2"]), nodes)


def test_a_single_node_cluster_round_trips_its_owner() -> None:
    spread = ScheduleSpread("Roads/x", ("fme-1",), ("fme-1",))
    assert reconstruct_schedule_policy(spread, ["fme-1"]) == {
        "enabled": True, "policy": "one", "owner": "fme-1"}


# --- connections -----------------------------------------------------------------------------------
CONNECTIONS = """
connections:
  - name: warehouse
    category: database
    type: PostgreSQL
    parameters:
      HOST: db.internal
      USER_NAME: fme
      PASSWORD: {secret: "env:PG_PASSWORD"}
"""


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[tuple[Sandbox, Path, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PG_PASSWORD", "pg-original-value")
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text() + CONNECTIONS)
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json"), content


def test_syncing_an_export_with_unfilled_credentials_is_refused(
        flow: tuple[Sandbox, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box, inv, content = flow
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    out = tmp_path / "export"
    exported = fmeaa("export", "--from", "fme-1", out, "-i", inv, "--json")
    assert exported.code == 0
    variable = "FMEAA_SECRET_WAREHOUSE_PASSWORD"
    assert exported.json["connectionsWithoutCredentials"] == ["warehouse"]
    assert variable in exported.json["secretVariables"]
    written = yaml.safe_load((out / "fmeaa-content.yaml").read_text())["connections"][0]
    assert written["parameters"]["PASSWORD"] == {"secret": f"env:{variable}"}
    # The operator has not filled it: plan and sync refuse, naming connection, key and variable,
    # and no node is contacted (the password on the nodes survives).
    before = snapshot_state(box)
    requests = [n.request_count for n in box.nodes]
    for command in ("plan", "sync"):
        refused = fmeaa(command, "-s", out, "-i", inv, "--prune")
        assert refused.code == 1, refused.out
        assert "connections[warehouse].parameters.PASSWORD" in refused.err
        assert f"${variable}" in refused.err and "not set" in refused.err
    assert [n.request_count for n in box.nodes] == requests
    assert snapshot_state(box) == before
    assert all(n.state.connections["warehouse"]["parameters"]["PASSWORD"] == "pg-original-value"
               for n in box.nodes)
    # Filled in, it syncs.
    monkeypatch.setenv(variable, "pg-new-value")
    assert fmeaa("sync", "-s", out, "-i", inv).code == 0
    assert all(n.state.connections["warehouse"]["parameters"]["PASSWORD"] == "pg-new-value"
               for n in box.nodes)


def test_every_unset_reference_is_listed_at_once(flow: tuple[Sandbox, Path, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    box, inv, content = flow
    monkeypatch.delenv("PG_PASSWORD")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(
        "recipient: gis-team@example.com",
        "recipient: gis-team@example.com\n      smtp_password: {secret: \"env:SMTP_PASSWORD\"}"))
    refused = fmeaa("plan", "-s", content, "-i", inv)
    assert refused.code == 1
    assert "connections[warehouse].parameters.PASSWORD" in refused.err and "$PG_PASSWORD" in refused.err
    assert "subscriptions[gis-team-email].properties.smtp_password" in refused.err
    assert "$SMTP_PASSWORD" in refused.err
    assert all(n.request_count == 0 for n in box.nodes)
