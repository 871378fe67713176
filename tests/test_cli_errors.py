"""Errors as a user meets them: with `--json`, an error document on stdout (besides the message
on stderr); usage errors exit 2; no traceback for a directory given as the inventory; a region
from $AWS_REGION for `--secret-id`."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from fmeaa.emulator import Sandbox
from tests.aws_server import REGION
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import EXAMPLE, fmeaa

# Every command that takes --json, with arguments that get it as far as loading the inventory.
JSON_COMMANDS = [
    ("nodes",), ("plan", "-s", EXAMPLE), ("sync", "-s", EXAMPLE), ("verify", "-s", EXAMPLE),
    ("export", "--from", "fme-1", "OUT"), ("publish", EXAMPLE / "fmeaa-content.yaml", "--repo", "R"),
    ("seed", "fme-1", "-s", EXAMPLE), ("drain", "fme-1"), ("undrain", "fme-1"),
    ("scale-in-check", "fme-1"), ("rolling", "--exec", "true", "-s", EXAMPLE),
    ("history",), ("rollback",), ("unlock",), ("schedules", "move", "--to", "fme-1"),
]


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=lambda c: c[0])
def test_json_errors_are_a_document_on_stdout(command: tuple, tmp_path: Path,
                                              password: None) -> None:
    args = [str(a).replace("OUT", str(tmp_path / "out")) for a in command]
    result = fmeaa(*args, "-i", tmp_path / "missing.json", "--json")
    assert result.code == 1
    document = json.loads(result.out)
    assert document == {"ok": False, "exitCode": 1, "error": {
        "type": "InventoryError", "message": document["error"]["message"]}}
    assert "missing.json" in document["error"]["message"] and "missing.json" in result.err


def test_usage_errors_exit_2_and_are_documented_with_json(tmp_path: Path, password: None) -> None:
    inventory = tmp_path / "nodes.json"
    bogus = fmeaa("plan", "-s", EXAMPLE, "-i", inventory, "--schedule-policy", "bogus")
    assert bogus.code == 2 and "bogus" in bogus.err
    as_json = fmeaa("sync", "-s", EXAMPLE, "-i", inventory, "--schedule-policy", "bogus", "--json")
    assert as_json.code == 2
    document = json.loads(as_json.out)
    assert document["ok"] is False and document["exitCode"] == 2
    assert document["error"]["type"] == "UsageError" and "bogus" in document["error"]["message"]


def test_a_directory_as_the_inventory_is_a_clear_error(tmp_path: Path, password: None) -> None:
    result = fmeaa("nodes", "-i", tmp_path)
    assert result.code == 1
    assert str(tmp_path) in result.err and "directory" in result.err


@pytest.fixture
def sandbox_inventory(tmp_path: Path) -> Iterator[tuple[Sandbox, Path]]:
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json")  # region "local": no AWS region


def test_secret_id_takes_the_region_from_aws_region(
        aws: str, sandbox_inventory: tuple[Sandbox, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, inventory = sandbox_inventory
    monkeypatch.delenv("FMEAA_PASSWORD", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="fme-aa/admin", SecretString=json.dumps({"username": "admin",
                                                       "password": TEST_PASSWORD}))
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # only AWS_REGION is set
    result = fmeaa("nodes", "-i", inventory, "--secret-id", "fme-aa/admin", "--json")
    assert result.code == 0, result.err
    assert all(n["licensed"] for n in result.json["nodes"])
    monkeypatch.delenv("AWS_REGION")  # no region at all: say how to give one
    missing = fmeaa("nodes", "-i", inventory, "--secret-id", "fme-aa/admin")
    assert missing.code == 1
    assert "region" in missing.err and "AWS_REGION" in missing.err and "--region" in missing.err


@pytest.mark.parametrize("command", [("plan",), ("sync",), ("verify",), ("seed", "fme-1"),
                                     ("rolling", "--exec", "true")], ids=lambda c: c[0])
def test_a_missing_content_directory_says_what_a_source_is_and_nothing_else(
        command: tuple, sandbox_inventory: tuple[Sandbox, Path], tmp_path: Path,
        password: None) -> None:
    """The error is the only thing on stderr (no blank line left by a progress bar that never
    showed: stderr is not a terminal), names the path and says what to give instead; no node is
    contacted — `seed` does not lock the cluster or wait for the node first, `rolling` does not
    drain the first node and run the command before it finds out. `rolling` on this inventory
    without a load balancer lists both problems."""
    box, inventory = sandbox_inventory
    requests = [n.request_count for n in box.nodes]
    missing = tmp_path / "contnet"
    result = fmeaa(*command, "-s", missing, "-i", inventory)
    assert result.code == 1
    assert result.err.startswith("error: ") and f"{missing}: no such directory" in result.err
    assert "\n\n" not in result.err, repr(result.err)
    if command[0] == "rolling":
        assert "target group" in result.err
    for hint in ("fmeaa-content.yaml", "fmeaa export", "node:NAME", "url:https://SERVER"):
        assert hint in result.err, result.err
    assert [n.request_count for n in box.nodes] == requests


def test_exporting_into_a_file_is_a_clear_error_also_in_json(
        sandbox_inventory: tuple[Sandbox, Path], password: None) -> None:
    _, inventory = sandbox_inventory
    result = fmeaa("export", "--from", "fme-1", inventory, "-i", inventory, "--json")
    assert result.code == 1
    document = json.loads(result.out)
    assert document["error"]["type"] == "ContentError"
    assert str(inventory) in document["error"]["message"]
    assert "not a directory" in document["error"]["message"]
    assert "Traceback" not in result.err and "error:" in result.err


def test_nodes_exits_1_when_a_node_is_unreachable_or_cannot_be_read(
        sandbox_inventory: tuple[Sandbox, Path], password: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """README: exit 1 for a failed or unreachable node; `fmeaa nodes` is what a health check
    runs."""
    box, inventory = sandbox_inventory
    assert fmeaa("nodes", "-i", inventory).code == 0
    monkeypatch.setenv("FMEAA_PASSWORD", "not-the-password")
    rejected = fmeaa("nodes", "-i", inventory, "--json")
    assert rejected.code == 1 and all(n["error"] for n in rejected.json["nodes"])
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    box.node("fme-2").stop()
    down = fmeaa("nodes", "-i", inventory)
    assert down.code == 1 and "fme-2" in down.out and "unreachable" in down.out


def test_upgrade_errors_are_printed_as_written_and_typed_in_json(
        sandbox_inventory: tuple[Sandbox, Path], password: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pulumi's messages carry brackets (`[urn=…]`): printed as written, not `\\[urn=…]`;
    the JSON document names the error's kind."""
    from fmeaa.app import stack_runner

    _, inventory = sandbox_inventory
    failure = "pulumi up on stack 'prod' failed: [urn=urn:pulumi:prod::fme-aa::Node::fme-4] boom"

    def refuse(name: str, project_dir: Path) -> None:
        raise stack_runner.StackError(failure)

    monkeypatch.setattr(importlib.import_module("fmeaa.app.upgrade"), "PulumiStack", refuse)
    result = fmeaa("upgrade", "--stack", "prod", "-i", inventory, "-s", EXAMPLE, "--image",
                   "ami-0aaaaaaaaaaaaaaa1", "--json")
    assert result.code == 1
    assert json.loads(result.out)["error"] == {"type": "StackError", "message": failure}
    assert f"error: {failure}" in result.err.replace("\n", " ")


def test_upgrade_without_the_pulumi_cli_says_so(sandbox_inventory: tuple[Sandbox, Path],
                                                 password: None, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _, inventory = sandbox_inventory
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = fmeaa("upgrade", "--stack", "prod", "-i", inventory, "-s", EXAMPLE, "--image",
                   "ami-0aaaaaaaaaaaaaaa1", "--dry-run", "--json")
    assert result.code == 1
    error = json.loads(result.out)["error"]
    assert error["type"] == "StackError"
    assert "the Pulumi CLI (`pulumi`) is not on PATH" in error["message"]
    assert "pulumi login" in error["message"]
