"""FME Flow projects as content: a package exported from an authoring node is imported into
every node with V4 project import (upload → preview → run → wait), its preview shown as plan
rows, verified afterwards, re-imported when it changes on a node; `export` writes projects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fmeaa.client import FmeClient, connect
from fmeaa.emulator import EmulatedNode, Sandbox
from fmeaa.sync.manifest import load_content_dir
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import fmeaa

PROJECT_ITEMS = [{"type": "repository", "id": "Roads"},
                 {"type": "workspace", "id": "Roads/clip_roads.fmw"},
                 {"type": "schedule", "id": "Roads/hourly-road-check"},
                 {"type": "deploymentParameter", "id": "road_db"}]


def _client(node: EmulatedNode) -> FmeClient:
    client = connect(node.name, node.url, username="admin", password=TEST_PASSWORD, timeout=10)
    client.login()
    return client


def author_package(tmp_path: Path, dest: Path, workspace: bytes = b"clip v1") -> Path:
    """An authoring node with a project (created and filled through REST V4, as support.safe.com
    article 42307169945229 shows), exported as a package (fmeflow-cli projects_download.go)."""
    with Sandbox(1, root=tmp_path / f"author-{dest.stem}", password=TEST_PASSWORD) as box, \
            _client(box.nodes[0]) as client:
        client.create_repository("Roads")
        ws = tmp_path / "clip_roads.fmw"
        ws.write_bytes(workspace)
        client.upload_item("Roads", ws)
        client.create_schedule({"name": "hourly-road-check", "category": "Roads",
                                "repository": "Roads", "workspace": "clip_roads.fmw",
                                "recurrence": "cron", "cron": "0 0 * * * ?", "enabled": True})
        client.create_deployment_parameter({"name": "road_db", "type": "text", "value": "pg"})
        auth = client._headers()
        base = box.nodes[0].url + "/fmeapiv4/projects"
        assert httpx.post(base, headers=auth, json={"name": "Roads"}).status_code == 201
        project_id = client.projects()[0]["id"]
        assert httpx.post(f"{base}/{project_id}/items/batch/add", headers=auth,
                          json={"items": PROJECT_ITEMS}).status_code == 200
        dest.parent.mkdir(parents=True, exist_ok=True)
        client.export_project(project_id, dest)
    return dest


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = tmp_path / "content"
    author_package(tmp_path, content / "projects" / "roads.fsproject")
    (content / "fmeaa-content.yaml").write_text(
        "version: 1\nprojects:\n  - {file: projects/roads.fsproject, name: Roads}\n")
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD,
                 versions={"fme-1": "2025.2"}) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json"), content


def _project_rows(plan: dict, node: str) -> list[tuple[str, str, str | None]]:
    return [(a["change"], a["key"], a["detail"]) for a in plan["nodes"][node]["actions"]
            if a["kind"] in ("project", "project-item")]


def test_imported_into_every_node_with_the_preview_as_plan_rows(
        env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json")
    assert plan.code == 0
    for node in ("fme-1", "fme-2", "fme-3"):
        assert _project_rows(plan.json, node) == [
            ("create", "Roads", None),
            ("preview", "Roads: repository Roads", "new"),
            ("preview", "Roads: workspace Roads/clip_roads.fmw", "new"),
            ("preview", "Roads: schedule Roads/hourly-road-check", "new"),
            ("preview", "Roads: deploymentParameter road_db", "new")]
    assert all(not n.state.projects and not n.state.project_imports for n in box.nodes)  # only
    # previewed: nothing imported, no import left behind

    synced = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert synced.code == 0, synced.out
    for node in box.nodes:
        state = node.state
        assert [p["name"] for p in state.projects.values()] == ["Roads"]
        assert state.repositories["Roads"].items["clip_roads.fmw"].file.size == len(b"clip v1")
        assert ("Roads", "hourly-road-check") in state.schedules
        assert state.deployment_parameters["road_db"]["value"] == "pg"
    assert fmeaa("plan", "-s", content, "-i", inv, "--detailed-exitcode").code == 0
    verify = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert verify.code == 0
    row = next(r for r in verify.json["rows"] if r["kind"] == "project")
    assert row["status"] == "in sync" and len(set(row["digests"].values())) == 1

    # Someone re-imports or edits the project on fme-3: drift there, and sync imports it again.
    project = next(iter(box.node("fme-3").state.projects.values()))
    project["lastUpdated"] = "2030-01-01T00:00:00.000Z"
    drift = fmeaa("verify", "-s", content, "-i", inv, "--json")
    assert drift.code == 1
    assert next(r for r in drift.json["rows"] if r["kind"] == "project")["driftedNodes"] == [
        "fme-3"]
    again = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert again.code == 0 and again.json["nodes"]["fme-3"]["applied"] == 1
    assert again.json["nodes"]["fme-1"]["applied"] == 0
    assert fmeaa("verify", "-s", content, "-i", inv).code == 0


def test_a_new_package_is_an_update_on_every_node(env: tuple[Sandbox, Path, Path],
                                                  tmp_path: Path) -> None:
    box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    author_package(tmp_path / "v2", content / "projects" / "roads.fsproject", b"clip v2 longer")
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json")
    rows = _project_rows(plan.json, "fme-2")
    assert rows[0] == ("update", "Roads", "definition")
    assert ("preview", "Roads: workspace Roads/clip_roads.fmw", "overwritten") in rows
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert {n.state.repositories["Roads"].items["clip_roads.fmw"].file.size
            for n in box.nodes} == {len(b"clip v2 longer")}
    assert fmeaa("verify", "-s", content, "-i", inv).code == 0


def test_a_node_without_v4_project_import_fails_alone_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = tmp_path / "content"
    author_package(tmp_path, content / "projects" / "roads.fsproject")
    (content / "fmeaa-content.yaml").write_text(
        "version: 1\nprojects:\n  - {file: projects/roads.fsproject, name: Roads}\n")
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD,
                 versions={"fme-2": "2023.2"}) as box:
        inv = box.write_inventory(tmp_path / "nodes.json")
        result = fmeaa("sync", "-s", content, "-i", inv, "--json")
        assert result.code == 1 and result.json["nodes"]["fme-1"]["status"] == "ok"
        failure = str(result.json["nodes"]["fme-2"]["failures"])
        assert "projects.import_upload" in failure and "FME Flow 2023.2" in failure
        assert "from build 25049" in failure


def test_export_writes_the_nodes_projects(env: tuple[Sandbox, Path, Path],
                                          tmp_path: Path) -> None:
    _box, inv, content = env
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert fmeaa("export", "--from", "fme-2", tmp_path / "out", "-i", inv).code == 0
    exported = load_content_dir(tmp_path / "out").manifest.projects or []
    assert [(p.name, p.file) for p in exported] == [("Roads", "projects/Roads.fsproject")]
    assert (tmp_path / "out" / "projects" / "Roads.fsproject").stat().st_size > 0

