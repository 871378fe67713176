"""The applier against a node whose state differs from what the plan assumed (a retried create
that already succeeded, an entry deleted by hand): every step is idempotent, as the README's
"How a sync works" promises. Real HTTP to an emulated node."""

from __future__ import annotations

from pathlib import Path

from fmeaa.client import FmeClient
from fmeaa.emulator import Sandbox
from fmeaa.sync.apply import NodeApplier, RetryPolicy
from fmeaa.sync.content_source import LocalFiles
from fmeaa.sync.digest_cache import DigestCache, file_sha256
from fmeaa.sync.plan import Action, Change, NodePlan
from fmeaa.sync.snapshot import Kind, file_entry, metadata_entry

SCHEDULE = {"name": "nightly", "category": "Ops", "repository": "R", "workspace": "w.fmw",
            "enabled": True, "recurrence": "cron", "cron": "0 0 2 * * ?", "request": {}}
TOPIC = {"name": "DONE", "description": "wanted"}


def apply(client: FmeClient, *actions: Action):
    applier = NodeApplier(client, DigestCache(None, enabled=False), LocalFiles(),
                          RetryPolicy(attempts=1))
    return applier.apply(NodePlan(client.node, list(actions)))


def _workspace(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "w.fmw"
    path.write_text(text)
    return path


def test_a_create_that_meets_409_replaces(client: FmeClient, sandbox: Sandbox,
                                          tmp_path: Path) -> None:
    state = sandbox.nodes[0].state
    client.create_repository("R")
    client.upload_item("R", _workspace(tmp_path / "..", "#! old\n"), "w.fmw")
    client.create_schedule({**SCHEDULE, "cron": "0 0 1 * * ?", "enabled": False})
    client.create_notification("topics", {"name": "DONE", "description": "stale"})
    new = _workspace(tmp_path, "#! new\n")
    item = file_entry(Kind.ITEM, "R/w.fmw", new.stat().st_size, file_sha256(new),
                      ["fmejobsubmitter"], new)
    schedule = metadata_entry(Kind.SCHEDULE, SCHEDULE)
    topic = metadata_entry(Kind.TOPIC, TOPIC)
    result = apply(client,
                   Action(Change.CREATE, Kind.REPOSITORY, "R",
                          metadata_entry(Kind.REPOSITORY, {"name": "R"})),
                   Action(Change.CREATE, Kind.ITEM, "R/w.fmw", item),
                   Action(Change.CREATE, Kind.SCHEDULE, schedule.key, schedule),
                   Action(Change.CREATE, Kind.TOPIC, "DONE", topic))
    assert result.ok and result.applied == 4, result.failures
    assert state.repositories["R"].items["w.fmw"].file.sha256 == file_sha256(new)
    stored = state.schedules[("Ops", "nightly")]
    assert stored["cron"] == "0 0 2 * * ?" and stored["enabled"] is True
    assert state.topics["DONE"]["description"] == "wanted"


def test_an_update_that_meets_404_creates(client: FmeClient, sandbox: Sandbox,
                                          tmp_path: Path) -> None:
    state = sandbox.nodes[0].state
    client.create_repository("R")
    new = _workspace(tmp_path, "#! new\n")
    item = file_entry(Kind.ITEM, "R/w.fmw", new.stat().st_size, file_sha256(new), [], new)
    schedule = metadata_entry(Kind.SCHEDULE, SCHEDULE)
    topic = metadata_entry(Kind.TOPIC, TOPIC)
    result = apply(client,
                   Action(Change.UPDATE, Kind.ITEM, "R/w.fmw", item, item, "file"),
                   Action(Change.UPDATE, Kind.TOPIC, "DONE", topic, topic, "definition"),
                   Action(Change.UPDATE, Kind.SCHEDULE, schedule.key, schedule, schedule,
                          "definition"))
    assert result.ok and result.applied == 3, result.failures
    assert state.repositories["R"].items["w.fmw"].file.sha256 == file_sha256(new)
    assert state.topics["DONE"]["description"] == "wanted"
    assert state.schedules[("Ops", "nightly")]["cron"] == "0 0 2 * * ?"


def test_a_delete_of_what_is_already_gone_counts_as_done(client: FmeClient) -> None:
    gone = metadata_entry(Kind.TOPIC, {"name": "NEVER_THERE"})
    repo = metadata_entry(Kind.REPOSITORY, {"name": "Gone"})
    result = apply(client, Action(Change.DELETE, Kind.TOPIC, gone.key, None, gone),
                   Action(Change.DELETE, Kind.REPOSITORY, "Gone", None, repo))
    assert result.ok and result.applied == 2 and result.failures == []


def test_a_failure_is_reported_per_action_and_the_rest_goes_on(client: FmeClient,
                                                                sandbox: Sandbox) -> None:
    bad = metadata_entry(Kind.SCHEDULE, {**SCHEDULE, "repository": ""})  # refused: 400/422
    topic = metadata_entry(Kind.TOPIC, TOPIC)
    result = apply(client, Action(Change.CREATE, Kind.SCHEDULE, bad.key, bad),
                   Action(Change.CREATE, Kind.TOPIC, "DONE", topic))
    assert result.status == "failed" and result.applied == 1
    assert [action for action, _ in result.failures] == ["create schedule Ops/nightly"]
    assert sandbox.nodes[0].state.topics["DONE"]["description"] == "wanted"
