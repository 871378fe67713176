"""EC2-tag discovery, target-group state and Secrets Manager credentials, against moto in
server mode (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from fmeaa.cluster.inventory import discover_inventory
from fmeaa.cluster.target_group import target_states
from fmeaa.emulator import Sandbox
from tests.aws_server import REGION, make_cluster
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa, node_items


def test_discovery_by_ec2_tags(aws: str) -> None:
    made = make_cluster("prod", ["fme-1", "fme-2", "fme-3"])
    inventory = discover_inventory("prod", REGION)
    assert [n.name for n in inventory.nodes] == ["fme-1", "fme-2", "fme-3"]  # not "stranger"
    assert all(n.rest_url.startswith("http://10.0.1.") and n.rest_url.endswith(":8080")
               for n in inventory.nodes)
    assert inventory.nodes[0].instance_id == made["ids"]["fme-1"]
    assert inventory.load_balancer.dns_name == made["lb"]["DNSName"]
    assert inventory.load_balancer.target_group_arn == made["web"]
    assert inventory.load_balancer.websocket_target_group_arn == made["ws"]
    states = target_states(inventory)
    assert states == {made["ids"]["fme-1"]: "healthy", made["ids"]["fme-2"]: "healthy"}


def test_discovery_of_an_unknown_cluster_says_what_it_looked_for(aws: str) -> None:
    make_cluster("prod", ["fme-1"], other_cluster=False)
    result = fmeaa("nodes", "--cluster", "nope", "--region", REGION)
    assert result.code == 1 and "fme-aa:cluster=nope" in result.err


def test_sync_with_secrets_manager_credentials_and_lb_state(aws: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FMEAA_PASSWORD", raising=False)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    made = make_cluster("sandbox", ["fme-1", "fme-2", "fme-3"], other_cluster=False)
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="fme-aa/sandbox/admin",
        SecretString=json.dumps({"username": "admin", "password": TEST_PASSWORD}))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        doc = box.inventory()
        doc["region"] = REGION
        doc["loadBalancer"]["targetGroupArn"] = made["web"]
        for node in doc["nodes"]:
            node["instanceId"] = made["ids"][node["name"]]
        inv = tmp_path / "nodes.json"
        inv.write_text(json.dumps(doc))
        content = copy_example(tmp_path / "content")
        result = fmeaa("sync", "-s", content, "-i", inv, "--secret-id", "fme-aa/sandbox/admin",
                       "--json")
        assert result.code == 0, result.out + result.err
        assert all(len(node_items(box, n.name)) == 5 for n in box.nodes)
        nodes = fmeaa("nodes", "-i", inv, "--secret-id", "fme-aa/sandbox/admin", "--json")
        rows = {r["name"]: r for r in nodes.json["nodes"]}
        assert rows["fme-1"]["inLoadBalancer"] == "healthy"
        assert rows["fme-3"]["inLoadBalancer"] == "not registered"
        assert rows["fme-1"]["licensed"] is True
        missing = fmeaa("sync", "-s", content, "-i", inv, "--secret-id", "no/such/secret")
        assert missing.code == 1 and "cannot read secret 'no/such/secret'" in missing.err
        assert TEST_PASSWORD not in result.out + nodes.out + missing.err


def test_discovery_reads_every_tag_page_and_takes_only_what_is_tagged(
        aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The region comes from the caller, not the environment; an instance without a node tag is
    skipped (not the ones after it); the web port defaults to 8080; target groups are matched by
    their tags across more than one DescribeTags page (at most 20 ARNs each)."""
    made = make_cluster("prod", ["fme-1", "fme-2"], other_cluster=False)
    ec2 = boto3.client("ec2", region_name=REGION)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    vpc = ec2.describe_vpcs()["Vpcs"][-1]["VpcId"]
    for i in range(45):  # more ARNs than two pages: ours are last
        elbv2.create_target_group(Name=f"noise-{i}", Protocol="HTTP", Port=80, VpcId=vpc)
    elbv2.create_target_group(Name="prod-unnamed", Protocol="HTTP", Port=80, VpcId=vpc,
                              Tags=[{"Key": "fme-aa:cluster", "Value": "prod"}])  # no Name tag
    tagged = [{"Key": "fme-aa:cluster", "Value": "prod"}, {"Key": "fme-aa:role", "Value": "fme-node"}]
    untagged = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": tagged}])["Instances"][0]  # no node tag: skipped
    later = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [*tagged, {"Key": "fme-aa:node", "Value": "fme-0"}]}]
    )["Instances"][0]  # no web-port tag: 8080
    pair = ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2, TagSpecifications=[
        {"ResourceType": "instance", "Tags": tagged}])["Instances"]  # one reservation
    ec2.create_tags(Resources=[pair[1]["InstanceId"]], Tags=[{"Key": "fme-aa:node",
                                                               "Value": "fme-9"}])
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    session = boto3.session.Session()
    pages: list[int] = []

    def at_most_20(params: dict, **_: object) -> None:  # AWS's limit (moto does not enforce it)
        pages.append(len(params["ResourceArns"]))
        assert len(params["ResourceArns"]) <= 20, "DescribeTags takes at most 20 ARNs"
    session.events.register("provide-client-params.elastic-load-balancing-v2.DescribeTags",
                            at_most_20)
    inventory = discover_inventory("prod", REGION, session=session)
    assert len(pages) == 3 and sum(pages) == 1 + 2 + 45 + 1  # the ALB and every group, once
    assert (inventory.cluster_name, inventory.region) == ("prod", REGION)
    assert [n.name for n in inventory.nodes] == ["fme-0", "fme-1", "fme-2", "fme-9"]
    found = {n.instance_id for n in inventory.nodes}
    assert untagged["InstanceId"] not in found and pair[0]["InstanceId"] not in found
    first = inventory.nodes[0]
    assert (first.instance_id, first.private_ip) == (later["InstanceId"], later["PrivateIpAddress"])
    assert first.rest_url == f"http://{later['PrivateIpAddress']}:8080"
    lb = inventory.load_balancer
    assert (lb.dns_name, lb.url) == (made["lb"]["DNSName"], f"https://{made['lb']['DNSName']}")
    assert (lb.target_group_arn, lb.websocket_target_group_arn) == (made["web"], made["ws"])


def test_a_cluster_without_a_load_balancer_has_none_in_its_inventory(aws: str) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [
            {"Key": "fme-aa:cluster", "Value": "lonely"}, {"Key": "fme-aa:role", "Value": "fme-node"},
            {"Key": "fme-aa:node", "Value": "fme-1"}, {"Key": "fme-aa:web-port", "Value": "9090"}]}])
    make_cluster("prod", ["fme-1"], other_cluster=False)  # another cluster's balancer and groups
    inventory = discover_inventory("lonely", REGION)
    assert inventory.nodes[0].rest_url.endswith(":9090")
    assert inventory.load_balancer.model_dump() == {
        "dns_name": None, "url": None, "target_group_arn": None,
        "websocket_target_group_arn": None, "endpoint_url": None}
