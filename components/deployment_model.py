"""What a `pulumi up` would do between two evaluations of the program, offline.

The mocks (`components/preview.py`) record every resource's inputs and the options the program
sent to the engine. This module replays the engine's decisions on two such runs — the stack's
state after the previous step and the program evaluated with the new config — so tests and
`./dev preview --before` can say which node's instance a step changes and in which order the
steps run. It is a model, kept to the rules fme-aa relies on:

- `ignore_changes`: an ignored input keeps its value from the state, or is dropped when the
  state has none (the engine's `processIgnoreChanges`, pulumi/pulumi step_generator.go);
- a changed input replaces the resource when it is in `replace_on_changes`, when the provider
  forces a new resource for it (`FORCE_NEW`, from terraform-provider-aws's schemas), or for
  `userData` with `userDataReplaceOnChange`; otherwise the resource is updated in place;
- a provider with its own diff (NodeSeed: `RESEED_ON`) changes only for the inputs it compares;
- an input fed by a replaced resource's outputs changes (the new resource has a new id), and so
  does one fed by an updated resource whose changed inputs came from a replacement;
- order: resources in registration order; a delete-before-replace resource first deletes its
  replaced dependents (last registered first), then itself, then is created; any other
  replacement creates the new resource first and deletes the old one at the end of the update.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from components.node_seed import RESEED_ON
from components.preview import ProgramRun, RecordedOptions

INSTANCE = "aws:ec2/instance:Instance"
VOLUME_ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"
TARGET_ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
NODE_SEED = "pulumi-python:dynamic:Resource"

# Inputs whose change makes the provider create a new resource (ForceNew in the Terraform
# provider's schema; NodeSeed's own diff replaces only when its node changes).
FORCE_NEW: dict[str, frozenset[str]] = {
    INSTANCE: frozenset({"ami", "subnetId", "availabilityZone"}),
    VOLUME_ATTACHMENT: frozenset({"instanceId", "volumeId", "deviceName"}),
    TARGET_ATTACHMENT: frozenset({"targetId", "targetGroupArn", "port"}),
    "aws:ebs/volume:Volume": frozenset({"availabilityZone", "encrypted", "kmsKeyId"}),
    NODE_SEED: frozenset({"node"}),
}

# Providers that compare only some inputs: NodeSeed's diff looks at what makes it re-seed.
COMPARED: dict[str, frozenset[str]] = {NODE_SEED: frozenset(RESEED_ON) | {"node"}}

Key = tuple[str, str]  # (type, logical name): unique in this program
Decision = Literal["create", "same", "update", "replace", "delete"]


@dataclass(frozen=True)
class Deployed:
    """One resource as the stack's state holds it after an update."""

    inputs: dict[str, Any]
    options: RecordedOptions
    custom: bool


@dataclass
class StackState:
    resources: dict[Key, Deployed] = field(default_factory=dict)  # in registration order


@dataclass
class UpPlan:
    decisions: dict[Key, Decision]
    changed: dict[Key, set[str]]  # inputs that differ, per resource updated or replaced
    steps: list[tuple[str, Key]]  # ("create" | "update" | "delete", key), in engine order
    state: StackState  # the stack's state once the update has run

    def of(self, decision: Decision, type_token: str | None = None) -> list[Key]:
        return [k for k, d in self.decisions.items()
                if d == decision and (type_token is None or k[0] == type_token)]

    def changing(self, type_token: str) -> list[str]:
        """Names of the resources of this type the update creates, changes or deletes."""
        return [k[1] for k, d in self.decisions.items() if d != "same" and k[0] == type_token]

    def index(self, action: str, key: Key) -> int:
        return self.steps.index((action, key))


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def apply_ignore_changes(inputs: dict[str, Any], old: dict[str, Any],
                         ignored: Iterable[str]) -> dict[str, Any]:
    """The inputs the engine diffs and stores: ignored ones keep the state's value (or are
    dropped when the state has none). Only top-level property names are used by fme-aa."""
    processed = dict(inputs)
    for name in ignored:
        assert "." not in name and "[" not in name, f"model handles top-level names only: {name}"
        if name in old:
            processed[name] = old[name]
        else:
            processed.pop(name, None)
    return processed


def first_deployment(run: ProgramRun) -> StackState:
    """The state after `pulumi up` created everything this run declares."""
    return StackState({(r.type, r.name): Deployed(dict(r.inputs), r.options, r.custom)
                       for r in run.resources})


def plan_up(state: StackState, run: ProgramRun) -> UpPlan:
    urn_key = {r.options.urn: (r.type, r.name) for r in run.resources}
    urn_key.update({d.options.urn: k for k, d in state.resources.items()})
    decisions: dict[Key, Decision] = {}
    changed: dict[Key, set[str]] = {}
    new_outputs: set[Key] = set()  # resources whose outputs differ after the update
    new_state = StackState()

    for r in run.resources:
        key = (r.type, r.name)
        old = state.resources.get(key)
        if old is None:
            decisions[key] = "create"
            new_outputs.add(key)
            new_state.resources[key] = Deployed(dict(r.inputs), r.options, r.custom)
            continue
        inputs = apply_ignore_changes(r.inputs, old.inputs, r.options.ignore_changes)
        differ = {k for k in set(inputs) | set(old.inputs)
                  if not _same(inputs.get(k), old.inputs.get(k))}
        fed = {prop for prop, sources in r.options.property_dependencies.items()
               if any(urn_key.get(u) in new_outputs for u in sources)}
        differ |= fed
        if r.type in COMPARED:
            differ &= COMPARED[r.type]
        new_state.resources[key] = Deployed(inputs, r.options, r.custom)
        if not differ or not r.custom:
            decisions[key] = "same"
            continue
        replace_on = set(r.options.replace_on_changes) | FORCE_NEW.get(r.type, frozenset())
        if inputs.get("userDataReplaceOnChange"):
            replace_on |= {"userData", "userDataBase64"}
        decisions[key] = "replace" if differ & replace_on else "update"
        changed[key] = differ
        if decisions[key] == "replace" or fed:
            new_outputs.add(key)
    for key in state.resources:
        if key not in decisions:
            decisions[key] = "delete"
    return UpPlan(decisions, changed, _order(state, run, decisions, urn_key), new_state)


def _dependents(key: Key, run: ProgramRun, urn_key: dict[str, Key]) -> list[Key]:
    """Resources that depend on `key` (directly or through others), in registration order."""
    found: list[Key] = []
    frontier = {key}
    for r in run.resources:
        deps = {urn_key.get(u) for u in r.options.dependencies}
        deps |= {urn_key.get(u) for us in r.options.property_dependencies.values() for u in us}
        if deps & frontier:
            found.append((r.type, r.name))
            frontier.add((r.type, r.name))
    return found


def _order(state: StackState, run: ProgramRun, decisions: dict[Key, Decision],
           urn_key: dict[str, Key]) -> list[tuple[str, Key]]:
    steps: list[tuple[str, Key]] = []
    deleted: set[Key] = set()
    deferred: list[Key] = []
    for r in run.resources:
        key = (r.type, r.name)
        decision = decisions[key]
        if decision in ("create", "update"):
            steps.append((decision, key))
        elif decision == "replace":
            if r.options.delete_before_replace and key not in deleted:
                doomed = [d for d in _dependents(key, run, urn_key)
                          if decisions.get(d) == "replace" and d not in deleted]
                for dependent in reversed(doomed):
                    steps.append(("delete", dependent))
                    deleted.add(dependent)
                steps.append(("delete", key))
                deleted.add(key)
            elif key not in deleted:
                deferred.append(key)
            steps.append(("create", key))
    steps += [("delete", k) for k in reversed(deferred)]
    steps += [("delete", k) for k in reversed(list(state.resources)) if decisions[k] == "delete"]
    return steps


def node_of(name: str, nodes: Iterable[str]) -> str | None:
    """The node a logical name belongs to (every node resource is named after its node)."""
    return next((n for n in nodes if name == n or name.startswith(f"{n}-")), None)
