"""The load balancer's view of each node (boto3 ELBv2): is it registered, and healthy?"""

from __future__ import annotations

from typing import Any

from fmeaa.inventory import Inventory


def target_states(inventory: Inventory, session: Any = None) -> dict[str, str]:
    """instance id → target state ("healthy", "draining", "unused", …) in the web target group;
    an instance that is not registered is absent. Empty when the inventory has no target group
    (the sandbox)."""
    arn = inventory.load_balancer.target_group_arn
    if not arn:
        return {}
    import boto3

    session = session or boto3.session.Session(region_name=inventory.region)
    elbv2 = session.client("elbv2", region_name=inventory.region)
    described = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in described}
