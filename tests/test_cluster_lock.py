"""The cluster lock (issue 13, item 13): two operators — two machines, or two cache directories —
are serialised by a lock kept on the nodes themselves, with an owner, an age and `fmeaa unlock`."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa import app
from fmeaa.app.content import ContentRequest
from fmeaa.client import FmeApiError, FmeClient, connect
from fmeaa.cluster.cluster_lock import (
    LOCK_CONNECTION,
    LOCK_PATH,
    ClusterLock,
    LockOwner,
    read_holder,
)
from fmeaa.cluster.sync_lock import SyncLockedError
from fmeaa.emulator import Sandbox
from fmeaa.sync.engine import EngineSettings, Observer
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import EXAMPLE, copy_example, fmeaa, node_items, snapshot_state


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "operator-b"))
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box, box.write_inventory(tmp_path / "nodes.json")


def lock_files(box: Sandbox) -> dict[str, LockOwner | None]:
    """The lock file on each node, read from the emulator's disk (not through fmeaa)."""
    found = {}
    for node in box.nodes:
        path = node.state.data_dir / "resources" / LOCK_CONNECTION / LOCK_PATH
        if path.exists():
            found[node.name] = LockOwner.from_bytes(path.read_bytes())
    return found


def clients(box: Sandbox) -> dict[str, FmeClient]:
    made = {}
    for node in box.nodes:
        made[node.name] = connect(node.name, node.url, username="admin", password=TEST_PASSWORD,
                                  timeout=5)
        made[node.name].login()
    return made


def plant(box: Sandbox, owner: LockOwner) -> None:
    """A lock left by another operator's run (e.g. killed on their laptop)."""
    for client in clients(box).values():
        with client:
            ClusterLock({client.node: client}, [client.node], owner=owner).acquire()


class HoldDuringApply(Observer):
    """Operator A: blocks in the middle of its sync (lock held) until told to go on."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.go_on = threading.Event()

    def phase(self, name: str, total: int) -> None:
        if name == "applying":
            self.holding.set()
            assert self.go_on.wait(30)


def test_two_operators_with_their_own_cache_dirs_are_serialised(
        env: tuple[Sandbox, Path], tmp_path: Path) -> None:
    box, inv = env
    operator_a = HoldDuringApply()
    request = ContentRequest(str(EXAMPLE), app.ClusterRef(inventory=inv),
                             EngineSettings(cache_dir=tmp_path / "operator-a"))
    outcome: dict[str, object] = {}
    thread = threading.Thread(target=lambda: outcome.update(a=app.sync(request, observer=operator_a)))
    thread.start()
    try:
        assert operator_a.holding.wait(30)
        holder = lock_files(box)
        assert len(holder) == 3 and len({o.run_id for o in holder.values() if o}) == 1
        a = holder["fme-1"]
        assert a is not None
        before = snapshot_state(box)
        refused = fmeaa("sync", "-s", EXAMPLE, "-i", inv)  # operator B, its own cache dir
        assert refused.code == 1
        assert "being changed by another fmeaa run" in refused.err
        assert f"{a.user}@{a.host} (pid {a.pid}, sync, run {a.run_id}" in refused.err
        assert "fmeaa unlock" in refused.err
        assert snapshot_state(box) == before  # B changed nothing
    finally:
        operator_a.go_on.set()
        thread.join(60)
    assert outcome["a"].ok  # type: ignore[attr-defined]
    assert lock_files(box) == {}  # released on success
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0  # B's turn


def _contend(box: Sandbox, name: str, barrier: threading.Barrier, results: dict[str, str]) -> None:
    """One operator: start with the other (barrier), try the lock, hold it until the other has
    finished trying (barrier), then release."""
    lock = ClusterLock(clients(box), [n.name for n in box.nodes])
    barrier.wait()
    try:
        lock.acquire()
    except SyncLockedError as exc:
        results[name] = str(exc)
        barrier.wait()
        return
    results[name] = "won"
    results["winner"] = lock.owner.run_id  # type: ignore[union-attr]
    barrier.wait()  # the other has been refused (and gave back what it took) while we hold it
    held = lock_files(box)
    results["held"] = str(len(held) >= 2 and all(o and o.run_id == results["winner"]
                                                 for o in held.values()))
    lock.release()


def test_racing_operators_exactly_one_wins(env: tuple[Sandbox, Path]) -> None:
    box, _ = env
    for _ in range(10):
        barrier = threading.Barrier(2)
        results: dict[str, str] = {}
        threads = [threading.Thread(target=_contend, args=(box, n, barrier, results))
                   for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        outcomes = [results["a"], results["b"]]
        assert outcomes.count("won") == 1, outcomes
        assert results["held"] == "True"  # a majority, all the winner's
        loser = next(o for o in outcomes if o != "won")
        assert f"run {results['winner']}" in loser
        assert lock_files(box) == {}


def test_a_stale_lock_is_named_and_broken_with_fmeaa_unlock(env: tuple[Sandbox, Path]) -> None:
    box, inv = env
    dead = LockOwner(user="ops", host="ops-laptop", pid=4242, operation="sync",
                     run_id="0123abcd4567", created_at=time.time() - 3 * 3600)
    plant(box, dead)
    refused = fmeaa("sync", "-s", EXAMPLE, "-i", inv)
    assert refused.code == 1
    assert "ops@ops-laptop (pid 4242, sync, run 0123abcd4567, started 3.0 h ago)" in refused.err
    assert all(len(node_items(box, n.name)) == 0 for n in box.nodes)
    broken = fmeaa("unlock", "-i", inv, "--json")
    assert broken.code == 0, broken.err
    assert sorted(broken.json["removedFrom"]) == ["fme-1", "fme-2", "fme-3"]
    assert "ops@ops-laptop" in broken.json["holders"]
    assert lock_files(box) == {}
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0


def test_unlock_refuses_a_young_lock_without_force(env: tuple[Sandbox, Path]) -> None:
    box, inv = env
    plant(box, LockOwner(user="ops", host="ops-laptop", pid=4242, operation="sync",
                         run_id="89ef01234567", created_at=time.time() - 60))
    young = fmeaa("unlock", "-i", inv)
    assert young.code == 1 and "--force" in young.err and "ops@ops-laptop" in young.err
    assert len(lock_files(box)) == 3
    assert fmeaa("unlock", "-i", inv, "--force").code == 0
    assert lock_files(box) == {}
    assert fmeaa("unlock", "-i", inv).code == 0  # nothing to break: fine


def test_a_lock_whose_process_died_on_this_host_is_taken_over(env: tuple[Sandbox, Path]) -> None:
    box, inv = env
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    me = LockOwner.me("sync")
    plant(box, LockOwner(user=me.user, host=me.host, pid=int(gone.stdout), operation="sync",
                         run_id="deadbeef0000", created_at=time.time()))
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inv).code == 0
    assert lock_files(box) == {}


class Explode(Observer):
    def phase(self, name: str, total: int) -> None:
        if name == "applying":
            raise RuntimeError("boom mid-sync")


def test_the_lock_is_released_on_failure(env: tuple[Sandbox, Path], tmp_path: Path) -> None:
    box, inv = env
    box.node("fme-2").faults.drop_upload_after = 10  # fme-2 fails its uploads
    failed = fmeaa("sync", "-s", EXAMPLE, "-i", inv)
    assert failed.code == 1
    assert lock_files(box) == {}
    box.node("fme-2").faults.drop_upload_after = None
    request = ContentRequest(str(EXAMPLE), app.ClusterRef(inventory=inv),
                             EngineSettings(cache_dir=tmp_path / "crash"))
    with pytest.raises(RuntimeError, match="boom mid-sync"):
        app.sync(request, observer=Explode())
    assert lock_files(box) == {}


def test_a_majority_of_nodes_must_hold_the_lock(env: tuple[Sandbox, Path],
                                                tmp_path: Path) -> None:
    box, inv = env
    box.node("fme-3").stop()  # one of three down: 2 of 3 is a majority, the others sync
    one_down = fmeaa("sync", "-s", EXAMPLE, "-i", inv, "--json")
    assert one_down.json["nodes"]["fme-1"]["status"] == "ok"
    box.node("fme-2").stop()
    # Nothing to write on fme-1: no lock is needed (a no-op takes none), the others are down.
    noop = fmeaa("sync", "-s", EXAMPLE, "-i", inv, "--json")
    assert noop.code == 1 and noop.json["nodes"]["fme-1"]["inSync"]
    assert noop.json["nodes"]["fme-2"]["status"] == "unreachable"
    changed = copy_example(tmp_path / "changed")
    csv = changed / "resources" / "data" / "lookup" / "zones.csv"
    csv.write_text(csv.read_text() + "99,changed\n")
    before = snapshot_state(box)
    two_down = fmeaa("sync", "-s", changed, "-i", inv)  # something to write: the lock first
    assert two_down.code == 1
    assert snapshot_state(box) == before  # refused the lock: nothing written on fme-1
    assert "majority of the nodes (2 of 3) and got 1" in two_down.err
    assert "fme-2: " in two_down.err and "fme-3: " in two_down.err
    assert lock_files(box) == {}  # what it took on fme-1 was given back


def test_seeding_waits_for_the_cluster_too(env: tuple[Sandbox, Path]) -> None:
    """`seed` (and `rolling`, which seeds each node) sync content: they hold the same lock."""
    box, inv = env
    plant(box, LockOwner(user="ops", host="ops-laptop", pid=4242, operation="sync",
                         run_id="a1b2c3d4e5f6", created_at=time.time()))
    refused = fmeaa("seed", "fme-1", "-s", EXAMPLE, "-i", inv, "--poll", "0.05")
    assert refused.code == 1 and "ops@ops-laptop (pid 4242, sync, run a1b2c3d4e5f6" in refused.err
    assert len(node_items(box, "fme-1")) == 0


class _RefusingNode:
    """A node whose every resource call fails with a 500."""

    node = "fme-2"

    def download_resource(self, *args: object, **kwargs: object) -> None:
        raise FmeApiError("fme-2", "GET", "/resources/lock", 500, "disk full")

    def delete_resource(self, *args: object, **kwargs: object) -> None:
        raise FmeApiError("fme-2", "DELETE", "/resources/lock", 500, "disk full")


def test_a_node_error_in_the_lock_names_the_node_once(tmp_path: Path) -> None:
    """Lock texts put each node's name before its error: the error itself does not repeat it."""
    found = read_holder(_RefusingNode(), tmp_path)  # type: ignore[arg-type]
    assert found.error == "GET /resources/lock -> 500: disk full"
    unreachable = FmeApiError("fme-2", "GET", "/x", None, "cannot connect")
    assert unreachable.reason == "cannot connect" and str(unreachable).startswith("fme-2: ")
