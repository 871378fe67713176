"""The application layer, called as a Python front end would (no CLI): typed requests in, typed
result documents out, against 3 emulated nodes. CLI tests check parsing, rendering and exit
codes; what an operation does is checked here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa import app
from fmeaa.app.results import NodePlanReport, PlanResult, SyncResult
from fmeaa.cluster.inventory import InventoryError
from fmeaa.emulator import Sandbox
from fmeaa.sync.engine import EngineSettings, Observer
from fmeaa.sync.manifest import ContentError
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, node_items, snapshot_state


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Sandbox, app.ClusterRef, Path, EngineSettings]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        ref = app.ClusterRef(inventory=box.write_inventory(tmp_path / "nodes.json"))
        yield box, ref, copy_example(tmp_path / "content"), EngineSettings(
            cache_dir=tmp_path / "cache", timeout_s=10)


class Recorder(Observer):
    def __init__(self) -> None:
        self.phases: list[str] = []
        self.steps = 0

    def phase(self, name: str, total: int) -> None:
        self.phases.append(name)

    def step(self, node: str, action: object = None) -> None:
        self.steps += 1


def test_plan_sync_verify_return_typed_documents(cluster) -> None:
    box, ref, content, settings = cluster
    request = app.ContentRequest(str(content), ref, settings)
    before = app.plan(request)
    assert isinstance(before, PlanResult) and before.changes
    assert all(isinstance(n, NodePlanReport) and n.summary and n.summary["create"] == 15
               for n in before.nodes.values())

    seen = Recorder()
    synced = app.sync(request, observer=seen)
    assert isinstance(synced, SyncResult) and synced.ok
    assert {n: r.created for n, r in synced.nodes.items()} == {"fme-1": 15, "fme-2": 15,
                                                                "fme-3": 15}
    assert "applying" in seen.phases and seen.steps >= 45  # progress reaches the front end
    assert node_items(box, "fme-1") == node_items(box, "fme-2") == node_items(box, "fme-3")

    parity = app.verify(request)
    assert parity.in_sync and parity.drift == 0 and parity.nodes == ["fme-1", "fme-2", "fme-3"]
    assert not app.plan(request).changes
    # The JSON shape is the documented camelCase one.
    assert set(synced.to_json()["nodes"]["fme-1"]) >= {"bytesSent", "inSync", "failures"}


def test_bad_input_is_refused_before_any_node_is_touched(cluster, tmp_path: Path) -> None:
    box, ref, content, settings = cluster
    untouched = snapshot_state(box)
    with pytest.raises(ContentError, match="schedule-policy"):
        app.sync(app.ContentRequest(str(content), ref, settings, schedule_policy="twice"))
    with pytest.raises(InventoryError, match="no node named 'fme-9'"):
        app.sync(app.ContentRequest(str(content), app.ClusterRef(inventory=ref.inventory,
                                                                 only=("fme-9",)), settings))
    with pytest.raises(ContentError):
        app.sync(app.ContentRequest(str(tmp_path / "missing"), ref, settings))
    assert snapshot_state(box) == untouched


def test_only_chosen_nodes_are_synced(cluster) -> None:
    box, ref, content, settings = cluster
    only = app.ClusterRef(inventory=ref.inventory, only=("fme-2",))
    result = app.sync(app.ContentRequest(str(content), only, settings))
    assert list(result.nodes) == ["fme-2"] and result.ok
    assert node_items(box, "fme-1") == {} and node_items(box, "fme-2")


def test_publish_and_export_round_trip(cluster, tmp_path: Path) -> None:
    box, ref, _, settings = cluster
    workspace = tmp_path / "extra.fmw"
    workspace.write_text("#! extra\n")
    published = app.publish(app.PublishRequest(workspace, "Extra", ref, settings=settings))
    assert published.ok and all(n.created == 2 for n in published.nodes.values())
    assert "Extra/extra.fmw" in node_items(box, "fme-3")

    exported = app.export(app.ExportRequest(tmp_path / "out", "fme-2", ref))
    assert exported.node == "fme-2" and exported.files >= 1
    assert (tmp_path / "out" / "fmeaa-content.yaml").is_file()
    with pytest.raises(ContentError, match="not empty"):
        app.export(app.ExportRequest(tmp_path / "out", "fme-2", ref))


def test_nodes_reports_each_node(cluster) -> None:
    box, ref, _, _ = cluster
    box.node("fme-3").stop()
    result = app.nodes(ref, timeout_s=2)
    health = {n.name: n.health for n in result.nodes}
    assert health == {"fme-1": "healthy", "fme-2": "healthy", "fme-3": "unreachable"}
    assert result.nodes[0].version and result.nodes[0].licensed is True
    assert all(n.in_load_balancer == "no target group" for n in result.nodes)


def test_rehearsal_runs_the_operations(tmp_path: Path) -> None:
    titles: list[str] = []
    result = app.rehearse(nodes=2, on_step=lambda title, doc, ok: titles.append(title))
    assert result.ok and len(result.steps) == len(titles) == 7
    assert result.steps[-1].result and result.steps[-1].result["inSync"] is True
