"""The node lifecycle operations: `drain`, `undrain`, `scale_in_check`, `seed` (manual mode) and
`rolling`: moving one node out of service and back without users ever reaching an empty or
disappearing node."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fmeaa.app.results import Check, DrainResult, RollingResult, ScaleInResult, SeedResult, UndrainResult
from fmeaa.app.seed import SeedError, SeedRequest, seed_node
from fmeaa.app.targets import ClusterRef, Targets, resolve_targets
from fmeaa.client import FmeClient, connect
from fmeaa.cluster.credentials import CredentialSource
from fmeaa.cluster.inventory import Inventory, NodeTarget
from fmeaa.cluster.node_lifecycle import LifecycleError, scale_in_report, wait_for_jobs
from fmeaa.cluster.node_lifecycle import drain as drain_node
from fmeaa.cluster.node_lifecycle import undrain as undrain_node
from fmeaa.cluster.target_group import TargetGroups
from fmeaa.sync.engine import Observer, default_cache_dir


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


def seed_request(whole: Inventory, target: NodeTarget, source: str, wait: float,
                 allow_http: bool) -> SeedRequest:
    """Seeding `target` from `source` (a content directory, or node:NAME of this inventory)."""
    reference_url = None
    if source.startswith("node:"):
        reference_url = whole.node(source.removeprefix("node:")).rest_url
    else:
        source = str(Path(source).resolve())
    return SeedRequest(node=target.name, rest_url=target.rest_url,
                       default_owner=whole.nodes[0].name, source=source,
                       reference_url=reference_url, region=whole.region, allow_http=allow_http,
                       timeout_s=wait, cluster=whole.cluster_name)


def drain(ref: ClusterRef, node: str, *, wait_jobs: bool = False, job_timeout_s: float = 3600,
          force: bool = False, timing: Timing = Timing(), observer: Observer | None = None
          ) -> DrainResult:
    """Deregister NODE from the target group(s), wait for the ALB to drain it and, with
    `wait_jobs`, for its running jobs. Refuses below N−1 unless `force`."""
    observer = observer or Observer()
    targets, groups = _context(ref)
    target = targets.whole.node(node)
    observer.note(f"draining {node}…")
    drain_node(groups, targets.whole, target, timing.wait_s, force=force, poll_s=timing.poll_s)
    if wait_jobs:
        observer.note(f"waiting for {node}'s running jobs…")
        with _client(target, targets.credentials(), timing.timeout_s) as client:
            wait_for_jobs(client, job_timeout_s, timing.poll_s)
    return DrainResult(node=node, drained=True, jobs_finished=wait_jobs)


def undrain(ref: ClusterRef, node: str, *, timing: Timing = Timing(),
            observer: Observer | None = None) -> UndrainResult:
    """Register NODE with the target group(s) and wait until it is healthy."""
    targets, groups = _context(ref)
    (observer or Observer()).note(f"registering {node} and waiting until healthy…")
    undrain_node(groups, targets.whole.node(node), timing.wait_s, timing.poll_s)
    return UndrainResult(node=node, healthy=True)


def scale_in_check(ref: ClusterRef, node: str, *, timing: Timing = Timing()) -> ScaleInResult:
    """Is NODE safe to remove? Out of the load balancer, no running jobs, and not the only node
    running any schedule."""
    targets, groups = _context(ref)
    targets.whole.node(node)
    credentials = targets.credentials()
    clients = {n.name: _client(n, credentials, timing.timeout_s) for n in targets.whole.nodes}
    try:
        report = scale_in_report(node, clients, groups)
    finally:
        for c in clients.values():
            c.close()
    return ScaleInResult(node=node, safe=report.safe,
                         checks=[Check(check=c, ok=ok, detail=d) for c, ok, d in report.checks])


def seed(ref: ClusterRef, node: str, source: str, *, register: bool = True,
         cache_dir: Path | None = None, timing: Timing = Timing(),
         observer: Observer | None = None) -> SeedResult:
    """Manual seed mode: health → licence → sync → parity (the same `seed_node` the Pulumi
    dynamic provider runs), then register the node with the load balancer."""
    observer = observer or Observer()
    targets, groups = _context(ref)
    target = targets.whole.node(node)
    request = seed_request(targets.whole, target, source, timing.wait_s, ref.allow_http)
    observer.note(f"seeding {node}: health, licence, sync, parity…")
    report = seed_node(request, targets.credentials(),
                       cache_dir=cache_dir or default_cache_dir(), poll_s=timing.poll_s)
    registered = False
    if register and groups.present:
        observer.note(f"registering {node}…")
        undrain_node(groups, target, timing.wait_s, timing.poll_s)
        registered = True
    return SeedResult(node=node, applied=report["applied"], bytes_sent=report["bytesSent"],
                      licence=report["licence"], registered=registered)


def rolling(ref: ClusterRef, command: str, source: str, *, job_timeout_s: float = 3600,
            cache_dir: Path | None = None, timing: Timing = Timing(),
            observer: Observer | None = None) -> RollingResult:
    """One node at a time: drain (and wait for jobs) → run `command` → seed (sync + parity) →
    undrain and wait healthy → next node. Stops at the first failure, leaving that node
    drained; the error names the nodes already done."""
    observer = observer or Observer()
    targets, groups = _context(ref)
    whole = targets.whole
    credentials = targets.credentials()
    done: list[str] = []
    for target in whole.nodes:
        try:
            observer.note(f"{target.name}: drain → exec → seed → undrain")
            drain_node(groups, whole, target, timing.wait_s, poll_s=timing.poll_s)
            with _client(target, credentials, timing.timeout_s) as client:
                wait_for_jobs(client, job_timeout_s, timing.poll_s)
            argv = shlex.split(command.format(node=target.name, url=target.rest_url,
                                              instance=target.instance_id or ""))
            env = {**os.environ, "FMEAA_NODE": target.name, "FMEAA_NODE_URL": target.rest_url,
                   "FMEAA_INSTANCE_ID": target.instance_id or ""}
            finished = subprocess.run(argv, env=env, check=False)
            if finished.returncode != 0:
                raise LifecycleError(f"--exec failed on {target.name} (exit "
                                     f"{finished.returncode}); it stays drained")
            seed_node(seed_request(whole, target, source, timing.wait_s, ref.allow_http),
                      credentials, cache_dir=cache_dir or default_cache_dir(),
                      poll_s=timing.poll_s)
            undrain_node(groups, target, timing.wait_s, timing.poll_s)
            done.append(target.name)
        except (LifecycleError, SeedError) as exc:
            raise LifecycleError(f"{exc} (done: {', '.join(done) or 'none'})") from None
    return RollingResult(nodes=done)
