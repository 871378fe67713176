"""`fmeaa sandbox` as a user runs it: a subprocess serving N nodes and writing the inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fmeaa.client import NodeTimeoutError, connect
from tests.conftest import ROOT, TEST_PASSWORD


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
