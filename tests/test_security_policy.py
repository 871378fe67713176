"""Infrastructure policy: the Pulumi resources (under mocks) against the applicable AWS
Foundational Security Best Practices controls. Prints the table of controls checked."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from components.preview import ProgramRun
from tests.program_runs import run_program
from tests.stack_fixtures import CERT, LINUX, example

RECOMMENDED_TLS = {"ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
                   "ELBSecurityPolicy-TLS13-1-3-2021-06"}


def _instances(run: ProgramRun) -> list[Any]:
    return run.of_type("aws:ec2/instance:Instance")


IMDS_V2_ONLY = {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}


def ec2_8(run: ProgramRun) -> list[str]:
    """IMDS on, v2 only (a session token for every call), one hop: nothing behind the node (a
    container) reaches the role's credentials."""
    return [i.name for i in _instances(run)
            if {k: (i.inputs.get("metadataOptions") or {}).get(k) for k in IMDS_V2_ONLY}
            != IMDS_V2_ONLY]


def ec2_3(run: ProgramRun) -> list[str]:
    bad = [v.name for v in run.of_type("aws:ebs/volume:Volume") if v.inputs.get("encrypted") is not True]
    return bad + [i.name for i in _instances(run)
                  if (i.inputs.get("rootBlockDevice") or {}).get("encrypted") is not True]


def efs_1(run: ProgramRun) -> list[str]:
    return [f.name for f in run.of_type("aws:efs/fileSystem:FileSystem")
            if f.inputs.get("encrypted") is not True]


# The keys an IAM policy statement may have (IAM JSON policy element reference): anything else
# makes AWS refuse the policy.
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                  "NotResource", "Condition"}
EFS_CLIENT_ACTIONS = {"elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite",
                      "elasticfilesystem:ClientRootAccess"}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def efs_access(run: ProgramRun) -> list[str]:
    """Every EFS file-system policy (policy language 2012-10-17) denies everything without TLS to
    everyone on its file system, and EVERY Allow statement names only the node's own role (never
    `*`, never another node's role), the mount/write/root client actions only, on its own file
    system."""
    roles = {r.name.removesuffix("-role"): r.outputs.get("arn") for r in run.of_type(
        "aws:iam/role:Role")}
    systems = {f.name.removesuffix("-share"): f.outputs.get("arn") for f in run.of_type(
        "aws:efs/fileSystem:FileSystem")}
    bad = []
    for policy in run.of_type("aws:efs/fileSystemPolicy:FileSystemPolicy"):
        node = policy.name.removesuffix("-share-policy")
        document = json.loads(policy.inputs["policy"])
        statements = document["Statement"]
        tls = any(st["Effect"] == "Deny" and st.get("Principal") == {"AWS": "*"}
                  and st.get("Action") == "*" and st.get("Resource") == systems.get(node)
                  and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
                  for st in statements)
        allows = [st for st in statements if st["Effect"] == "Allow"]
        principals = [p for st in allows for p in _listed(st["Principal"]["AWS"])]
        actions = {a for st in allows for a in _listed(st["Action"])}
        resources = {r for st in allows for r in _listed(st["Resource"])}
        if document.get("Version") != "2012-10-17" or not tls or not allows \
                or any(set(st) - STATEMENT_KEYS for st in statements) \
                or any(p != roles.get(node) for p in principals) \
                or not actions <= EFS_CLIENT_ACTIONS or resources != {systems.get(node)}:
            bad.append(policy.name)
    return bad


def _rds(run: ProgramRun, check: Callable[[dict], bool]) -> list[str]:
    return [d.name for d in run.of_type("aws:rds/instance:Instance") if not check(d.inputs)]


def rds_3(run: ProgramRun) -> list[str]:
    return _rds(run, lambda i: i.get("storageEncrypted") is True)


def rds_2(run: ProgramRun) -> list[str]:
    return _rds(run, lambda i: i.get("publiclyAccessible") is False)


def rds_11(run: ProgramRun) -> list[str]:
    return _rds(run, lambda i: float(i.get("backupRetentionPeriod") or 0) >= 7)


def rds_8(run: ProgramRun) -> list[str]:
    return _rds(run, lambda i: i.get("deletionProtection") is True)


def _listeners(run: ProgramRun) -> list[Any]:
    return run.of_type("aws:lb/listener:Listener")


def elb_1(run: ProgramRun) -> list[str]:
    bad = []
    for listener in _listeners(run):
        if listener.inputs.get("protocol") == "HTTP":
            action = listener.inputs["defaultActions"][0]
            redirect = action.get("redirect") or {}
            if action.get("type") != "redirect" or redirect.get("protocol") != "HTTPS" \
                    or redirect.get("port") != "443" \
                    or redirect.get("statusCode") not in ("HTTP_301", "HTTP_302"):
                bad.append(listener.name)
    return bad


def elb_17(run: ProgramRun) -> list[str]:
    return [listener.name for listener in _listeners(run) if listener.inputs.get("protocol") == "HTTPS"
            and listener.inputs.get("sslPolicy") not in RECOMMENDED_TLS]


def elb_4(run: ProgramRun) -> list[str]:
    return [b.name for b in run.of_type("aws:lb/loadBalancer:LoadBalancer")
            if b.inputs.get("dropInvalidHeaderFields") is not True]


def ec2_18(run: ProgramRun) -> list[str]:
    """0.0.0.0/0 (or ::/0) only to the ALB's security group, only on its listener ports."""
    listener_ports = {int(listener.inputs["port"]) for listener in _listeners(run)}
    alb_groups = {sg for b in run.of_type("aws:lb/loadBalancer:LoadBalancer")
                  for sg in b.inputs.get("securityGroups", [])}
    bad = []
    for rule in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        if rule.inputs.get("cidrIpv4") == "0.0.0.0/0" or rule.inputs.get("cidrIpv6") == "::/0":
            ports = set(range(int(rule.inputs["fromPort"]), int(rule.inputs["toPort"]) + 1))
            if rule.inputs["securityGroupId"] not in alb_groups or not ports <= listener_ports:
                bad.append(rule.name)
    return bad


def iam_21(run: ProgramRun) -> list[str]:
    """Inline (customer) policies: no wildcard actions, no `Resource: *`."""
    bad = []
    for policy in run.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) \
                else [statement["Resource"]]
            if statement["Effect"] == "Allow" and (any("*" in a for a in actions) or "*" in resources):
                bad.append(f"{policy.name}:{statement.get('Sid')}")
    return bad


CONTROLS: list[tuple[str, str, Callable[[ProgramRun], list[str]]]] = [
    ("EC2.8", "EC2 instances use IMDSv2 (httpTokens=required)", ec2_8),
    ("EC2.3", "EBS volumes (share and root) encrypted at rest", ec2_3),
    ("EFS.1", "EFS file systems encrypted at rest", efs_1),
    ("EFS-TLS", "EFS policy: TLS required, only the node's own role allowed (fme-aa's own, "
                "not an FSBP control)", efs_access),
    ("RDS.3", "RDS storage encrypted at rest", rds_3),
    ("RDS.2", "RDS instances not publicly accessible", rds_2),
    ("RDS.11", "RDS automatic backups (retention >= 7 days)", rds_11),
    ("RDS.8", "RDS deletion protection", rds_8),
    ("ELB.1", "ALB redirects HTTP to HTTPS", elb_1),
    ("ELB.17", "HTTPS listeners use a recommended (TLS 1.2+/1.3) policy", elb_17),
    ("ELB.4", "ALB drops invalid HTTP headers", elb_4),
    ("EC2.18", "0.0.0.0/0 ingress only on the ALB's listener ports", ec2_18),
    ("IAM.21", "inline IAM policies without wildcard actions or resources", iam_21),
]


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    https = {"certificateArn": CERT, "allowedCidrs": ["0.0.0.0/0"]}
    return {"ebs": run_program(example(loadBalancer=https)),
            # EFS serves Linux nodes only (Windows cannot mount NFS as FME's System Share).
            "efs": run_program(example(loadBalancer=https, share={"kind": "efs"}, fme=LINUX))}


def test_foundational_security_best_practices(runs: dict[str, ProgramRun],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    rows, failures = [], {}
    for control, title, check in CONTROLS:
        for variant, run in runs.items():
            bad = check(run)
            if bad:
                failures[f"{control} ({variant})"] = bad
        rows.append((control, title, "pass" if not any(k.startswith(control + " ") for k in failures)
                     else "FAIL"))
    with capsys.disabled():
        print("\nAWS Foundational Security Best Practices, checked on the Pulumi resources "
              "(EBS and EFS variants, HTTPS):")
        for control, title, result in rows:
            print(f"  {control:<7} {result:<5} {title}")
    assert not failures, failures


def _first(run: ProgramRun, type_: str, where: Callable[[Any], bool] = lambda r: True) -> Any:
    return next(r for r in run.of_type(type_) if where(r))


def _set(resource: Any, **inputs: Any) -> str:
    resource.inputs.update(inputs)
    return resource.name


def _open_efs_to_everyone(run: ProgramRun) -> str:
    policy = _first(run, "aws:efs/fileSystemPolicy:FileSystemPolicy")
    document = json.loads(policy.inputs["policy"])
    document["Statement"][-1]["Principal"] = {"AWS": "*"}  # the Allow, not the first statement
    return _set(policy, policy=json.dumps(document))


def _wildcard_policy(run: ProgramRun) -> str:
    policy = _first(run, "aws:iam/rolePolicy:RolePolicy")
    _set(policy, policy=json.dumps({"Statement": [{"Sid": "x", "Effect": "Allow",
                                                   "Action": "s3:*", "Resource": "*"}]}))
    return f"{policy.name}:x"


def _plain_http_forward(run: ProgramRun) -> str:
    listener = _first(run, "aws:lb/listener:Listener", lambda r: r.inputs.get("protocol") == "HTTP")
    return _set(listener, defaultActions=[{"type": "forward", "targetGroupArn": "arn:tg"}])


def _ssh_from_anywhere(run: ProgramRun) -> str:
    rule = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")[-1]
    return _set(rule, cidrIpv4="0.0.0.0/0", fromPort=22, toPort=22)


INSTANCE, RDS = "aws:ec2/instance:Instance", "aws:rds/instance:Instance"
# control → how to break it on a copy of the EFS run → the name the check must report.
VIOLATIONS: dict[str, Callable[[ProgramRun], str]] = {
    "EC2.8": lambda run: _set(_first(run, INSTANCE), metadataOptions={"httpTokens": "optional"}),
    "EC2.3": lambda run: _set(_first(run, INSTANCE), rootBlockDevice={"encrypted": False}),
    "EFS.1": lambda run: _set(_first(run, "aws:efs/fileSystem:FileSystem"), encrypted=False),
    "EFS-TLS": _open_efs_to_everyone,
    "RDS.3": lambda run: _set(_first(run, RDS), storageEncrypted=False),
    "RDS.2": lambda run: _set(_first(run, RDS), publiclyAccessible=True),
    "RDS.11": lambda run: _set(_first(run, RDS), backupRetentionPeriod=1),
    "RDS.8": lambda run: _set(_first(run, RDS), deletionProtection=False),
    "ELB.1": _plain_http_forward,
    "ELB.17": lambda run: _set(_first(run, "aws:lb/listener:Listener",
                                      lambda r: r.inputs.get("protocol") == "HTTPS"),
                               sslPolicy="ELBSecurityPolicy-2016-08"),
    "ELB.4": lambda run: _set(_first(run, "aws:lb/loadBalancer:LoadBalancer"),
                              dropInvalidHeaderFields=False),
    "EC2.18": _ssh_from_anywhere,
    "IAM.21": _wildcard_policy,
}


def test_every_control_has_a_violation_case() -> None:
    assert set(VIOLATIONS) == {control for control, _, _ in CONTROLS}


@pytest.mark.parametrize(("control", "check"), [(c, f) for c, _, f in CONTROLS],
                         ids=[c for c, _, _ in CONTROLS])
def test_each_check_catches_its_violation(control: str, check: Callable[[ProgramRun], list[str]],
                                          runs: dict[str, ProgramRun]) -> None:
    """Each check fails on a resource that breaks its control (so a pass means something).
    The violation is made on a deep copy: the shared runs stay untouched for other tests."""
    run = copy.deepcopy(runs["efs"])
    assert check(run) == []
    broken = VIOLATIONS[control](run)
    assert broken in check(run)
    assert check(runs["efs"]) == []
