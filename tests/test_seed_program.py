"""Seed before serve in the Pulumi program (under Pulumi's mocks): no node is attached to the
load balancer before its seeding step, and seeding inputs carry no secret."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest

from components.node_seed import NodeSeedProvider
from components.preview import ROOT, RecordingMocks
from config import StackConfigError
from fmeaa.app.seed import content_digest
from fmeaa.cluster.inventory import Inventory
from tests.program_runs import run_program
from tests.stack_fixtures import example
from tests.sync_helpers import copy_example

DYNAMIC = "pulumi-python:dynamic:Resource"
ATTACH = "aws:lb/targetGroupAttachment:TargetGroupAttachment"


class SeedMarkingMocks(RecordingMocks):
    """Like the recording mocks, but a seed's `instance_id` output is marked, so an attachment
    whose target id carries the mark provably took it from the seed."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        rid, out = super().new_resource(args)
        if args.typ == DYNAMIC:
            out = {**out, "instance_id": f"{args.inputs['instance_id']}#seeded"}
            self.resources[-1].outputs = out
        return rid, out


def test_every_attachment_takes_its_target_from_the_nodes_seed() -> None:
    mocks = SeedMarkingMocks()
    run = run_program(example(nodeCount=3), mocks=mocks)
    seeds = {r.name: r for r in run.of_type(DYNAMIC)}
    assert sorted(seeds) == ["fme-1-seed", "fme-2-seed", "fme-3-seed"]
    order = [r.name for r in run.resources]
    attachments = run.of_type(ATTACH)
    assert len(attachments) == 6  # web + websocket per node
    for a in attachments:
        node = a.name.rsplit("-", 2)[0]
        seed = seeds[f"{node}-seed"]
        instance = run.named(node)
        assert a.inputs["targetId"] == f"{instance.id}#seeded"
        assert order.index(seed.name) < order.index(a.name)
        assert seed.inputs["instance_id"] == instance.id
        assert seed.inputs["rest_url"] == f"http://{instance.outputs['privateIp']}:8080"


def test_seed_inputs_hold_secret_ids_only() -> None:
    run = run_program(example(license={"mode": "byol", "serialSecretId": "fme-aa/serial"}))
    for seed in run.of_type(DYNAMIC):
        inputs = {k: v for k, v in seed.inputs.items() if k != "__provider"}
        assert inputs["credentials_secret_id"] == "fme-aa/fme-admin"
        assert inputs["serial_secret_id"] == "fme-aa/serial"
        assert inputs["license_mode"] == "byol"
        assert not [k for k in inputs if "password" in k.lower() or k.lower() == "serialnumber"]
        assert inputs["source"] == str(ROOT / "examples" / "content")
        assert inputs["content_digest"] == content_digest(str(ROOT / "examples" / "content"))
        assert inputs["default_owner"] == "fme-1"
        assert json.dumps(inputs)  # plain data, nothing opaque besides the provider


def test_manual_mode_never_attaches() -> None:
    run = run_program(example(seed={"mode": "manual"}))
    assert run.of_type(ATTACH) == [] and run.of_type(DYNAMIC) == []
    assert run.exports["inventory"]["loadBalancer"]["targetGroupArn"]


def test_the_inventory_carries_the_licence_settings_for_manual_seeding() -> None:
    """`fmeaa seed` / `rolling` read them from the inventory (issue 13, item 4): an id, never
    the serial."""
    run = run_program(example(seed={"mode": "manual"},
                              license={"mode": "byol", "serialSecretId": "fme-aa/serial"}))
    exported = run.exports["inventory"]["license"]
    assert exported == {"mode": "byol", "serialSecretId": "fme-aa/serial"}
    inventory = Inventory.model_validate(run.exports["inventory"])
    assert inventory.license is not None and inventory.license.mode == "byol"
    default = run_program(example(seed={"mode": "manual"})).exports["inventory"]["license"]
    assert default == {"mode": "marketplace", "serialSecretId": None}


def test_reference_node_source() -> None:
    run = run_program(example(seed={"mode": "pulumi", "source": "node:fme-2",
                                    "credentialsSecretId": "fme-aa/fme-admin"}))
    seeds = {r.name: r for r in run.of_type(DYNAMIC)}
    assert sorted(seeds) == ["fme-1-seed", "fme-3-seed"]  # fme-2 is the source itself
    fme2 = run.named("fme-2")
    assert seeds["fme-1-seed"].inputs["reference_url"] == f"http://{fme2.outputs['privateIp']}:8080"
    fme2_targets = [a for a in run.of_type(ATTACH) if a.name.startswith("fme-2-")]
    assert [a.inputs["targetId"] for a in fme2_targets] == [fme2.id, fme2.id]


def test_the_old_server_as_the_seed_source() -> None:
    """seed.source url:…: every node (none is the source) is seeded from the server outside the
    cluster, whose credentials are a secret id of their own."""
    run = run_program(example(seed={"mode": "pulumi", "source": "url:https://fme.example.com",
                                    "credentialsSecretId": "fme-aa/fme-admin",
                                    "sourceCredentialsSecretId": "fme-aa/old-server"}))
    seeds = {r.name: r for r in run.of_type(DYNAMIC)}
    assert sorted(seeds) == ["fme-1-seed", "fme-2-seed", "fme-3-seed"]
    for seed in seeds.values():
        assert seed.inputs["source"] == "url:https://fme.example.com"
        assert seed.inputs["source_credentials_secret_id"] == "fme-aa/old-server"
        assert seed.inputs["credentials_secret_id"] == "fme-aa/fme-admin"
        assert seed.inputs["content_digest"] == "url:https://fme.example.com"
    assert len(run.of_type(ATTACH)) == 6


@pytest.mark.parametrize("seed, message", [
    ({"mode": "pulumi", "source": "url:https://old", "credentialsSecretId": "x"},
     "needs seed.sourceCredentialsSecretId"),
    ({"mode": "pulumi", "source": "url:https://admin:hunter2@old", "credentialsSecretId": "x",
      "sourceCredentialsSecretId": "y"}, r"seed.source url:…: .*no credentials in it"),
    ({"mode": "manual", "sourceCredentialsSecretId": "y"}, "only used with a url: seed.source"),
    ({"mode": "pulumi", "source": "examples/content"}, "needs seed.credentialsSecretId"),
    ({"mode": "pulumi", "source": "no/such/dir", "credentialsSecretId": "x"}, "no such directory"),
    ({"mode": "pulumi", "source": "node:fme-9", "credentialsSecretId": "x"}, "not one of the stack"),
])
def test_bad_seed_config_fails_before_any_resource(seed: dict, message: str) -> None:
    mocks = RecordingMocks()
    with pytest.raises(StackConfigError, match=message) as refused:
        run_program(example(seed=seed), mocks=mocks)
    assert mocks.resources == []
    assert "hunter2" not in str(refused.value)


def test_a_content_change_reseeds_and_nothing_else_does(tmp_path: Path) -> None:
    content = copy_example(tmp_path / "c")
    before = content_digest(str(content))
    assert content_digest(str(content)) == before
    (content / "workspaces/roads/clip_roads.fmw").write_text("#! changed\n")
    after = content_digest(str(content))
    assert after != before
    provider = NodeSeedProvider()
    olds = {"node": "fme-1", "content_digest": before, "rest_url": "http://10.0.0.1:8080",
            "instance_id": "i-1", "timeout_s": 1800}
    assert provider.diff("x", olds, {**olds, "content_digest": after}).changes is True
    assert provider.diff("x", olds, {**olds, "timeout_s": 600}).changes is False
    assert provider.diff("x", olds, {**olds, "node": "fme-9"}).replaces == ["node"]


def test_pulumi_seeding_without_admin_cidr_warns() -> None:
    run = run_program(example(adminCidr=None))
    assert any("adminCidr is not set" in w for w in run.warnings)
    assert not [w for w in run_program(example()).warnings if "adminCidr" in w]


def test_the_provider_seeds_from_the_old_server_with_its_own_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    seed_module = importlib.import_module("fmeaa.app.seed")  # (fmeaa.app.seed is a function)
    seen = []
    monkeypatch.setattr(seed_module, "seed_node",
                        lambda request: seen.append(request) or {"applied": 3})
    run = run_program(example(seed={"mode": "pulumi", "source": "url:https://fme.example.com",
                                    "credentialsSecretId": "fme-aa/fme-admin",
                                    "sourceCredentialsSecretId": "fme-aa/old-server"}))
    props = {k: v for k, v in run.of_type(DYNAMIC)[0].inputs.items() if k != "__provider"}
    NodeSeedProvider().create({**props, "region": "eu-west-1"})
    [request] = seen
    assert request.source == "url:https://fme.example.com" and request.reference_url is None
    assert request.source_secret_id == "fme-aa/old-server"
    assert request.credentials_secret_id == "fme-aa/fme-admin"
