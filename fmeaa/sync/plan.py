"""The planner: desired content + each node's actual content → per-node actions. Pure logic,
no I/O, so every rule is tested without servers.

Per node and entry: create (missing), update (digest differs), unchanged, and for what the node
holds beyond the desired content but inside what the source manages (`Snapshot.manages`): delete
with `prune`, else "extra" (reported, left alone). Anything else is not the source's business;
entries the manifest's `ignore:` names are "ignored" (never updated, deleted or reported).

Each change also has a cause, from what the node's ledger says fmeaa last wrote there
(`fmeaa.sync.ledger`): *pending* (the source moved: the node still holds what fmeaa wrote, or
fmeaa never wrote it), *drift* (the node moved: it no longer holds what fmeaa wrote) or *extra*
(on the node, and fmeaa never wrote it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from fmeaa.sync.snapshot import APPLY_ORDER, Entry, Kind, Snapshot, schedule_for_node, split_item_key


class Change(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"
    EXTRA = "extra"  # on the node, not in the source; deleted only with --prune
    IGNORED = "ignored"  # known noise (the manifest's `ignore:`): never judged


class Cause(StrEnum):
    """Why an entry is not as the source wants it (see the module docstring)."""

    PENDING = "pending"  # the source changed since fmeaa wrote it (or fmeaa never wrote it)
    DRIFT = "drift"  # the node changed since fmeaa wrote it
    EXTRA = "extra"  # on the node, never written by fmeaa


def cause_of(change: Change, actual: Entry | None, recorded: str | None) -> Cause | None:
    """The cause of a change, from the digest the ledger recorded for the entry (None: fmeaa
    never wrote it there)."""
    if change is Change.CREATE:  # fmeaa wrote it and it is gone: someone deleted it
        return Cause.PENDING if recorded is None else Cause.DRIFT
    if change is Change.UPDATE:
        assert actual is not None
        return Cause.DRIFT if recorded is not None and recorded != actual.digest else Cause.PENDING
    if change in (Change.DELETE, Change.EXTRA):
        assert actual is not None
        if recorded is None:
            return Cause.EXTRA
        return Cause.DRIFT if recorded != actual.digest else Cause.PENDING  # the source dropped it
    return None


@dataclass(frozen=True, slots=True)
class Action:
    change: Change
    kind: Kind
    key: str
    desired: Entry | None = None
    actual: Entry | None = None
    detail: str = ""  # for updates: "file", "services" or "definition"
    cause: Cause | None = None  # for create/update/delete/extra

    @property
    def bytes_to_send(self) -> int:
        if self.change in (Change.CREATE, Change.UPDATE) and self.detail != "services" \
                and self.desired is not None and self.desired.kind in (Kind.ITEM, Kind.RESOURCE):
            return self.desired.size
        return 0


@dataclass
class NodePlan:
    node: str
    actions: list[Action] = field(default_factory=list)

    @property
    def changes(self) -> list[Action]:
        """What apply will do, in a safe order: creates/updates by dependency, then deletes in
        reverse dependency order."""
        return [a for a in self.actions if a.change in (Change.CREATE, Change.UPDATE, Change.DELETE)]

    def count(self, change: Change) -> int:
        return sum(1 for a in self.actions if a.change is change)

    def causes(self) -> dict[str, int]:
        """How many actions have each cause (pending, drift, extra)."""
        return {c.value: sum(1 for a in self.actions if a.cause is c) for c in Cause}

    @property
    def bytes_to_send(self) -> int:
        return sum(a.bytes_to_send for a in self.actions)


@dataclass
class ContentPlan:
    nodes: dict[str, NodePlan]
    prune: bool

    @property
    def has_changes(self) -> bool:
        return any(p.changes for p in self.nodes.values())

    def tallied(self) -> PlanTally:
        """What a result reports of this plan — how many actions of each change per node —
        without the actions (which hold every entry of the nodes as they were read)."""
        return PlanTally({n: NodeTally(n, Counter(a.change for a in p.actions))
                          for n, p in self.nodes.items()}, self.prune)


@dataclass(frozen=True)
class NodeTally:
    node: str
    counts: Mapping[Change, int]

    def count(self, change: Change) -> int:
        return self.counts.get(change, 0)


@dataclass(frozen=True)
class PlanTally:
    nodes: dict[str, NodeTally]
    prune: bool


def _update_detail(desired: Entry, actual: Entry) -> str:
    if desired.kind is Kind.ITEM and desired.file_sha256 == actual.file_sha256:
        return "services"
    return "file" if desired.kind in (Kind.ITEM, Kind.RESOURCE) else "definition"


def desired_for_node(desired: Snapshot, node: str, default_owner: str) -> Snapshot:
    """The desired snapshot as one node must hold it (schedule policies applied). Only the
    schedules can differ from node to node: every other entry is shared, not copied, and a
    source without `one` schedules is returned as it is (memory: README, "Speed")."""
    changed = {e.id: mine for e in desired.of(Kind.SCHEDULE)
               if (mine := schedule_for_node(e, node, default_owner)) is not e}
    return desired.replacing(changed) if changed else desired


def plan_node(node: str, desired: Snapshot, actual: Snapshot, prune: bool,
              recorded: Mapping[tuple[Kind, str], str] | None = None) -> NodePlan:
    """One node's actions. `recorded`: the digests the node's ledger holds, by entry id (what
    fmeaa last wrote there), for each change's cause."""
    recorded = recorded or {}
    rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}

    def action(change: Change, entry: Entry, want: Entry | None, have: Entry | None,
               detail: str = "") -> Action:
        return Action(change, entry.kind, entry.key, want, have, detail,
                      cause_of(change, have, recorded.get(entry.id)))

    forward: list[Action] = []
    for entry in sorted(desired.values(), key=lambda e: (rank[e.kind], e.key)):
        have = actual.get(entry.id)
        if have is None:
            forward.append(action(Change.CREATE, entry, entry, None))
        elif desired.ignores(have):
            forward.append(action(Change.IGNORED, entry, entry, have))
        elif have.digest != entry.digest:
            forward.append(action(Change.UPDATE, entry, entry, have, _update_detail(entry, have)))
        else:
            forward.append(action(Change.UNCHANGED, entry, entry, have))
    leaving_repos = {e.key for e in actual.values()
                     if e.kind is Kind.REPOSITORY and e.id not in desired}
    backward: list[Action] = []
    for entry in sorted(actual.values(), key=lambda e: (-rank[e.kind], e.key)):
        if entry.id in desired:
            continue
        if not desired.manages(entry):
            continue  # outside what this source speaks for: not ours to judge
        if desired.ignores(entry):
            backward.append(action(Change.IGNORED, entry, None, entry))
            continue
        if prune and entry.kind is Kind.ITEM and split_item_key(entry.key)[0] in leaving_repos:
            continue  # deleting the repository deletes its items
        backward.append(action(Change.DELETE if prune else Change.EXTRA, entry, None, entry))
    return NodePlan(node, forward + backward)


def plan_content(desired: Snapshot, actual: Mapping[str, Snapshot], nodes: Sequence[str],
                 prune: bool = False, default_owner: str | None = None,
                 recorded: Mapping[str, Mapping[tuple[Kind, str], str]] | None = None
                 ) -> ContentPlan:
    """Plan every node in `nodes` that has an actual snapshot. `default_owner` runs "one"
    schedules that name no owner: the first node of the WHOLE inventory, even when only some
    nodes are targeted (seeding a new node must not move schedules to it). `recorded`: per
    node, the digests its ledger holds (for causes)."""
    default_owner = default_owner or (nodes[0] if nodes else "")
    recorded = recorded or {}
    return ContentPlan(
        {n: plan_node(n, desired_for_node(desired, n, default_owner), actual[n], prune,
                      recorded.get(n))
         for n in nodes if n in actual},
        prune,
    )
