"""Targets are checked before any node is contacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmeaa.cluster.credentials import CredentialsError, CredentialSource
from fmeaa.cluster.inventory import Inventory, InventoryError, check_targets, load_inventory


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
