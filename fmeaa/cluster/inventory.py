"""The nodes a sync targets: from the Pulumi stack outputs, from EC2 tags, or from the sandbox.

Every target is checked before any node is contacted: names and URLs unique, and no URL that
points at the load balancer. Safe's Active-Active rule is that updates go to each Core host
directly; through the LB, an update lands on one node only and the others drift.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

# The tags the Pulumi components put on every resource (plain constants; no Pulumi import).
from fmeaa.cluster.tags import CLUSTER_TAG, NODE_ROLE, NODE_TAG, ROLE_TAG, WEB_PORT_TAG

ELB_SUFFIXES = (".elb.amazonaws.com", ".elb.amazonaws.com.cn")


class InventoryError(ValueError):
    """The inventory is unusable (unreadable, inconsistent, or targets the load balancer)."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore",
                              defer_build=True)  # built when first used: start-up time


class NodeTarget(_Model):
    name: str = Field(min_length=1)
    rest_url: str = Field(min_length=1)
    instance_id: str | None = None
    private_ip: str | None = None

    @property
    def host(self) -> str:
        return (urllib.parse.urlsplit(self.rest_url).hostname or "").lower()


class LoadBalancerInfo(_Model):
    dns_name: str | None = None
    url: str | None = None
    target_group_arn: str | None = None
    websocket_target_group_arn: str | None = None
    # Only `fmeaa sandbox --load-balancer`: its emulated ELBv2 API (a moto server on loopback).
    endpoint_url: str | None = None

    def hosts(self) -> set[str]:
        found = {self.dns_name.lower()} if self.dns_name else set()
        if self.url:
            found.add((urllib.parse.urlsplit(self.url).hostname or "").lower())
        return found - {""}


class LicenseInfo(_Model):
    """The stack's `license` settings (`pulumi up` exports them; older inventories lack them)."""

    mode: Literal["marketplace", "byol"] = "marketplace"
    serial_secret_id: str | None = None  # Secrets Manager id of the BYOL serial, never the serial


class Inventory(_Model):
    inventory_version: int = 1
    cluster_name: str = "cluster"
    region: str | None = None
    load_balancer: LoadBalancerInfo = Field(default_factory=LoadBalancerInfo)
    license: LicenseInfo | None = None
    nodes: list[NodeTarget]

    @property
    def aws_region(self) -> str | None:
        """The region for AWS calls; None for the sandbox, whose region is "local"."""
        return None if self.region == "local" else self.region

    def node(self, name: str) -> NodeTarget:
        for n in self.nodes:
            if n.name == name:
                return n
        raise InventoryError(f"no node named {name!r} in the inventory "
                             f"(nodes: {', '.join(n.name for n in self.nodes)})")

    def only(self, names: Sequence[str]) -> Inventory:
        """The same inventory restricted to `names` (each must exist)."""
        chosen = [self.node(name) for name in names]
        return self.model_copy(update={"nodes": chosen})


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


NODE_BEHIND_LB = ("Updates must go to each FME Core host directly, never through the load "
                  "balancer, or only one node receives them and the others drift (Safe's "
                  "Active-Active rule). Use the node's own private address")
SOURCE_BEHIND_LB = ("Content is read from one FME server directly: through a load balancer each "
                    "request may reach another server. Use the server's own address")


def _url_problems(what: str, url: str, lb_hosts: set[str], allow_http: bool,
                  behind_lb: str = NODE_BEHIND_LB) -> list[str]:
    """Why fmeaa must not send credentials and updates to `url` (none: it may)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{what}: {url!r} is not an http(s) URL"]
    problems = []
    host = parts.hostname.lower()
    if host in lb_hosts or host.endswith(ELB_SUFFIXES):
        problems.append(
            f"{what}: {url} is the load balancer's address. {behind_lb}")
    if parts.scheme == "http" and not allow_http and not _is_loopback(host):
        problems.append(
            f"{what}: {url} is plain HTTP, so credentials would cross the network unencrypted. "
            "Use https, or pass --allow-http (e.g. from inside the VPC, where the ALB-to-node "
            "hop is HTTP)")
    return problems


def check_targets(inventory: Inventory, allow_http: bool = False) -> Inventory:
    """Refuse duplicates, load-balancer addresses and credential-carrying plain HTTP."""
    problems: list[str] = []
    if inventory.inventory_version != 1:
        problems.append(f"inventoryVersion {inventory.inventory_version} is not supported (1 is)")
    if not inventory.nodes:
        problems.append("the inventory lists no nodes")
    seen_names: set[str] = set()
    seen_urls: dict[str, str] = {}
    lb_hosts = inventory.load_balancer.hosts()
    for node in inventory.nodes:
        url = node.rest_url.rstrip("/").lower()
        if node.name in seen_names:
            problems.append(f"node name {node.name!r} appears twice")
        seen_names.add(node.name)
        if url in seen_urls:
            problems.append(f"nodes {seen_urls[url]!r} and {node.name!r} have the same URL {url}: "
                            "each node must be its own server")
        seen_urls[url] = node.name
        problems += _url_problems(f"node {node.name!r}", node.rest_url, lb_hosts, allow_http)
    endpoint = inventory.load_balancer.endpoint_url
    if endpoint and not _is_loopback((urllib.parse.urlsplit(endpoint).hostname or "").lower()):
        problems.append(
            f"loadBalancer.endpointUrl {endpoint!r}: only the sandbox's emulated load balancer "
            "(on 127.0.0.1) may override the AWS endpoint; remove the key for a real cluster")
    if problems:
        raise InventoryError("refusing the inventory:\n" + "\n".join(f"  - {p}" for p in problems))
    return inventory


def check_source_url(url: str, inventory: Inventory | None, allow_http: bool = False) -> str:
    """The URL of a server content is read from (`--source url:…`), checked by the nodes' rules
    (not the load balancer — the cluster's nor any `*.elb.amazonaws.com` —, no plain HTTP off
    loopback without --allow-http) and refused when it is one of the cluster's nodes (that is
    `node:NAME`: a url: source is never counted as a node) or carries credentials."""
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:  # never echoed: it may hold a password
        raise InventoryError("refusing the source server: its URL carries credentials "
                             "(user:password@); give them with --source-secret-id or "
                             "$FMEAA_SOURCE_PASSWORD")
    lb_hosts = inventory.load_balancer.hosts() if inventory is not None else set()
    problems = _url_problems("--source", url, lb_hosts, allow_http, SOURCE_BEHIND_LB)
    for node in inventory.nodes if inventory is not None else []:
        if node.rest_url.rstrip("/").lower() == url.rstrip("/").lower():
            problems.append(f"--source: {url} is node {node.name!r} of the cluster; use "
                            f"node:{node.name} for a reference node")
    if problems:
        raise InventoryError("refusing the source server:\n" +
                             "\n".join(f"  - {p}" for p in problems))
    return url.rstrip("/")


def load_inventory(path: Path) -> Inventory:
    """The JSON of `pulumi stack output --json` (or of `fmeaa sandbox`)."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InventoryError(f"{path}: no such inventory file (write it with "
                             "`pulumi stack output --json > nodes.json`)") from None
    except IsADirectoryError:
        raise InventoryError(f"{path}: is a directory; --inventory takes the JSON file "
                             "(e.g. nodes.json)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path}: cannot read the inventory file "
                             f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(raw, dict) and "inventory" in raw and "nodes" not in raw:
        raw = raw["inventory"]
    try:
        return Inventory.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InventoryError(f"{path}: not a node inventory ({details})") from None


def discover_inventory(cluster: str, region: str, session: Any = None) -> Inventory:
    """Running instances tagged as nodes of `cluster`, and the cluster's load balancer and
    target groups, found by their tags (boto3; honours AWS_ENDPOINT_URL)."""
    from fmeaa.cluster.aws_session import aws_session  # only discovery needs AWS

    session = session or aws_session()  # each client is given the region
    ec2 = session.client("ec2", region_name=region)
    nodes: list[NodeTarget] = []
    paginator = ec2.get_paginator("describe_instances")
    filters = [{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]},
               {"Name": f"tag:{ROLE_TAG}", "Values": [NODE_ROLE]},
               {"Name": "instance-state-name", "Values": ["running"]}]
    for page in paginator.paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                ip = instance.get("PrivateIpAddress")
                if not ip or NODE_TAG not in tags:
                    continue
                port = tags.get(WEB_PORT_TAG, "8080")
                nodes.append(NodeTarget(name=tags[NODE_TAG], rest_url=f"http://{ip}:{port}",
                                        instance_id=instance["InstanceId"], private_ip=ip))
    if not nodes:
        raise InventoryError(f"no running instances tagged {CLUSTER_TAG}={cluster} and "
                             f"{ROLE_TAG}={NODE_ROLE} in {region}")
    return Inventory(cluster_name=cluster, region=region, nodes=sorted(nodes, key=lambda n: n.name),
                     load_balancer=_discover_load_balancer(session, cluster, region))


def _discover_load_balancer(session: Any, cluster: str, region: str) -> LoadBalancerInfo:
    elbv2 = session.client("elbv2", region_name=region)
    balancers = elbv2.describe_load_balancers().get("LoadBalancers", [])
    target_groups = elbv2.describe_target_groups().get("TargetGroups", [])
    arns = [b["LoadBalancerArn"] for b in balancers] + [g["TargetGroupArn"] for g in target_groups]
    tagged: dict[str, dict[str, str]] = {}
    for start in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs
        for d in elbv2.describe_tags(ResourceArns=arns[start:start + 20])["TagDescriptions"]:
            tagged[d["ResourceArn"]] = {t["Key"]: t["Value"] for t in d.get("Tags", [])}
    mine = [b for b in balancers if tagged.get(b["LoadBalancerArn"], {}).get(CLUSTER_TAG) == cluster]
    groups = [g for g in target_groups
              if tagged.get(g["TargetGroupArn"], {}).get(CLUSTER_TAG) == cluster]
    # components/load_balancer.py names them "<cluster>-web" and "<cluster>-ws".
    web = next((g for g in groups
                if tagged[g["TargetGroupArn"]].get("Name", "").endswith("-web")), None)
    ws = next((g for g in groups
               if tagged[g["TargetGroupArn"]].get("Name", "").endswith("-ws")), None)
    dns = mine[0]["DNSName"] if mine else None
    return LoadBalancerInfo(dns_name=dns, url=f"https://{dns}" if dns else None,
                            target_group_arn=web["TargetGroupArn"] if web else None,
                            websocket_target_group_arn=ws["TargetGroupArn"] if ws else None)
