"""The node lifecycle operations: `drain`, `undrain`, `scale_in_check`, `seed` (manual mode) and
`rolling`: moving one node out of service and back without users ever reaching an empty or
disappearing node."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmeaa.app.locking import cluster_held
from fmeaa.app.results import (
    Check,
    DrainResult,
    RollingResult,
    ScaleInResult,
    ScheduleMove,
    ScheduleMoveResult,
    SeedResult,
    UndrainResult,
)
from fmeaa.app.schedules import MoveRequest, move_with
from fmeaa.app.seed import SeedError, SeedRequest, licence_report, read_serial, seed_node
from fmeaa.app.smoke import Smoke
from fmeaa.app.sources import is_url_source
from fmeaa.app.targets import ClusterRef, Targets, resolve_targets
from fmeaa.client import FmeApiError, FmeClient, connect
from fmeaa.cluster.cluster_lock import ClusterLock
from fmeaa.cluster.credentials import CredentialSource
from fmeaa.cluster.inventory import Inventory, InventoryError, NodeTarget
from fmeaa.cluster.node_lifecycle import LifecycleError, scale_in_report, wait_for_jobs
from fmeaa.cluster.node_lifecycle import drain as drain_node
from fmeaa.cluster.node_lifecycle import undrain as undrain_node
from fmeaa.cluster.target_group import TargetGroups
from fmeaa.sync.engine import Observer, default_cache_dir
from fmeaa.sync.manifest import ContentError, load_content_dir


@dataclass(frozen=True)
class Timing:
    wait_s: float = 600.0  # the load balancer (draining, health)
    poll_s: float = 5.0
    timeout_s: float = 30.0  # each REST call


def _client(node: NodeTarget, credentials: CredentialSource, timeout: float) -> FmeClient:
    creds = credentials.for_node(node.name)
    client = connect(node.name, node.rest_url, **creds.login(), timeout=timeout,
                     read_retries=3)
    client.ensure_token()
    return client


def _context(ref: ClusterRef) -> tuple[Targets, TargetGroups]:
    targets = resolve_targets(ref)
    return targets, TargetGroups(targets.whole)


def check_source(whole: Inventory, source: str) -> None:
    """A seed source's problems, before any node is touched (locked, drained or waited for): a
    content directory is read and checked whole, its schedule owners against the inventory;
    node:NAME must name a node of it. (A url: server is checked when opened, before the node
    is waited for.)"""
    if source.startswith("node:"):
        whole.node(source.removeprefix("node:"))
    elif not is_url_source(source):
        load_content_dir(Path(source), nodes=[n.name for n in whole.nodes])


def seed_request(whole: Inventory, target: NodeTarget, source: str, wait: float,
                 allow_http: bool, licensing: Licensing | None = None,
                 source_secret_id: str | None = None) -> SeedRequest:
    """Seeding `target` from `source` (a content directory, node:NAME of this inventory, or
    url:https://SERVER outside the cluster, with its credentials from `source_secret_id` or
    $FMEAA_SOURCE_PASSWORD)."""
    reference_url = None
    if source.startswith("node:"):
        reference_url = whole.node(source.removeprefix("node:")).rest_url
    elif not is_url_source(source):
        source = str(Path(source).resolve())
    licensing = licensing or Licensing()
    return SeedRequest(node=target.name, rest_url=target.rest_url,
                       default_owner=whole.nodes[0].name, source=source,
                       reference_url=reference_url, source_secret_id=source_secret_id,
                       region=whole.region, allow_http=allow_http,
                       timeout_s=wait, cluster=whole.cluster_name,
                       license_mode=licensing.mode or "marketplace",
                       serial_secret_id=licensing.serial_secret_id)


# --- licences ----------------------------------------------------------------------------------
LICENSE_MODES = ("marketplace", "byol")


@dataclass(frozen=True)
class Licensing:
    """How nodes get their licence: `mode` None when neither an option nor the inventory says."""

    mode: str | None = None
    serial_secret_id: str | None = None
    serial: dict[str, Any] | None = field(default=None, repr=False)  # read once per run


def licensing_for(targets: Targets, mode: str | None, serial_secret_id: str | None
                  ) -> Licensing:
    """Options first, then the inventory's `license` (what `pulumi up` exports). Checked — and
    the BYOL serial read from Secrets Manager, once — before any node is contacted."""
    stack = targets.whole.license
    mode = mode or (stack.mode if stack else None)
    serial_secret_id = serial_secret_id or (stack.serial_secret_id if stack else None)
    problems = []
    if mode is not None and mode not in LICENSE_MODES:
        problems.append(f"--license-mode {mode!r}: use one of {', '.join(LICENSE_MODES)}")
    if mode == "byol" and not serial_secret_id:
        problems.append("--license-mode byol needs --serial-secret-id SECRET_ID (a Secrets Manager "
                        "secret holding {\"serialNumber\": …}), or license.serialSecretId in the "
                        "inventory")
    if serial_secret_id and mode != "byol":
        problems.append(f"--serial-secret-id is only used with --license-mode byol (the licence "
                        f"mode is {mode or 'not set'})")
    if problems:
        raise LifecycleError("refusing the licence settings:\n" +
                             "\n".join(f"  - {p}" for p in problems))
    serial = read_serial(serial_secret_id, targets.region) if serial_secret_id else None
    return Licensing(mode, serial_secret_id, serial)


def _require_licensed(target: NodeTarget, credentials: CredentialSource, timing: Timing,
                      then: str) -> dict[str, Any]:
    """The node's licence report (never its serial); LifecycleError if it is not licensed (it
    must not serve)."""
    with _client(target, credentials, timing.timeout_s) as client:
        status = client.license_status()
    if status.get("isLicensed"):
        return licence_report(status)
    raise LifecycleError(
        f"{target.name} is NOT licensed (licence request status: "
        f"{status.get('requestStatus') or 'none'}), so it was not registered with the load "
        "balancer. For a bring-your-own-licence image pass --license-mode byol --serial-secret-id "
        "SECRET_ID (a Secrets Manager secret holding the serialNumber), or set license.mode and "
        f"license.serialSecretId in the stack so the inventory carries them; then {then}")


# --- telling the operator exactly what is left ---------------------------------------------------
def cli_cluster(ref: ClusterRef) -> str:
    """The options that name this cluster, for a command the operator can paste."""
    if ref.inventory is not None:
        words = ["-i", str(ref.inventory)]
    else:
        words = ["--cluster", ref.cluster or "NAME", "--region", ref.region or "REGION"]
    if ref.allow_http:
        words.append("--allow-http")
    return " ".join(shlex.quote(w) for w in words)


def _where_left(groups: TargetGroups, target: NodeTarget, ref: ClusterRef) -> str:
    """Whether `target` is out of the load balancer now, and how to put it back."""
    try:
        out = target.name not in groups.in_service()
    except Exception:  # reporting what is left must not hide the original failure
        out = True
    if not out:
        return f"{target.name} is still in the load balancer"
    return (f"{target.name} stays drained (out of the load balancer); once it is fit to serve, "
            f"put it back with `fmeaa undrain {target.name} {cli_cluster(ref)}`")


def _move_off(targets: Targets, groups: TargetGroups, node: str, reason: str, timing: Timing
              ) -> ScheduleMoveResult:
    """Move the `one` schedules NODE runs to the next fit node, under the cluster lock; a
    schedule that cannot move is a LifecycleError naming it (NODE would silently stop it)."""
    with cluster_held(targets, reason.split()[0], timing.timeout_s) as lock:
        moved = move_with(lock, targets.whole, groups,
                          MoveRequest(from_node=node, reason=reason))
    if not moved.ok:
        raise LifecycleError(f"{node}: its schedules could not all be moved: "
                             + "; ".join(moved.problems))
    return moved


def drain(ref: ClusterRef, node: str, *, wait_jobs: bool = False, job_timeout_s: float = 3600,
          force: bool = False, move_schedules: bool = False, timing: Timing = Timing(),
          observer: Observer | None = None) -> DrainResult:
    """Deregister NODE from the target group(s), wait for the ALB to drain it, with
    `move_schedules` move the `one` schedules it runs to the next fit node, and with
    `wait_jobs` wait for its running jobs. Refuses below N−1 unless `force`."""
    observer = observer or Observer()
    targets, groups = _context(ref)
    target = targets.whole.node(node)
    observer.note(f"draining {node}…")
    drain_node(groups, targets.whole, target, timing.wait_s, force=force, poll_s=timing.poll_s)
    moved = None
    if move_schedules:  # before waiting for jobs: a trigger now would start new work here
        observer.note(f"moving the schedules {node} runs…")
        moved = _move_off(targets, groups, node, f"drain {node}", timing)
    if wait_jobs:
        observer.note(f"waiting for {node}'s running jobs…")
        with _client(target, targets.credentials(), timing.timeout_s) as client:
            wait_for_jobs(client, job_timeout_s, timing.poll_s)
    return DrainResult(node=node, drained=True, jobs_finished=wait_jobs, schedules=moved)


def undrain(ref: ClusterRef, node: str, *, timing: Timing = Timing(),
            observer: Observer | None = None) -> UndrainResult:
    """Register NODE with the target group(s) and wait until it is healthy."""
    targets, groups = _context(ref)
    (observer or Observer()).note(f"registering {node} and waiting until healthy…")
    undrain_node(groups, targets.whole.node(node), timing.wait_s, timing.poll_s)
    return UndrainResult(node=node, healthy=True)


def scale_in_check(ref: ClusterRef, node: str, *, move_schedules: bool = False,
                   timing: Timing = Timing()) -> ScaleInResult:
    """Is NODE safe to remove? Out of the load balancer, no running jobs, and not the only node
    running any schedule. With `move_schedules`, its `one` schedules are moved off first."""
    targets, groups = _context(ref)
    targets.whole.node(node)
    moved = _move_off(targets, groups, node, f"scale-in {node}", timing) \
        if move_schedules else None
    credentials = targets.credentials()
    clients = {n.name: _client(n, credentials, timing.timeout_s) for n in targets.whole.nodes}
    try:
        report = scale_in_report(node, clients, groups)
    finally:
        for c in clients.values():
            c.close()
    return ScaleInResult(node=node, safe=report.safe, schedules=moved,
                         checks=[Check(check=c, ok=ok, detail=d) for c, ok, d in report.checks])


def seed(ref: ClusterRef, node: str, source: str, *, register: bool = True,
         license_mode: str | None = None, serial_secret_id: str | None = None,
         cache_dir: Path | None = None, timing: Timing = Timing(),
         observer: Observer | None = None, source_secret_id: str | None = None) -> SeedResult:
    """Manual seed mode: health → licence → sync → parity (the same `seed_node` the Pulumi
    dynamic provider runs), then — only if the node reports itself licensed — register it with
    the load balancer."""
    observer = observer or Observer()
    targets, groups = _context(ref)
    target = targets.whole.node(node)
    check_source(targets.whole, source)
    licensing = licensing_for(targets, license_mode, serial_secret_id)
    request = seed_request(targets.whole, target, source, timing.wait_s, ref.allow_http, licensing,
                           source_secret_id)
    credentials = targets.credentials()
    with cluster_held(targets, "seed", timing.timeout_s):
        observer.note(f"seeding {node}: health, licence, sync, parity…")
        report = seed_node(request, credentials, serial=licensing.serial,
                           cache_dir=cache_dir or default_cache_dir(), poll_s=timing.poll_s)
        registered = False
        licence = report["licence"]
        if register and groups.present:
            licence = _require_licensed(target, credentials, timing,
                                        f"re-run `fmeaa seed {node}` with them")
            observer.note(f"registering {node}…")
            undrain_node(groups, target, timing.wait_s, timing.poll_s)
            registered = True
    return SeedResult(node=node, applied=report["applied"], bytes_sent=report["bytesSent"],
                      licence=licence, registered=registered)


# --- rolling maintenance -------------------------------------------------------------------------
OLD_PLACEHOLDERS = {"{node}": "$FMEAA_NODE", "{url}": "$FMEAA_NODE_URL",
                    "{instance}": "$FMEAA_INSTANCE_ID"}


def _check_exec(command: str) -> None:
    used = [p for p in OLD_PLACEHOLDERS if p in command]
    if used:
        raise LifecycleError(
            f"--exec: {', '.join(used)} is no longer substituted (the command runs in /bin/sh "
            "as written); use " + ", ".join(f'"{OLD_PLACEHOLDERS[p]}"' for p in used) +
            " instead")
    if not command.strip():
        raise LifecycleError("--exec: the command is empty")


def _run_exec(command: str, target: NodeTarget) -> str | None:
    """Run the maintenance command through /bin/sh (so `&&`, pipes and `$VAR` work) with the
    node's values in the environment only. None on success, else why it failed."""
    env = {**os.environ, "FMEAA_NODE": target.name, "FMEAA_NODE_URL": target.rest_url,
           "FMEAA_INSTANCE_ID": target.instance_id or ""}
    try:
        finished = subprocess.run(["/bin/sh", "-c", command], env=env, check=False)
    except OSError as exc:
        return f"could not start /bin/sh: {exc.strerror}"
    if finished.returncode == 0:
        return None
    if finished.returncode < 0:
        return f"killed by signal {-finished.returncode}"
    return f"exit {finished.returncode}"


def _rolling_order(whole: Inventory, start_from: str | None) -> list[NodeTarget]:
    if start_from is None:
        return list(whole.nodes)
    first = whole.nodes.index(whole.node(start_from))
    return list(whole.nodes[first:])


def rolling(ref: ClusterRef, command: str, source: str, *, start_from: str | None = None,
            license_mode: str | None = None, serial_secret_id: str | None = None,
            job_timeout_s: float = 3600, cache_dir: Path | None = None,
            move_schedules: bool = False, smoke: Smoke | None = None, bake_s: float = 0.0,
            timing: Timing = Timing(), observer: Observer | None = None) -> RollingResult:
    """One node at a time: drain (and wait for jobs) → run `command` in /bin/sh → seed (sync +
    parity) → check its licence → undrain and wait healthy → next node.

    Stops at the first failure. A node whose command failed is put back only if it is still fit
    to serve (healthy, licensed, in sync); otherwise it stays drained and the error says so, with
    the command that puts it back. `start_from` resumes at a node (which may still be drained).
    `move_schedules`: once drained, the node's `one` schedules move to the next fit node.
    `smoke`: a job that must succeed on the node before it is put back; `bake_s`: seconds to
    watch it serving (then its health is checked) before the next node."""
    observer = observer or Observer()
    _check_exec(command)
    targets, groups = _context(ref)
    whole = targets.whole
    order = _rolling_order(whole, start_from)
    licensing = licensing_for(targets, license_mode, serial_secret_id)
    problems: list[Exception] = []
    try:  # checked before the first node is drained, not when it is brought back
        check_source(whole, source)
    except (ContentError, InventoryError) as exc:
        problems.append(exc)
    if not groups.present:
        problems.append(LifecycleError(
            "rolling maintenance needs the load balancer's target group, and the inventory "
            "names none (for the sandbox: `fmeaa sandbox --load-balancer`)"))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise LifecycleError("refusing the rolling maintenance:\n" + "\n".join(
            "  - " + str(p).replace("\n", "\n    ") for p in problems))
    credentials = targets.credentials()
    cache = cache_dir or default_cache_dir()
    done: list[str] = []

    moves: list[ScheduleMove] = []

    def bring_back(target: NodeTarget, wait_s: float) -> None:
        """Seed, check the licence, the smoke job, register: what makes a drained node serve
        again."""
        seed_node(seed_request(whole, target, source, wait_s, ref.allow_http, licensing),
                  credentials, serial=licensing.serial, cache_dir=cache, poll_s=timing.poll_s)
        _require_licensed(target, credentials, timing, f"resume with {resume(target)}")
        if smoke is not None:
            observer.note(f"{target.name}: smoke job {smoke.label}…")
            with _client(target, credentials, timing.timeout_s) as client:
                failed = smoke.run(client, timing.poll_s)
            if failed:
                raise LifecycleError(failed)
        undrain_node(groups, target, timing.wait_s, timing.poll_s)
        if bake_s > 0:
            observer.note(f"{target.name}: baking {bake_s:.0f} s…")
            time.sleep(bake_s)
            with _client(target, credentials, timing.timeout_s) as client:
                client.health()

    def resume(target: NodeTarget) -> str:
        return (f"`fmeaa rolling --from {target.name} {cli_cluster(ref)}` and the same --exec "
                "and -s")

    def stopped(target: NodeTarget, what: str, left: str) -> LifecycleError:
        return LifecycleError(f"{what}; {left}. Rolling maintenance stopped (done: "
                              f"{', '.join(done) or 'none'}); resume with {resume(target)}")

    def run_one(target: NodeTarget, lock: ClusterLock) -> None:
        """Drain → exec → bring back, for one node; LifecycleError saying what is left."""
        observer.note(f"{target.name}: drain → exec → seed → undrain")
        try:
            drain_node(groups, whole, target, timing.wait_s, poll_s=timing.poll_s)
            if move_schedules:
                moved = move_with(lock, whole, groups, MoveRequest(
                    from_node=target.name, reason=f"rolling {target.name}"))
                moves.extend(moved.moved)
                if not moved.ok:
                    raise LifecycleError(f"{target.name}: its schedules could not all be moved: "
                                         + "; ".join(moved.problems))
            with _client(target, credentials, timing.timeout_s) as client:
                wait_for_jobs(client, job_timeout_s, timing.poll_s)
        except (LifecycleError, FmeApiError) as exc:
            raise stopped(target, str(exc), _where_left(groups, target, ref)) from None
        failed = _run_exec(command, target)
        if failed:
            what = f"--exec failed on {target.name} ({failed})"
            observer.note(f"{target.name}: --exec failed; checking whether it can serve again…")
            try:
                bring_back(target, min(timing.wait_s, 60.0))
            except (LifecycleError, SeedError, FmeApiError) as exc:
                raise stopped(target, f"{what}; it is not fit to serve ({exc})",
                              _where_left(groups, target, ref)) from None
            raise stopped(target, what, f"{target.name} is healthy, licensed and in sync, so it "
                          "was put back in the load balancer")
        try:
            bring_back(target, timing.wait_s)
        except (LifecycleError, SeedError, FmeApiError) as exc:
            raise stopped(target, str(exc), _where_left(groups, target, ref)) from None

    with cluster_held(targets, "rolling", timing.timeout_s) as lock:
        for target in order:
            run_one(target, lock)
            done.append(target.name)
    return RollingResult(nodes=done, schedules=moves)
