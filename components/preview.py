"""Offline stack preview: evaluate the real Pulumi program (`__main__.py` + components) under
Pulumi's mocks, with no cloud account and no Pulumi CLI, and record every resource's inputs.

Used by the test suite (assertions on resource inputs) and by `python -m components.preview
Pulumi.example.yaml`, which prints what `pulumi up` would create, per node, in the stack's
`aws:region`. The mocks invent ids, IPs and ARNs; everything else is exactly what the program
declares. A stack file that cannot be read is a one-line error; config problems (misspelt
namespaces included) are listed all at once by the program's own validation.
"""

from __future__ import annotations

import importlib.util
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import source_pb2

ROOT = Path(__file__).resolve().parent.parent  # the Pulumi project (where __main__.py lives)
DEFAULT_REGION = "eu-west-1"  # tests' region, when a stack config comes without `aws:region`
ACCOUNT = "123456789012"
LOOKED_UP_AMI = "ami-0fedcba9876543210"


@dataclass(frozen=True)
class RecordedOptions:
    """The resource options the program sent to the engine (what the mocks themselves never
    see): recorded from the RegisterResource request by `RecordingMonitor`."""

    urn: str = ""
    parent: str = ""
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    dependencies: tuple[str, ...] = ()  # URNs: depends_on plus every input's source
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Resource:
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    options: RecordedOptions = field(default_factory=RecordedOptions)


def _fake_id(name: str, prefix: str) -> str:
    return f"{prefix}-{zlib.crc32(name.encode()):08x}"


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self.resources: list[Resource] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.options: dict[tuple[str, str], RecordedOptions] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        out = dict(inputs)
        t, name = args.typ, args.name
        rid = _fake_id(name, "id")
        if t == "aws:ec2/instance:Instance":
            # From the name, not a counter: a node's IP must not move when another node goes.
            crc = zlib.crc32(name.encode())
            rid = _fake_id(name, "i")
            out["privateIp"] = f"10.40.{128 + crc % 64}.{10 + (crc >> 8) % 240}"
        elif t == "aws:rds/instance:Instance":
            host = f"{inputs['identifier']}.abc123.{self.region}.rds.amazonaws.com"
            out.update(address=host, port=5432, endpoint=f"{host}:5432",
                       masterUserSecrets=[{"secretArn": f"arn:aws:secretsmanager:{self.region}:{ACCOUNT}:"
                                           f"secret:rds!db-{inputs['identifier']}-AbCdEf",
                                           "secretStatus": "active", "kmsKeyId": ""}])
        elif t == "aws:ebs/volume:Volume":
            rid = _fake_id(name, "vol")
        elif t == "aws:efs/fileSystem:FileSystem":
            rid = _fake_id(name, "fs")
            out["arn"] = f"arn:aws:elasticfilesystem:{self.region}:{ACCOUNT}:file-system/{rid}"
        elif t == "aws:efs/accessPoint:AccessPoint":
            rid = _fake_id(name, "fsap")
        elif t in ("aws:ec2/amiCopy:AmiCopy", "aws:ec2/amiFromInstance:AmiFromInstance"):
            rid = _fake_id(name, "ami")
        elif t == "aws:ec2/subnet:Subnet":
            rid = _fake_id(name, "subnet")
        elif t == "aws:ec2/securityGroup:SecurityGroup":
            rid = _fake_id(name, "sg")
        elif t == "aws:ec2/vpc:Vpc":
            rid = _fake_id(name, "vpc")
        elif t == "aws:lb/loadBalancer:LoadBalancer":
            out.update(dnsName=f"{name}-123.{self.region}.elb.amazonaws.com",
                       arn=f"arn:aws:elasticloadbalancing:{self.region}:{ACCOUNT}:loadbalancer/app/{name}")
        elif t == "aws:lb/targetGroup:TargetGroup":
            out["arn"] = f"arn:aws:elasticloadbalancing:{self.region}:{ACCOUNT}:targetgroup/{name}/abc"
        elif t in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"):
            out.update(name=name, arn=f"arn:aws:iam::{ACCOUNT}:role/{name}")
        elif t == "aws:rds/parameterGroup:ParameterGroup" or t == "aws:rds/subnetGroup:SubnetGroup":
            out["name"] = name
        self.resources.append(Resource(t, name, inputs, args.custom, rid, out))
        return rid, out

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        self.calls.append((args.token, dict(args.args)))
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{c}" for c in "abcdef"]
            return {"names": names, "zoneIds": names, "id": self.region}, []
        if token == "aws:ec2/getAmi:getAmi":
            return {"id": LOOKED_UP_AMI, "imageId": LOOKED_UP_AMI, "name": "fme-flow-2025.1"}, []
        if token == "aws:index/getRegion:getRegion":
            return {"region": self.region, "name": self.region, "id": self.region}, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "id": ACCOUNT,
                    "userId": ACCOUNT}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if token == "aws:ec2/getSubnet:getSubnet":
            return {"id": args.args["id"],
                    "availabilityZone": f"{self.region}{'abc'[zlib.crc32(args.args['id'].encode()) % 3]}"}, []
        raise AssertionError(f"unexpected invoke {token}")


class RecordingMonitor(MockMonitor):
    """The mock engine, also recording each registration's resource options."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method's name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recording.options[(request.type, request.name)] = RecordedOptions(
                urn=response.urn, parent=request.parent,
                ignore_changes=tuple(request.ignoreChanges),
                replace_on_changes=tuple(request.replaceOnChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
                retain_on_delete=bool(request.retainOnDelete),
                dependencies=tuple(request.dependencies),
                property_dependencies={k: tuple(v.urns)
                                       for k, v in request.propertyDependencies.items()})
        return response


@dataclass
class ProgramRun:
    resources: list[Resource]
    calls: list[tuple[str, dict[str, Any]]]
    exports: dict[str, Any]
    warnings: list[str]

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> Resource:
        """The one AWS resource with this logical name (components share their node's name)."""
        matches = [r for r in self.resources if r.name == name and r.custom]
        assert len(matches) == 1, f"{len(matches)} resources named {name}"
        return matches[0]

    def custom(self) -> list[Resource]:
        return [r for r in self.resources if r.custom]


@dataclass
class StackFile:
    config: dict[str, Any]  # the project's keys, prefix removed
    region: str | None  # `aws:region`
    other: dict[str, Any]  # every other key, in full (the program reports misspelt namespaces)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML where a key given twice is an error: the last one silently winning hides a typo."""

    duplicates: list[str]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                self.duplicates.append(f"{key} is given twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_stack_file(path: Path, project: str = "fme-aa") -> StackFile:
    """A Pulumi.<stack>.yaml's `config:` section; StackConfigError if it cannot be read."""
    from config import StackConfigError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackConfigError(f"{path}: no such file (copy Pulumi.example.yaml to "
                               "Pulumi.<stack>.yaml and edit it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StackConfigError(f"{path}: cannot read it ({exc})") from None
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        document = loader.get_single_data() or {}
    except yaml.MarkedYAMLError as exc:
        def at(mark: Any) -> str:
            return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"

        context = f" ({exc.context} at {at(exc.context_mark)})" if exc.context else ""
        raise StackConfigError(f"{path}: malformed YAML at {at(exc.problem_mark)}: "
                               f"{exc.problem}{context}") from None
    finally:
        loader.dispose()
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackConfigError(f"{path}: no 'config:' mapping (see Pulumi.example.yaml)")
    problems = list(loader.duplicates)
    problems += [f"{k}: no namespace; write {project}:{k} (or aws:{k} for the AWS provider)"
                 for k in config if ":" not in str(k)]
    if problems:
        raise StackConfigError(f"{path}: " + "; ".join(problems))
    prefix = f"{project}:"
    return StackFile(
        config={k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)},
        region=config.get("aws:region"),
        other={k: v for k, v in config.items() if not k.startswith(prefix)})


def load_stack_file(path: Path, project: str = "fme-aa") -> dict[str, Any]:
    """The `config:` section of a Pulumi.<stack>.yaml as {key: value}, project prefix removed."""
    return read_stack_file(path, project).config


def config_values(config: dict[str, Any], project: str = "fme-aa") -> dict[str, str]:
    """Pulumi passes structured config as JSON strings and scalars as strings."""
    return {f"{project}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def run_program(
    config: dict[str, Any], capture_warnings: bool = True, mocks: RecordingMocks | None = None,
    region: str = DEFAULT_REGION, other_config: dict[str, Any] | None = None,
) -> ProgramRun:
    """Evaluate `__main__.py` with this stack config (the project's keys; `other_config`: any
    other keys in full) in `region`; return every resource and the exports."""
    mocks = mocks or RecordingMocks(region)
    pulumi.runtime.set_mocks(mocks, project="fme-aa", stack="test", preview=False,
                             monitor=RecordingMonitor(mocks))
    others = {k: v if isinstance(v, str) else json.dumps(v)
              for k, v in (other_config or {}).items()}
    pulumi.runtime.set_all_config({**others, "aws:region": region, **config_values(config)})
    warnings: list[str] = []
    original_warn = pulumi.log.warn
    if capture_warnings:
        pulumi.log.warn = lambda msg, *a, **k: warnings.append(msg)  # type: ignore[assignment]
    exports: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        spec = importlib.util.spec_from_file_location("fme_aa_program", ROOT / "__main__.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return pulumi.Output.all(module.cluster.inventory, module.cluster.image_id).apply(
            lambda v: exports.update(inventory=v[0], imageId=v[1]))

    # Under mocks nothing reads a resource's source position, and Pulumi computes it by walking
    # the whole call stack for every resource (a fifth of a run inside a test).
    stack_trace = getattr(pulumi_resource, "_get_stack_trace", None)
    if stack_trace is not None:
        pulumi_resource._get_stack_trace = source_pb2.StackTrace
    try:
        program()
    finally:
        pulumi.log.warn = original_warn  # type: ignore[assignment]
        if stack_trace is not None:
            pulumi_resource._get_stack_trace = stack_trace
    for resource in mocks.resources:
        resource.options = mocks.options.get((resource.type, resource.name), RecordedOptions())
    return ProgramRun(mocks.resources, mocks.calls, exports, warnings)


def _print_preview(run: ProgramRun, show_scripts: bool = False) -> None:
    from collections import Counter

    from rich.console import Console
    from rich.table import Table

    console = Console()
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    inventory = run.exports["inventory"]
    node_names = [n["name"] for n in inventory["nodes"]]
    per_node: dict[str, Counter[str]] = {n: Counter() for n in node_names}
    shared: Counter[str] = Counter()
    for r in run.custom():
        # Node resources are named after their node (untaggable ones too).
        owner = next((n for n in node_names if r.name == n or r.name.startswith(f"{n}-")), None)
        module, kind = r.type.split(":")[1].split("/")[0], r.type.split(":")[-1]
        (per_node[owner] if owner else shared)[f"{module}.{kind}"] += 1
    table = Table(title=f"pulumi up would create {len(run.custom())} resources (offline preview)")
    table.add_column("owner")
    table.add_column("resources")
    table.add_row("cluster (shared)", ", ".join(f"{c}×{t}" for t, c in sorted(shared.items())))
    for name in node_names:
        table.add_row(name, ", ".join(f"{c}×{t}" for t, c in sorted(per_node[name].items())))
    console.print(table)
    _print_user_data(console, run, node_names, show_scripts)
    console.print_json(data=inventory)


def _print_user_data(console: Any, run: ProgramRun, node_names: list[str], show_scripts: bool) -> None:
    """Each node's boot script: its language, sizes and confd command (or, with --user-data,
    the whole script, unpacked from the user data)."""
    from rich.table import Table

    from components.bootstrap import unpack_user_data

    table = Table(title="user data per node (--user-data prints each script)")
    for column in ("node", "script", "user data", "script size", "confd runs"):
        table.add_column(column)
    for name in node_names:
        user_data = run.named(name).inputs["userData"]
        script = unpack_user_data(user_data)
        windows = user_data.startswith("<powershell>")
        confd_args = next((line.split("=", 1)[1].strip(" @(") for line in script.splitlines()
                           if line.startswith(("$ConfdArgs =", "readonly CONFD_ARGS="))), "")
        confd = ("confd file --confdir … --file … --onetime" if confd_args.startswith(("'file'", "file"))
                 else "confd -confdir … -backend file -file … -onetime")
        table.add_row(name, "PowerShell (EC2Launch v2)" if windows else "bash (cloud-init)",
                      f"{len(user_data.encode())} B", f"{len(script.encode())} B", confd)
        if show_scripts:
            console.rule(f"{name}: the script its user data unpacks and runs")
            console.print(script, markup=False, highlight=False, soft_wrap=True)
    console.print(table)


ROLL_OUT_HINT = ("a changed image, instance type, root volume or bootstrap reaches new nodes "
                 "only; existing nodes keep what they run (pinned in Pulumi's state). Roll it "
                 "out with `fmeaa upgrade --stack STACK -i nodes.json -s CONTENT [--image ami-…]` "
                 "(surge: N nodes serve throughout) or `fmeaa upgrade --strategy in-place …` "
                 "(one node at a time, N−1 serve), or by hand with `fme-aa:rollout: NODE`.")


def instance_changes(before: ProgramRun, after: ProgramRun) -> dict[str, list[str]]:
    """Per node, what `pulumi up` from BEFORE's state to AFTER changes (`verb type name`), in
    the engine's order; nodes it leaves alone are absent."""
    from components.deployment_model import first_deployment, node_of, plan_up

    plan = plan_up(first_deployment(before), after)
    nodes = {n["name"] for run in (before, after) for n in run.exports["inventory"]["nodes"]}
    changes: dict[str, list[str]] = {}
    for verb, (type_token, name) in plan.steps:
        owner = node_of(name, nodes)
        if owner is not None and type_token.startswith("aws:"):
            changes.setdefault(owner, []).append(f"{verb} {type_token.split(':')[-1]} {name}")
    return changes


def _print_rollout(run: ProgramRun, before: ProgramRun | None, config: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console()
    rollout = config.get("rollout")
    if before is not None:
        changes = instance_changes(before, run)
        console.print(f"[bold]from the --before stack to this one:[/] {len(changes)} node(s) "
                      f"change: {', '.join(sorted(changes)) or 'none'}")
        for node, steps in sorted(changes.items()):
            console.print(f"  {node}: " + "; ".join(steps))
        if not changes:
            console.print(f"  {ROLL_OUT_HINT}")
        return
    if rollout:
        console.print(f"[bold]rollout:[/] only {rollout}'s instance takes this stack's image, "
                      "instance type, root volume and bootstrap in this `pulumi up` (replaced "
                      "delete-before-create if the image or bootstrap differs, stop/start if only "
                      "the type); every other node keeps what it runs.")
    else:
        console.print(f"[bold]node instances:[/] {ROLL_OUT_HINT}")


def main(argv: list[str] | None = None) -> int:
    import sys
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    args = list(sys.argv[1:] if argv is None else argv)
    show_scripts = "--user-data" in args
    args = [a for a in args if a != "--user-data"]
    before_file = None
    if "--before" in args:  # the stack file as deployed: print what changes, per node
        at = args.index("--before")
        if at + 1 >= len(args):
            print("usage: preview [Pulumi.<stack>.yaml] [--user-data] [--before "
                  "Pulumi.<stack>.yaml as deployed]", file=sys.stderr)
            return 2
        before_file = Path(args[at + 1])
        del args[at:at + 2]
    stack_file = Path(args[0]) if args else ROOT / "Pulumi.example.yaml"
    from config import StackConfigError

    before = None
    current = stack_file
    try:
        stack = read_stack_file(stack_file)
    except StackConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # Like the AWS provider: the stack's aws:region, else the environment's.
    region = stack.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        print(f"error: {stack_file}: aws:region is not set (add `aws:region: eu-west-1` under "
              "config:, or set $AWS_REGION)", file=sys.stderr)
        return 1
    try:
        run = run_program(stack.config, capture_warnings=True, region=str(region),
                          other_config=stack.other)
        if before_file is not None:
            current = before_file
            deployed = read_stack_file(before_file)
            before = run_program(deployed.config, capture_warnings=True, region=str(region),
                                 other_config=deployed.other)
    except StackConfigError as exc:
        print(f"error: {current}: {exc}", file=sys.stderr)
        return 1
    _print_preview(run, show_scripts)
    _print_rollout(run, before, stack.config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
