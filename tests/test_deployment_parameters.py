"""FME Flow deployment parameters (REST V4) as content: listed in the manifest, planned, synced
and verified per node like connections; left alone when the manifest has no such key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa.emulator import Sandbox
from fmeaa.sync.manifest import ContentError, load_content_dir
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa

PARAMETERS = """
deploymentParameters:
  - {name: target_env, value: production}
  - name: warehouse_db
    type: dropdown
    value: warehouse
    choiceSettings: {choiceSet: dbConnections, family: PostgreSQL}
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text() + PARAMETERS)
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD,
                 versions={"fme-1": "2025.2"}) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json"), content


def changed(plan: dict, node: str) -> list[tuple[str, str, str]]:
    return [(a["change"], a["kind"], a["key"]) for a in plan["nodes"][node]["actions"]
            if a["change"] not in ("unchanged", "extra")]


def test_synced_planned_and_verified_on_every_node(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    for node in box.nodes:
        stored = node.state.deployment_parameters
        assert stored["target_env"]["value"] == "production"
        assert stored["warehouse_db"]["choiceSettings"] == {"choiceSet": "dbConnections",
                                                            "family": "PostgreSQL"}
    assert fmeaa("plan", "-s", content, "-i", inv, "--detailed-exitcode").code == 0
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert verify.code == 0
    assert {r["key"] for r in verify.json["rows"] if r["kind"] == "deployment-parameter"} == {
        "target_env", "warehouse_db"}

    # A new value, and a text parameter turned into a dropdown: one update each, every node.
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(
        "{name: target_env, value: production}",
        "{name: target_env, type: dropdown, value: slack,"
        " choiceSettings: {choiceSet: webConnections, services: [Slack]}}"))
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json")
    for node in ("fme-1", "fme-2", "fme-3"):
        assert changed(plan.json, node) == [("update", "deployment-parameter", "target_env")]
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert box.node("fme-2").state.deployment_parameters["target_env"]["type"] == "dropdown"
    assert fmeaa("verify", "-s", content, "-i", inv).code == 0

    # Changed by hand on one node: drift there only.
    box.node("fme-3").state.deployment_parameters["warehouse_db"]["value"] = "other"
    drift = fmeaa("verify", "-s", content, "-i", inv, "--json")
    row = next(r for r in drift.json["rows"] if r["key"] == "warehouse_db")
    assert drift.code == 1 and row["driftedNodes"] == ["fme-3"]


def test_unlisted_ones_are_pruned_only_when_managed(env: tuple[Sandbox, Path, Path]) -> None:
    _box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    manifest = content / "fmeaa-content.yaml"
    listed = manifest.read_text()
    manifest.write_text(listed.replace(PARAMETERS, "\ndeploymentParameters: []\n"))
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json", "--prune")
    assert sorted(c for c in changed(plan.json, "fme-2") if c[1] == "deployment-parameter") == [
        ("delete", "deployment-parameter", "target_env"),
        ("delete", "deployment-parameter", "warehouse_db")]
    manifest.write_text(listed.replace(PARAMETERS, "\n"))  # no key: not fmeaa's business
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json", "--prune")
    assert not [a for a in plan.json["nodes"]["fme-2"]["actions"]
                if a["kind"] == "deployment-parameter"]


def test_exported_with_the_rest(env: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    _box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert fmeaa("export", "--from", "fme-2", tmp_path / "out", "-i", inv).code == 0
    exported = load_content_dir(tmp_path / "out").manifest.deployment_parameters or []
    assert [(d.name, d.type, d.value) for d in exported] == [
        ("target_env", "text", "production"), ("warehouse_db", "dropdown", "warehouse")]
    plan = fmeaa("plan", "-s", tmp_path / "out", "-i", inv, "--json", "--node", "fme-1")
    assert [c for c in changed(plan.json, "fme-1") if c[1] == "deployment-parameter"] == []


def test_a_node_without_rest_v4_fails_alone_and_says_why(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text() + PARAMETERS)
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD,
                 versions={"fme-2": "2022.2"}) as box:
        inv = box.write_inventory(tmp_path / "nodes.json")
        result = fmeaa("sync", "-s", content, "-i", inv, "--json")
        assert result.code == 1
        assert result.json["nodes"]["fme-1"]["status"] == "ok"
        failures = " ".join(str(f) for f in result.json["nodes"]["fme-2"]["failures"])
        assert "deploymentparameters.create" in failures and "FME Server 2022.2" in failures


@pytest.mark.parametrize(("entry", "problem"), [
    ("{name: a, type: dropdown, value: x}", "a dropdown needs choiceSettings"),
    ("{name: a, value: x, choiceSettings: {choiceSet: dbConnections}}", "only a dropdown"),
    ("{name: a, type: dropdown, choiceSettings: {choiceSet: webConnections, family: X}}",
     "family is for dbConnections only"),
    ("{name: a, type: list}", "deploymentParameters.0.type"),
])
def test_bad_entries_are_refused_with_where_and_why(tmp_path: Path, entry: str,
                                                    problem: str) -> None:
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text() + f"\ndeploymentParameters:\n  - {entry}\n")
    with pytest.raises(ContentError) as caught:
        load_content_dir(content)
    assert problem in str(caught.value)
