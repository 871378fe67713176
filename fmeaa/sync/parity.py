"""Parity between nodes: for every entry, each node's digest against what that node must hold,
and, where they differ, why (pending, drift, extra: see `fmeaa.sync.plan.Cause`). Pure logic
(used by `fmeaa verify` and by seeding)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fmeaa.sync.plan import Change, cause_of, desired_for_node
from fmeaa.sync.snapshot import APPLY_ORDER, Entry, Kind, Snapshot, body_digest


@dataclass
class ParityRow:
    kind: Kind
    key: str
    cells: dict[str, str | None]  # node -> short digest (None: missing)
    expected: dict[str, str | None]
    # "in sync"; "pending" (the source moved since fmeaa wrote it), "drift" (a node moved since
    # fmeaa wrote it); not in the source and never written by fmeaa: "extra" (managed: `sync
    # --prune` deletes it) or "unmanaged" (outside what the source manages: left alone);
    # "ignored" (the manifest's `ignore:`). Nodes that disagree about an unmanaged entry are
    # "drift" too (no policy gives that spread).
    status: str
    enabled_on: list[str] = field(default_factory=list)  # schedules: where it is enabled
    causes: dict[str, str] = field(default_factory=dict)  # node -> pending | drift | extra
    agree: bool = True  # every node holds the same (for entries not in the source)

    @property
    def drifted_nodes(self) -> list[str]:
        return [n for n in self.cells if self.cells[n] != self.expected[n]]

    @property
    def breaks_parity(self) -> bool:
        """Not as the source wants it, or not the same on every node."""
        return self.status in ("pending", "drift") or (self.status == "extra" and not self.agree)


@dataclass
class ParityReport:
    nodes: list[str]
    rows: list[ParityRow]
    unreadable: dict[str, str]  # node -> why it could not be read

    @property
    def in_sync(self) -> bool:
        return not self.unreadable and not any(r.breaks_parity for r in self.rows)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def drift_count(self) -> int:
        return self.count("drift")


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
           default_owner: str, unreadable: Mapping[str, str] | None = None,
           recorded: Mapping[str, Mapping[tuple[Kind, str], str]] | None = None
           ) -> ParityReport:
    """`recorded`: per node, the digests its ledger holds (what fmeaa last wrote there), which
    tell pending from drift and extra."""
    readable = [n for n in nodes if n in actual]
    recorded = recorded or {}
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
        id = (kind, key)
        held = {n: actual[n].get(id) for n in readable}
        cells = {n: (e.short if (e := held[n]) else None) for n in readable}
        expected = {n: (e.short if (e := wanted[n].get(id)) else None) for n in readable}
        written = {n: recorded[n][id] for n in readable if id in recorded.get(n, {})}
        causes: dict[str, str] = {}
        for n in readable:
            change = _change(held[n], wanted[n].get(id))
            cause = cause_of(change, held[n], written.get(n)) if change else None
            if cause is not None:
                causes[n] = cause.value
        agree = True
        if desired.ignores(Entry(kind, key, "")):
            status = "ignored"
        elif id in desired:
            status = _worst(causes) or "in sync"
        else:  # not in the source
            agree = _unmanaged_agrees(kind, list(held.values()), len(readable))
            if written and id in managed:  # fmeaa wrote it: the source dropped it, or a node moved
                status = _worst({n: c for n, c in causes.items() if c != "extra"}) or "pending"
            elif id in managed:
                status = "extra"
            else:
                causes = {}
                status = "unmanaged" if agree else "drift"
        enabled_on = []
        if kind is Kind.SCHEDULE:
            enabled_on = [n for n in readable if (e := held[n]) and e.body.get("enabled")]
        rows.append(ParityRow(kind, key, cells, expected, status, enabled_on, causes, agree))
    return ParityReport(list(readable), rows, dict(unreadable or {}))


def _change(have: Entry | None, want: Entry | None) -> Change | None:
    if want is None:
        return Change.EXTRA if have is not None else None
    if have is None:
        return Change.CREATE
    return Change.UPDATE if have.digest != want.digest else None


def _worst(causes: Mapping[str, str]) -> str | None:
    """A row's status from its nodes' causes: drift over pending over extra."""
    found = set(causes.values())
    return next((c for c in ("drift", "pending", "extra") if c in found), None)
