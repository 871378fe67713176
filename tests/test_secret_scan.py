"""The secret scanner is live, and every CLI output mode stays clean.

`tests/secret_scan.py` scans each test's CLI output, log records, fme-aa exception texts and
Pulumi resource inputs/outputs; these tests prove it sees what it must and catches a leak."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from components.preview import run_program
from fmeaa.client import FmeApiError
from fmeaa.emulator import Sandbox
from tests import secret_scan
from tests.conftest import TEST_PASSWORD
from tests.stack_fixtures import example
from tests.sync_helpers import copy_example, fmeaa


def test_find_leaks_names_the_place_not_the_secret() -> None:
    leaks = secret_scan.find_leaks([("fmeaa sync stdout", f"token {TEST_PASSWORD}"),
                                    ("log httpx", "clean")])
    assert leaks == ["fmeaa sync stdout (secret #1)"]
    assert TEST_PASSWORD not in " ".join(leaks)


def test_the_scanner_sees_logs_exceptions_and_pulumi_resources() -> None:
    logging.getLogger("fmeaa.test").info("hello from a log line")
    FmeApiError("fme-1", "GET", "/x", 500, "boom")
    run_program(example(nodeCount=1))
    places = {where.split(" ")[0] for where, _ in secret_scan.TRANSCRIPT}
    assert {"log", "exception", "pulumi"} <= places
    assert any(t == "fme-1: GET /x -> 500: boom" for _, t in secret_scan.TRANSCRIPT)


def test_every_cli_output_mode_is_free_of_secrets(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(
        "# smtp_password: {secret: \"aws-sm:fme/smtp#password\"}",
        "smtp_password: {secret: \"env:SMTP_PASSWORD\"}"))
    monkeypatch.setenv("SMTP_PASSWORD", TEST_PASSWORD)  # a secret reference, resolved at sync
    workspace = tmp_path / "w.fmw"
    workspace.write_text("#! w\n")
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inv = box.write_inventory(tmp_path / "nodes.json")
        runs = []
        for mode in ([], ["--json"]):
            runs += [fmeaa("nodes", "-i", inv, *mode),
                     fmeaa("plan", "-s", content, "-i", inv, "--show-unchanged", *mode),
                     fmeaa("sync", "-s", content, "-i", inv, *mode),
                     fmeaa("verify", "-s", content, "-i", inv, "--all", *mode),
                     fmeaa("publish", workspace, "--repo", "R", "-i", inv, *mode),
                     fmeaa("sync", "-s", "node:fme-1", "-i", inv, *mode)]
        runs.append(fmeaa("export", "--from", "fme-1", tmp_path / "export", "-i", inv))
        box.node("fme-2").faults.error_rate = 1.0
        runs.append(fmeaa("sync", "-s", content, "-i", inv, "--prune"))
        box.node("fme-2").faults.error_rate = 0
        monkeypatch.setenv("FMEAA_PASSWORD", "wrong-password-123")
        runs.append(fmeaa("sync", "-s", content, "-i", inv))
        # The subscription really carries the resolved secret on the node...
        assert box.node("fme-1").state.subscriptions["gis-team-email"]["properties"][
            "smtp_password"] == TEST_PASSWORD
    # ...and the export writes a reference, never the value.
    exported = (tmp_path / "export" / "fmeaa-content.yaml").read_text()
    assert "env:FMEAA_SECRET_GIS_TEAM_EMAIL_SMTP_PASSWORD" in exported
    assert TEST_PASSWORD not in exported
    assert [r.code for r in runs][-2:] == [1, 1]
    assert secret_scan.find_leaks(secret_scan.TRANSCRIPT) == []
