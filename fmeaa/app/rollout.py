"""Canary rollout: `fmeaa sync --canary NODE` or `--waves 1,50%,100%` — the sync of `content.py`
applied wave by wave, each wave gated (README, "Canary rollout"):

1. optionally drain the canary from the load balancer while it changes (`--drain-canary`);
2. sync the wave's nodes (recorded in the history like any sync: one sync id for the rollout);
3. run the smoke job on each of them (`--smoke REPO/WS.fmw`, job status SUCCESS);
4. put the canary back, wait the bake time (`--bake`), check the wave's health;
5. next wave.

The first failure stops the rollout: later waves' nodes are untouched, and the result says what
to do next — roll the reached nodes back, or fix and resume with `--from-wave`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fmeaa.app.content import ContentJob, ContentRequest, sync_nodes
from fmeaa.app.history import RECORDED, HistoryPolicy, Recorder
from fmeaa.app.lifecycle import Timing, cli_cluster
from fmeaa.app.locking import cluster_lock
from fmeaa.app.results import RolloutResult, WaveReport
from fmeaa.app.smoke import Smoke
from fmeaa.client import FmeApiError
from fmeaa.cluster.node_lifecycle import LifecycleError
from fmeaa.cluster.node_lifecycle import drain as drain_node
from fmeaa.cluster.node_lifecycle import undrain as undrain_node
from fmeaa.cluster.sync_lock import SyncLock
from fmeaa.cluster.target_group import TargetGroups
from fmeaa.sync.apply import failure_text
from fmeaa.sync.engine import Observer, SyncEngine


@dataclass(frozen=True)
class Rollout:
    canary: str | None = None
    waves: tuple[str, ...] = ()  # cumulative sizes: "1", "50%", "100%"
    drain_canary: bool = False
    smoke: Smoke | None = None
    bake_s: float = 0.0
    from_wave: int = 1


def plan_waves(nodes: list[str], canary: str | None, specs: tuple[str, ...]) -> list[list[str]]:
    """The waves, in order (pure). The canary first, then the inventory's order; each spec is
    how many nodes have the new content once its wave is done (a count or a percentage, rounded
    up); a wave that adds no node is dropped. Every problem is refused at once."""
    problems = []
    if canary is not None and canary not in nodes:
        problems.append(f"--canary {canary}: not one of the nodes synced ({', '.join(nodes)})")
    order = ([canary] if canary in nodes else []) + [n for n in nodes if n != canary]
    specs = specs or ("1", "100%")
    counts = []
    for spec in specs:
        text = spec.strip()
        try:
            count = math.ceil(float(text[:-1]) * len(order) / 100) if text.endswith("%") \
                else int(text)
        except ValueError:
            problems.append(f"--waves: {spec!r} is neither a count (2) nor a percentage (50%)")
            continue
        if count < 1 or count > len(order):
            problems.append(f"--waves: {spec!r} means {count} node(s), outside 1–{len(order)}")
        elif counts and count < counts[-1]:
            problems.append(f"--waves: {spec!r} is fewer nodes than the wave before it")
        counts.append(count)
    if counts and not problems and counts[-1] != len(order):
        problems.append(f"--waves: the last wave must reach every node ({len(order)}, or 100%)")
    if problems:
        raise LifecycleError("refusing the rollout:\n" + "\n".join(f"  - {p}" for p in problems))
    waves, done = [], 0
    for count in counts:
        if count > done:
            waves.append(order[done:count])
            done = count
    return waves


def _check(rollout: Rollout, waves: list[list[str]], groups: TargetGroups) -> None:
    problems = []
    if not 1 <= rollout.from_wave <= len(waves):
        problems.append(f"--from-wave {rollout.from_wave}: there are {len(waves)} waves "
                        f"({'; '.join(', '.join(w) for w in waves)})")
    if rollout.drain_canary and len(waves[0]) != 1:
        problems.append(f"--drain-canary drains the first wave, which must be one node "
                        f"(it is {', '.join(waves[0])})")
    if rollout.drain_canary and not groups.present:
        problems.append("--drain-canary needs the load balancer's target group, and the "
                        "inventory names none (for the sandbox: `fmeaa sandbox --load-balancer`)")
    if problems:
        raise LifecycleError("refusing the rollout:\n" + "\n".join(f"  - {p}" for p in problems))


def rollout(request: ContentRequest, plan: Rollout, prune: bool = False, *,
            history: HistoryPolicy = RECORDED, timing: Timing | None = None,
            observer: Observer | None = None) -> RolloutResult:
    """Sync wave by wave, each gated; stop at the first failure (see the module's doc)."""
    timing = timing or Timing()
    job = ContentJob(request)
    waves = plan_waves(job.target_names(), plan.canary, plan.waves)
    groups = TargetGroups(job.targets.whole)
    _check(plan, waves, groups)
    result = RolloutResult(ok=False, source=job.source.label,
                           waves=[WaveReport(number=i, nodes=w, status="not started")
                                  for i, w in enumerate(waves, 1)])
    with job, job.engine(observer) as engine, SyncLock(engine.lock_path), \
            cluster_lock(engine, "sync") as lock:
        desired = job.load_desired(engine)
        engine.connect(job.target_names())
        desired = job.honour_moves(desired, engine)
        recorder = Recorder(engine, "sync", f"{job.source.label} (rollout)", lock.owner, history)
        try:
            for wave in result.waves:
                if wave.number < plan.from_wave:
                    wave.status = "skipped"
                    continue
                (observer or Observer()).note(f"wave {wave.number}: {', '.join(wave.nodes)}")
                wave.problem = _run_wave(engine, job, desired, wave, plan, prune, recorder,
                                         groups, timing)
                result.sync_id = result.sync_id or (wave.sync.sync_id if wave.sync else None)
                if wave.problem:
                    wave.status = "failed"
                    result.stopped_at = wave.number
                    result.next_steps = _next_steps(request, plan, result, wave)
                    break
                wave.status = "done"
        finally:
            recorder.close()
    result.ok = result.stopped_at is None
    return result


def _run_wave(engine: SyncEngine, job: ContentJob, desired: object, wave: WaveReport,
              plan: Rollout, prune: bool, recorder: Recorder, groups: TargetGroups,
              timing: Timing) -> str | None:
    """One wave; None when it passed every gate, else what failed."""
    whole = job.targets.whole
    if plan.drain_canary and wave.number == 1:
        try:
            for node in wave.nodes:
                drain_node(groups, whole, whole.node(node), timing.wait_s, poll_s=timing.poll_s)
                wave.drained.append(node)
        except LifecycleError as exc:
            return f"draining the canary failed: {exc}"
    wave.sync = sync_nodes(engine, job, desired, wave.nodes, prune, recorder)  # type: ignore[arg-type]
    bad = [n for n, r in wave.sync.nodes.items() if not (r.status == "ok" and r.in_sync)]
    if bad:
        return f"the sync failed on {', '.join(bad)}"
    if plan.smoke is not None:
        for node in wave.nodes:
            failed = plan.smoke.run(engine.clients[node], timing.poll_s)
            wave.smoke[node] = failed or "passed"
            if failed:
                return f"{node}: {failed}"
    try:
        for node in wave.drained:
            undrain_node(groups, whole.node(node), timing.wait_s, timing.poll_s)
        wave.drained = []
    except LifecycleError as exc:
        return f"putting the canary back failed: {exc}"
    if plan.bake_s > 0:
        time.sleep(plan.bake_s)  # the wave serves; then it must still be healthy
        for node in wave.nodes:
            try:
                engine.clients[node].health()
            except FmeApiError as exc:
                return f"{node} is not healthy after baking {plan.bake_s:.0f} s: " \
                       f"{failure_text(exc)}"
    return None


def _next_steps(request: ContentRequest, plan: Rollout, result: RolloutResult,
                failed: WaveReport) -> list[str]:
    """What to do now, as commands: roll the reached nodes back, or fix and resume."""
    cluster = cli_cluster(request.cluster)
    reached = [n for w in result.waves if w.status in ("done", "failed") and w.sync
               for n, r in w.sync.nodes.items() if r.applied]
    untouched = [n for w in result.waves if w.status == "not started" for n in w.nodes]
    steps = [f"nodes of later waves are untouched: {', '.join(untouched) or 'none'}"]
    if failed.drained:
        steps.append(f"{', '.join(failed.drained)} stays drained (out of the load balancer)")
    if reached and result.sync_id:
        nodes = " ".join(f"--node {n}" for n in reached)
        steps.append(f"to undo what this rollout changed: `fmeaa rollback --before "
                     f"{result.sync_id} {nodes} {cluster}`")
    for node in failed.drained:
        steps.append(f"then, once {node} is fit to serve: `fmeaa undrain {node} {cluster}`")
    synced = failed.sync is not None and all(r.status == "ok" and r.in_sync
                                             for r in failed.sync.nodes.values())
    resume = failed.number + 1 if synced else failed.number
    if resume <= len(result.waves):
        steps.append(f"or, once the cause is fixed, resume: re-run this `fmeaa sync` (the same "
                     f"-s, --canary/--waves and options) with `--from-wave {resume}`")
    return steps
