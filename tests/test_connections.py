"""FME Flow connections: synced from a content directory with credentials by reference; nodes
never return credential values, so fme-aa compares what it last wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa.client import connect
from fmeaa.emulator import Sandbox
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa

CONNECTIONS = """
connections:
  - name: warehouse
    category: database
    type: PostgreSQL
    parameters:
      HOST: db.internal
      PORT: "5432"
      USER_NAME: fme
      PASSWORD: {secret: "env:PG_PASSWORD"}
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PG_PASSWORD", "pg-first-value")
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text() + CONNECTIONS)
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json"), content


def changed(plan: dict, node: str) -> list[tuple[str, str, str]]:
    return [(a["change"], a["kind"], a["key"]) for a in plan["nodes"][node]["actions"]
            if a["change"] not in ("unchanged", "extra")]


def test_credentials_by_reference_and_rotation(env: tuple[Sandbox, Path, Path],
                                               monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    for n in box.nodes:
        assert n.state.connections["warehouse"]["parameters"]["PASSWORD"] == "pg-first-value"
    with connect("fme-1", box.node("fme-1").url, username="admin", password=TEST_PASSWORD) as c:
        c.login()
        assert "PASSWORD" not in c.connection("warehouse")["parameters"]  # never returned
    # What fme-aa wrote is remembered, so the missing value is not drift...
    assert fmeaa("plan", "-s", content, "-i", inv, "--detailed-exitcode").code == 0
    assert fmeaa("verify", "-s", content, "-i", inv).code == 0
    # ...and a rotated secret is an update on every node.
    monkeypatch.setenv("PG_PASSWORD", "pg-rotated-value")
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json").json
    assert changed(plan, "fme-1") == changed(plan, "fme-2") == [
        ("update", "connection", "warehouse")]
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert all(n.state.connections["warehouse"]["parameters"]["PASSWORD"] == "pg-rotated-value"
               for n in box.nodes)
    # A machine that never wrote them knows it from each node's ledger: nothing to re-send...
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "other-machine"))
    assert fmeaa("plan", "-s", content, "-i", inv, "--detailed-exitcode").code == 0
    # ...and a node whose ledger is gone is re-sent its connection once.
    ledger = box.node("fme-1").state.data_dir / "resources" / "FME_SHAREDRESOURCE_BACKUP" / \
        "fme-aa" / "ledger.json"
    ledger.unlink()
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "third-machine"))
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json").json
    assert ("update", "connection", "warehouse") in changed(plan, "fme-1")
    assert changed(plan, "fme-2") == []
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert fmeaa("plan", "-s", content, "-i", inv, "--detailed-exitcode").code == 0


def test_a_public_parameter_edited_on_a_node_is_drift(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    box.node("fme-2").state.connections["warehouse"]["parameters"]["HOST"] = "elsewhere"
    report = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert report.code == 1
    row = next(r for r in report.json["rows"] if r["kind"] == "connection")
    assert row["driftedNodes"] == ["fme-2"]


def test_connections_are_left_alone_unless_listed(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(CONNECTIONS, ""))
    box.node("fme-1").state.connections["hand-made"] = {"name": "hand-made", "category": "database",
                                                        "type": "Oracle", "parameters": {}}
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json", "--prune").json
    assert not [a for a in plan["nodes"]["fme-1"]["actions"] if a["kind"] == "connection"]
    assert fmeaa("sync", "-s", content, "-i", inv, "--prune").code == 0
    assert "hand-made" in box.node("fme-1").state.connections
    # Reference-node mode never copies connections (their credentials cannot be read back).
    assert fmeaa("sync", "-s", "node:fme-1", "-i", inv, "--prune").code == 0
    assert box.node("fme-2").state.connections == {}
    # Listed (even as an empty list), they are managed: prune removes the unlisted one.
    manifest.write_text(manifest.read_text() + "connections: []\n")
    assert fmeaa("sync", "-s", content, "-i", inv, "--prune").code == 0
    assert box.node("fme-1").state.connections == {}


def test_export_writes_connections_without_credentials(env: tuple[Sandbox, Path, Path],
                                                       tmp_path: Path) -> None:
    _, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    result = fmeaa("export", "--from", "fme-1", tmp_path / "out", "-i", inv, "--json")
    assert result.json["connectionsWithoutCredentials"] == ["warehouse"]
    text = (tmp_path / "out" / "fmeaa-content.yaml").read_text()
    assert "warehouse" in text and "db.internal" in text and "pg-first-value" not in text
