"""Drain, undrain, scale-in check, seeding and rolling maintenance: moto in server mode for the
load balancer, emulated nodes for FME."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from fmeaa.app.seed import SeedError, SeedRequest, seed_node
from fmeaa.cluster.credentials import CredentialSource
from fmeaa.cluster.inventory import load_inventory
from fmeaa.cluster.target_group import TargetGroups
from fmeaa.emulator import Sandbox
from tests.aws_server import REGION, make_cluster, sandbox_inventory
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import EXAMPLE, fmeaa, node_items

FAST = ["--poll", "0.05"]


@pytest.fixture
def cluster(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Sandbox, Path, dict]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    made = make_cluster("sandbox", ["fme-1", "fme-2", "fme-3"], other_cluster=False,
                        registered=["fme-1", "fme-2", "fme-3"])
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, sandbox_inventory(box, made, tmp_path / "nodes.json"), made


def registered(inv: Path) -> dict[str, str]:
    return TargetGroups(load_inventory(inv)).in_service()


def test_drain_and_undrain_change_registration(cluster: tuple[Sandbox, Path, dict]) -> None:
    _, inv, made = cluster
    assert registered(inv) == {"fme-1": "healthy", "fme-2": "healthy", "fme-3": "healthy"}
    assert fmeaa("drain", "fme-2", "-i", inv, *FAST).code == 0
    assert registered(inv) == {"fme-1": "healthy", "fme-3": "healthy"}
    ws = boto3.client("elbv2", region_name=REGION).describe_target_health(
        TargetGroupArn=made["ws"])["TargetHealthDescriptions"]
    assert made["ids"]["fme-2"] not in {d["Target"]["Id"] for d in ws}  # websocket group too
    nodes = {r["name"]: r for r in fmeaa("nodes", "-i", inv, "--json").json["nodes"]}
    assert nodes["fme-2"]["inLoadBalancer"] == "not registered"
    assert nodes["fme-1"]["inLoadBalancer"] == "healthy"
    # A second node may not go while one is out: the cluster would drop below N-1.
    refused = fmeaa("drain", "fme-3", "-i", inv, *FAST)
    assert refused.code == 1 and "fewer than N−1 = 2" in refused.err and "fme-2" in refused.err
    assert "fme-3" in registered(inv)
    assert fmeaa("undrain", "fme-2", "-i", inv, *FAST).code == 0
    assert registered(inv) == {"fme-1": "healthy", "fme-2": "healthy", "fme-3": "healthy"}


def test_drain_waits_for_running_jobs_then_times_out_clearly(
        cluster: tuple[Sandbox, Path, dict]) -> None:
    box, inv, _ = cluster
    box.node("fme-1").state.running_jobs = [{"id": 41, "status": "RUNNING"},
                                            {"id": 42, "status": "RUNNING"}]
    result = fmeaa("drain", "fme-1", "-i", inv, "--wait-jobs", "--job-timeout", "1", *FAST)
    assert result.code == 1
    assert "fme-1 still runs 2 job(s) after 1 s (ids 41, 42)" in result.err
    assert "fme-1" not in registered(inv)  # drained anyway: no new work reaches it
    box.node("fme-1").state.running_jobs = []
    assert fmeaa("drain", "fme-1", "-i", inv, "--wait-jobs", "--force", *FAST).code == 0


def test_scale_in_check(cluster: tuple[Sandbox, Path, dict], tmp_path: Path) -> None:
    box, inv, _ = cluster
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0  # fme-1 owns the 'one' schedules
    first = fmeaa("scale-in-check", "fme-1", "-i", inv, "--json")
    assert first.code == 1
    checks = {c["check"]: c for c in first.json["checks"]}
    assert not checks["out of the load balancer"]["ok"]
    assert not checks["owns no 'one' schedules"]["ok"]
    assert "Parcels/nightly-parcels" in checks["owns no 'one' schedules"]["detail"]
    # fme-3 owns nothing; once drained and idle it is safe.
    box.node("fme-3").state.running_jobs = [{"id": 7}]
    assert fmeaa("drain", "fme-3", "-i", inv, *FAST).code == 0
    busy = fmeaa("scale-in-check", "fme-3", "-i", inv, "--json")
    assert busy.code == 1 and [c["ok"] for c in busy.json["checks"]] == [True, False, True]
    box.node("fme-3").state.running_jobs = []
    assert fmeaa("scale-in-check", "fme-3", "-i", inv).code == 0


def test_seeding_a_fresh_byol_clone_before_it_is_registered(
        cluster: tuple[Sandbox, Path, dict], tmp_path: Path) -> None:
    box, inv, made = cluster
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
    new = box.add_node()  # fme-4: an empty clone with a new machine identity
    new.state.unlicense()
    ec2 = boto3.client("ec2", region_name=REGION)
    made["ids"]["fme-4"] = ec2.run_instances(ImageId="ami-12345678", MinCount=1,
                                             MaxCount=1)["Instances"][0]["InstanceId"]
    sandbox_inventory(box, made, inv)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name="fme-aa/admin", SecretString=json.dumps(
        {"username": "admin", "password": TEST_PASSWORD}))
    secrets.create_secret(Name="fme-aa/serial", SecretString=json.dumps(
        {"serialNumber": "ABCD-EFGH-JKLM", "email": "ops@example.com"}))
    request = SeedRequest(node="fme-4", rest_url=new.url, default_owner="fme-1",
                          source=str(EXAMPLE), credentials_secret_id="fme-aa/admin", region=REGION,
                          license_mode="byol", serial_secret_id="fme-aa/serial", timeout_s=30)
    report = seed_node(request, poll_s=0.05)  # what the Pulumi NodeSeed runs
    assert report["applied"] == 15 and report["licence"]["isLicensed"] is True
    assert "fme-4" not in registered(inv)  # seeding never registers: the attachment does
    # Parity holds before the node takes traffic; schedules stay owned by fme-1.
    verify = fmeaa("verify", "-s", EXAMPLE, "-i", inv, "--json")
    assert verify.code == 0, verify.out
    row = next(r for r in verify.json["rows"] if r["key"] == "Parcels/nightly-parcels")
    assert row["enabledOn"] == ["fme-1"]
    # `fmeaa seed` (manual mode) then registers it.
    assert fmeaa("seed", "fme-4", "-s", EXAMPLE, "-i", inv, *FAST).code == 0
    assert registered(inv)["fme-4"] == "healthy"
    nodes = {r["name"]: r for r in fmeaa("nodes", "-i", inv, "--json").json["nodes"]}
    assert nodes["fme-4"]["licensed"] is True and nodes["fme-4"]["licenseExpiry"]


def test_seeding_failures_leave_the_node_out(cluster: tuple[Sandbox, Path, dict]) -> None:
    box, inv, _ = cluster
    assert fmeaa("drain", "fme-3", "-i", inv, *FAST).code == 0
    box.node("fme-3").state.unlicense()
    credentials = CredentialSource.from_env()
    bad_serial = SeedRequest(node="fme-3", rest_url=box.node("fme-3").url, default_owner="fme-1",
                             source=str(EXAMPLE), license_mode="byol", timeout_s=5)
    with pytest.raises(SeedError, match="licence request failed: Invalid serial number"):
        seed_node(bad_serial, credentials, serial={"serialNumber": "nope"}, poll_s=0.05)
    box.node("fme-3").stop()
    down = fmeaa("seed", "fme-3", "-s", EXAMPLE, "-i", inv, "--wait", "1", *FAST)
    assert down.code == 1 and "FME health check: still not ready after 1 s" in down.err
    assert "Can this machine reach" in down.err and "seed.mode" in down.err
    assert "fme-3" not in registered(inv)
    assert len(node_items(box, "fme-3")) == 0


def test_rolling_maintenance_keeps_n_minus_1(cluster: tuple[Sandbox, Path, dict],
                                             tmp_path: Path) -> None:
    box, inv, made = cluster
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
    log = tmp_path / "in-service.log"
    probe = tmp_path / "probe.py"
    # The "maintenance": count nodes in service, and on fme-2 delete every repository of the
    # content through its REST API (a rebuilt node has FME's own Samples only): only rolling's
    # re-seed can bring the content back.
    probe.write_text(
        "import boto3, os, sys\n"
        "from fmeaa.client import connect\n"
        f"d = boto3.client('elbv2', region_name='{REGION}').describe_target_health("
        f"TargetGroupArn='{made['web']}')['TargetHealthDescriptions']\n"
        "node = os.environ['FMEAA_NODE']\n"
        f"open({str(log)!r}, 'a').write(f\"{{node}} {{len(d)}}\\n\")\n"
        "if node == 'fme-2':\n"
        "    with connect(node, os.environ['FMEAA_NODE_URL'], username='admin',\n"
        "                 password=os.environ['FMEAA_PASSWORD']) as c:\n"
        "        for r in c.repositories():\n"
        "            if r['name'] != 'Samples':\n"
        "                c.delete_repository(r['name'])\n")
    synced = node_items(box, "fme-2")
    assert len(synced) == 5
    result = fmeaa("rolling", "--exec", f"{sys.executable} {probe}", "-s", EXAMPLE,
                   "-i", inv, *FAST)
    assert result.code == 0, result.err
    assert log.read_text().split("\n")[:-1] == ["fme-1 2", "fme-2 2", "fme-3 2"]
    assert registered(inv) == {"fme-1": "healthy", "fme-2": "healthy", "fme-3": "healthy"}
    assert node_items(box, "fme-2") == synced  # every item back, byte for byte
    assert fmeaa("verify", "-s", EXAMPLE, "-i", inv).code == 0
    failing = fmeaa("rolling", "--exec", f"{sys.executable} -c 'raise SystemExit(3)'", "-s",
                    EXAMPLE, "-i", inv, *FAST)
    assert failing.code == 1 and "--exec failed on fme-1 (exit 3)" in failing.err
    assert "done: none" in failing.err  # it stops at the first failure


# --- licences: an unlicensed node is never registered (issue 13, item 4) -------------------------
def _serial_secret() -> str:
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="fme-aa/serial", SecretString=json.dumps({"serialNumber": "ABCD-EFGH-JKLM",
                                                        "email": "ops@example.com"}))
    return "fme-aa/serial"


def test_seed_refuses_to_register_an_unlicensed_node(cluster: tuple[Sandbox, Path, dict]) -> None:
    box, inv, _ = cluster
    assert fmeaa("drain", "fme-3", "-i", inv, *FAST).code == 0
    box.node("fme-3").state.unlicense()  # a BYOL clone: new machine identity, no licence
    refused = fmeaa("seed", "fme-3", "-s", EXAMPLE, "-i", inv, *FAST)
    assert refused.code == 1, refused.out
    assert "fme-3 is NOT licensed" in refused.err and "not registered" in refused.err
    assert "--license-mode byol --serial-secret-id" in refused.err
    assert "fme-3" not in registered(inv)
    # BYOL without the serial's secret: refused before any node is touched.
    no_serial = fmeaa("seed", "fme-3", "-s", EXAMPLE, "-i", inv, "--license-mode", "byol", *FAST)
    assert no_serial.code == 1 and "--serial-secret-id" in no_serial.err
    secret = _serial_secret()
    seeded = fmeaa("seed", "fme-3", "-s", EXAMPLE, "-i", inv, "--license-mode", "byol",
                   "--serial-secret-id", secret, "--json", *FAST)
    assert seeded.code == 0, seeded.err
    assert seeded.json["licence"]["isLicensed"] is True and seeded.json["registered"] is True
    assert registered(inv)["fme-3"] == "healthy"


def test_seed_takes_the_licence_settings_from_the_inventory(
        cluster: tuple[Sandbox, Path, dict]) -> None:
    box, inv, _ = cluster
    assert fmeaa("drain", "fme-2", "-i", inv, *FAST).code == 0
    box.node("fme-2").state.unlicense()
    doc = json.loads(inv.read_text())
    doc["license"] = {"mode": "byol", "serialSecretId": _serial_secret()}  # what `pulumi up` exports
    inv.write_text(json.dumps(doc))
    seeded = fmeaa("seed", "fme-2", "-s", EXAMPLE, "-i", inv, *FAST)
    assert seeded.code == 0, seeded.err
    assert box.node("fme-2").state.license["licensed"] is True
    assert registered(inv)["fme-2"] == "healthy"


def test_rolling_stops_at_an_unlicensed_node_and_resumes_from_it(
        cluster: tuple[Sandbox, Path, dict]) -> None:
    box, inv, _ = cluster
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
    box.node("fme-2").state.unlicense()
    first = fmeaa("rolling", "--exec", "true", "-s", EXAMPLE, "-i", inv, *FAST)
    assert first.code == 1
    assert "fme-2 is NOT licensed" in first.err and "done: fme-1" in first.err
    assert f"fmeaa undrain fme-2 -i {inv}" in first.err and "--from fme-2" in first.err
    assert registered(inv) == {"fme-1": "healthy", "fme-3": "healthy"}  # fme-2 stays out
    # A plain re-run starts at fme-1, and the N−1 guard refuses it (fme-2 is out): resume instead.
    again = fmeaa("rolling", "--exec", "true", "-s", EXAMPLE, "-i", inv, *FAST)
    assert again.code == 1 and "fewer than N−1" in again.err
    resumed = fmeaa("rolling", "--from", "fme-2", "--exec", "true", "-s", EXAMPLE, "-i", inv,
                    "--license-mode", "byol", "--serial-secret-id", _serial_secret(), "--json",
                    *FAST)
    assert resumed.code == 0, resumed.err
    assert resumed.json["nodes"] == ["fme-2", "fme-3"]
    assert registered(inv) == {"fme-1": "healthy", "fme-2": "healthy", "fme-3": "healthy"}
    unknown = fmeaa("rolling", "--from", "fme-9", "--exec", "true", "-s", EXAMPLE, "-i", inv)
    assert unknown.code == 1 and "fme-9" in unknown.err and "fme-1, fme-2, fme-3" in unknown.err


# --- rolling --exec: a shell command, node values in the environment (issue 13, item 11) ---------
def test_rolling_exec_runs_in_a_shell_with_the_node_in_its_environment(
        cluster: tuple[Sandbox, Path, dict], tmp_path: Path) -> None:
    _, inv, made = cluster
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
    log = tmp_path / "exec.log"
    command = (f'echo "$FMEAA_NODE $FMEAA_INSTANCE_ID {{kept}}" >> {log} && '
               'test -n "$FMEAA_NODE_URL"')
    result = fmeaa("rolling", "--exec", command, "-s", EXAMPLE, "-i", inv, *FAST)
    assert result.code == 0, result.err
    assert log.read_text().splitlines() == [f"{n} {made['ids'][n]} {{kept}}"
                                           for n in ("fme-1", "fme-2", "fme-3")]


@pytest.mark.parametrize("command, why", [
    ("exit 3", "exit 3"),
    ("no-such-maintenance-tool --now", "exit 127"),
    ("echo 'unbalanced", "exit 2"),
])
def test_a_failed_exec_puts_a_healthy_node_back_and_says_how_to_resume(
        cluster: tuple[Sandbox, Path, dict], command: str, why: str) -> None:
    _, inv, _ = cluster
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
    result = fmeaa("rolling", "--exec", command, "-s", EXAMPLE, "-i", inv, *FAST)
    assert result.code == 1
    assert f"--exec failed on fme-1 ({why})" in result.err
    assert "put back in the load balancer" in result.err and "--from fme-1" in result.err
    assert registered(inv) == {"fme-1": "healthy", "fme-2": "healthy", "fme-3": "healthy"}


def test_a_failed_exec_on_an_unfit_node_leaves_it_drained_and_says_what_is_left(
        cluster: tuple[Sandbox, Path, dict]) -> None:
    box, inv, _ = cluster
    box.node("fme-1").state.unlicense()  # not fit to serve: must stay out
    result = fmeaa("rolling", "--exec", "exit 4", "-s", EXAMPLE, "-i", inv, *FAST)
    assert result.code == 1
    assert "--exec failed on fme-1 (exit 4)" in result.err and "fme-1 stays drained" in result.err
    assert f"fmeaa undrain fme-1 -i {inv}" in result.err
    assert "fme-1" not in registered(inv)


def test_rolling_refuses_the_old_brace_placeholders(cluster: tuple[Sandbox, Path, dict]) -> None:
    _, inv, _ = cluster
    result = fmeaa("rolling", "--exec", "ssh {node} sudo reboot", "-s", EXAMPLE, "-i", inv, *FAST)
    assert result.code == 1 and "$FMEAA_NODE" in result.err
    assert len(registered(inv)) == 3  # refused before anything was drained


@pytest.mark.parametrize(("source", "expected"), [
    ("missing", ["no-such-content: no such directory"]),
    ("two-problems", ["2 problem(s)", "clip_roads.fmw' does not exist", "'bogus'"]),
    ("node:fme-9", ["no node named 'fme-9'"]),
])
def test_a_bad_seed_source_is_refused_before_any_node_is_drained_or_locked(
        cluster: tuple[Sandbox, Path, dict], tmp_path: Path, source: str,
        expected: list[str]) -> None:
    """Found only when the first node was brought back, a typo in -s left it drained after its
    maintenance command had run; `seed` locked the cluster and waited for the node first."""
    box, inv, _ = cluster
    if source == "two-problems":
        source = str(shutil.copytree(EXAMPLE, tmp_path / "content"))
        (tmp_path / "content/workspaces/roads/clip_roads.fmw").unlink()
        manifest = tmp_path / "content/fmeaa-content.yaml"
        manifest.write_text(manifest.read_text().replace('"0 0 2 * * ?"', '"bogus"'))
    elif source == "missing":
        source = str(tmp_path / "no-such-content")
    ran = tmp_path / "ran"
    requests = [n.request_count for n in box.nodes]
    rolling = fmeaa("rolling", "--exec", f"touch {ran}", "-s", source, "-i", inv, *FAST)
    seed = fmeaa("seed", "fme-2", "-s", source, "-i", inv, *FAST)
    for result in (rolling, seed):
        assert result.code == 1
        for fragment in expected:
            assert fragment in result.err, result.err
    assert not ran.exists()
    assert len(registered(inv)) == 3
    assert [n.request_count for n in box.nodes] == requests  # not even locked


# --- the load balancer: one client per command, and no check without it (items 16, 18) -----------
def test_drain_timeout_names_the_real_option(cluster: tuple[Sandbox, Path, dict]) -> None:
    box, inv, _ = cluster
    box.node("fme-2").state.running_jobs = [{"id": 9, "status": "RUNNING"}]
    result = fmeaa("drain", "fme-2", "-i", inv, "--wait-jobs", "--job-timeout", "1", *FAST)
    assert result.code == 1 and "raise --job-timeout" in result.err
    assert "--timeout" not in result.err.replace("--job-timeout", "")


def test_one_load_balancer_client_per_command_run(cluster: tuple[Sandbox, Path, dict],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _, inv, _ = cluster
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
    made: list[str] = []
    real = boto3.session.Session.client

    def counting(self: boto3.session.Session, service: str, *args: object, **kw: object) -> object:
        made.append(service)
        return real(self, service, *args, **kw)

    monkeypatch.setattr(boto3.session.Session, "client", counting)
    assert fmeaa("rolling", "--exec", "true", "-s", EXAMPLE, "-i", inv, *FAST).code == 0
    assert made.count("elbv2") == 1, made


def test_scale_in_check_refuses_when_it_cannot_see_the_load_balancer(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    inv = sandbox.write_inventory(tmp_path / "nodes.json")  # a sandbox without --load-balancer
    result = fmeaa("scale-in-check", "fme-3", "-i", inv, "--json")
    assert result.code == 1
    check = next(c for c in result.json["checks"] if c["check"] == "out of the load balancer")
    assert check["ok"] is False and "no target group" in check["detail"]
    assert "--load-balancer" in check["detail"]
