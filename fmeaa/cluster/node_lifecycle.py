"""Taking one node out of service and back, safely: drain, undrain, and the scale-in check.

The rule throughout: the cluster never drops below N−1 nodes in service because of fme-aa, and a
node is never called safe to remove while it runs jobs or owns schedules the others lack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fmeaa.client import FmeClient
from fmeaa.cluster.inventory import Inventory, NodeTarget
from fmeaa.cluster.target_group import TargetGroupError, TargetGroups


class LifecycleError(RuntimeError):
    """The step was refused or did not finish; the message says what state things are in."""


def _instance(node: NodeTarget) -> str:
    if not node.instance_id:
        raise LifecycleError(f"{node.name}: the inventory has no instance id for it")
    return node.instance_id


def check_capacity(groups: TargetGroups, inventory: Inventory, leaving: str) -> None:
    """Refuse to take `leaving` out while another node is already out of service."""
    in_service = groups.in_service()
    others_out = [n.name for n in inventory.nodes
                  if n.name != leaving and in_service.get(n.name) not in ("healthy", "initial")]
    if others_out:
        raise LifecycleError(
            f"refusing to drain {leaving}: {', '.join(others_out)} already out of service "
            f"(draining {leaving} too would leave fewer than N−1 = {len(inventory.nodes) - 1} "
            "nodes); undrain those first, or pass --force")


def wait_for_jobs(client: FmeClient, timeout_s: float, poll_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        running = client.running_jobs()
        if not running:
            return
        if time.monotonic() >= deadline:
            ids = ", ".join(str(j.get("id")) for j in running[:10])
            raise LifecycleError(
                f"{client.node} still runs {len(running)} job(s) after {timeout_s:.0f} s "
                f"(ids {ids}). It is out of the load balancer, so no new work reaches it; wait and "
                "re-run `fmeaa drain --wait-jobs`, or raise --job-timeout")
        time.sleep(poll_s)


def drain(groups: TargetGroups, inventory: Inventory, node: NodeTarget, timeout_s: float,
          force: bool = False, poll_s: float = 5.0) -> None:
    """Deregister from every target group and wait until the ALB has finished draining."""
    if not groups.present:
        raise LifecycleError("the inventory names no target group (a sandbox?): nothing to drain")
    if not force:
        check_capacity(groups, inventory, node.name)
    instance = _instance(node)
    groups.deregister(instance)
    try:
        groups.wait(instance, "gone", timeout_s, poll_s)
    except TargetGroupError as exc:
        raise LifecycleError(f"{node.name}: deregistered, but draining did not finish: {exc}") from None


def undrain(groups: TargetGroups, node: NodeTarget, timeout_s: float, poll_s: float = 5.0) -> None:
    if not groups.present:
        raise LifecycleError("the inventory names no target group: nothing to register with")
    instance = _instance(node)
    groups.register(instance)
    try:
        groups.wait(instance, "healthy", timeout_s, poll_s)
    except TargetGroupError as exc:
        raise LifecycleError(f"{node.name}: registered, but not healthy: {exc}") from None


def _out_of_load_balancer(node: str, groups: TargetGroups | None) -> tuple[str, bool, str]:
    """Never "safe" unseen: without a target group to ask, the check fails (a node still in
    the ALB would lose its users' sessions when removed)."""
    what = "out of the load balancer"
    if groups is None or not groups.present:
        return (what, False, "cannot check: the inventory names no target group (for the sandbox, "
                "start it with `fmeaa sandbox --load-balancer`)")
    from botocore.exceptions import BotoCoreError, ClientError  # only AWS calls need botocore

    try:
        state = groups.in_service().get(node)
    except (BotoCoreError, ClientError) as exc:
        return (what, False, f"cannot check: reading the target group failed ({type(exc).__name__}: "
                f"{exc})")
    return (what, state is None, "not registered" if state is None else f"still {state}: drain it")


@dataclass
class ScaleInReport:
    node: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (check, ok, detail)

    @property
    def safe(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def scale_in_report(node: str, clients: dict[str, FmeClient], groups: TargetGroups | None,
                    ) -> ScaleInReport:
    """Is `node` safe to remove? Drained, no running jobs, and no schedule enabled on it alone
    (the owner of a `one`-policy schedule: removing it silently stops that schedule)."""
    report = ScaleInReport(node)
    report.checks.append(_out_of_load_balancer(node, groups))
    jobs = clients[node].running_jobs()
    report.checks.append(("no running jobs", not jobs,
                          "none" if not jobs else f"{len(jobs)} running: drain --wait-jobs"))
    enabled: dict[str, set[str]] = {}
    for name, client in clients.items():
        for s in client.schedules():
            if s.get("enabled", True):
                enabled.setdefault(f"{s['category']}/{s['name']}", set()).add(name)
    owned = sorted(k for k, where in enabled.items() if where == {node})
    report.checks.append((
        "owns no 'one' schedules", not owned,
        "none" if not owned else f"{', '.join(owned)} run only here: set `owner:` to another node "
        "in the manifest and `fmeaa sync` first"))
    return report
