"""moto in server mode on 127.0.0.1: a real AWS-shaped HTTP endpoint for boto3 (no AWS account)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """boto3 pointed at the moto server with throwaway credentials; state reset per test."""
    httpx.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    for key, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
                       "AWS_REGION": REGION, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield moto_endpoint


def make_cluster(name: str, nodes: list[str], other_cluster: bool = True,
                 registered: list[str] | None = None) -> dict:
    """A VPC, instances tagged as the cluster's nodes, its ALB and target groups (moto).
    `registered` nodes (default: all but the last) are targets of both groups."""
    ec2 = boto3.client("ec2", region_name=REGION)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]

    def tags(**kv: str) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in kv.items()]

    ids = {}
    for node in nodes + (["stranger"] if other_cluster else []):
        cluster = name if node != "stranger" else "other"
        instance = ec2.run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="m6i.xlarge",
            SubnetId=subnets[0],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "fme-aa:cluster", "Value": cluster}, {"Key": "fme-aa:node", "Value": node},
                {"Key": "fme-aa:role", "Value": "fme-node"},
                {"Key": "fme-aa:web-port", "Value": "8080"}]}])["Instances"][0]
        ids[node] = instance["InstanceId"]
    lb = elbv2.create_load_balancer(Name=f"{name}-alb", Subnets=subnets, Scheme="internet-facing",
                                    Type="application",
                                    Tags=tags(**{"fme-aa:cluster": name, "Name": f"{name}-alb"})
                                    )["LoadBalancers"][0]
    web = elbv2.create_target_group(Name=f"{name}-web", Protocol="HTTP", Port=8080, VpcId=vpc,
                                    TargetType="instance",
                                    Tags=tags(**{"fme-aa:cluster": name, "Name": f"{name}-web"})
                                    )["TargetGroups"][0]
    ws = elbv2.create_target_group(Name=f"{name}-ws", Protocol="HTTP", Port=7078, VpcId=vpc,
                                   TargetType="instance",
                                   Tags=tags(**{"fme-aa:cluster": name, "Name": f"{name}-ws"})
                                   )["TargetGroups"][0]
    chosen = nodes[:-1] if registered is None else registered
    if chosen:
        for group in (web, ws):
            elbv2.register_targets(TargetGroupArn=group["TargetGroupArn"],
                                   Targets=[{"Id": ids[n]} for n in chosen])
    return {"ids": ids, "lb": lb, "web": web["TargetGroupArn"], "ws": ws["TargetGroupArn"]}


def sandbox_inventory(box: object, made: dict, path: object) -> object:
    """A sandbox's inventory wired to a moto cluster's instances and target groups."""
    import json

    doc = box.inventory()  # type: ignore[attr-defined]
    doc["region"] = REGION
    doc["loadBalancer"]["targetGroupArn"] = made["web"]
    doc["loadBalancer"]["websocketTargetGroupArn"] = made["ws"]
    for node in doc["nodes"]:
        node["instanceId"] = made["ids"][node["name"]]
    path.write_text(json.dumps(doc))  # type: ignore[attr-defined]
    return path
