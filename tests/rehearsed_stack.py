"""A Pulumi stack rehearsed on this machine, for `fmeaa upgrade`: each `up` evaluates the real
program under Pulumi's mocks, replays the engine's steps (`components.deployment_model`) in
order and applies them to emulated FME nodes (the sandbox) and to moto's EC2 and target groups.

The stand-in plays AWS's part honestly where the upgrade depends on it: an EBS volume attaches
to one instance at a time, a replaced instance comes back at a new address with its share and
database (the emulated node's state), a new node starts empty, and a target-group attachment is
created only after the node's NodeSeed ran (the real provider code, `NodeSeedProvider`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import boto3

from components.deployment_model import (
    INSTANCE,
    NODE_SEED,
    TARGET_ATTACHMENT,
    VOLUME_ATTACHMENT,
    Key,
    UpPlan,
    first_deployment,
    plan_up,
)
from components.node_seed import NodeSeedProvider
from fmeaa.emulator import Sandbox
from tests.aws_server import REGION
from tests.program_runs import run_program

LB_DNS = "fme-aa-alb-123.eu-west-1.elb.amazonaws.com"


@dataclass
class Up:
    config: dict[str, Any]
    plan: UpPlan
    serving: list[int]  # nodes healthy in the web target group before and after each step


class RehearsedStack:
    name = "rehearsal"

    def __init__(self, config: dict[str, Any], box: Sandbox, made: dict[str, Any]) -> None:
        self.values = copy.deepcopy(config)
        self.state = first_deployment(run_program(self.values))
        self.box = box
        self.instances: dict[str, str] = {n.name: made["ids"][n.name] for n in box.nodes}
        self.groups = {"web": made["web"], "ws": made["ws"]}
        self.volume_on: dict[str, str | None] = dict(self.instances)  # node's share → instance
        self.seeded: set[str] = set(self.instances.values())
        self.targets = {f"{n}-{g}-target": i for n, i in self.instances.items() for g in self.groups}
        self.ups: list[Up] = []
        self.elbv2 = boto3.client("elbv2", region_name=REGION)
        self.ec2 = boto3.client("ec2", region_name=REGION)

    # --- the StackRunner protocol ---------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return copy.deepcopy(self.values)

    def set_config(self, key: str, value: Any) -> None:
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = copy.deepcopy(value)

    def up(self) -> dict[str, Any]:
        run = run_program(self.values)
        plan = plan_up(self.state, run)
        inputs = {(r.type, r.name): r.inputs for r in run.resources}
        serving = [self.serving()]
        for verb, key in plan.steps:
            self._apply(verb, key, inputs, plan)
            serving.append(self.serving())
        self.state = plan.state
        self.ups.append(Up(copy.deepcopy(self.values), plan, serving))
        return self.outputs()

    # --- AWS's part ----------------------------------------------------------------------------
    def serving(self) -> int:
        described = self.elbv2.describe_target_health(
            TargetGroupArn=self.groups["web"])["TargetHealthDescriptions"]
        return sum(1 for d in described if d["TargetHealth"]["State"] == "healthy")

    def _apply(self, verb: str, key: Key, inputs: dict[Key, dict[str, Any]], plan: UpPlan) -> None:
        kind, name = key
        if kind == INSTANCE:
            self._instance(verb, name, removed=plan.decisions[key] == "delete")
        elif kind == VOLUME_ATTACHMENT:
            node = name.removesuffix("-share-attachment")
            if verb == "delete":
                self.volume_on[node] = None
            elif verb == "create":
                assert self.volume_on.get(node) is None, (
                    f"{node}'s share volume is still attached to {self.volume_on[node]}")
                self.volume_on[node] = self.instances[node]
        elif kind == NODE_SEED and verb in ("create", "update"):
            node = name.removesuffix("-seed")
            props = {k: v for k, v in inputs[key].items() if not k.startswith("__")}
            props.update(instance_id=self.instances[node], rest_url=self.box.node(node).url)
            NodeSeedProvider().create(props)  # what the dynamic provider runs in `pulumi up`
            self.seeded.add(self.instances[node])
        elif kind == TARGET_ATTACHMENT:
            node, group, _ = name.rsplit("-", 2)
            if verb == "create":
                instance = self.targets[name] = self.instances[node]
                assert instance in self.seeded, f"{node} registered before it was seeded"
                self.elbv2.register_targets(TargetGroupArn=self.groups[group],
                                            Targets=[{"Id": instance}])
            elif verb == "delete":  # the attachment's own target (a replaced one: the old id);
                instance = self.targets.pop(name)  # already drained is fine, as for the provider
                described = self.elbv2.describe_target_health(
                    TargetGroupArn=self.groups[group])["TargetHealthDescriptions"]
                if instance in {d["Target"]["Id"] for d in described}:
                    self.elbv2.deregister_targets(TargetGroupArn=self.groups[group],
                                                  Targets=[{"Id": instance}])

    def _instance(self, verb: str, node: str, removed: bool) -> None:
        if verb == "delete":
            assert not self.volume_on.get(node), f"{node} terminated with its share attached"
            self.ec2.terminate_instances(InstanceIds=[self.instances[node]])
            self.box.node(node).stop()
            if removed:
                self.box.nodes.remove(self.box.node(node))
                del self.instances[node]
        elif verb == "create":
            self.instances[node] = self.ec2.run_instances(
                ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
            if any(n.name == node for n in self.box.nodes):  # replaced: same share and database,
                emulated = self.box.node(node)  # a new address
                emulated.port = 0
                emulated.start()
            else:
                self.box.add_node(node)  # a new node: empty share and database
        elif verb == "update":  # stop/start (instance type, root volume): same address
            self.box.node(node).stop()
            self.box.node(node).start()

    def outputs(self) -> dict[str, Any]:
        """What `pulumi stack output --json` gives: the inventory, per node as the state holds
        its instance."""
        nodes = []
        for entry in self.values.get("nodes") or [f"fme-{i}" for i in
                                                  range(1, int(self.values["nodeCount"]) + 1)]:
            name = entry if isinstance(entry, str) else entry["name"]
            instance = self.state.resources[(INSTANCE, name)].inputs
            nodes.append({"name": name, "instanceId": self.instances[name],
                          "privateIp": "127.0.0.1", "restUrl": self.box.node(name).url,
                          "imageId": instance["ami"], "instanceType": instance["instanceType"],
                          "shareKind": "ebs"})
        return {"inventoryVersion": 1, "clusterName": self.values.get("clusterName", "fme-aa"),
                "region": REGION, "fmeGeneration": "flow",
                "imageId": self.values["ami"]["id"],
                "loadBalancer": {"dnsName": LB_DNS, "url": f"http://{LB_DNS}",
                                 "targetGroupArn": self.groups["web"],
                                 "websocketTargetGroupArn": self.groups["ws"]},
                "nodes": nodes}
