"""Canary rollout end to end: `fmeaa sync --canary/--waves` applies wave by wave, gated by a
smoke job (its job status) and a bake time, and stops at the first failure with the other nodes
untouched and the next steps spelled out (README, "Canary rollout"). Emulated nodes; moto for
the load balancer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fmeaa.app.rollout import plan_waves
from fmeaa.cluster.inventory import load_inventory
from fmeaa.cluster.node_lifecycle import LifecycleError
from fmeaa.cluster.target_group import TargetGroups
from fmeaa.emulator import Sandbox
from tests.aws_server import make_cluster, sandbox_inventory
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import copy_example, exact_state, fmeaa, node_items, snapshot_state

FAST = ["--poll", "0.05"]
SMOKE = "Roads/validate_roads.fmw"


def registered(inv: Path) -> dict[str, str]:
    return TargetGroups(load_inventory(inv)).in_service()


@pytest.fixture
def cluster(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Sandbox, Path, Path]]:
    """3 nodes in the ALB in sync with the example; a content dir with one workspace changed."""
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    made = make_cluster("sandbox", ["fme-1", "fme-2", "fme-3"], other_cluster=False,
                        registered=["fme-1", "fme-2", "fme-3"])
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inv = sandbox_inventory(box, made, tmp_path / "nodes.json")
        content = copy_example(tmp_path / "content")
        assert fmeaa("sync", "-s", content, "-i", inv).code == 0
        (content / "workspaces/roads/clip_roads.fmw").write_text("#! clip roads, v2\n")
        yield box, inv, content


def test_a_failing_smoke_job_stops_the_rollout_with_the_other_nodes_unchanged(
        cluster: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = cluster
    before, exact_before = snapshot_state(box), exact_state(box)
    box.node("fme-2").state.failing_jobs.add(SMOKE)  # the release breaks this job on fme-2
    stopped = fmeaa("sync", "-s", content, "-i", inv, "--canary", "fme-2", "--drain-canary",
                    "--smoke", SMOKE, "--smoke-param", "MODE=smoke", "--json", *FAST)
    assert stopped.code == 1, stopped.out
    result = stopped.json
    assert result["stoppedAt"] == 1 and [w["status"] for w in result["waves"]] == [
        "failed", "not started"]
    canary = result["waves"][0]
    assert canary["nodes"] == ["fme-2"] and canary["sync"]["nodes"]["fme-2"]["updated"] == 1
    assert "ended in FAILURE" in canary["smoke"]["fme-2"]
    job = next(iter(box.node("fme-2").state.jobs.values()))  # it ran there, with its parameters
    assert (job["repository"], job["workspace"], job["parameters"]) == (
        "Roads", "validate_roads.fmw", {"MODE": "smoke"})
    now = snapshot_state(box)
    assert now["fme-1"] == before["fme-1"] and now["fme-3"] == before["fme-3"]  # untouched
    assert now["fme-2"] != before["fme-2"]
    assert not box.node("fme-1").state.jobs and not box.node("fme-3").state.jobs
    assert registered(inv) == {"fme-1": "healthy", "fme-3": "healthy"}  # the canary stays out
    steps = "\n".join(result["nextSteps"])
    assert "untouched: fme-1, fme-3" in steps and "fme-2 stays drained" in steps
    rollback = f"fmeaa rollback --before {result['syncId']} --node fme-2 -i {inv}"
    assert rollback in steps and f"fmeaa undrain fme-2 -i {inv}" in steps
    assert "--from-wave 2" in steps
    table = fmeaa("sync", "-s", content, "-i", inv, "--canary", "fme-2", "--smoke", SMOKE, *FAST)
    assert table.code == 1 and "what to do next" in table.out

    # The next steps work: the canary goes back as it was, and into the load balancer.
    assert fmeaa(*rollback.split()[1:]).code == 0
    assert exact_state(box) == exact_before
    assert fmeaa("undrain", "fme-2", "-i", inv, *FAST).code == 0
    box.node("fme-2").state.failing_jobs.clear()  # the release is fixed
    ok = fmeaa("sync", "-s", content, "-i", inv, "--canary", "fme-2", "--drain-canary",
               "--smoke", SMOKE, "--json", *FAST)
    assert ok.code == 0, ok.out
    assert [w["status"] for w in ok.json["waves"]] == ["done", "done"]
    assert {n for w in ok.json["waves"] for n in w["nodes"]} == {"fme-1", "fme-2", "fme-3"}
    assert registered(inv) == {"fme-1": "healthy", "fme-2": "healthy", "fme-3": "healthy"}
    assert fmeaa("verify", "-s", content, "-i", inv).code == 0


def test_waves_stop_at_the_failing_wave_and_resume_from_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    with Sandbox(4, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inv = box.write_inventory(tmp_path / "nodes.json")
        content = copy_example(tmp_path / "content")
        assert fmeaa("sync", "-s", content, "-i", inv).code == 0
        old = node_items(box, "fme-4")
        (content / "workspaces/roads/clip_roads.fmw").write_text("#! v2\n")
        box.node("fme-2").state.failing_jobs.add("*")
        args = ["sync", "-s", content, "-i", inv, "--waves", "1,50%,100%", "--smoke", SMOKE,
                "--json"]
        stopped = fmeaa(*args)
        assert stopped.code == 1
        assert [(w["nodes"], w["status"]) for w in stopped.json["waves"]] == [
            (["fme-1"], "done"), (["fme-2"], "failed"), (["fme-3", "fme-4"], "not started")]
        assert node_items(box, "fme-3") == node_items(box, "fme-4") == old
        assert node_items(box, "fme-2") == node_items(box, "fme-1") != old
        # Both waves reached are offered for rollback; resuming skips what is done.
        assert "--node fme-1 --node fme-2" in "\n".join(stopped.json["nextSteps"])
        box.node("fme-2").state.failing_jobs.clear()
        resumed = fmeaa(*args, "--from-wave", "3")
        assert resumed.code == 0, resumed.out
        assert [w["status"] for w in resumed.json["waves"]] == ["skipped", "skipped", "done"]
        assert list(box.node("fme-1").state.jobs) == [1]  # wave 1's smoke job did not run again
        assert fmeaa("verify", "-s", content, "-i", inv).code == 0


def test_a_node_failing_its_smoke_job_in_rolling_stays_drained(
        cluster: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = cluster
    box.node("fme-2").state.failing_jobs.add(SMOKE)
    result = fmeaa("rolling", "--exec", "true", "-s", content, "-i", inv, "--smoke", SMOKE,
                   *FAST)
    assert result.code == 1
    assert "fme-2" in result.err and "ended in FAILURE" in result.err
    assert "done: fme-1" in result.err and "--from fme-2" in result.err
    assert registered(inv) == {"fme-1": "healthy", "fme-3": "healthy"}


def test_bad_rollouts_are_refused_before_any_node_is_touched(
        cluster: tuple[Sandbox, Path, Path]) -> None:
    box, inv, content = cluster
    before = snapshot_state(box)
    bad = fmeaa("sync", "-s", content, "-i", inv, "--canary", "fme-9", "--waves", "0,x,150%")
    assert bad.code == 1
    for problem in ("--canary fme-9: not one of the nodes synced", "'0' means 0 node(s)",
                    "'x' is neither a count", "'150%' means 5 node(s)"):
        assert problem in bad.err
    lone = fmeaa("sync", "-s", content, "-i", inv, "--smoke", SMOKE, "--bake", "1")
    assert lone.code == 1 and "--smoke, --bake: only with --canary NODE or --waves" in lone.err
    smoke = fmeaa("sync", "-s", content, "-i", inv, "--canary", "fme-1", "--smoke", "x.fmw",
                  "--smoke-param", "novalue")
    assert smoke.code == 1 and "expected REPOSITORY/WORKSPACE.fmw" in smoke.err
    assert "--smoke-param 'novalue': expected NAME=VALUE" in smoke.err
    late = fmeaa("sync", "-s", content, "-i", inv, "--waves", "2,100%", "--from-wave", "3",
                 "--drain-canary")
    assert late.code == 1 and "--from-wave 3: there are 2 waves" in late.err
    assert "which must be one node" in late.err
    assert snapshot_state(box) == before


def test_waves_follow_the_inventory_with_the_canary_first() -> None:
    nodes = ["fme-1", "fme-2", "fme-3", "fme-4", "fme-5"]
    assert plan_waves(nodes, "fme-3", ()) == [["fme-3"], ["fme-1", "fme-2", "fme-4", "fme-5"]]
    assert plan_waves(nodes, None, ("1", "50%", "100%")) == [
        ["fme-1"], ["fme-2", "fme-3"], ["fme-4", "fme-5"]]
    assert plan_waves(nodes[:2], None, ("1", "50%", "100%")) == [["fme-1"], ["fme-2"]]
    with pytest.raises(LifecycleError, match="must reach every node"):
        plan_waves(nodes, None, ("1", "60%"))
    with pytest.raises(LifecycleError, match="fewer nodes than the wave before"):
        plan_waves(nodes, None, ("3", "2", "100%"))


def test_the_sandbox_can_make_a_node_fail_its_jobs() -> None:
    """`fmeaa sandbox --fault fme-2:fail_jobs`: rehearse a failing smoke job."""
    from fmeaa.commands.sandbox import parse_fault

    assert parse_fault("fme-2:fail_jobs") == ("fme-2", "fail_jobs", None)
