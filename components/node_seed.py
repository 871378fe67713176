"""NodeSeed: a Pulumi dynamic resource per node that makes `pulumi up` seed before serve.

Create (and update, when the content digest or the node changes): wait for the node's FME
health check, request its licence (BYOL), sync the cluster's content to it with the fmeaa engine
and prove parity. Its `instance_id` output only resolves after that, and the node's target-group
attachments take their target id from it, so the ALB cannot route to a node that is not seeded.

Its inputs carry no secret: only Secrets Manager ids. The provider runs where `pulumi up` runs,
which must reach the node's REST URL (see README, "Seed before serve").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

# A change to any of these re-seeds the node; the rest is informational.
RESEED_ON = ("content_digest", "rest_url", "instance_id", "source", "reference_url",
             "license_mode", "serial_secret_id", "credentials_secret_id")


def _seed(props: dict[str, Any]) -> dict[str, Any]:
    from fmeaa.app.seed import SeedRequest, seed_node  # imported where the provider runs

    report = seed_node(SeedRequest(
        node=props["node"], rest_url=props["rest_url"], default_owner=props["default_owner"],
        source=props["source"], reference_url=props.get("reference_url"),
        source_secret_id=props.get("source_credentials_secret_id"),
        credentials_secret_id=props["credentials_secret_id"], region=props.get("region"),
        license_mode=props["license_mode"], serial_secret_id=props.get("serial_secret_id"),
        allow_http=bool(props["allow_http"]), timeout_s=float(props["timeout_s"]),
        cluster=props["cluster"]))
    return {**props, "seeded_digest": props["content_digest"], "applied": report["applied"]}


class NodeSeedProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['cluster']}-{props['node']}-seed", outs=_seed(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in RESEED_ON if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed) or olds.get("node") != news.get("node"),
                          replaces=["node"] if olds.get("node") != news.get("node") else [],
                          delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_seed(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: the node's content goes with the node."""


@dataclass
class NodeSeedArgs:
    cluster: str
    node: str
    instance_id: pulumi.Input[str]
    rest_url: pulumi.Input[str]
    default_owner: str
    source: str  # absolute content directory, node:NAME or url:https://SERVER
    content_digest: str
    credentials_secret_id: str
    region: pulumi.Input[str]
    license_mode: str
    serial_secret_id: str | None
    allow_http: bool
    timeout_s: int
    reference_url: pulumi.Input[str] | None = None
    source_credentials_secret_id: str | None = None  # with url: (Secrets Manager id)


class NodeSeed(pulumi.dynamic.Resource):
    instance_id: pulumi.Output[str]
    seeded_digest: pulumi.Output[str]

    def __init__(self, name: str, args: NodeSeedArgs, opts: pulumi.ResourceOptions | None = None):
        props = {**vars(args), "seeded_digest": None, "applied": None}
        super().__init__(NodeSeedProvider(), name, props, opts)
