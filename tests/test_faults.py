"""Faults during a sync, against emulated nodes: every run reports per node, never loses
anything, and a re-run converges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa.emulator import Sandbox
from tests.conftest import ROOT, TEST_PASSWORD
from tests.sync_helpers import copy_example, fmeaa, node_items


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = copy_example(tmp_path / "content")
    # Two bigger workspaces, so uploads take many chunks (for the dropped-connection fault).
    for name in ("big_a.fmw", "big_b.fmw"):
        (content / "workspaces/roads" / name).write_bytes(os.urandom(300_000))
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(
        "      - file: workspaces/roads/validate_roads.fmw\n",
        "      - file: workspaces/roads/validate_roads.fmw\n"
        "      - file: workspaces/roads/big_a.fmw\n      - file: workspaces/roads/big_b.fmw\n"))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json"), content


def half_written(box: Sandbox) -> list[Path]:
    return [p for p in box.root.rglob("*") if p.name.endswith(".partial")]


def test_node_going_down_during_the_sync(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    victim = box.node("fme-3")
    victim.faults.latency_s = 0.02
    stop_after = victim.request_count + 15

    def kill_when_busy() -> None:  # woken by each request the node receives; no polling
        victim.wait_until(lambda n: n.request_count >= stop_after, timeout_s=20)
        victim.stop()
    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    result = fmeaa("sync", "-s", content, "-i", inv, "--json")
    killer.join()
    assert result.code == 1
    nodes = result.json["nodes"]
    assert nodes["fme-1"]["inSync"] and nodes["fme-2"]["inSync"]
    assert nodes["fme-3"]["status"] == "unreachable" and not nodes["fme-3"]["inSync"]
    victim.faults.latency_s = 0
    victim.start()
    again = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert again.code == 0 and again.json["nodes"]["fme-1"]["applied"] == 0
    assert fmeaa("verify", "-s", content, "-i", inv).code == 0
    assert half_written(box) == []


def test_connection_dropped_mid_upload(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    box.node("fme-2").faults.drop_upload_after = 100_000  # every big upload breaks midway
    result = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert result.code == 1
    fme2 = result.json["nodes"]["fme-2"]
    assert fme2["status"] == "failed"
    assert {f["action"] for f in fme2["failures"]} == {"create item Roads/big_a.fmw",
                                                        "create item Roads/big_b.fmw"}
    assert all("connection broken mid-request" in f["error"] for f in fme2["failures"])
    items = node_items(box, "fme-2")
    assert "Roads/big_a.fmw" not in items and len(items) == 5  # the rest arrived, whole
    assert half_written(box) == []  # the emulator's own atomic writes: nothing half-stored
    assert result.json["nodes"]["fme-1"]["inSync"] and result.json["nodes"]["fme-3"]["inSync"]
    # fmeaa's part: an interrupted upload is never recorded as done (digest cache, plan): the
    # next plan still creates both items on fme-2, and only there.
    plan = fmeaa("plan", "-s", content, "-i", inv, "--json").json
    todo = {node: [(a["change"], a["kind"], a["key"]) for a in report["actions"]
                   if a["change"] not in ("unchanged", "extra")]
            for node, report in plan["nodes"].items()}
    assert todo == {"fme-1": [], "fme-2": [("create", "item", "Roads/big_a.fmw"),
                                           ("create", "item", "Roads/big_b.fmw")], "fme-3": []}
    box.node("fme-2").faults.drop_upload_after = None
    assert fmeaa("sync", "-s", content, "-i", inv).code == 0
    assert fmeaa("verify", "-s", content, "-i", inv, "--deep").code == 0


def test_a_node_ten_times_slower_is_bounded(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    slow = box.node("fme-3")
    slow.faults.latency_s = 1.0  # far beyond the 0.25 s per-call timeout
    before = slow.request_count
    result = fmeaa("sync", "-s", content, "-i", inv, "--json", "--timeout", "0.25")
    assert result.code == 1
    nodes = result.json["nodes"]
    assert nodes["fme-1"]["inSync"] and nodes["fme-2"]["inSync"]
    assert nodes["fme-3"]["status"] == "unreachable" and "no answer in time" in nodes["fme-3"]["error"]
    # Bounded by what fmeaa sends, not by the wall clock (a loaded machine is not a bug): one
    # retried discovery (4 tries of 0.25 s, each its two calls at once: V3 health check and
    # version) marks the node unreachable for the whole run — no nested retries (login →
    # version discovery), no second connect (cluster lock, then sync), and nothing of the
    # content, instead of one timed-out call per item.
    requests = slow.request_count - before
    assert requests == 4 * 2, requests


def test_token_expiry_mid_run(env: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = env
    node = box.node("fme-1")
    node.state.token_ttl_s = 0.15  # tokens die during the run: one re-login each time
    node.faults.latency_s = 0.01
    result = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert result.code == 0, result.out
    assert result.json["nodes"]["fme-1"]["inSync"]
    # Counted on the node: requests in flight at once may each be refused the same expired
    # token, but each expiry costs at most one new login (never one per refused request).
    expired, logins = node.state.token_refusals, node.state.tokens_issued
    assert expired >= 1 and 2 <= logins <= 1 + expired, (expired, logins)
    node.state.token_ttl_s = 0.000001  # every token is dead on arrival: re-login once, then stop
    node.faults.latency_s = 0
    failed = fmeaa("sync", "-s", content, "-i", inv, "--json")
    assert failed.code == 1
    error = failed.json["nodes"]["fme-1"]["error"]
    assert "401" in error and "expired token" in error
    assert failed.json["nodes"]["fme-2"]["inSync"]
    # The first 401 logs in ONCE more; the node refuses that token too, and no call in flight
    # or after asks for another (a node refusing the token it just issued gets no login loop).
    relogins = node.state.tokens_issued - logins - 1
    assert relogins == 1, relogins
    assert node.state.token_refusals - expired >= 2


def test_killed_mid_sync_then_rerun_converges(env: tuple[Sandbox, Path, Path],
                                              tmp_path: Path) -> None:
    box, inv, content = env
    for n in box.nodes:
        n.faults.latency_s = 0.03
    # Two requests at a time per node: items land two by two, so the kill falls mid-way.
    env_vars = {**os.environ, "PYTHONPATH": str(ROOT), "FMEAA_NODE_CONCURRENCY": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "fmeaa", "sync", "-s", str(content), "-i",
                             str(inv), "--json"], env=env_vars, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while sum(len(node_items(box, n.name)) for n in box.nodes) < 4:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    partial = sum(len(node_items(box, n.name)) for n in box.nodes)
    assert 4 <= partial < 21  # killed part-way
    for n in box.nodes:
        n.faults.latency_s = 0
    # Requests the dead client left behind finish (their sockets closed with the process).
    assert all(n.wait_until(lambda node: node.in_flight == 0, timeout_s=10) for n in box.nodes)
    result = fmeaa("sync", "-s", content, "-i", inv, "--json")  # the lock died with the process
    assert result.code == 0, result.err
    assert fmeaa("verify", "-s", content, "-i", inv, "--deep").code == 0
    assert half_written(box) == []
