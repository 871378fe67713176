"""The load balancer's view of the nodes (boto3 ELBv2): registration, health, drain, undrain."""

from __future__ import annotations

import time
from typing import Any

from fmeaa.cluster.inventory import Inventory


class TargetGroupError(RuntimeError):
    """A registration change could not be made or did not settle in time."""


class TargetGroups:
    """The cluster's web (and websocket) target groups, through ONE ELBv2 client for the life
    of the object (one per command run: a rolling run polls target health hundreds of times)."""

    def __init__(self, inventory: Inventory, session: Any = None) -> None:
        lb = inventory.load_balancer
        self.arns = [a for a in (lb.target_group_arn, lb.websocket_target_group_arn) if a]
        self.inventory = inventory
        self._session = session
        self._elbv2: Any = None

    @property
    def present(self) -> bool:
        return bool(self.arns)

    @property
    def region(self) -> str | None:
        """A target group's ARN names its region (arn:aws:elasticloadbalancing:REGION:…): the
        one region its API answers in, whatever the inventory's `region` says."""
        if self.arns and self.arns[0].count(":") >= 5:
            return self.arns[0].split(":")[3] or self.inventory.aws_region
        return self.inventory.aws_region

    def _client(self) -> Any:
        if self._elbv2 is None:
            from fmeaa.cluster.aws_session import aws_session

            options: dict[str, str] = {}
            if self.inventory.load_balancer.endpoint_url:  # the sandbox's emulated ELBv2 only
                # (check_targets admits loopback endpoints only); any key is accepted there.
                options = {"endpoint_url": self.inventory.load_balancer.endpoint_url,
                           "aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
            session = self._session or aws_session(self.region)
            self._elbv2 = session.client("elbv2", region_name=self.region, **options)
        return self._elbv2

    def states(self, arn: str | None = None) -> dict[str, str]:
        """instance id → state in the web target group (or `arn`); unregistered ids are absent."""
        if not self.arns:
            return {}
        described = self._client().describe_target_health(
            TargetGroupArn=arn or self.arns[0])["TargetHealthDescriptions"]
        return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in described}

    def in_service(self) -> dict[str, str]:
        """Nodes (by name) registered in the web target group, with their state."""
        states = self.states()
        return {n.name: states[n.instance_id] for n in self.inventory.nodes
                if n.instance_id in states}

    def deregister(self, instance_id: str) -> None:
        """Idempotent: groups the target has already left are skipped (a re-run after an
        interrupted drain must not fail)."""
        client = self._client()
        for arn in self.arns:
            if instance_id in self.states(arn):
                client.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])

    def register(self, instance_id: str) -> None:
        client = self._client()
        for arn in self.arns:
            client.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])

    def wait(self, instance_id: str, want: str, timeout_s: float, poll_s: float = 5.0) -> None:
        """Until the target is gone from every group (`want="gone"`, i.e. deregistration and
        connection draining finished) or healthy in every group (`want="healthy"`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            current = {arn: self.states(arn).get(instance_id) for arn in self.arns}
            if want == "gone" and all(s in (None, "unused") for s in current.values()):
                return
            if want == "healthy" and all(s == "healthy" for s in current.values()):
                return
            if time.monotonic() >= deadline:
                shown = ", ".join(f"{arn.rsplit('/', 2)[-2]}: {s or 'not registered'}"
                                  for arn, s in current.items())
                raise TargetGroupError(f"{instance_id} is not {want} after {timeout_s:.0f} s "
                                       f"({shown})")
            time.sleep(poll_s)


def target_states(inventory: Inventory, session: Any = None) -> dict[str, str]:
    """instance id → state in the web target group; empty without a target group (sandbox)."""
    return TargetGroups(inventory, session).states()
