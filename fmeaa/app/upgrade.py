"""`upgrade`: move every node to a new image or instance type without an outage.

Walks the steps of `upgrade_plan` one `pulumi up` at a time and does, around each, what keeps
users served (README, "Upgrading FME" and "Changing instance types"):

- surge — **add**: `pulumi up` creates the new node(s); each is seeded (health, licence, sync,
  parity) and healthy in the load balancer before anything else happens. **retire** OLD: only
  once its replacement serves; drain it and wait for its jobs, move the `one`-policy schedules
  it runs to another node, optionally archive its logs to S3, require the scale-in check, then
  `pulumi up` removes it. N nodes serve at every step.
- in-place — **roll** NODE: drain it (refused if another node is out), `pulumi up` with
  `rollout: NODE` (its instance is replaced delete-before-create, keeping its share and
  database), seed and verify it, register it again. N−1 nodes serve at every step.

Everything is validated before the first change; a failed step leaves the stack config at that
step and the failed node drained, and a re-run continues from there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmeaa.app import lifecycle, schedules
from fmeaa.app.job_logs import archive_logs, parse_s3_url
from fmeaa.app.lifecycle import Timing
from fmeaa.app.results import UpgradeResult, UpgradeStepReport
from fmeaa.app.stack_runner import PulumiStack, StackRunner, write_config
from fmeaa.app.targets import ClusterRef, resolve_targets
from fmeaa.app.upgrade_plan import (
    StackStep,
    UpgradePlanError,
    in_place_steps,
    node_entries,
    surge_steps,
)
from fmeaa.client import FmeApiError, connect
from fmeaa.cluster.credentials import CredentialsError
from fmeaa.cluster.inventory import InventoryError, load_inventory
from fmeaa.cluster.target_group import TargetGroups
from fmeaa.sync.engine import Observer, default_cache_dir
from fmeaa.sync.manifest import ContentError, load_content_dir

IMAGE_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
INSTANCE_TYPE = re.compile(r"^[a-z0-9]+\.[a-z0-9]+$")
STRATEGIES = ("surge", "in-place")


class UpgradeError(RuntimeError):
    """The upgrade was refused or stopped; the message says where the cluster stands."""


@dataclass(frozen=True)
class UpgradeRequest:
    stack: str  # the Pulumi stack (Pulumi.<stack>.yaml)
    cluster: ClusterRef  # with `inventory`: rewritten from the stack outputs after each `up`
    source: str  # content directory, node:NAME or url:https://SERVER, as for `fmeaa seed`
    project_dir: Path = Path()  # where Pulumi.yaml is
    image: str | None = None
    instance_type: str | None = None
    strategy: str = "surge"
    batch: int = 1  # surge: nodes added (then retired) per round
    nodes: tuple[str, ...] = ()  # in-place: only these
    archive_logs: str | None = None  # surge: s3://bucket/prefix for retired nodes' logs
    dry_run: bool = False
    job_timeout_s: float = 3600.0


def _current(request: UpgradeRequest, config: dict[str, Any], inventory: dict[str, Any]
             ) -> set[str]:
    """Nodes whose instance already runs the requested image and type (from the stack
    outputs, which show each instance as Pulumi's state holds it)."""
    if request.image is None and request.instance_type is None:
        return set()
    ami = config.get("ami") or {}
    wanted = request.image
    if request.image and ami.get("copyToAccount"):
        wanted = inventory.get("imageId") if ami.get("id") == request.image else None
    return {n["name"] for n in inventory.get("nodes", [])
            if (request.image is None or n.get("imageId") == wanted)
            and (request.instance_type is None or n.get("instanceType") == request.instance_type)}


def _steps(request: UpgradeRequest, config: dict[str, Any], current: set[str]) -> list[StackStep]:
    if request.strategy == "surge":
        return surge_steps(config, request.image, request.instance_type, request.batch, current)
    return in_place_steps(config, request.image, request.instance_type, list(request.nodes),
                          current)


def _validate(request: UpgradeRequest, config: dict[str, Any], steps: list[StackStep]
              ) -> list[str]:
    """Every reason to refuse, found before any node or setting is touched."""
    problems = []
    if request.image is not None and not IMAGE_ID.match(request.image):
        problems.append(f"--image {request.image!r}: expected an AMI id (ami-…)")
    if request.instance_type is not None and not INSTANCE_TYPE.match(request.instance_type):
        problems.append(f"--instance-type {request.instance_type!r}: expected e.g. m6i.2xlarge")
    if request.archive_logs is not None:
        try:
            parse_s3_url(request.archive_logs)
        except ValueError as exc:
            problems.append(str(exc))
    if request.cluster.inventory is None:
        problems.append("--inventory is required: the upgrade rewrites it from the stack "
                        "outputs after every `pulumi up`")
    retiring = {n for s in steps if s.action == "retire" for n in s.nodes}
    if request.strategy == "surge" and retiring:
        database = config.get("database") or {}
        if database.get("deletionProtection", True) not in (False, "false"):
            problems.append("fme-aa:database.deletionProtection is true: retiring the old nodes "
                            "would fail at their databases. Set it to false for the upgrade "
                            "(each database still leaves a final snapshot) and back afterwards")
        seed_source = str((config.get("seed") or {}).get("source", ""))
        for label, source in (("fme-aa:seed.source", seed_source), ("--source", request.source)):
            if source.startswith("node:") and source.removeprefix("node:") in retiring:
                problems.append(f"{label} is {source}, a node this upgrade removes: use a content "
                                "directory or a node that stays")
    if not request.source.startswith(("node:", "url:")):  # url: the server migrated from
        try:
            manifest = load_content_dir(Path(request.source)).manifest
            owned = sorted(f"{s.key} (owner {s.owner})" for s in manifest.schedules
                           if s.owner in retiring)
            if owned:
                problems.append(f"schedules with an owner this upgrade removes: {', '.join(owned)}"
                                "; set `owner:` to a node that stays (or remove it) and sync")
        except ContentError as exc:
            problems.append(f"--source: {exc}")
    return problems


def _serving(inventory_path: Path) -> list[str]:
    groups = TargetGroups(load_inventory(inventory_path))
    return sorted(n for n, state in groups.in_service().items() if state == "healthy")


class _Upgrade:
    """One run: the request, the stack and the cluster, and the steps done so far."""

    def __init__(self, request: UpgradeRequest, runner: StackRunner, timing: Timing,
                 cache_dir: Path, observer: Observer) -> None:
        self.request, self.runner, self.timing, self.observer = request, runner, timing, observer
        self.cache_dir = cache_dir
        self.inventory_path: Path = request.cluster.inventory  # type: ignore[assignment]
        self.done: list[UpgradeStepReport] = []

    @property
    def ref(self) -> ClusterRef:
        return self.request.cluster

    def fail(self, message: str) -> UpgradeError:
        done = ", ".join(f"{s.action} {' '.join(s.nodes)}".strip() for s in self.done) or "none"
        return UpgradeError(f"{message} (steps done: {done}; re-run `fmeaa upgrade` with the "
                            "same options to continue)")

    def run(self, steps: list[StackStep], config: dict[str, Any]) -> None:
        for step in steps:
            report = UpgradeStepReport(action=step.action, nodes=step.nodes,
                                       settings_changed=sorted(k for k in set(config) | set(step.config)
                                                               if config.get(k) != step.config.get(k)),
                                       pulumi_up=step.up)
            try:
                if step.action == "retire":
                    report.archived_log_files = self.prepare_retirement(step)
                elif step.action == "roll":
                    self.observer.note(f"draining {step.nodes[0]} before its instance changes…")
                    lifecycle.drain(self.ref, step.nodes[0], wait_jobs=True,
                                    job_timeout_s=self.request.job_timeout_s, timing=self.timing)
                write_config(self.runner, config, step.config)
                config = step.config
                if step.up:
                    self.observer.note(f"pulumi up: {step.action} {' '.join(step.nodes)}")
                    outputs = self.runner.up()
                    self.inventory_path.write_text(json.dumps(outputs, indent=2))
                for node in step.nodes if step.action in ("add", "roll") else ():
                    self.observer.note(f"seeding {node}, then registering it…")
                    lifecycle.seed(self.ref, node, self.request.source, cache_dir=self.cache_dir,
                                   timing=self.timing)
            except UpgradeError:
                raise
            except (RuntimeError, ValueError, FmeApiError) as exc:  # lifecycle, seed, stack…
                raise self.fail(f"{step.action} {' '.join(step.nodes)}: {exc}") from None
            except Exception as exc:
                if type(exc).__module__.startswith("botocore"):
                    raise self.fail(f"{step.action} {' '.join(step.nodes)}: AWS: {exc}") from None
                raise
            report.serving = _serving(self.inventory_path)
            self.done.append(report)

    def prepare_retirement(self, step: StackStep) -> int | None:
        """Drain OLD only once its replacement serves; move its schedules; archive; check."""
        old = step.nodes[0]
        (replacement,) = step.replaces
        if replacement not in _serving(self.inventory_path):
            raise self.fail(f"{replacement} (replacing {old}) is not healthy in the load "
                            f"balancer: {old} stays")
        self.observer.note(f"draining {old} and waiting for its jobs…")
        lifecycle.drain(self.ref, old, wait_jobs=True, job_timeout_s=self.request.job_timeout_s,
                        timing=self.timing)
        self.move_schedules(old)
        archived = None
        if self.request.archive_logs:
            archived = self.archive(old)
        check = lifecycle.scale_in_check(self.ref, old, timing=self.timing)
        if not check.safe:
            failing = "; ".join(f"{c.check}: {c.detail}" for c in check.checks if not c.ok)
            raise self.fail(f"{old} is drained but not safe to remove ({failing})")
        return archived

    def move_schedules(self, old: str) -> None:
        """The `one` schedules OLD runs move to the next fit node before it goes (README,
        "Schedules that survive their owner"): the move is recorded on the nodes, so the syncs
        of the rest of the upgrade keep them there."""
        self.observer.note(f"moving the schedules {old} runs…")
        moved = schedules.move_schedules(schedules.MoveRequest(
            self.ref, from_node=old, reason=f"upgrade: retire {old}",
            timeout_s=self.timing.timeout_s))
        if not moved.ok:
            raise self.fail(f"moving {old}'s schedules failed: {'; '.join(moved.problems)}")

    def archive(self, old: str) -> int:
        targets = resolve_targets(self.ref)
        node = targets.whole.node(old)
        creds = targets.credentials().for_node(old)
        self.observer.note(f"archiving {old}'s logs to {self.request.archive_logs}…")
        with connect(old, node.rest_url, **creds.login(),
                     timeout=self.timing.timeout_s) as client:
            return archive_logs(client, self.request.archive_logs or "",
                                targets.whole.cluster_name, targets.whole.aws_region)


def upgrade(request: UpgradeRequest, runner: StackRunner | None = None, *,
            cache_dir: Path | None = None, timing: Timing | None = None,
            observer: Observer | None = None) -> UpgradeResult:
    """Plan the remaining steps from the stack's config and the inventory, refuse with every
    problem at once, then (unless `dry_run`) run them one `pulumi up` at a time. `runner`
    defaults to the Pulumi stack `request.stack` (Automation API)."""
    if request.strategy not in STRATEGIES:
        raise UpgradeError(f"--strategy {request.strategy!r}: use surge or in-place")
    runner = runner or PulumiStack(request.stack, request.project_dir)
    config = runner.config()
    if not node_entries(config):
        raise UpgradeError(f"stack {runner.name}: no fme-aa:nodeCount or fme-aa:nodes")
    problems: list[str] = []
    inventory: dict[str, Any] = {}
    if request.cluster.inventory is not None:
        try:
            inventory = json.loads(Path(request.cluster.inventory).read_text())
            targets = resolve_targets(request.cluster)
            if not TargetGroups(targets.whole).present:
                problems.append("the inventory names no target group: the upgrade drains and "
                                "registers nodes in the load balancer")
            targets.credentials()
            stack_nodes = {e["name"] for e in node_entries(config)}
            if stack_nodes != {n.name for n in targets.whole.nodes}:
                problems.append(f"{request.cluster.inventory} does not list the stack's nodes "
                                f"({', '.join(sorted(stack_nodes))}): refresh it with `pulumi "
                                f"stack output --json --stack {runner.name}`")
        except (OSError, ValueError, InventoryError, CredentialsError) as exc:
            problems.append(str(exc))
    try:
        steps = _steps(request, config, _current(request, config, inventory))
    except UpgradePlanError as exc:
        problems.append(str(exc))
        steps = []
    problems += _validate(request, config, steps)
    if problems:
        raise UpgradeError("refused before any change:\n  - " + "\n  - ".join(problems))
    entries = node_entries(config)
    names = {e["name"] for e in entries}
    surplus = sum(1 for e in entries if e.get("replaces") in names)  # added, pair not yet gone
    floor = len(entries) - surplus if request.strategy == "surge" else len(entries) - 1
    result = UpgradeResult(strategy=request.strategy, stack=runner.name, dry_run=request.dry_run,
                           serving_at_least=floor, steps=[])
    if request.dry_run:
        result.steps = [UpgradeStepReport(
            action=s.action, nodes=s.nodes, pulumi_up=s.up,
            settings_changed=sorted(k for k in set(before) | set(s.config)
                                    if before.get(k) != s.config.get(k)))
            for before, s in zip([config] + [s.config for s in steps], steps, strict=False)]
        return result
    job = _Upgrade(request, runner, timing or Timing(), cache_dir or default_cache_dir(),
                   observer or Observer())
    try:
        job.run(steps, config)
    finally:
        result.steps = job.done
    return result
