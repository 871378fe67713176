"""`ami: {fromInstance: i-…}`: the cluster's image made of the operator's running FME server,
under Pulumi's mocks — one image of that instance, pinned, copied encrypted, used by every node;
and each clone's boot script names only that node's own share and database."""

from __future__ import annotations

import re

import pytest

from components.bootstrap import unpack_user_data
from components.deployment_model import INSTANCE, first_deployment, plan_up
from components.image import FROM_INSTANCE_PINNED
from components.preview import RecordingMocks
from config import StackConfigError
from tests.program_runs import run_program
from tests.stack_fixtures import LINUX, example

SERVER = "i-0abc1234def567890"
FROM_INSTANCE = "aws:ec2/amiFromInstance:AmiFromInstance"
COPY = "aws:ec2/amiCopy:AmiCopy"
PIN = "aws:ssm/parameter:Parameter"


def test_one_image_of_the_server_pinned_copied_encrypted_and_used_by_every_node() -> None:
    run = run_program(example(nodeCount=3, ami={"fromInstance": SERVER}))
    [made] = run.of_type(FROM_INSTANCE)
    assert made.inputs["sourceInstanceId"] == SERVER
    assert made.inputs["snapshotWithoutReboot"] is False  # EC2's default: a consistent image
    assert made.inputs["name"] == f"fme-aa-fme-from-{SERVER}"
    assert made.inputs["tags"]["fme-aa:cluster"] == "fme-aa"
    assert set(FROM_INSTANCE_PINNED) <= set(made.options.ignore_changes)
    assert made.options.retain_on_delete is True
    [pin] = run.of_type(PIN)
    assert pin.inputs["insecureValue"] == made.id
    assert pin.options.ignore_changes == ("insecureValue",)
    [copy] = run.of_type(COPY)
    assert copy.inputs["sourceAmiId"] == made.id and copy.inputs["encrypted"] is True
    instances = run.of_type(INSTANCE)
    assert len(instances) == 3 and {i.inputs["ami"] for i in instances} == {copy.id}
    assert {n["imageId"] for n in run.exports["inventory"]["nodes"]} == {copy.id}
    assert not [c for c in run.calls if c[0] == "aws:ec2/getAmi:getAmi"]


def test_the_server_is_imaged_without_a_reboot_only_when_asked() -> None:
    run = run_program(example(ami={"fromInstance": SERVER, "snapshotWithoutReboot": True,
                                   "copyKmsKeyId": "alias/fme"}))
    assert run.of_type(FROM_INSTANCE)[0].inputs["snapshotWithoutReboot"] is True
    assert run.of_type(COPY)[0].inputs["kmsKeyId"] == "alias/fme"


def test_a_node_added_later_gets_the_same_build_and_a_changed_source_reimages_nothing() -> None:
    deployed = first_deployment(run_program(example(nodeCount=3, ami={"fromInstance": SERVER})))
    # Scale out, and point fromInstance at another server (say the old one was rebuilt).
    later = run_program(example(nodeCount=4, ami={"fromInstance": "i-0fff0000aaaa11112"}))
    plan = plan_up(deployed, later)
    image_keys = [k for k in plan.decisions if k[0] in (FROM_INSTANCE, COPY, PIN)]
    assert len(image_keys) == 3 and all(plan.decisions[k] == "same" for k in image_keys)
    assert plan.changing(INSTANCE) == ["fme-4"]  # created; fme-1..3 untouched
    amis = {name: res.inputs["ami"] for (t, name), res in plan.state.resources.items()
            if t == INSTANCE}
    assert len(set(amis.values())) == 1


@pytest.mark.parametrize(("ami", "message"), [
    ({"id": "ami-0123456789abcdef0", "fromInstance": SERVER},
     "set exactly one of 'id' (ami-…), 'lookup' {namePattern, owners} or 'fromInstance'"),
    ({}, "set exactly one of"),
    ({"fromInstance": "fme-server-1"}, "fromInstance"),
    ({"id": "ami-0123456789abcdef0", "snapshotWithoutReboot": True},
     "snapshotWithoutReboot only applies to 'fromInstance'"),
])
def test_bad_image_settings_are_refused_before_any_resource(ami: dict, message: str) -> None:
    mocks = RecordingMocks()
    with pytest.raises(StackConfigError, match=re.escape(message)):
        run_program(example(ami=ami), mocks=mocks)
    assert mocks.resources == []


@pytest.mark.parametrize(("fme", "share"), [({"version": "2026.1"}, "ebs"), (LINUX, "efs"),
                                            (LINUX, "ebs")])
def test_each_clones_boot_script_names_only_its_own_share_and_database(
        fme: dict, share: str) -> None:
    """A clone of a running server starts with that server's configuration; its script must
    point it at this node's own database and share, and name nothing of the server it was
    imaged from nor of any other node."""
    run = run_program(example(nodeCount=3, ami={"fromInstance": SERVER}, fme=fme,
                              share={"kind": share}))
    kind = "aws:ebs/volume:Volume" if share == "ebs" else "aws:efs/fileSystem:FileSystem"
    shares = {r.name.removesuffix("-share"): r.id for r in run.of_type(kind)}
    databases = {r.name.removesuffix("-db"): r.outputs["address"]
                 for r in run.of_type("aws:rds/instance:Instance")}
    access_points = {r.name.removesuffix("-share-ap"): r.id
                     for r in run.of_type("aws:efs/accessPoint:AccessPoint")}
    assert len(shares) == len(databases) == 3
    for instance in run.of_type(INSTANCE):
        node = instance.name
        script = unpack_user_data(instance.inputs["userData"])
        assert SERVER not in script and "i-" + "0" not in script
        assert re.findall(r"[\w.-]+\.rds\.amazonaws\.com", script) and \
            set(re.findall(r"[\w.-]+\.rds\.amazonaws\.com", script)) == {databases[node]}
        assert set(re.findall(r"\b(?:vol|fs|fsap)-[0-9a-f]+\b", script)) == \
            {shares[node], *([access_points[node]] if share == "efs" else [])}
        secrets = set(re.findall(r"arn:aws:secretsmanager:[^'\"\s]+", script))
        assert secrets == {run.named(f"{node}-db").outputs["masterUserSecrets"][0]["secretArn"]}


def test_an_upgrade_moves_from_the_servers_image_to_the_new_id() -> None:
    """`fmeaa upgrade --image` makes the new id the cluster's image: the fromInstance settings
    go (one source only), and the resulting config is valid."""
    from config import parse_stack_config
    from fmeaa.app.upgrade_plan import desired

    config = example(nodeCount=3, ami={"fromInstance": SERVER, "snapshotWithoutReboot": True,
                                       "copyKmsKeyId": "alias/fme"})
    new = desired(config, "ami-0aaaaaaaaaaaaaaa1", None)
    assert new["ami"] == {"copyKmsKeyId": "alias/fme", "id": "ami-0aaaaaaaaaaaaaaa1"}
    assert parse_stack_config(new).ami.id == "ami-0aaaaaaaaaaaaaaa1"
