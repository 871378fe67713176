"""`fmeaa upgrade` rehearsed end to end: emulated FME nodes, moto in server mode for EC2, the
target groups, Secrets Manager and S3, and a Pulumi stack whose every `up` is the real program
under mocks with the engine's steps replayed (tests/rehearsed_stack.py)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from fmeaa import app
from fmeaa.client import connect
from fmeaa.emulator import Sandbox
from tests.aws_server import REGION, make_cluster
from tests.conftest import TEST_PASSWORD
from tests.rehearsed_stack import RehearsedStack
from tests.stack_fixtures import example
from tests.sync_helpers import EXAMPLE, fmeaa, node_items, snapshot_state

NEW_AMI = "ami-0aaaaaaaaaaaaaaa1"
UPGRADE = importlib.import_module("fmeaa.app.upgrade")  # the module (fmeaa.app.upgrade is the function)
FAST = ["--poll", "0.05", "--wait", "30"]


@pytest.fixture
def cluster(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Sandbox, Path, dict[str, Any]]]:
    """3 emulated nodes in sync with the example content, registered in moto's target groups;
    the admin secret the stack's seeding reads; `nodes.json` as `pulumi stack output` gives."""
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    made = make_cluster("sandbox", ["fme-1", "fme-2", "fme-3"], other_cluster=False,
                        registered=["fme-1", "fme-2", "fme-3"])
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="fme-aa/fme-admin", SecretString=json.dumps({"username": "admin",
                                                          "password": TEST_PASSWORD}))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, tmp_path / "nodes.json", made


def _stack(box: Sandbox, made: dict[str, Any], inventory: Path, **overrides: Any
           ) -> RehearsedStack:
    stack = RehearsedStack(example(nodeCount=3, **overrides), box, made)
    inventory.write_text(json.dumps(stack.outputs()))
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inventory).code == 0  # fme-1 runs the schedules
    return stack


def _enabled_on(inventory: Path) -> list[str]:
    verify = fmeaa("verify", "-s", EXAMPLE, "-i", inventory, "--json")
    assert verify.code == 0, verify.out
    return next(r for r in verify.json["rows"] if r["key"] == "Parcels/nightly-parcels")["enabledOn"]


def test_surge_upgrade_keeps_n_nodes_serving_and_continues_after_a_stop(
        cluster: tuple[Sandbox, Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    box, inventory, made = cluster
    stack = _stack(box, made, inventory, database={"deletionProtection": False})
    monkeypatch.setattr(UPGRADE, "PulumiStack", lambda name, project_dir: stack)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="fme-logs", CreateBucketConfiguration={"LocationConstraint": REGION})
    log = inventory.parent / "job-41.log"
    log.write_text("job 41 finished\n")
    with connect("fme-1", box.node("fme-1").url, username="admin", password=TEST_PASSWORD) as c:
        c.upload_resource("FME_SHAREDRESOURCE_LOG", "logs/engine/current/jobs/0", log)
    box.node("fme-1").state.running_jobs = [{"id": 41, "status": "RUNNING"}]
    args = ["upgrade", "--stack", "prod", "-i", inventory, "-s", EXAMPLE, "--image", NEW_AMI,
            "--archive-logs", "s3://fme-logs/upgrades", "--job-timeout", "1", *FAST]

    stopped = fmeaa(*args)  # fme-1 still runs a job: the upgrade stops with fme-1 drained
    assert stopped.code == 1 and "fme-1 still runs 1 job(s)" in stopped.err
    assert "steps done: desire, add fme-4" in stopped.err
    assert [n.name for n in box.nodes] == ["fme-1", "fme-2", "fme-3", "fme-4"]
    box.node("fme-1").state.running_jobs = []

    done = fmeaa(*args, "--json")  # the re-run continues: no second node for fme-1
    assert done.code == 0, done.err
    steps = [(s["action"], s["nodes"]) for s in done.json["steps"]]
    assert steps == [("retire", ["fme-1"]), ("add", ["fme-5"]), ("retire", ["fme-2"]),
                     ("add", ["fme-6"]), ("retire", ["fme-3"]), ("tidy", [])]
    assert done.json["servingAtLeast"] == 3
    assert all(len(s["serving"]) >= 3 for s in done.json["steps"])
    # AWS's view at every step of every `pulumi up`, drains included: never fewer than 3
    assert min(min(up.serving) for up in stack.ups) >= 3
    assert [n["name"] for n in json.loads(inventory.read_text())["nodes"]] == [
        "fme-4", "fme-5", "fme-6"]
    assert stack.values["nodes"] == ["fme-4", "fme-5", "fme-6"]
    assert stack.values["ami"]["id"] == NEW_AMI
    assert all(n["imageId"] == NEW_AMI for n in json.loads(inventory.read_text())["nodes"])
    assert _enabled_on(inventory) == ["fme-4"]  # the 'one' schedule moved before fme-1 left
    archived = s3.get_object(Bucket="fme-logs",
                             Key="upgrades/fme-aa/fme-1/logs/engine/current/jobs/0/job-41.log")
    assert archived["Body"].read() == b"job 41 finished\n"


def test_in_place_rebuild_keeps_each_nodes_content_and_n_minus_1_serving(
        cluster: tuple[Sandbox, Path, dict[str, Any]]) -> None:
    box, inventory, made = cluster
    stack = _stack(box, made, inventory)
    before = {n["name"]: n for n in json.loads(inventory.read_text())["nodes"]}
    items_before = {n.name: node_items(box, n.name) for n in box.nodes}
    result = app.upgrade(app.UpgradeRequest(
        stack="prod", cluster=app.ClusterRef(inventory=inventory), source=str(EXAMPLE),
        image=NEW_AMI, strategy="in-place"), stack, timing=app.Timing(30, 0.05, 10))
    assert [(s.action, s.nodes) for s in result.steps] == [
        ("desire", []), ("roll", ["fme-1"]), ("roll", ["fme-2"]), ("roll", ["fme-3"]),
        ("tidy", [])]
    assert result.serving_at_least == 2
    assert min(min(up.serving) for up in stack.ups) >= 2
    assert [up.plan.changing("aws:ec2/instance:Instance") for up in stack.ups] == [
        [], ["fme-1"], ["fme-2"], ["fme-3"]]
    after = {n["name"]: n for n in json.loads(inventory.read_text())["nodes"]}
    for name in ("fme-1", "fme-2", "fme-3"):
        assert after[name]["instanceId"] != before[name]["instanceId"]  # a new instance…
        assert after[name]["imageId"] == NEW_AMI
        assert node_items(box, name) == items_before[name]  # …on the same share and database
    assert "rollout" not in stack.values
    assert sorted(s.serving or [] for s in result.steps)[-1] == ["fme-1", "fme-2", "fme-3"]
    assert _enabled_on(inventory) == ["fme-1"]


def test_an_upgrade_that_cannot_work_is_refused_before_any_change(
        cluster: tuple[Sandbox, Path, dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    box, inventory, made = cluster
    stack = _stack(box, made, inventory, seed={"mode": "pulumi", "source": "node:fme-2",
                                               "credentialsSecretId": "fme-aa/fme-admin"})
    monkeypatch.setattr(UPGRADE, "PulumiStack", lambda name, project_dir: stack)
    config, nodes = stack.config(), snapshot_state(box)
    refused = fmeaa("upgrade", "--stack", "prod", "-i", inventory, "-s", "node:fme-1",
                    "--image", "ami-nope", "--archive-logs", "ftp://logs", *FAST)
    assert refused.code == 1
    for problem in ("--image 'ami-nope': expected an AMI id",
                    "--archive-logs 'ftp://logs': expected s3://BUCKET or s3://BUCKET/PREFIX",
                    "fme-aa:database.deletionProtection is true",
                    "fme-aa:seed.source is node:fme-2, a node this upgrade removes",
                    "--source is node:fme-1, a node this upgrade removes"):
        assert problem in refused.err, refused.err
    assert stack.config() == config and stack.ups == [] and snapshot_state(box) == nodes


def test_dry_run_lists_the_steps_and_changes_nothing(
        cluster: tuple[Sandbox, Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    box, inventory, made = cluster
    stack = _stack(box, made, inventory, database={"deletionProtection": False})
    monkeypatch.setattr(UPGRADE, "PulumiStack", lambda name, project_dir: stack)
    config = stack.config()
    planned = fmeaa("upgrade", "--stack", "prod", "-i", inventory, "-s", EXAMPLE, "--image",
                    NEW_AMI, "--batch", "3", "--dry-run", "--json")
    assert planned.code == 0, planned.err
    assert [(s["action"], s["nodes"]) for s in planned.json["steps"]] == [
        ("desire", []), ("add", ["fme-4", "fme-5", "fme-6"]), ("retire", ["fme-1"]),
        ("retire", ["fme-2"]), ("retire", ["fme-3"]), ("tidy", [])]
    assert planned.json["steps"][0]["settingsChanged"] == ["ami", "nodeCount", "nodes"]
    assert stack.config() == config and stack.ups == []


class _RecordedStack:
    """What `pulumi.automation.select_stack` returns, recording the calls."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {"fme-aa:nodeCount": "3"}
        self.calls: list[tuple[str, ...]] = []

    def get_all_config(self) -> dict[str, Any]:
        from pulumi.automation import ConfigValue

        return {k: ConfigValue(v) for k, v in self.values.items()}

    def remove_config(self, key: str) -> None:
        self.calls.append(("rm", key))
        self.values.pop(key)

    def set_config(self, key: str, value: Any, path: bool = False) -> None:
        self.calls.append(("set", key, value.value, str(path)))


def test_the_pulumi_stack_is_rewritten_setting_by_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from fmeaa.app.stack_runner import PulumiStack, write_config

    recorded = _RecordedStack()
    monkeypatch.setattr("pulumi.automation.select_stack", lambda **kwargs: recorded)
    stack = PulumiStack("prod", Path())
    assert stack.config() == {"nodeCount": "3"}
    write_config(stack, {"nodeCount": "3", "ami": {"id": "ami-0123456789abcdef0"}},
                 {"ami": {"id": NEW_AMI, "copyToAccount": False},
                  "nodes": ["fme-2", {"name": "fme-4", "replaces": "fme-1"}]})
    assert recorded.calls == [
        ("set", "fme-aa:ami.id", NEW_AMI, "True"),
        ("set", "fme-aa:ami.copyToAccount", "false", "True"),
        ("rm", "fme-aa:nodeCount"),
        ("set", "fme-aa:nodes[0]", "fme-2", "True"),
        ("set", "fme-aa:nodes[1].name", "fme-4", "True"),
        ("set", "fme-aa:nodes[1].replaces", "fme-1", "True")]
