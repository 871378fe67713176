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
