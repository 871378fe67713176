"""The stack configs an upgrade goes through, one `pulumi up` each (pure: no node, no AWS).

Both strategies start by recording the new image / instance type as the stack's *desired*
values: Pulumi's state pins what every existing node runs (the program's `ignore_changes`), so
that `pulumi up` changes no node. Then:

- **surge** (FME upgrades): add a node at the new values (`replaces: OLD` marks the pair), let it
  be seeded and serve, then drain and remove OLD; repeat. N nodes serve throughout, N+batch at
  most. A re-run continues where the last one stopped: the pairs are in the stack config.
- **in-place** (instance type, root volume, bootstrap): for each node, set `rollout: NODE` (only
  that node's instance follows the config; it is drained first) and re-register it once seeded.
  N−1 nodes serve throughout, and each node keeps its share and its database.

Config dicts are the stack's `fme-aa:*` keys without the prefix, structured values decoded.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["desire", "add", "retire", "roll", "tidy"]
_NUMBERED = re.compile(r"^(.*?)(\d+)$")
MAX_NODE_NAME = 24  # config/stack.py NODE_NAME_PATTERN


class UpgradePlanError(ValueError):
    """The stack config cannot be upgraded as asked; nothing was changed."""


@dataclass
class StackStep:
    action: Action
    nodes: list[str]  # the nodes this step adds, retires or rolls
    config: dict[str, Any]  # the whole stack config to apply
    up: bool = True  # whether the step needs a `pulumi up`
    replaces: dict[str, str] = field(default_factory=dict)  # add: new node → old node


def node_entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The stack's nodes as `{name, …}` entries (`nodeCount: 3` → fme-1…fme-3)."""
    if config.get("nodes") is not None:
        return [{"name": n} if isinstance(n, str) else dict(n) for n in config["nodes"]]
    return [{"name": f"fme-{i}"} for i in range(1, int(config.get("nodeCount") or 0) + 1)]


def with_nodes(config: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The config with an explicit `nodes` list (bare names where an entry is only a name)."""
    result = copy.deepcopy(config)
    result.pop("nodeCount", None)
    result["nodes"] = [e["name"] if set(e) == {"name"} else e for e in entries]
    return result


def desired(config: dict[str, Any], image: str | None, instance_type: str | None
            ) -> dict[str, Any]:
    """The config with the new image / instance type as the cluster-wide desired values."""
    result = copy.deepcopy(config)
    if image is not None:
        ami = {k: v for k, v in dict(result.get("ami") or {}).items()
               if k not in ("lookup", "fromInstance", "snapshotWithoutReboot")}
        result["ami"] = {**ami, "id": image}
    if instance_type is not None:
        result["instanceType"] = instance_type
    return result


def new_names(taken: set[str], old: list[str], count: int) -> list[str]:
    """Names for `count` new nodes: the old names' numbering continued (fme-1..3 → fme-4,
    fme-5…), never a name the stack uses, so no new resource takes an old one's AWS names."""
    highest: dict[str, int] = {}
    for name in taken:
        match = _NUMBERED.match(name)
        if match:
            highest[match[1]] = max(highest.get(match[1], 0), int(match[2]))
    names: list[str] = []
    for i in range(count):
        template = old[i % len(old)] if old else "fme-1"
        match = _NUMBERED.match(template)
        prefix = match[1] if match else f"{template}-"
        number = highest.get(prefix, 1) + 1
        while f"{prefix}{number}" in taken or f"{prefix}{number}" in names:
            number += 1
        highest[prefix] = number
        name = f"{prefix}{number}"
        if len(name) > MAX_NODE_NAME:
            raise UpgradePlanError(f"no valid name for a node replacing {template!r} "
                                   f"({name!r} is longer than {MAX_NODE_NAME} characters)")
        names.append(name)
    return names


def surge_steps(config: dict[str, Any], image: str | None, instance_type: str | None,
                batch: int = 1, current: set[str] | frozenset[str] = frozenset()
                ) -> list[StackStep]:
    """The remaining steps of a surge upgrade from `config` (which may be half-way through).
    `current`: nodes already running the wanted values (skipped when no upgrade is under way)."""
    if batch < 1:
        raise UpgradePlanError("--batch must be at least 1")
    entries = node_entries(config)
    under_way = any(e.get("replaces") for e in entries)
    old = [e["name"] for e in entries
           if not e.get("replaces") and (under_way or e["name"] not in current)]
    steps: list[StackStep] = []
    state = desired(with_nodes(config, entries), image, instance_type)
    if state != config:
        steps.append(StackStep("desire", [], copy.deepcopy(state)))
    waiting = {e["replaces"]: e["name"] for e in entries if e.get("replaces")}
    while old:
        group = old[:batch]
        unpaired = [o for o in group if o not in waiting]
        if unpaired:
            entries = node_entries(state)
            names = new_names({e["name"] for e in entries} | set(waiting.values()), unpaired,
                              len(unpaired))
            pairs = dict(zip(names, unpaired, strict=True))
            entries += [{"name": n, "replaces": o} for n, o in pairs.items()]
            state = with_nodes(state, entries)
            steps.append(StackStep("add", names, copy.deepcopy(state), replaces=pairs))
            waiting.update({o: n for n, o in pairs.items()})
        for o in group:
            state = with_nodes(state, [e for e in node_entries(state) if e["name"] != o])
            steps.append(StackStep("retire", [o], copy.deepcopy(state),
                                   replaces={waiting[o]: o}))
        old = old[batch:]
    tidy = with_nodes(state, [{k: v for k, v in e.items() if k != "replaces"}
                              for e in node_entries(state)])
    if tidy != state:
        steps.append(StackStep("tidy", [], tidy, up=False))
    return steps


def in_place_steps(config: dict[str, Any], image: str | None, instance_type: str | None,
                   only: list[str] | None = None, current: set[str] | frozenset[str] = frozenset()
                   ) -> list[StackStep]:
    """One node at a time through `rollout`. A re-run resumes at the stack's rollout node."""
    entries = node_entries(config)
    names = [e["name"] for e in entries]
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise UpgradePlanError(f"--node {', '.join(unknown)}: not in the stack "
                               f"({', '.join(names)})")
    if config.get("rollout") in names:
        names = names[names.index(config["rollout"]):]
    else:
        names = [n for n in names if n not in current]
    if only:
        names = [n for n in names if n in only]
    steps: list[StackStep] = []
    state = desired(config, image, instance_type)
    state.pop("rollout", None)
    if state != {k: v for k, v in config.items() if k != "rollout"}:
        steps.append(StackStep("desire", [], copy.deepcopy(state)))
    for name in names:
        steps.append(StackStep("roll", [name], {**copy.deepcopy(state), "rollout": name}))
    if names or "rollout" in config:
        steps.append(StackStep("tidy", [], copy.deepcopy(state), up=False))
    return steps
