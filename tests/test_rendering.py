"""Tables in an 80-column terminal: the identifying column (entry key, node name, REST URL,
check) is printed whole on every row; the other columns wrap or are left out."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

import pytest
from rich.console import Console

from fmeaa.app.results import (
    Check,
    Failure,
    NodePlanReport,
    NodesResult,
    NodeStatusReport,
    NodeSyncReport,
    ParityResult,
    ParityRowReport,
    PlannedAction,
    PlanResult,
    ScaleInResult,
    SyncResult,
)
from fmeaa.commands import content, lifecycle, nodes

RESOURCE = "FME_SHAREDRESOURCE_DATA:/reference/lookup/zones.csv"
NAMES = ["fme-1", "fme-2", "fme-3"]
URL = "http://127.0.0.1:38211"


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """An 80-column console in place of stdout; returns the printed lines."""
    console = Console(file=StringIO(), width=80, color_system=None)
    for module in (content, lifecycle, nodes):
        monkeypatch.setattr(module, "stdout", console)
    return lambda: console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def fits(lines: list[str]) -> bool:
    return all(len(line) <= 80 for line in lines)


def rows_with(lines: list[str], text: str) -> list[str]:
    return [line for line in lines if text in line]


def test_plan(screen: Callable[[], list[str]]) -> None:
    actions = [PlannedAction(change="update", kind="resource", key=RESOURCE, detail="file",
                             digest="a" * 12, current="b" * 12),
               PlannedAction(change="create", kind="subscription", key="gis-team-email",
                             digest="c" * 12)]
    result = PlanResult(source="content directory /a/rather/long/path/to/the/content", prune=False,
                        changes=True, nodes={
                            n: NodePlanReport(url=URL, status="ok", actions=actions,
                                              summary={"update": 1, "create": 1})
                            for n in NAMES})
    content.print_plan(result, show_unchanged=False)
    lines = screen()
    assert fits(lines) and len(rows_with(lines, RESOURCE)) == 3
    assert len(rows_with(lines, "gis-team-email")) == 3


def test_sync_results(screen: Callable[[], list[str]]) -> None:
    failure = Failure(action=f"update resource {RESOURCE}", error="fme-2: POST … -> 503: busy")
    result = SyncResult(ok=False, nodes={
        "fme-1": NodeSyncReport(status="ok", created=15, updated=0, deleted=0, unchanged=0,
                                bytes_sent=123456789, in_sync=True),
        "fme-2": NodeSyncReport(status="failed", created=14, failures=[failure]),
        "fme-3": NodeSyncReport(status="unreachable", error="connection refused")})
    content.print_results(result)
    lines = screen()
    assert fits(lines)
    for name in NAMES:
        assert rows_with(lines, f"│ {name} ")
    assert "unreachable" in "\n".join(lines) and "refused" in "\n".join(lines)


def test_verify(screen: Callable[[], list[str]]) -> None:
    rows = [ParityRowReport(kind="resource", key=RESOURCE, status="drift",
                            digests={"fme-1": "a" * 12, "fme-2": "a" * 12, "fme-3": "b" * 12},
                            expected={n: "a" * 12 for n in NAMES}, drifted_nodes=["fme-3"]),
            ParityRowReport(kind="schedule", key="Parcels/nightly-parcels", status="in sync",
                            digests={n: "c" * 12 for n in NAMES},
                            expected={n: "c" * 12 for n in NAMES}, drifted_nodes=[],
                            enabled_on=["fme-1"])]
    result = ParityResult(source="content directory /content", in_sync=False, drift=1,
                          unreadable={}, nodes=NAMES, rows=rows)
    content.print_parity(result, show_all=True)
    lines = screen()
    assert fits(lines)
    row = rows_with(lines, RESOURCE)
    assert len(row) == 1 and "drift" in "\n".join(lines) and "fme-3" in "\n".join(lines)
    assert rows_with(lines, "Parcels/nightly-parcels")


def test_nodes_show_the_url_whole_and_why_a_node_is_unreachable(
        screen: Callable[[], list[str]]) -> None:
    result = NodesResult(cluster="sandbox", credentials_given=True, nodes=[
        NodeStatusReport(name="fme-1", url=URL, health="healthy",
                         version="FME Flow 2024.1 (emulated)", licensed=True,
                         license_expiry="2027-01-01", in_load_balancer="healthy"),
        NodeStatusReport(name="fme-2", url="http://127.0.0.1:38212", health="unreachable",
                         error="connection refused", in_load_balancer="unused")])
    nodes.print_nodes(result)
    lines = screen()
    assert fits(lines)
    assert rows_with(lines, URL) and rows_with(lines, "http://127.0.0.1:38212")
    header = "\n".join(lines[:6])
    assert "problem" in header
    assert "refused" in "\n".join(lines)


def test_scale_in_check(screen: Callable[[], list[str]]) -> None:
    result = ScaleInResult(node="fme-3", safe=False, checks=[
        Check(check="out of the load balancer (both target groups)", ok=False,
              detail="registered and healthy in arn:aws:elasticloadbalancing:eu-west-1:"
                     "123456789012:targetgroup/fme-aa-web/0123456789abcdef"),
        Check(check="no running jobs", ok=True, detail="0 running")])
    lifecycle.print_scale_in(result)
    lines = screen()
    assert fits(lines)
    assert rows_with(lines, "out of the load balancer (both target groups)")
