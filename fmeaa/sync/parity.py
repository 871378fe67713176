"""Parity between nodes: for every entry, each node's digest against what that node must hold.
Pure logic (used by `fmeaa verify` and by seeding)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fmeaa.sync.plan import desired_for_node
from fmeaa.sync.snapshot import APPLY_ORDER, Entry, Kind, Snapshot, body_digest


@dataclass
class ParityRow:
    kind: Kind
    key: str
    cells: dict[str, str | None]  # node -> short digest (None: missing)
    expected: dict[str, str | None]
    # "in sync" | "drift" | not in the source but identical on every node: "extra" (managed:
    # `sync --prune` deletes it) or "unmanaged" (outside what the source manages: left alone)
    status: str
    enabled_on: list[str] = field(default_factory=list)  # schedules: where it is enabled

    @property
    def drifted_nodes(self) -> list[str]:
        return [n for n in self.cells if self.cells[n] != self.expected[n]]


@dataclass
class ParityReport:
    nodes: list[str]
    rows: list[ParityRow]
    unreadable: dict[str, str]  # node -> why it could not be read

    @property
    def in_sync(self) -> bool:
        return not self.unreadable and all(r.status != "drift" for r in self.rows)

    @property
    def drift_count(self) -> int:
        return sum(1 for r in self.rows if r.status == "drift")


def _unmanaged_agrees(kind: Kind, held: list[Entry | None], nodes: int) -> bool:
    """Whether the nodes agree about an entry the source does not list: the same everywhere.
    A schedule may differ in `enabled` alone when it is enabled on exactly one node (a `one`
    schedule, as `sync` leaves it) or on none or all: those are the states a policy gives."""
    entries = [e for e in held if e is not None]
    if len(entries) != len(held):  # missing on some node
        return False
    if kind is not Kind.SCHEDULE:
        return len({e.digest for e in entries}) == 1
    definitions = {body_digest(kind, {**e.body, "enabled": False}) for e in entries}
    enabled = sum(1 for e in entries if e.body.get("enabled", True))
    return len(definitions) == 1 and enabled in (0, 1, nodes)


def parity(desired: Snapshot, actual: Mapping[str, Snapshot], nodes: Sequence[str],
           default_owner: str, unreadable: Mapping[str, str] | None = None) -> ParityReport:
    readable = [n for n in nodes if n in actual]
    wanted = {n: desired_for_node(desired, n, default_owner) for n in readable}
    keys = set(desired)
    managed: set[tuple[Kind, str]] = set()
    for n in readable:
        for k, e in actual[n].items():
            if e.kind not in desired.silent_kinds:
                keys.add(k)
            if desired.manages(e):
                managed.add(k)
    rank = {k: i for i, k in enumerate(APPLY_ORDER)}
    rows = []
    for kind, key in sorted(keys, key=lambda k: (rank[k[0]], k[1])):
        cells = {n: (e.short if (e := actual[n].get((kind, key))) else None) for n in readable}
        expected = {n: (e.short if (e := wanted[n].get((kind, key))) else None) for n in readable}
        if (kind, key) in desired:
            status = "in sync" if cells == expected else "drift"
        else:  # not in the source: fine only if every node holds the same thing
            held = [actual[n].get((kind, key)) for n in readable]
            if not _unmanaged_agrees(kind, held, len(readable)):
                status = "drift"
            else:
                status = "extra" if (kind, key) in managed else "unmanaged"
        enabled_on = []
        if kind is Kind.SCHEDULE:
            enabled_on = [n for n in readable if (e := actual[n].get((kind, key)))
                          and e.body.get("enabled")]
        rows.append(ParityRow(kind, key, cells, expected, status, enabled_on))
    return ParityReport(list(readable), rows, dict(unreadable or {}))
