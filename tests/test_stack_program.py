"""The real Pulumi program under Pulumi's mocks: assertions on every resource's inputs."""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter

import pytest

from components.bootstrap import unpack_user_data
from components.preview import LOOKED_UP_AMI, ProgramRun, RecordingMocks, Resource
from config import StackConfigError
from tests.program_runs import run_program
from tests.stack_fixtures import CERT, LINUX, example, named_nodes

INSTANCE = "aws:ec2/instance:Instance"
RDS = "aws:rds/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
EFS = "aws:efs/fileSystem:FileSystem"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LISTENER = "aws:lb/listener:Listener"
TG = "aws:lb/targetGroup:TargetGroup"
ATTACH = "aws:lb/targetGroupAttachment:TargetGroupAttachment"

# Resource types AWS gives no tags (everything else must carry the cluster tag).
UNTAGGABLE = {
    "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:efs/mountTarget:MountTarget",
    "aws:ec2/volumeAttachment:VolumeAttachment", "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment", ATTACH,
    "pulumi-python:dynamic:Resource",  # NodeSeed: not an AWS resource
    "aws:efs/backupPolicy:BackupPolicy", "aws:efs/fileSystemPolicy:FileSystemPolicy",
}


def _signature(run: ProgramRun) -> dict[tuple[str, str], str]:
    return {(r.type, r.name): json.dumps(r.inputs, sort_keys=True, default=str)
            for r in run.resources}


def _owned_by(resource: Resource, node: str) -> bool:
    return resource.name == node or resource.name.startswith(f"{node}-")


def _script(instance: Resource) -> str:
    """The boot script an instance's user data carries (packed to fit EC2's 16 KB)."""
    return unpack_user_data(instance.inputs["userData"])


def _var(script: str, name: str) -> str:
    """A scalar the script's header renders: `readonly NAME=…` (bash) or `$Name = '…'`."""
    bash = re.search(rf"^readonly {name}=(.*)$", script, re.M)
    if bash:
        return shlex.split(bash.group(1))[0] if bash.group(1) else ""
    camel = "".join(part.capitalize() for part in name.lower().split("_"))
    powershell = re.search(rf"^\${camel} = '((?:[^']|'')*)'$", script, re.M)
    assert powershell, f"{name} is not rendered"
    return powershell.group(1).replace("''", "'")


@pytest.mark.parametrize("count", [1, 3, 10])
def test_example_stack_gives_each_node_its_own_instance_share_and_database(count: int) -> None:
    run = run_program(example(nodeCount=count))
    instances, dbs, shares = run.of_type(INSTANCE), run.of_type(RDS), run.of_type(VOLUME)
    assert (len(instances), len(dbs), len(shares)) == (count, count, count)
    assert len({r.id for r in shares}) == count
    assert len({d.inputs["identifier"] for d in dbs}) == count
    names = [n["name"] for n in run.exports["inventory"]["nodes"]]
    assert names == [f"fme-{i}" for i in range(1, count + 1)]
    for instance in instances:
        node = instance.name
        own_share = run.named(f"{node}-share").id
        own_db = run.named(f"{node}-db").inputs["identifier"]
        user_data = _script(instance)
        assert _var(user_data, "SHARE_VOLUME_ID") == own_share
        assert _var(user_data, "DB_HOST").startswith(f"{own_db}.")
        assert _var(user_data, "NODE_NAME") == node
        assert _var(user_data, "EXTERNAL_HOST") == run.exports["inventory"]["loadBalancer"]["dnsName"]
        for other in shares:
            if other.id != own_share:
                assert other.id not in user_data
        for other in dbs:
            if other.inputs["identifier"] != own_db:
                assert f"{other.inputs['identifier']}." not in user_data


def test_efs_share_is_per_node_with_mount_targets_access_point_and_tls_policy() -> None:
    run = run_program(example(nodeCount=2, share={"kind": "efs"}, fme=LINUX))
    filesystems = run.of_type(EFS)
    assert len(filesystems) == 2 and all(fs.inputs["encrypted"] is True for fs in filesystems)
    assert not run.of_type(VOLUME)
    for node in ("fme-1", "fme-2"):
        fs = run.named(f"{node}-share")
        targets = [r for r in run.of_type("aws:efs/mountTarget:MountTarget") if _owned_by(r, node)]
        assert len(targets) == 2 and all(t.inputs["fileSystemId"] == fs.id for t in targets)
        ap = run.named(f"{node}-share-ap")
        assert ap.inputs["fileSystemId"] == fs.id
        policy = json.loads(run.named(f"{node}-share-policy").inputs["policy"])
        deny = policy["Statement"][0]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        user_data = _script(run.named(node))
        assert _var(user_data, "SHARE_FILE_SYSTEM_ID") == fs.id
        assert _var(user_data, "SHARE_ACCESS_POINT_ID") == ap.id
        assert run.named(f"{node}-share-backup").inputs["backupPolicy"]["status"] == "ENABLED"


def test_scaling_3_to_5_only_adds_the_new_nodes() -> None:
    three, five = run_program(example(nodeCount=3)), run_program(example(nodeCount=5))
    before, after = _signature(three), _signature(five)
    for key, inputs in before.items():
        assert after.get(key) == inputs, f"{key} changed when scaling out"
    added = set(after) - set(before)
    assert added and all(
        any(name == n or name.startswith(f"{n}-") for n in ("fme-4", "fme-5"))
        for _, name in added
    ), sorted(added)
    assert Counter(t for t, _ in added)[INSTANCE] == 2


def test_removing_a_named_node_removes_only_its_resources() -> None:
    full = run_program(named_nodes("alpha", "bravo", "charlie"))
    less = run_program(named_nodes("alpha", "charlie"))
    before, after = _signature(full), _signature(less)
    removed = set(before) - set(after)
    assert removed and all(name == "bravo" or name.startswith("bravo-") for _, name in removed)
    assert not set(after) - set(before)
    for key, inputs in after.items():
        assert before[key] == inputs, f"{key} changed when bravo was removed"


def test_logical_names_are_unique_per_type() -> None:
    run = run_program(example(nodeCount=4, share={"kind": "efs"}, fme=LINUX))
    keys = [(r.type, r.name) for r in run.resources]
    assert len(keys) == len(set(keys))


def _sg_names(run: ProgramRun) -> dict[str, str]:
    return {r.id: r.name for r in run.of_type(SG)}


@pytest.mark.parametrize(("fme", "share", "node_ports"), [
    (LINUX, "efs", (8080, 7078)),  # health checks on the traffic port (Safe's LB doc: 8080 on Linux)
    ({"version": "2026.1"}, "ebs", (8080, 80, 7078)),  # Windows: health on 80 (Safe's template)
])
def test_every_security_group_rule_admits_only_its_one_peer(
    fme: dict, share: str, node_ports: tuple[int, ...]
) -> None:
    config = example(nodeCount=2, share={"kind": share}, adminCidr="10.99.0.0/16", fme=fme,
                     loadBalancer={"certificateArn": CERT, "allowedCidrs": ["203.0.113.0/24"]})
    run = run_program(config)
    sg = _sg_names(run)
    rules = set()
    for r in run.of_type(INGRESS):
        i = r.inputs
        assert i["fromPort"] == i["toPort"] and i["ipProtocol"] == "tcp"
        peer = sg.get(i.get("referencedSecurityGroupId", ""), i.get("cidrIpv4"))
        rules.add((sg[i["securityGroupId"]], i["fromPort"], peer))
    expected = {("fme-aa-alb-sg", port, "203.0.113.0/24") for port in (443, 80, 7078)}
    for n in ("fme-1", "fme-2"):
        expected |= {(f"{n}-sg", port, "fme-aa-alb-sg") for port in node_ports}
        expected |= {(f"{n}-sg", 8080, "10.99.0.0/16"), (f"{n}-db-sg", 5432, f"{n}-sg")}
        if share == "efs":
            expected.add((f"{n}-efs-sg", 2049, f"{n}-sg"))
    assert rules == expected

    egress = set()
    for r in run.of_type(EGRESS):
        i = r.inputs
        peer = sg.get(i.get("referencedSecurityGroupId", ""), i.get("cidrIpv4"))
        egress.add((sg[i["securityGroupId"]], i["fromPort"], peer))
    expected_out = set()
    for n in ("fme-1", "fme-2"):
        expected_out |= {("fme-aa-alb-sg", port, f"{n}-sg") for port in node_ports}
        expected_out |= {(f"{n}-sg", 5432, f"{n}-db-sg"), (f"{n}-sg", 443, "0.0.0.0/0")}
        if share == "efs":
            expected_out.add((f"{n}-sg", 2049, f"{n}-efs-sg"))
    assert egress == expected_out
    # Security groups carry no inline rules (the provider then drops AWS's allow-all egress).
    assert all("ingress" not in g.inputs and "egress" not in g.inputs for g in run.of_type(SG))


def test_encryption_imdsv2_private_databases_and_backups() -> None:
    run = run_program(example(nodeCount=2, ami={"id": "ami-0123456789abcdef0",
                                                "copyToAccount": True}))
    for instance in run.of_type(INSTANCE):
        assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
        assert instance.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert instance.inputs["rootBlockDevice"]["encrypted"] is True
        assert "associatePublicIpAddress" not in instance.inputs
        # Windows nodes: no key pair and no password retrieval; the script needs neither.
        assert "getPasswordData" not in instance.inputs and "keyName" not in instance.inputs
        assert instance.inputs["userData"].startswith("<powershell>")
    for volume in run.of_type(VOLUME):
        assert volume.inputs["encrypted"] is True and volume.inputs["finalSnapshot"] is True
    for db in run.of_type(RDS):
        i = db.inputs
        assert i["storageEncrypted"] is True and i["publiclyAccessible"] is False
        assert i["manageMasterUserPassword"] is True and "password" not in i
        assert i["skipFinalSnapshot"] is False and i["finalSnapshotIdentifier"].endswith("-final")
        assert i["backupRetentionPeriod"] >= 1 and i["deletionProtection"] is True
        assert i["dbSubnetGroupName"] == run.named("fme-aa-db-subnets").outputs["name"]
    params = run.named("fme-aa-db-params").inputs["parameters"]
    assert {"name": "rds.force_ssl", "value": "1", "applyMethod": "pending-reboot"} in params
    assert run.named("fme-aa-image-copy").inputs["encrypted"] is True


@pytest.mark.parametrize("fme", [LINUX, {"version": "2026.1"}])
def test_no_plaintext_secret_in_any_input_or_output(fme: dict) -> None:
    share = "efs" if fme is LINUX else "ebs"
    run = run_program(example(nodeCount=3, share={"kind": share}, fme=fme))
    for r in run.resources:
        blob = json.dumps(r.inputs, default=str).lower()
        for key in ("password", "passwordwo", "secretstring"):
            assert f'"{key}":' not in blob, f"{r.name} has a {key} input"
        if r.type == INSTANCE:
            script = _script(r)
            assert _var(script, "DB_SECRET_ARN").startswith("arn:aws:secretsmanager:")
            header = script.split("# --- fme-aa node bootstrap body")[0]
            names = re.findall(r"^(?:readonly (\w+)=|\$(\w+) = )", header, re.M)
            assert names and not [n for n in names if "password" in "".join(n).lower()]
    assert "password" not in json.dumps(run.exports).lower()


@pytest.mark.parametrize(("fme", "device"), [({"version": "2026.1"}, "xvdf"), (LINUX, "/dev/sdf")])
def test_the_share_volume_is_attached_under_the_platforms_device_name(fme: dict, device: str) -> None:
    run = run_program(example(nodeCount=2, fme=fme))
    attachments = run.of_type("aws:ec2/volumeAttachment:VolumeAttachment")
    assert len(attachments) == 2 and {a.inputs["deviceName"] for a in attachments} == {device}
    assert all("dbName" not in db.inputs for db in run.of_type(RDS))  # FME's createDB.sql makes it


def test_https_listener_with_redirect_when_a_certificate_is_set() -> None:
    run = run_program(example(loadBalancer={"certificateArn": CERT}))
    listeners = {r.name: r.inputs for r in run.of_type(LISTENER)}
    https = listeners["fme-aa-https"]
    assert (https["port"], https["protocol"], https["certificateArn"]) == (443, "HTTPS", CERT)
    assert https["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    redirect = listeners["fme-aa-http"]["defaultActions"][0]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}
    assert listeners["fme-aa-ws"]["protocol"] == "HTTPS"
    assert not run.warnings


def test_http_only_without_certificate_and_a_visible_warning() -> None:
    run = run_program(example())
    listeners = {r.name: r.inputs for r in run.of_type(LISTENER)}
    assert set(listeners) == {"fme-aa-http", "fme-aa-ws"}
    assert listeners["fme-aa-http"]["defaultActions"][0]["type"] == "forward"
    assert any("certificateArn is not set" in w for w in run.warnings)
    ports = {r.inputs["fromPort"] for r in run.of_type(INGRESS) if r.name.startswith("fme-aa-in-")}
    assert ports == {80, 7078}


@pytest.mark.parametrize(("fme", "port", "path", "check_port"), [
    ({"platform": "windows", "version": "2026.1"}, 8080, "/fmeapiv4/healthcheck/liveness", "80"),
    ({"platform": "windows", "version": "2022.2"}, 8080, "/fmerest/v3/healthcheck", "80"),
    (LINUX, 8080, "/fmeapiv4/healthcheck/liveness", "traffic-port"),
])
def test_target_groups_health_checks_stickiness_and_one_attachment_per_node(
    fme: dict, port: int, path: str, check_port: str
) -> None:
    run = run_program(example(nodeCount=3, fme=fme))
    web = run.named("fme-aa-web-tg").inputs
    assert (web["port"], web["healthCheck"]["path"], web["healthCheck"]["port"]) == (
        port, path, check_port)
    assert web["stickiness"]["type"] == "lb_cookie" and web["stickiness"]["enabled"] is True
    ws = run.named("fme-aa-ws-tg").inputs
    assert ws["port"] == 7078 and ws["healthCheck"]["matcher"] == "200-400"
    assert run.named("fme-aa-alb").inputs["idleTimeout"] == 300
    attachments = run.of_type(ATTACH)
    assert len(attachments) == 6
    instance_ids = {r.id for r in run.of_type(INSTANCE)}
    assert {a.inputs["targetId"] for a in attachments} == instance_ids
    for node in run.exports["inventory"]["nodes"]:
        assert node["restUrl"] == f"http://{node['privateIp']}:{port}"


def test_instance_role_reads_only_its_own_secret() -> None:
    run = run_program(example(nodeCount=2, share={"kind": "efs"}, fme=LINUX))
    for node in ("fme-1", "fme-2"):
        doc = json.loads(run.named(f"{node}-own-resources").inputs["policy"])
        resources = [s["Resource"] for s in doc["Statement"]]
        secret = run.named(f"{node}-db").outputs["masterUserSecrets"][0]["secretArn"]
        fs_id = run.named(f"{node}-share").id
        assert resources == [secret, f"arn:aws:elasticfilesystem:eu-west-1:123456789012:"
                                     f"file-system/{fs_id}"]
        assert "*" not in json.dumps(resources)
        assert run.named(f"{node}-ssm").inputs["policyArn"].endswith("AmazonSSMManagedInstanceCore")


def test_ami_lookup_is_resolved_once_pinned_and_used_by_every_node() -> None:
    run = run_program(example(nodeCount=3, ami={
        "lookup": {"namePattern": "FME Flow*", "owners": ["aws-marketplace"]},
        "copyToAccount": True}))
    pin = run.named("fme-aa-image-pin")
    assert pin.inputs["insecureValue"] == LOOKED_UP_AMI
    assert pin.inputs["name"] == "/fme-aa/fme-aa/source-ami-id"
    copy = run.named("fme-aa-image-copy")
    assert copy.inputs["sourceAmiId"] == LOOKED_UP_AMI
    assert {i.inputs["ami"] for i in run.of_type(INSTANCE)} == {copy.id}
    lookups = [args for token, args in run.calls if token == "aws:ec2/getAmi:getAmi"]
    assert len(lookups) == 1 and lookups[0]["mostRecent"] is True


def test_existing_vpc_is_used_without_building_one() -> None:
    run = run_program(example(nodeCount=2, network={"existing": {
        "vpcId": "vpc-0abc", "publicSubnetIds": ["subnet-0a1", "subnet-0a2"],
        "privateSubnetIds": ["subnet-0b1", "subnet-0b2"]}}))
    assert not run.of_type("aws:ec2/vpc:Vpc") and not run.of_type("aws:ec2/subnet:Subnet")
    assert {i.inputs["subnetId"] for i in run.of_type(INSTANCE)} == {"subnet-0b1", "subnet-0b2"}
    assert run.named("fme-aa-alb").inputs["subnets"] == ["subnet-0a1", "subnet-0a2"]
    for volume in run.of_type(VOLUME):
        assert volume.inputs["availabilityZone"].startswith("eu-west-1")


def test_new_vpc_spans_two_azs_with_private_nodes() -> None:
    run = run_program(example(nodeCount=2))
    subnets = {r.name: r.inputs for r in run.of_type("aws:ec2/subnet:Subnet")}
    assert set(subnets) == {"fme-aa-public-0", "fme-aa-public-1", "fme-aa-private-0",
                            "fme-aa-private-1"}
    assert len({s["availabilityZone"] for s in subnets.values()}) == 2
    private_ids = {r.id for r in run.of_type("aws:ec2/subnet:Subnet") if "private" in r.name}
    instances = run.of_type(INSTANCE)
    assert {i.inputs["subnetId"] for i in instances} == private_ids  # fme-1, fme-2 in two AZs
    assert run.named("fme-aa-alb").inputs["internal"] is False
    assert run.named("fme-aa-default-sg").inputs.get("ingress") is None


def test_every_taggable_resource_carries_the_cluster_tags() -> None:
    run = run_program(example(nodeCount=2, share={"kind": "efs"}, fme=LINUX,
                              ami={"id": "ami-0123456789abcdef0", "copyToAccount": True}))
    for r in run.custom():
        if r.type in UNTAGGABLE:
            continue
        tags = r.inputs.get("tags")
        assert tags, f"{r.type} {r.name} has no tags"
        assert tags["fme-aa:cluster"] == "fme-aa" and tags["owner"] == "gis-platform"
        if r.name.startswith("fme-1"):
            assert tags["fme-aa:node"] == "fme-1"
    for instance in run.of_type(INSTANCE):
        assert instance.inputs["tags"]["fme-aa:role"] == "fme-node"


def test_children_are_parented_to_components() -> None:
    run = run_program(example(nodeCount=1))
    components = {r.type for r in run.resources if not r.custom}
    assert components == {"fme-aa:index:Cluster", "fme-aa:index:Network",
                          "fme-aa:index:FmeImage", "fme-aa:index:LoadBalancer",
                          "fme-aa:index:FmeNode"}


@pytest.mark.parametrize(("bad", "message"), [
    # Pulumi passes scalars as strings, and the message shows what was given.
    ({"nodeCount": "0"}, "fme-aa:nodeCount: Input should be greater than or equal to 1 (got '0')"),
    ({"share": {"kind": "nfs"}}, "fme-aa:share.kind: Input should be 'ebs' or 'efs' (got 'nfs')"),
    ({"nodes": ["a", "a"]}, "duplicate node names: a"),
    ({"loadBalancr": {}}, "fme-aa:loadBalancr: unknown setting"),
    ({"ami": {}}, "set exactly one of 'id'"),
    ({"network": {"new": {"cidr": "10.0.0.0/33"}}}, "fme-aa:network.new.cidr"),
    ({"adminCidr": "everyone"}, "fme-aa:adminCidr: 'everyone' is not a valid CIDR"),
])
def test_invalid_config_fails_with_a_specific_message_before_any_resource(
    bad: dict, message: str
) -> None:
    config = example(**bad)
    if "nodes" in bad:
        config.pop("nodeCount")
    mocks = RecordingMocks()
    with pytest.raises(StackConfigError) as caught:
        run_program(config, mocks=mocks)
    assert message in str(caught.value)
    assert mocks.resources == []
