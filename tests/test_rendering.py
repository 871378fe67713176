"""Tables in an 80-column terminal: the identifying column (entry key, node name, REST URL,
check) is printed whole on every row; the other columns wrap or are left out."""

from __future__ import annotations

import re
from collections.abc import Callable
from io import StringIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.markup import escape

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
from fmeaa.commands.tables import Column, FittedTable

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


_BOX = set("│┃┏┓┗┛┡┩┠┨┣┫┳┻╇╋━─┼├┤┬┴┌┐└┘╀╁╂╃╄╅╆╈╉╊")


def squeezed(text: str) -> str:
    """The text without borders or whitespace: a cell folded over several lines (or printed
    under the table, wrapped by the terminal) reads as one string again."""
    return "".join(ch for ch in text if not ch.isspace() and ch not in _BOX)


def test_nodes_problem_is_whole_at_80_columns_with_long_node_urls(
        screen: Callable[[], list[str]]) -> None:
    """Hand-written inventories name nodes by DNS name: the key columns then leave the
    problem column too little room; it must not be cropped by the terminal."""
    problem = ("fme-2: GET /fmeinfo/version -> 401: Authentication failed: invalid user "
               "name or password")
    urls = ["https://fme-node-1.gis.example.internal:8443",
            "https://fme-node-2.gis.example.internal:8443"]
    result = NodesResult(cluster="production", credentials_given=True, nodes=[
        NodeStatusReport(name="prod-fme-1", url=urls[0], health="healthy",
                         version="FME Flow 2025.2 - Build 25811 - linux-x64", api="V3, V4",
                         licensed=True, license_expiry="2027-12-31T00:00:00Z",
                         in_load_balancer="healthy"),
        NodeStatusReport(name="prod-fme-2", url=urls[1], health="healthy", error=problem,
                         in_load_balancer="healthy")])
    nodes.print_nodes(result)
    lines = screen()
    assert fits(lines), "\n".join(lines)
    for url in urls:
        assert rows_with(lines, url)
    assert squeezed(problem) in squeezed("\n".join(lines)), "\n".join(lines)



_WORD = st.text(alphabet="abcdefghij-/._0123456789[]", min_size=1, max_size=30)
_CELL = st.lists(_WORD, max_size=6).map(" ".join)


def column_texts(lines: list[str]) -> tuple[dict[str, str], str]:
    """Each column's text, squeezed, top to bottom (a folded cell reads whole again), and the
    squeezed text printed under the table (`<row> colN: …` lines). For the generated tables
    of the test below, whose cells hold no ':'."""
    header = next(i for i, line in enumerate(lines)
                  if line.strip() and set(line.strip()) <= set("━╇┡┩")) - 1
    edge = lines[header].startswith("┃")

    def fields(line: str, bar: str) -> list[str]:
        return (line.rstrip()[1:-1] if edge else line).split(bar)

    names = [h.strip() for h in fields(lines[header], "┃")]
    after = next((i for i in range(header + 2, len(lines))
                  if re.search(r"(^| )col\d+: ", lines[i]) or "left out" in lines[i]
                  or not lines[i].strip() or lines[i].startswith("└")), len(lines))
    texts = dict.fromkeys(names, "")
    for line in lines[header + 2:after]:
        if not set(line.strip()) <= set("─├┼┤"):
            for name, cell in zip(names, fields(line, "│"), strict=True):
                texts[name] += squeezed(cell)
    return texts, squeezed("\n".join(lines[after - 1:]))  # from the row's name, if wrapped


@settings(max_examples=100, deadline=None)
@given(keys=st.integers(1, 2), others=st.lists(st.integers(0, 2), min_size=1, max_size=5),
       rows=st.integers(1, 4), width=st.integers(30, 120), data=st.data())
def test_a_fitted_table_is_never_wider_than_the_terminal_and_loses_no_text(
        keys: int, others: list[int], rows: int, width: int, data: st.DataObject) -> None:
    """Any table, any width: no line is wider than the terminal (which would crop it); while
    the keys fit, every key cell is on one line, whole; the text of every other column not
    named as left out is printed in full, in its column or under the table."""
    columns = [Column(f"key{k}", key=True) for k in range(keys)] + \
        [Column(f"col{i}", drop=d) for i, d in enumerate(others)]
    table = FittedTable("t", columns)
    content = [[data.draw(_WORD if c.key else _CELL) for c in columns] for _ in range(rows)]
    for cells in content:
        table.add_row(*(escape(cell) for cell in cells))
    console = Console(file=StringIO(), width=width, color_system=None)
    console.print(table.build(width))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    lines = out.splitlines()
    assert all(len(line) <= width for line in lines), out
    texts, under = column_texts(lines)
    keys_fit = sum(max(len(r[k]) for r in content) + 3 for k in range(keys)) + 1 <= width
    for cells in content:
        for c, cell in zip(columns, cells, strict=True):
            if c.key and keys_fit:
                assert rows_with(lines, cell), out
            elif c.header in texts:
                assert squeezed(cell) in texts[c.header], out
            elif "left out" not in out or c.header not in under:
                assert squeezed(cell) in under, out
                assert not cell or re.search(rf"(^| ){c.header}: ", out, re.MULTILINE), out


def test_upgrade_steps_at_80_columns_show_serving_nodes_and_archived_logs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from fmeaa.app.results import UpgradeResult, UpgradeStepReport
    from fmeaa.commands import upgrade

    def render(width: int) -> list[str]:
        console = Console(file=StringIO(), width=width, color_system=None)
        monkeypatch.setattr(upgrade, "stdout", console)
        upgrade.print_upgrade(UpgradeResult(
            strategy="surge", stack="production", dry_run=False, serving_at_least=3, steps=[
                UpgradeStepReport(action="add", nodes=["fme-4"], settings_changed=["nodes"],
                                  pulumi_up=True, serving=[f"fme-{i}" for i in range(1, 5)]),
                UpgradeStepReport(action="retire", nodes=["fme-1"], settings_changed=["nodes"],
                                  pulumi_up=True, serving=[f"fme-{i}" for i in range(2, 5)],
                                  archived_log_files=12)]))
        return console.file.getvalue().splitlines()  # type: ignore[attr-defined]

    narrow, wide = render(80), render(160)
    assert fits(narrow)
    assert rows_with(narrow, "1. add") and rows_with(narrow, "2. retire")
    assert "fme-2, fme-3" in "\n".join(narrow)  # serving after, kept at 80 columns
    assert rows_with(wide, "12 file(s)")


def test_node_errors_and_names_with_brackets_are_printed_as_written(
        screen: Callable[[], list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Text from nodes is not rich markup: `[503]` or a schedule named `[ops]` must not vanish."""
    from fmeaa.app.results import UnlockResult
    from fmeaa.commands import lock

    why = "GET /fmerest/v3/repositories -> [503] busy"
    key = "[ops]/nightly"
    schedule = ParityRowReport(kind="schedule", key=key, status="in sync",
                               digests={"fme-1": "c" * 12, "fme-2": "c" * 12},
                               expected={"fme-1": "c" * 12, "fme-2": "c" * 12},
                               drifted_nodes=[], enabled_on=["fme-1"])
    content.print_parity(ParityResult(source="content directory /c", in_sync=False, drift=0,
                                      unreadable={"fme-3": why}, nodes=["fme-1", "fme-2"],
                                      rows=[schedule]), show_all=False)
    monkeypatch.setattr(lock, "stdout", content.stdout)
    lock.print_unlock(UnlockResult(holders="", removed_from=[], failed={"fme-2": why}))
    text = "\n".join(screen())
    assert f"fme-3: could not be read: {why}" in text
    assert f"schedule {key}: enabled on fme-1" in text
    assert f"fme-2: not checked ({why})" in text


def test_a_failed_node_shows_how_much_of_its_plan_was_applied(
        screen: Callable[[], list[str]]) -> None:
    """`15 created` on a node where recording its history failed and nothing was changed
    told the admin the opposite of what happened."""
    result = SyncResult(ok=False, nodes={
        "fme-1": NodeSyncReport(status="ok", applied=15, created=15, updated=0, deleted=0,
                                unchanged=0, bytes_sent=1633, in_sync=True),
        "fme-2": NodeSyncReport(status="failed", applied=0, created=15, updated=0, deleted=0,
                                unchanged=0, failures=[Failure(
                                    action="record history", error="nothing was changed")])})
    content.print_results(result)
    lines = screen()
    assert "15 created" in rows_with(lines, "│ fme-1 ")[0]
    fme_2 = "\n".join(lines[lines.index(rows_with(lines, "│ fme-2 ")[0]):])
    assert "0 of 15" in fme_2 and "15 created" not in fme_2


def test_one_unreachable_node_does_not_push_the_plan_out_of_its_table(
        screen: Callable[[], list[str]]) -> None:
    """`unreachable` in the change column of a plan with long resource keys: the word folds
    in its one cell rather than every row's change moving under the table."""
    key = "FME_SHAREDRESOURCE_DATA:/reference/lookup/road_classes.csv"
    actions = [PlannedAction(change="create", kind="resource", key=key, digest="a" * 12,
                             cause="pending")]
    nodes_ = {n: NodePlanReport(url=URL, status="ok", actions=actions, summary={"create": 1})
              for n in NAMES[:2]}
    nodes_["fme-3"] = NodePlanReport(url=URL, status="unreachable", error="cannot connect")
    content.print_plan(PlanResult(source="content directory /c", prune=False, changes=True,
                                  nodes=nodes_), show_unchanged=False)
    lines = screen()
    assert fits(lines)
    assert len(rows_with(lines, key)) == 2 and all("create" in r for r in rows_with(lines, key))
    assert not rows_with(lines, "change:")
    assert "fme-3: unreachable: cannot connect" in lines
