"""Targets are checked before any node is contacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmeaa.cluster.credentials import CredentialsError, CredentialSource
from fmeaa.cluster.inventory import (
    Inventory,
    InventoryError,
    check_source_url,
    check_targets,
    load_inventory,
)


def inventory(*urls: str, names: list[str] | None = None, lb: str = "fme-lb-1.eu-west-1.elb.amazonaws.com"
              ) -> Inventory:
    names = names or [f"fme-{i + 1}" for i in range(len(urls))]
    return Inventory.model_validate({
        "clusterName": "prod", "loadBalancer": {"dnsName": lb, "url": f"https://{lb}"},
        "nodes": [{"name": n, "restUrl": u} for n, u in zip(names, urls, strict=True)]})


def test_pulumi_stack_output_is_an_inventory(tmp_path: Path) -> None:
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps({"clusterName": "prod", "inventoryVersion": 1, "region": "eu-west-1",
                                "imageId": "ami-1", "nodes": [{"name": "a", "restUrl": "https://10.0.1.5"}],
                                "loadBalancer": {"dnsName": "x.elb.amazonaws.com"}}))
    inv = load_inventory(path)
    assert inv.cluster_name == "prod" and inv.nodes[0].rest_url == "https://10.0.1.5"


@pytest.mark.parametrize("url", ["https://fme-lb-1.eu-west-1.elb.amazonaws.com",
                                 "https://FME-LB-1.eu-west-1.elb.amazonaws.com:443/",
                                 "https://other-lb.us-east-1.elb.amazonaws.com"])
def test_load_balancer_is_refused(url: str) -> None:
    with pytest.raises(InventoryError, match="load balancer's address") as caught:
        check_targets(inventory("https://10.0.1.5", url))
    assert "fme-2" in str(caught.value) and "directly" in str(caught.value)


def test_duplicates_are_refused() -> None:
    with pytest.raises(InventoryError, match="appears twice"):
        check_targets(inventory("https://10.0.1.5", "https://10.0.1.6", names=["a", "a"]))
    with pytest.raises(InventoryError, match="have the same URL"):
        check_targets(inventory("https://10.0.1.5", "https://10.0.1.5/"))


def test_plain_http_off_loopback_needs_explicit_permission() -> None:
    with pytest.raises(InventoryError, match="plain HTTP"):
        check_targets(inventory("http://10.0.1.5:8080"))
    assert check_targets(inventory("http://10.0.1.5:8080"), allow_http=True)
    assert check_targets(inventory("http://127.0.0.1:8080"))


def test_unreadable_inventory(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no such inventory file"):
        load_inventory(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nodes: ")
    with pytest.raises(InventoryError, match="not JSON"):
        load_inventory(tmp_path / "bad.json")


def test_credentials_from_env_never_in_repr() -> None:
    source = CredentialSource.from_env({"FMEAA_PASSWORD": "pw-xyz-secret",
                                        "FMEAA_PASSWORD_FME_2": "node2-secret"}, ["fme-1", "fme-2"])
    assert source.for_node("fme-1").password == "pw-xyz-secret"
    assert source.for_node("fme-2").password == "node2-secret"
    assert "secret" not in repr(source.for_node("fme-2"))
    with pytest.raises(CredentialsError, match="FMEAA_PASSWORD"):
        CredentialSource.from_env({}, ["fme-1"])


@pytest.mark.parametrize("url", ["http://fme-node.internal:8080", "http://localhost.evil.example",
                                 "http://127.0.0.1.nip.io", "http://[2001:db8::1]:8080",
                                 "http://10.0.1.5"])
def test_plain_http_to_any_remote_host_or_name_is_refused(url: str) -> None:
    """Only a loopback IP or the name `localhost` itself is loopback; hostnames are not."""
    with pytest.raises(InventoryError, match="plain HTTP") as caught:
        check_targets(inventory(url))
    assert "--allow-http" in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:8080",
                                 "http://[::1]:8080", "http://127.3.4.5"])
def test_plain_http_on_loopback_is_allowed(url: str) -> None:
    assert check_targets(inventory(url)).nodes[0].rest_url.startswith("http://")


def test_every_target_problem_is_listed_at_once_with_what_to_do() -> None:
    """Each refusal names the node and URL and says what to do; all of them in one error."""
    inv = Inventory.model_validate({
        "inventoryVersion": 2, "clusterName": "prod",
        "loadBalancer": {"dnsName": "LB.example.com", "url": "https://alb.example.com/x",
                         "endpointUrl": "http://10.0.0.9:5000"},
        "nodes": [{"name": "a", "restUrl": "https://LB.example.com"},
                  {"name": "a", "restUrl": "https://alb.example.com/"},
                  {"name": "c", "restUrl": "https://10.0.1.5/"},
                  {"name": "d", "restUrl": "https://10.0.1.5"},
                  {"name": "e", "restUrl": "ftp://10.0.1.7"},
                  {"name": "f", "restUrl": "https://"},
                  {"name": "g", "restUrl": "http://10.0.1.8:8080"}]})
    with pytest.raises(InventoryError) as caught:
        check_targets(inv)
    lb = ("is the load balancer's address. Updates must go to each FME Core host directly, never "
          "through the load balancer, or only one node receives them and the others drift "
          "(Safe's Active-Active rule). Use the node's own private address")
    assert str(caught.value).split("\n") == [
        "refusing the inventory:",
        "  - inventoryVersion 2 is not supported (1 is)",
        f"  - node 'a': https://LB.example.com {lb}",
        "  - node name 'a' appears twice",
        f"  - node 'a': https://alb.example.com/ {lb}",
        "  - nodes 'c' and 'd' have the same URL https://10.0.1.5: each node must be its own server",
        "  - node 'e': 'ftp://10.0.1.7' is not an http(s) URL",
        "  - node 'f': 'https://' is not an http(s) URL",
        "  - node 'g': http://10.0.1.8:8080 is plain HTTP, so credentials would cross the network "
        "unencrypted. Use https, or pass --allow-http (e.g. from inside the VPC, where the "
        "ALB-to-node hop is HTTP)",
        "  - loadBalancer.endpointUrl 'http://10.0.0.9:5000': only the sandbox's emulated load "
        "balancer (on 127.0.0.1) may override the AWS endpoint; remove the key for a real cluster"]
    with pytest.raises(InventoryError) as caught:
        check_targets(Inventory.model_validate({"nodes": []}))
    assert str(caught.value) == "refusing the inventory:\n  - the inventory lists no nodes"


def test_a_sandbox_endpoint_on_loopback_and_an_lb_without_names_are_fine() -> None:
    inv = Inventory.model_validate({"region": "local", "loadBalancer": {
        "endpointUrl": "http://127.0.0.1:5000"}, "nodes": [{"name": "a", "restUrl": "http://127.0.0.1:1"}]})
    assert check_targets(inv) is inv
    named = Inventory.model_validate({"loadBalancer": {"endpointUrl": "http://LocalHost:5000"},
                                      "nodes": [{"name": "a", "restUrl": "https://h/X"},
                                                {"name": "b", "restUrl": "https://h/"}]})
    assert check_targets(named) is named  # loopback by name; /X and / are two URLs
    assert inv.aws_region is None and inv.load_balancer.hosts() == set()
    assert Inventory.model_validate({"region": "eu-west-1", "nodes": []}).aws_region == "eu-west-1"
    with_url = Inventory.model_validate({"loadBalancer": {"url": "https://X.example.com:443/"},
                                         "nodes": []})
    assert with_url.load_balancer.hosts() == {"x.example.com"}
    assert Inventory.model_validate({"loadBalancer": {"url": "/relative"},
                                     "nodes": []}).load_balancer.hosts() == set()


def test_choosing_nodes_by_name() -> None:
    inv = inventory("https://10.0.1.5", "https://10.0.1.6", "https://10.0.1.7")
    assert [n.name for n in inv.only(["fme-3", "fme-1"]).nodes] == ["fme-3", "fme-1"]
    assert inv.only(["fme-2"]).cluster_name == "prod" and len(inv.nodes) == 3
    assert inv.node("fme-2").rest_url == "https://10.0.1.6"
    with pytest.raises(InventoryError) as caught:
        inv.only(["fme-9"])
    assert str(caught.value) == "no node named 'fme-9' in the inventory (nodes: fme-1, fme-2, fme-3)"


def test_an_inventory_file_in_every_shape_and_every_way_it_can_be_wrong(tmp_path: Path) -> None:
    wrapped = tmp_path / "wrapped.json"  # `pulumi stack output --json` of a stack exporting it
    wrapped.write_text(json.dumps({"inventory": {"nodes": [{"name": "a", "restUrl": "https://h"}]},
                                   "other": 1}))
    assert load_inventory(wrapped).nodes[0].name == "a"
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "missing.json")
    assert str(caught.value) == (f"{tmp_path / 'missing.json'}: no such inventory file (write it "
                                 "with `pulumi stack output --json > nodes.json`)")
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path)
    assert str(caught.value) == (f"{tmp_path}: is a directory; --inventory takes the JSON file "
                                 "(e.g. nodes.json)")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InventoryError) as caught:
        load_inventory(binary)
    assert str(caught.value) == f"{binary}: cannot read the inventory file (UnicodeDecodeError)"
    bad = tmp_path / "bad.json"
    bad.write_text('{"nodes": [}\n')
    with pytest.raises(InventoryError) as caught:
        load_inventory(bad)
    assert str(caught.value) == f"{bad}: not JSON (line 1: Expecting value)"
    too_long = tmp_path / ("x" * 300 + ".json")
    with pytest.raises(InventoryError) as caught:
        load_inventory(too_long)
    assert str(caught.value) == f"{too_long}: cannot read the inventory file (File name too long)"
    both = tmp_path / "both.json"  # a document with its own nodes is not unwrapped
    both.write_text(json.dumps({"inventory": {"nodes": []},
                                "nodes": [{"name": "top", "restUrl": "https://h"}]}))
    assert [n.name for n in load_inventory(both).nodes] == ["top"]
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(InventoryError) as caught:
        load_inventory(empty)
    assert str(caught.value) == f"{empty}: not a node inventory (nodes: Field required)"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"nodes": [{"name": ""}], "inventoryVersion": "x"}))
    with pytest.raises(InventoryError) as caught:
        load_inventory(wrong)
    assert str(caught.value) == (
        f"{wrong}: not a node inventory (inventoryVersion: Input should be a valid integer, "
        "unable to parse string as an integer; nodes.0.name: String should have at least 1 "
        "character; nodes.0.restUrl: Field required)")


def test_a_source_server_url_is_checked_by_the_nodes_rules_and_never_a_node() -> None:
    """`--source url:…`: the old server's own address, over https (or http with --allow-http,
    or on loopback), never the load balancer, never one of the cluster's nodes, never with
    credentials in it (and those are not echoed)."""
    cluster = inventory("https://10.0.1.5", "https://10.0.1.6")
    assert check_source_url("https://fme-old.corp/", cluster) == "https://fme-old.corp"
    assert check_source_url("https://fme-old.corp", None) == "https://fme-old.corp"
    assert check_source_url("http://fme-old.corp", cluster, allow_http=True) == "http://fme-old.corp"
    assert check_source_url("http://127.0.0.1:8080/", None) == "http://127.0.0.1:8080"
    assert check_source_url("https://old-fmeX/", None) == "https://old-fmeX"  # only '/' goes
    with pytest.raises(InventoryError) as caught:
        check_source_url("https://admin:hunter2@fme-old.corp", cluster)
    assert str(caught.value) == (
        "refusing the source server: its URL carries credentials (user:password@); give them "
        "with --source-secret-id or $FMEAA_SOURCE_PASSWORD")
    with pytest.raises(InventoryError, match="load balancer's address"):  # the cluster's own,
        check_source_url("https://fme.corp.example/", inventory(lb="fme.corp.example"))  # by name
    with pytest.raises(InventoryError, match="is node 'fme-1'"):  # however either URL ends
        check_source_url("https://10.0.1.5", inventory("https://10.0.1.5/"))
    with pytest.raises(InventoryError, match="is node 'fme-1'"):  # only '/' is stripped
        check_source_url("https://fme-X", inventory("https://fme-X"))
    with pytest.raises(InventoryError) as caught:
        check_source_url("http://fme-lb-1.eu-west-1.elb.amazonaws.com/", cluster)
    lines = str(caught.value).splitlines()
    assert lines[0] == "refusing the source server:"
    assert lines[1].startswith("  - --source: http://fme-lb-1.eu-west-1.elb.amazonaws.com/ is "
                               "the load balancer's address. Content is read from one FME server")
    assert lines[2].startswith("  - --source: http://fme-lb-1.eu-west-1.elb.amazonaws.com/ is "
                               "plain HTTP") and len(lines) == 3
    with pytest.raises(InventoryError, match="load balancer"):
        check_source_url("https://other-lb.us-east-1.elb.amazonaws.com", None)
    with pytest.raises(InventoryError) as caught:
        check_source_url("HTTPS://10.0.1.6/", cluster)
    assert str(caught.value).endswith(
        "  - --source: HTTPS://10.0.1.6/ is node 'fme-2' of the cluster; use node:fme-2 for a "
        "reference node")
    with pytest.raises(InventoryError, match="is not an http"):
        check_source_url("ftp://fme-old.corp", cluster)
