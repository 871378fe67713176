"""The one table of operations × APIs (fmeaa/client/api_table.py): its rule, and the README's
copy of it (every UNCONFIRMED row marked)."""

from __future__ import annotations

from fmeaa.client.api_table import TABLE, NodeApi, markdown_table
from fmeaa.emulator.versions import VERSIONS
from tests.conftest import ROOT


def test_the_readme_shows_the_table_as_the_client_uses_it() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("<!-- api-table:start -->\n")[1].split("\n<!-- api-table:end -->")[0]
    columns = [(v.name, v.build, v.has_v3) for v in VERSIONS.values()]
    assert shown == markdown_table(columns)
    for e in TABLE:
        if not e.confirmed:
            row = next(line for line in shown.splitlines() if line.startswith(f"| {e.op} |"))
            assert "UNCONFIRMED" in row


def test_the_rule_confirmed_v4_then_v3_then_unconfirmed_v4() -> None:
    flow_2025 = NodeApi(25811, "", has_v3=True)
    flow_2026 = NodeApi(26180, "", has_v3=False)
    server_2022 = NodeApi(22794, "", has_v3=True)
    assert flow_2025.endpoint("repositories.list").api == "v4"  # confirmed V4
    assert flow_2025.endpoint("schedules.list").api == "v3"  # V4 UNCONFIRMED: V3 while it lasts
    assert flow_2026.endpoint("schedules.list").api == "v4"  # no choice left
    assert not flow_2026.endpoint("schedules.list").confirmed
    assert server_2022.endpoint("repositories.list").api == "v3"
    assert server_2022.endpoint("connections.list") is None  # V4 only
    assert NodeApi(23774, "", True).endpoint("tokens.create").api == "v3"  # V4 tokens: 25208
    assert flow_2025.endpoint("schedules.list", prefer="v4").api == "v4"


def test_no_v4_path_ends_with_a_slash() -> None:
    """From 2026.1 a V4 URL ending in '/' answers 404 (support.safe.com 43846485872653)."""
    assert not [e.path for e in TABLE if e.api == "v4" and (e.path.endswith("/") or "//" in e.path)]
