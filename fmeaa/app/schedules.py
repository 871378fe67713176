"""Schedules that survive their owner: `fmeaa schedules move`, the same move inside `drain`,
`scale-in-check` and `rolling` (`--move-schedules`), and the rule by which `plan`, `sync`,
`verify` and seeding honour a move instead of undoing it (README, "Schedules that survive their
owner"; the record is `fmeaa/cluster/schedule_owners.py`).

A `one`-policy schedule runs on exactly one node. Moving it disables it on its owner first, then
enables it on the new owner — never on two nodes at once (a trigger in the instant between is
missed rather than run twice) — and records the move on every reachable node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fmeaa.app.locking import cluster_held
from fmeaa.app.results import ScheduleMove, ScheduleMoveResult
from fmeaa.app.targets import ClusterRef, resolve_targets
from fmeaa.client import FmeApiError, FmeClient
from fmeaa.cluster.cluster_lock import ClusterLock
from fmeaa.cluster.inventory import Inventory
from fmeaa.cluster.node_lifecycle import LifecycleError
from fmeaa.cluster.schedule_owners import (
    ScheduleOwners,
    effective_owner,
    next_owner,
    read_owners,
    write_owners,
)
from fmeaa.cluster.target_group import TargetGroups
from fmeaa.sync.apply import failure_text
from fmeaa.sync.manifest import load_content_dir
from fmeaa.sync.snapshot import Kind, Snapshot, canonical_body


# --- honouring moves ------------------------------------------------------------------------------
def honour_moves(desired: Snapshot, clients: Mapping[str, FmeClient], default_owner: str,
                 nodes: Sequence[str] | None) -> Snapshot:
    """The desired snapshot with each `one` schedule's owner as the cluster's move record says
    (`effective_owner`), read from the given nodes. `nodes`: the inventory's names (an override
    naming another node does not count); None when the caller knows only some nodes."""
    ones = [e for e in desired.of(Kind.SCHEDULE) if e.policy == "one"]
    if not ones or not clients:
        return desired
    owners, _ = read_owners(clients)
    if not owners.overrides:
        return desired
    names = list(nodes) if nodes is not None else \
        [o.owner for o in owners.overrides.values()]
    return desired.with_entries(
        replace(e, owner=effective_owner(e.key, e.owner or default_owner, owners, names))
        if e.kind is Kind.SCHEDULE and e.policy == "one" else e
        for e in desired.values())


# --- moving ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MoveRequest:
    """Which `one` schedules move, and where. `from_node`: those it runs; `to_node` alone:
    every `one` schedule, to that node; neither: those whose owner is not fit to run them
    (unreachable, unhealthy, or out of the load balancer). Without `to_node`, each goes to the
    next fit node after its owner in inventory order. `source`: a content directory, needed only
    when an owner cannot be read (its manifest says which schedules that node runs)."""

    cluster: ClusterRef = field(default_factory=ClusterRef)  # unused inside a held lock
    from_node: str | None = None
    to_node: str | None = None
    schedules: tuple[str, ...] = ()  # only these (category/name)
    source: str | None = None
    reason: str = "fmeaa schedules move"
    timeout_s: float = 30.0


@dataclass(frozen=True)
class _ManifestSchedule:
    key: str
    owner: str | None


def _manifest_schedules(source: str | None, names: list[str]) -> list[_ManifestSchedule] | None:
    """The enabled `one` schedules of a content directory (None without one)."""
    if source is None:
        return None
    if source.startswith("node:"):
        raise LifecycleError("-s: moving schedules needs a content directory (a reference node "
                             "does not say which node runs which schedule)")
    manifest = load_content_dir(Path(source), nodes=names).manifest
    return [_ManifestSchedule(f"{s.category}/{s.name}", s.owner) for s in manifest.schedules
            if s.policy.value == "one" and s.enabled]


def _fitness(clients: Mapping[str, FmeClient], groups: TargetGroups | None,
             whole: Inventory) -> dict[str, str | None]:
    """node → None when fit to run schedules, else why not."""
    in_service = groups.in_service() if groups is not None and groups.present else None
    why: dict[str, str | None] = {}
    for node in whole.nodes:
        client = clients.get(node.name)
        if client is None:
            why[node.name] = "not reachable"
            continue
        try:
            client.health()
        except FmeApiError as exc:
            why[node.name] = f"unhealthy ({exc.detail if exc.status is None else exc.status})"
            continue
        state = in_service.get(node.name) if in_service is not None else "healthy"
        why[node.name] = None if state == "healthy" else \
            f"out of the load balancer ({state or 'not registered'})"
    return why


def _by(lock: ClusterLock) -> str:
    return f"{lock.owner.user}@{lock.owner.host}" if lock.owner else ""


def move_with(lock: ClusterLock, whole: Inventory, groups: TargetGroups | None,
              request: MoveRequest, manifest: list[_ManifestSchedule] | None = None
              ) -> ScheduleMoveResult:
    """Move schedules with the clients of a held cluster lock (`drain`, `rolling`… hold it)."""
    order = [n.name for n in whole.nodes]
    clients = dict(lock.clients)
    result = ScheduleMoveResult(ok=True)
    held: dict[str, dict[str, dict[str, Any]]] = {}  # node → schedule key → body
    for name, client in clients.items():
        try:
            held[name] = {f"{s['category']}/{s['name']}": s for s in client.schedules()}
        except FmeApiError as exc:
            result.warnings.append(f"{name}: its schedules could not be read ({failure_text(exc)})")
    unread = [n for n in order if n not in held]
    enabled: dict[str, set[str]] = {}
    for name, schedules in held.items():
        for key, body in schedules.items():
            enabled.setdefault(key, set())
            if body.get("enabled", True):
                enabled[key].add(name)
    owners, _ = read_owners(clients)
    fit = _fitness(clients, groups, whole)
    if request.to_node and fit.get(request.to_node):
        raise LifecycleError(f"--to {request.to_node} cannot run schedules: "
                             f"{fit[request.to_node]}")
    wanted = set(request.schedules)

    # Which schedules run where now: enabled on exactly one readable node, or — for a node that
    # cannot be read — what the manifest (and the move record) say it runs.
    running: dict[str, str] = {k: next(iter(w)) for k, w in enabled.items() if len(w) == 1}
    if unread and manifest is not None:
        for s in manifest:
            owner = effective_owner(s.key, s.owner or order[0], owners, order)
            if owner in unread and not enabled.get(s.key):
                running[s.key] = owner
    elif unread and (request.from_node in unread
                     or not (request.from_node or request.to_node)):
        result.problems.append(
            f"{', '.join(unread)} cannot be read, so which schedules it runs is unknown: pass "
            "-s CONTENT_DIR (its manifest says) to move them")
    for key, where in sorted(enabled.items()):
        several = len(where) > 1 and len(where) < len(held)
        if several and (request.from_node in where or not request.from_node) and \
                (not wanted or key in wanted):
            result.warnings.append(f"{key} is enabled on {', '.join(sorted(where))} (drift: it "
                                   "fires on each): sync it first; not moved")

    def chosen(key: str, owner: str) -> bool:
        if wanted and key not in wanted:
            return False
        if request.from_node:
            return owner == request.from_node
        if request.to_node:
            return owner != request.to_node
        return fit.get(owner) is not None
    moves = sorted((k, o) for k, o in running.items() if chosen(k, o))
    missing = wanted - set(enabled) - set(running)
    result.problems += [f"{k}: no such schedule on any reachable node" for k in sorted(missing)]

    now = datetime.now(UTC).isoformat(timespec="seconds")
    for key, old in moves:
        new = request.to_node or next_owner(order, old, {n: w is None for n, w in fit.items()})
        if new is None:
            result.problems.append(f"{key}: no other node is fit to run it "
                                   f"({'; '.join(f'{n}: {w}' for n, w in fit.items() if w)})")
            continue
        body = held.get(new, {}).get(key)
        if body is None:
            result.problems.append(f"{key}: {new} does not hold it (sync it first)")
            continue
        disabled = False
        if old in held:
            try:
                _set_enabled(clients[old], held[old][key], False)
                disabled = True
            except FmeApiError as exc:
                result.problems.append(f"{key}: could not be disabled on {old} "
                                       f"({failure_text(exc)}); not moved")
                continue
        else:
            result.warnings.append(
                f"{key}: {old} could not be reached to disable it there; the next `fmeaa sync` "
                f"does once it is back (until then it may fire on {old} too, if {old} still runs)")
        try:
            _set_enabled(clients[new], body, True)
        except FmeApiError as exc:
            result.problems.append(f"{key}: disabled on {old} but could not be enabled on {new} "
                                   f"({failure_text(exc)}): re-run `fmeaa schedules move`")
            continue
        owners.moved(key, new, old, _by(lock), now, request.reason)
        result.moved.append(ScheduleMove(schedule=key, from_node=old, to_node=new,
                                         disabled_on_from=disabled))
    if result.moved:
        _write_record(clients, owners, result)
    result.ok = not result.problems
    return result


def _set_enabled(client: FmeClient, body: Mapping[str, Any], enabled: bool) -> None:
    schedule = {**canonical_body(Kind.SCHEDULE, body), "enabled": enabled}
    client.replace_schedule(schedule["category"], schedule["name"], schedule)


def _write_record(clients: Mapping[str, FmeClient], owners: ScheduleOwners,
                  result: ScheduleMoveResult) -> None:
    """The new revision on every reachable node. Fewer than all is a warning: readers take the
    highest revision they can read; the next move rewrites the others."""
    owners.revision += 1
    failed = write_owners(clients, owners)
    result.record_written_to = sorted(n for n in clients if n not in failed)
    for node, why in sorted(failed.items()):
        result.warnings.append(f"{node}: the move record could not be written there ({why})")
    if not result.record_written_to:
        result.problems.append("the move record could not be written to any node: the next "
                               "`fmeaa sync` would move the schedules back; re-run the move")


def move_schedules(request: MoveRequest, groups: TargetGroups | None = None
                   ) -> ScheduleMoveResult:
    """`fmeaa schedules move`: validated, then done under the cluster lock."""
    targets = resolve_targets(request.cluster)
    names = [n.name for n in targets.whole.nodes]
    problems = [f"--{opt} {value}: no such node in the inventory ({', '.join(names)})"
                for opt, value in (("from", request.from_node), ("to", request.to_node))
                if value is not None and value not in names]
    if request.from_node and request.from_node == request.to_node:
        problems.append("--from and --to name the same node")
    problems += [f"--schedule {s!r}: expected CATEGORY/NAME" for s in request.schedules
                 if s.count("/") != 1]
    if problems:
        raise LifecycleError("refusing to move schedules:\n" +
                             "\n".join(f"  - {p}" for p in problems))
    manifest = _manifest_schedules(request.source, names)
    groups = groups if groups is not None else TargetGroups(targets.whole)
    with cluster_held(targets, "schedules move", request.timeout_s) as lock:
        return move_with(lock, targets.whole, groups, request, manifest)
