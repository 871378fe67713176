"""Changing the cluster without downtime, evaluated under Pulumi's mocks: each step's config is
run through the real program, and `components.deployment_model` replays the engine's decisions
on the resource inputs and the options the program sent (ignore_changes, replace_on_changes,
delete_before_replace) against the state the previous step left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import components.bootstrap
from components.bootstrap import unpack_user_data
from components.deployment_model import (
    INSTANCE,
    NODE_SEED,
    TARGET_ATTACHMENT,
    VOLUME_ATTACHMENT,
    StackState,
    UpPlan,
    first_deployment,
    node_of,
    plan_up,
)
from components.fme_node import REPLACE_ON, ROLLED_FIELDS
from components.preview import instance_changes
from components.preview import main as preview_main
from config import StackConfigError, parse_stack_config
from fmeaa.app.upgrade_plan import in_place_steps, new_names, surge_steps
from tests.program_runs import run_program
from tests.stack_fixtures import example

NEW_AMI = "ami-0aaaaaaaaaaaaaaa1"
NODES = ["fme-1", "fme-2", "fme-3"]


def _changed(change: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The 3-node example stack after one cluster-wide change."""
    if change == "ami":
        return example(nodeCount=3, ami={"id": NEW_AMI})
    if change == "instanceType":
        return example(nodeCount=3, instanceType="m6i.2xlarge")
    if change == "rootVolume":
        return example(nodeCount=3, rootVolumeGib=200)
    body = components.bootstrap._body  # a new fme-aa release with other bootstrap scripts
    monkeypatch.setattr(components.bootstrap, "_body",
                        lambda name: body(name) + "\n# bootstrap r2\n")
    return example(nodeCount=3)


def _outside(plan: UpPlan, node: str) -> list[tuple[str, str]]:
    """Resources of other nodes (or shared ones) this update touches."""
    return [k for k, d in plan.decisions.items()
            if d != "same" and node_of(k[1], NODES) != node]


@pytest.mark.parametrize(("change", "instance_step"), [
    ("ami", "replace"), ("bootstrap", "replace"),
    ("instanceType", "update"), ("rootVolume", "update"),
])
def test_a_cluster_wide_change_reaches_one_node_per_step(
        change: str, instance_step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    state = first_deployment(run_program(example(nodeCount=3)))
    wanted = _changed(change, monkeypatch)
    plain = plan_up(state, run_program(wanted))  # a plain `pulumi up` after the change
    assert plain.changing(INSTANCE) == []
    state = plain.state
    for node in NODES:
        step = plan_up(state, run_program({**wanted, "rollout": node}))
        assert step.changing(INSTANCE) == [node]
        assert step.decisions[(INSTANCE, node)] == instance_step
        assert _outside(step, node) == []
        state = step.state
    settled = plan_up(state, run_program(wanted))  # rollout removed: nothing left to do
    assert [k for k, d in settled.decisions.items() if d != "same"] == []
    target = {r.name: r.inputs for r in run_program(wanted).of_type(INSTANCE)}
    for node in NODES:  # every node now runs exactly what the config asks for
        held = state.resources[(INSTANCE, node)].inputs
        assert {f: held.get(f) for f in ROLLED_FIELDS} == {f: target[node].get(f)
                                                           for f in ROLLED_FIELDS}


def test_the_program_pins_every_instance_but_the_rollout_node() -> None:
    run = run_program(example(nodeCount=3, rollout="fme-2"))
    for instance in run.of_type(INSTANCE):
        options = instance.options
        assert options.delete_before_replace is True
        assert set(REPLACE_ON) <= set(options.replace_on_changes)
        assert instance.inputs["userDataReplaceOnChange"] is True  # a new script boots anew
        expected = () if instance.name == "fme-2" else tuple(ROLLED_FIELDS)
        assert options.ignore_changes == expected
    for attachment in run.of_type(VOLUME_ATTACHMENT):
        assert attachment.options.delete_before_replace is True


LINUX = {"platform": "linux", "version": "2026.1"}  # bash bootstraps; EFS shares need Linux


def _replace_in_place(share: dict[str, Any]) -> tuple[UpPlan, StackState]:
    before = example(nodeCount=3, share=share, fme=LINUX)
    state = first_deployment(run_program(before))
    return plan_up(state, run_program({**before, "ami": {"id": NEW_AMI},
                                       "rollout": "fme-2"})), state


def _line(script: str, start: str) -> str:
    return next((line for line in script.splitlines() if line.startswith(start)), "")


def test_in_place_replacement_detaches_the_share_before_the_new_instance_attaches() -> None:
    plan, state = _replace_in_place({"kind": "ebs"})
    node, attachment = (INSTANCE, "fme-2"), (VOLUME_ATTACHMENT, "fme-2-share-attachment")
    assert plan.decisions[node] == "replace" and plan.decisions[attachment] == "replace"
    # the old instance is stopped and its volume detached, the instance goes, then the new one
    # boots and gets the same volume
    assert (plan.index("delete", attachment) < plan.index("delete", node)
            < plan.index("create", node) < plan.index("create", attachment))
    # the node keeps its share and its database, and the new instance's bootstrap is told the
    # same ones (it finds its own share marker and the existing schema, and keeps both)
    assert plan.decisions[("aws:ebs/volume:Volume", "fme-2-share")] == "same"
    assert plan.decisions[("aws:rds/instance:Instance", "fme-2-db")] == "same"
    old, new = (unpack_user_data(state.resources[node].inputs["userData"]),
                unpack_user_data(plan.state.resources[node].inputs["userData"]))
    for line in ("readonly NODE_NAME=fme-2", "readonly SHARE_VOLUME_ID=", "readonly DB_HOST="):
        assert _line(old, line) == _line(new, line) and _line(new, line)
    # out of the load balancer before the old instance goes; back only after it is seeded
    web = (TARGET_ATTACHMENT, "fme-2-web-target")
    assert plan.index("delete", web) < plan.index("delete", node)
    assert plan.index("create", attachment) < plan.index("update", (NODE_SEED, "fme-2-seed")) \
        < plan.index("create", web)


def test_in_place_replacement_with_efs_never_runs_two_instances_on_one_database() -> None:
    plan, _ = _replace_in_place({"kind": "efs"})
    node = (INSTANCE, "fme-2")
    assert plan.index("delete", node) < plan.index("create", node)
    assert plan.decisions[("aws:efs/fileSystem:FileSystem", "fme-2-share")] == "same"
    assert plan.decisions[("aws:rds/instance:Instance", "fme-2-db")] == "same"
    efs = run_program(example(nodeCount=3, share={"kind": "efs"}, fme=LINUX))
    script = unpack_user_data(efs.named("fme-2").inputs["userData"])
    assert f"readonly SHARE_FILE_SYSTEM_ID={efs.named('fme-2-share').id}" in script


def test_preview_names_the_one_node_a_step_changes() -> None:
    before = run_program(example(nodeCount=3))
    assert instance_changes(before, run_program(example(nodeCount=3, ami={"id": NEW_AMI}))) == {}
    changes = instance_changes(before, run_program(example(nodeCount=3, ami={"id": NEW_AMI},
                                                           rollout="fme-3")))
    assert list(changes) == ["fme-3"]
    assert changes["fme-3"][:2] == ["delete TargetGroupAttachment fme-3-ws-target",
                                    "delete TargetGroupAttachment fme-3-web-target"]


@pytest.mark.parametrize("batch", [1, 2])
def test_surge_upgrade_configs_never_have_fewer_than_n_nodes_serving(batch: int) -> None:
    start = example(nodeCount=3, database={"deletionProtection": False})
    state = first_deployment(run_program(start))
    config = start
    seen: list[tuple[str, list[str], int, int]] = []
    for step in surge_steps(start, NEW_AMI, None, batch):
        drained = set(step.nodes) if step.action == "retire" else set()
        attached = {k[1].removesuffix("-web-target") for k in state.resources
                    if k[0] == TARGET_ATTACHMENT and k[1].endswith("-web-target")}
        serving_before = len(attached - drained)
        run = run_program(step.config)  # every step is a valid stack for the program
        plan = plan_up(state, run)
        # existing nodes are never changed, only whole nodes created or removed
        assert not [k for k in plan.of("update", INSTANCE) + plan.of("replace", INSTANCE)]
        state = plan.state
        attached_after = {k[1].removesuffix("-web-target") for k in state.resources
                          if k[0] == TARGET_ATTACHMENT and k[1].endswith("-web-target")}
        seen.append((step.action, step.nodes, serving_before, len(attached_after)))
        config = step.config
    assert min(min(before, after) for _, _, before, after in seen) >= 3, seen
    assert max(after for *_, after in seen) == 3 + batch
    instances = {k[1]: d.inputs["ami"] for k, d in state.resources.items() if k[0] == INSTANCE}
    assert instances == {"fme-4": NEW_AMI, "fme-5": NEW_AMI, "fme-6": NEW_AMI}
    assert config["nodes"] == ["fme-4", "fme-5", "fme-6"]  # pairs tidied away at the end
    actions = [a for a, *_ in seen]
    assert actions == (["desire"] + ["add", "retire"] * 3 + ["tidy"] if batch == 1
                       else ["desire", "add", "retire", "retire", "add", "retire", "tidy"])


def test_a_surge_upgrade_continues_where_it_stopped() -> None:
    start = example(nodeCount=3)
    steps = surge_steps(start, NEW_AMI, None)
    for done in range(1, len(steps)):
        rest = surge_steps(steps[done - 1].config, NEW_AMI, None)
        assert [(s.action, s.nodes) for s in rest] == [(s.action, s.nodes) for s in steps[done:]]
    assert surge_steps(steps[-1].config, NEW_AMI, None, current=set(steps[-1].config["nodes"])) \
        == []


def test_in_place_steps_roll_each_node_and_resume_at_the_rollout_node() -> None:
    start = example(nodeCount=3)
    steps = in_place_steps(start, None, "m6i.2xlarge")
    assert [(s.action, s.nodes, s.config.get("rollout")) for s in steps] == [
        ("desire", [], None), ("roll", ["fme-1"], "fme-1"), ("roll", ["fme-2"], "fme-2"),
        ("roll", ["fme-3"], "fme-3"), ("tidy", [], None)]
    resumed = in_place_steps(steps[2].config, None, "m6i.2xlarge")
    assert [s.nodes for s in resumed] == [["fme-2"], ["fme-3"], []]


def test_new_node_names_continue_the_numbering_and_never_reuse_a_name() -> None:
    assert new_names({"fme-1", "fme-2", "fme-3"}, ["fme-1"], 1) == ["fme-4"]
    assert new_names({"fme-2", "fme-3", "fme-4"}, ["fme-2", "fme-3"], 2) == ["fme-5", "fme-6"]
    assert new_names({"alpha", "bravo"}, ["alpha"], 1) == ["alpha-2"]


@pytest.mark.parametrize(("raw", "fragment"), [
    ({"rollout": "fme-9"}, "rollout: 'fme-9' is not one of the stack's nodes"),
    ({"nodeCount": None, "nodes": [{"name": "fme-1", "replaces": "fme-1"}]},
     "nodes[fme-1].replaces: a node cannot replace itself"),
    ({"nodeCount": None, "nodes": ["fme-1", {"name": "fme-2", "ami": NEW_AMI}],
      "ami": {"id": "ami-0123456789abcdef0", "copyToAccount": True}},
     "nodes[fme-2].ami: not supported with ami.copyToAccount"),
    ({"nodeCount": None, "nodes": [{"name": "a", "replaces": "x"}, {"name": "b", "replaces": "x"}]},
     "more than one node replaces x"),
])
def test_rollout_settings_are_checked(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(example(**raw))
    assert fragment in str(caught.value)


def test_a_node_can_run_its_own_image_and_type() -> None:
    config = example(nodeCount=None, nodes=["fme-1", {"name": "fme-2", "ami": NEW_AMI,
                                                      "instanceType": "r6i.2xlarge"}])
    instances = {r.name: r.inputs for r in run_program(config).of_type(INSTANCE)}
    assert instances["fme-1"]["ami"] == "ami-0123456789abcdef0"
    assert (instances["fme-2"]["ami"], instances["fme-2"]["instanceType"]) == (NEW_AMI,
                                                                              "r6i.2xlarge")
    nodes = {n["name"]: n for n in run_program(config).exports["inventory"]["nodes"]}
    assert nodes["fme-2"]["imageId"] == NEW_AMI  # the inventory shows what each node runs


def _stack_file(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"config": {"aws:region": "eu-west-1",
                                               **{f"fme-aa:{k}": v for k, v in config.items()}}}))
    return path


def test_dev_preview_shows_the_one_node_a_step_changes_or_the_command_to_roll_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _stack_file(tmp_path / "deployed.yaml", example(nodeCount=3))
    changed = _stack_file(tmp_path / "Pulumi.prod.yaml", example(nodeCount=3, ami={"id": NEW_AMI}))
    assert preview_main([str(changed), "--before", str(before)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "0 node(s) change: none" in out and "fmeaa upgrade --stack STACK" in out
    step = _stack_file(tmp_path / "step.yaml", example(nodeCount=3, ami={"id": NEW_AMI},
                                                       rollout="fme-1"))
    assert preview_main([str(step), "--before", str(before)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1 node(s) change: fme-1" in out
    assert "delete Instance fme-1; create Instance fme-1" in out
