"""`fmeaa sandbox` as a user runs it: a subprocess serving N nodes and writing the inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmeaa.cli import app
from fmeaa.client import NodeTimeoutError, connect
from fmeaa.emulator import Sandbox
from tests.conftest import ROOT, TEST_PASSWORD
from tests.sync_helpers import EXAMPLE, copy_example, fmeaa


def test_sandbox_serves_nodes_writes_inventory_and_never_prints_the_password(
    tmp_path: Path,
) -> None:
    inventory = tmp_path / "nodes.json"
    env = {**os.environ, "FMEAA_PASSWORD": TEST_PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fmeaa", "sandbox", "--nodes", "3", "--inventory", str(inventory),
         "--state-dir", str(tmp_path / "state"), "--fault", "fme-3:latency=1.0",
         "--duration", "20"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not inventory.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        document = json.loads(inventory.read_text())
        assert document["inventoryVersion"] == 1
        assert [n["name"] for n in document["nodes"]] == ["fme-1", "fme-2", "fme-3"]
        for entry in document["nodes"][:2]:
            client = connect(entry["name"], entry["restUrl"], username="admin",
                             password=TEST_PASSWORD, timeout=5)
            client.login()
            assert client.repositories()
        slow = document["nodes"][2]
        client = connect(slow["name"], slow["restUrl"], username="admin",
                         password=TEST_PASSWORD, timeout=0.3)
        try:
            client.login()
            raise AssertionError("the latency fault was not applied")
        except NodeTimeoutError:
            pass
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert TEST_PASSWORD not in out + err
    assert "fme-1" in err  # the rich table went to stderr


def test_bad_fault_spec_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fmeaa", "sandbox", "--fault", "fme-1:explode",
         "--state-dir", str(tmp_path), "--duration", "0.1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "NODE:latency=SECONDS" in result.stderr


def test_every_lifecycle_command_can_be_rehearsed_on_the_sandbox_load_balancer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fmeaa sandbox --load-balancer` (issue 13, item 18): target groups emulated on loopback and
    named by the inventory, so no AWS account, endpoint variable or credentials are needed."""
    for var in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
                "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    inv = tmp_path / "nodes.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fmeaa", "sandbox", "--nodes", "3", "--inventory", str(inv),
         "--state-dir", str(tmp_path / "state"), "--load-balancer", "--duration", "300"],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fast = ["-i", inv, "--poll", "0.05"]
    try:
        deadline = time.monotonic() + 60
        while not inv.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.1)
        lb = json.loads(inv.read_text())["loadBalancer"]
        assert lb["targetGroupArn"] and lb["websocketTargetGroupArn"]
        assert lb["endpointUrl"].startswith("http://127.0.0.1:")
        nodes = fmeaa("nodes", "-i", inv, "--json").json["nodes"]
        assert [n["inLoadBalancer"] for n in nodes] == ["healthy"] * 3
        assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
        assert fmeaa("scale-in-check", "fme-3", "-i", inv).code == 1  # still in the ALB
        assert fmeaa("drain", "fme-3", *fast).code == 0
        assert fmeaa("scale-in-check", "fme-3", "-i", inv).code == 0
        assert fmeaa("undrain", "fme-3", *fast).code == 0
        assert fmeaa("seed", "fme-3", "-s", EXAMPLE, *fast).code == 0
        rolled = fmeaa("rolling", "--exec", "true", "-s", EXAMPLE, "--json", *fast)
        assert rolled.code == 0, rolled.err
        assert rolled.json["nodes"] == ["fme-1", "fme-2", "fme-3"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert TEST_PASSWORD not in out + err
    assert "load balancer: target groups sandbox-web and sandbox-ws" in err


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 15
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert path.exists(), proc.stderr.read() if proc.stderr else "sandbox did not start"


def test_readme_command_with_relative_state_dir_and_sourceable_credentials(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's own command, run from a working directory: default (relative) --state-dir,
    a generated password in credentials.env that `source` puts into the environment, and
    syncs that keep working after the first resource upload."""
    env = {k: v for k, v in os.environ.items() if k != "FMEAA_PASSWORD"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fmeaa", "sandbox", "--nodes", "2", "--inventory", "nodes.json",
         "--duration", "60"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(tmp_path / "nodes.json", proc)
        credentials = tmp_path / ".fmeaa" / "sandbox" / "credentials.env"
        # `source` exports the variables to the programs the shell starts.
        shown = subprocess.run(
            ["bash", "-c", f". {credentials} && python3 -c 'import os; "
             "print(os.environ[\"FMEAA_USERNAME\"], len(os.environ[\"FMEAA_PASSWORD\"]))'"],
            capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.split()[0] == "admin" and int(shown.stdout.split()[1]) >= 16
        password = next(line.split("=", 1)[1].strip("'") for line in
                        credentials.read_text().splitlines() if "FMEAA_PASSWORD=" in line)
        monkeypatch.setenv("FMEAA_PASSWORD", password)
        monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)
        content = copy_example(tmp_path / "content")
        assert fmeaa("sync", "-s", content, "-i", "nodes.json").code == 0
        # Before the fix, every call after the first resource upload failed ("unreachable").
        again = fmeaa("plan", "-s", content, "-i", "nodes.json", "--detailed-exitcode")
        assert again.code == 0, again.out + again.err
        assert fmeaa("verify", "-s", content, "-i", "nodes.json").code == 0
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert password not in out + err
    assert f"source {Path('.fmeaa/sandbox/credentials.env')}" in " ".join(err.split())
    assert "$ FMEAA" not in err


def test_help_names_where_the_generated_password_goes() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--help"], terminal_width=200)
    assert "STATE_DIR/credentials.env" in result.stdout
    assert " /credentials.env" not in result.stdout


def test_emulator_with_a_relative_state_dir(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = copy_example(tmp_path / "content")
    with Sandbox(2, root=Path("relative-state"), password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        assert fmeaa("sync", "-s", content, "-i", inventory).code == 0
        assert fmeaa("plan", "-s", content, "-i", inventory, "--detailed-exitcode").code == 0


def test_the_inventory_appears_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A poller (this test's sibling, a user's script) never reads half an inventory: it is
    written to a temporary name and renamed into place."""
    from fmeaa.emulator import Sandbox

    renames: list[tuple[str, str]] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append((Path(a).name, Path(b).name)),
                                                     real_replace(a, b)))
    with Sandbox(1, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        box.write_inventory(tmp_path / "nodes.json")
    assert renames == [(".nodes.json.partial", "nodes.json")]
    assert json.loads((tmp_path / "nodes.json").read_text())["nodes"][0]["name"] == "fme-1"
    assert not (tmp_path / ".nodes.json.partial").exists()
