"""The applier against a node whose state differs from what the plan assumed (a retried create
that already succeeded, an entry deleted by hand): every step is idempotent, as the README's
"How a sync works" promises. Real HTTP to an emulated node."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from fmeaa.client import (
    ConflictError,
    FmeApiError,
    FmeClient,
    InvalidRequestError,
    NodeTimeoutError,
    NodeUnreachableError,
    NotFoundError,
    ServerError,
)
from fmeaa.emulator import Sandbox
from fmeaa.sync.apply import NodeApplier, RetryPolicy, failure_text, is_unreachable
from fmeaa.sync.content_source import LocalFiles
from fmeaa.sync.digest_cache import DigestCache, file_sha256
from fmeaa.sync.ledger import Ledger, LedgerEntry, SyncRun
from fmeaa.sync.node_reader import WRITTEN
from fmeaa.sync.plan import Action, Change, NodePlan
from fmeaa.sync.snapshot import Entry, Kind, file_entry, metadata_entry

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


# --- every branch, call by call: a recording client (what each action sends, and what the
# --- digest cache remembers afterwards; the emulator tests above show the node's side) ---------
class Recorder:
    """An FmeClient stand-in that records each call and raises the errors queued for it."""

    node = "n1"

    def __init__(self, errors: dict[str, list[Exception]] | None = None,
                 upload_answer: object = None, projects: list[dict] | None = None) -> None:
        self.calls: list[tuple] = []
        self.errors = errors or {}
        self.upload_answer = upload_answer
        self._projects = projects if projects is not None else []

    def __getattr__(self, name: str):
        def call(*args: object, **kwargs: object) -> object:
            self.calls.append((name, *args, *sorted(kwargs.items())))
            queued = self.errors.get(name)
            if queued:
                raise queued.pop(0)
            if name == "upload_item":
                return self.upload_answer
            if name == "projects":
                return self._projects
            if name == "services":  # a node's services read back: a new item has none
                return []
            return None
        return call


def api_error(cls: type[FmeApiError], status: int | None = 409, path: str = "/x") -> FmeApiError:
    return cls("n1", "POST", path, status, f"{cls.__name__} here")


ONCE = RetryPolicy(attempts=1)


def run(client: Recorder, *actions: Action, cache: DigestCache | None = None,
        retry: RetryPolicy = ONCE, steps: list | None = None):
    applier = NodeApplier(client, cache or DigestCache(None), LocalFiles(), retry,  # type: ignore[arg-type]
                          on_step=None if steps is None else steps.append)
    return applier.apply(NodePlan("n1", list(actions)))


def create(entry) -> Action:
    return Action(Change.CREATE, entry.kind, entry.key, entry)


def update(entry, detail: str = "definition", actual=None) -> Action:
    return Action(Change.UPDATE, entry.kind, entry.key, entry, actual or entry, detail)


def delete(entry) -> Action:
    return Action(Change.DELETE, entry.kind, entry.key, None, entry)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {}
    for name in ("w.fmw", "a.csv", "p.fsproject"):
        made[name] = tmp_path / name
        made[name].write_bytes(b"12345")
    return made


def test_each_kind_is_created_with_the_right_call(files: dict[str, Path]) -> None:
    from fmeaa.sync.snapshot import Kind as K
    client = Recorder(upload_answer={"services": [{"name": "fmejobsubmitter"}],
                                     "lastPublishDate": "2026-01-01T00:00:00Z"},
                      projects=[{"name": "P", "lastUpdated": "t1"}])
    cache = DigestCache(None)
    item = file_entry(K.ITEM, "R/w.fmw", 5, "sha-w", ["fmejobsubmitter", "fmedatadownload"],
                      files["w.fmw"])
    resource = file_entry(K.RESOURCE, "DATA:/in/a.csv", 5, "sha-a", (), files["a.csv"])
    top = file_entry(K.RESOURCE, "DATA:/top.csv", 5, "sha-t", (), files["a.csv"])
    project = file_entry(K.PROJECT, "P", 5, "sha-p", (), files["p.fsproject"])
    conn = metadata_entry(K.CONNECTION, {"name": "c", "type": "PostgreSQL",
                                         "parameters": {"HOST": "h"}}, "secret-d")
    text = metadata_entry(K.DEPLOYMENT_PARAMETER, {"name": "t", "value": "v"})
    dropdown = metadata_entry(K.DEPLOYMENT_PARAMETER, {"name": "d", "type": "dropdown", "value": "a",
                                                       "choiceSettings": {"choices": ["a"]}})
    sub = metadata_entry(K.SUBSCRIPTION, {"name": "s", "subscriberName": "email", "topics": ["T"]})
    pub = metadata_entry(K.PUBLICATION, {"name": "p", "publisherName": "email", "topics": ["T"]})
    steps: list = []
    result = run(client, create(metadata_entry(K.REPOSITORY, {"name": "R", "description": "d"})),
                 create(item), create(resource), create(top), create(project), create(conn),
                 create(text), create(dropdown), create(metadata_entry(K.SCHEDULE, SCHEDULE)),
                 create(metadata_entry(K.TOPIC, TOPIC)), create(sub), create(pub),
                 cache=cache, steps=steps)
    assert (result.node, result.status, result.ok, result.applied, result.failures) == \
        ("n1", "ok", True, 12, [])
    assert result.bytes_sent == 15  # item + two resources; the project is no file transfer
    assert [a.key for a in steps] == ["R", "R/w.fmw", "DATA:/in/a.csv", "DATA:/top.csv", "P", "c",
                                      "t", "d", "Ops/nightly", "DONE", "s", "p"]
    assert client.calls == [
        ("create_repository", "R", "d"),
        ("upload_item", "R", files["w.fmw"], "w.fmw", ("overwrite", False)),
        ("set_services", "R", "w.fmw", ["fmedatadownload", "fmejobsubmitter"]),
        ("upload_resource", "DATA", "/in", files["a.csv"], "a.csv"),
        ("upload_resource", "DATA", "/", files["a.csv"], "top.csv"),
        ("import_project", files["p.fsproject"]), ("projects",),
        ("create_connection", dict(conn.body)),
        ("create_deployment_parameter", {"name": "t", "type": "text", "value": "v"}),
        ("create_deployment_parameter", dict(dropdown.body)),
        ("create_schedule", dict(metadata_entry(K.SCHEDULE, SCHEDULE).body)),
        ("create_notification", "topics", dict(metadata_entry(K.TOPIC, TOPIC).body)),
        ("create_notification", "subscriptions", dict(sub.body)),
        ("create_notification", "publications", dict(pub.body))]
    # Remembered with the node's own stamp (a later listing with another stamp is a change):
    for key, size, stamp, sha in (("item:R/w.fmw", 5, "2026-01-01T00:00:00Z", "sha-w"),
                                  ("project:P", 0, "t1", "sha-p"),
                                  ("connection:c", 0, WRITTEN, "secret-d")):
        assert cache.lookup(key, size, "another stamp") is None, key
        assert cache.lookup(key, size, stamp) == sha, key
    assert cache.lookup("resource:DATA:/in/a.csv", 5, None) == "sha-a"


def test_bodies_without_optional_fields_are_sent_without_them() -> None:
    """Entries read from a node may lack what a manifest always has (a description, settings)."""
    client = Recorder()
    run(client, create(Entry(Kind.REPOSITORY, "R", "d", body={"name": "R"})),
        create(Entry(Kind.DEPLOYMENT_PARAMETER, "t", "d", body={"name": "t", "value": "v"})))
    assert client.calls == [("create_repository", "R", ""),
                            ("create_deployment_parameter", {"name": "t", "value": "v"})]


def test_an_upload_that_already_set_the_services_is_not_followed_by_set_services(
        files: dict[str, Path]) -> None:
    item = file_entry(Kind.ITEM, "R/w.fmw", 5, "sha-w", ["fmejobsubmitter"], files["w.fmw"])
    told = Recorder(upload_answer={"services": ["fmejobsubmitter"]})
    run(told, create(item))
    assert [c[0] for c in told.calls] == ["upload_item"]
    for answer in (None, {"services": None}, {}, "not a document"):
        silent = Recorder(upload_answer=answer)  # no (usable) services in the answer: set them
        run(silent, create(item))
        assert silent.calls[-1] == ("set_services", "R", "w.fmw", ["fmejobsubmitter"]), answer
    none = file_entry(Kind.ITEM, "R/w.fmw", 5, "sha-w", [], files["w.fmw"])
    empty = Recorder(upload_answer={"services": None})
    run(empty, create(none))  # no services wanted and none registered: nothing more to do
    assert [c[0] for c in empty.calls] == ["upload_item"]


def test_a_services_only_update_sends_no_file_and_records_nothing(files: dict[str, Path]) -> None:
    cache = DigestCache(None)
    item = file_entry(Kind.ITEM, "R/w.fmw", 5, "sha-w", ["fmedatadownload"], files["w.fmw"])
    on_node = file_entry(Kind.ITEM, "R/w.fmw", 5, "sha-w", ["fmejobsubmitter"], files["w.fmw"])
    client = Recorder()
    result = run(client, update(item, "services", on_node), cache=cache)
    assert client.calls == [("set_services", "R", "w.fmw", ["fmedatadownload"])]
    assert result.bytes_sent == 0 and cache.lookup("item:R/w.fmw", 5, None) is None
    replaced = Recorder()
    assert run(replaced, update(item, "file")).bytes_sent == 5
    assert replaced.calls[0] == ("upload_item", "R", files["w.fmw"], "w.fmw", ("overwrite", True))


@pytest.mark.parametrize("error", [ConflictError, NotFoundError])
def test_an_item_upload_that_meets_the_other_state_flips_overwrite(
        error: type[FmeApiError], files: dict[str, Path]) -> None:
    item = file_entry(Kind.ITEM, "R/w.fmw", 5, "sha-w", [], files["w.fmw"])
    for action, first in ((create(item), False), (update(item, "file"), True)):
        client = Recorder({"upload_item": [api_error(error)]}, upload_answer={"services": []})
        assert run(client, action).ok
        assert client.calls == [("upload_item", "R", files["w.fmw"], "w.fmw", ("overwrite", first)),
                                ("upload_item", "R", files["w.fmw"], "w.fmw",
                                 ("overwrite", not first))]


def test_upserts_fall_back_to_the_other_call(files: dict[str, Path]) -> None:
    schedule = metadata_entry(Kind.SCHEDULE, SCHEDULE)
    param = metadata_entry(Kind.DEPLOYMENT_PARAMETER, {"name": "t", "value": "v"})
    topic = metadata_entry(Kind.TOPIC, TOPIC)
    conflict = Recorder({"create_schedule": [api_error(ConflictError)],
                         "create_deployment_parameter": [api_error(ConflictError)],
                         "create_notification": [api_error(ConflictError)],
                         "create_repository": [api_error(ConflictError)]})
    assert run(conflict, create(metadata_entry(Kind.REPOSITORY, {"name": "R"})), create(schedule),
               create(param), create(topic)).applied == 4
    assert [c[:2] for c in conflict.calls] == [
        ("create_repository", "R"), ("create_schedule", dict(schedule.body)),
        ("replace_schedule", "Ops"),
        ("create_deployment_parameter", {"name": "t", "type": "text", "value": "v"}),
        ("replace_deployment_parameter", "t"), ("create_notification", "topics"),
        ("replace_notification", "topics")]
    assert conflict.calls[2] == ("replace_schedule", "Ops", "nightly", dict(schedule.body))
    assert conflict.calls[6] == ("replace_notification", "topics", "DONE", dict(topic.body))
    missing = Recorder({"replace_schedule": [api_error(NotFoundError, 404)],
                        "replace_deployment_parameter": [api_error(NotFoundError, 404)]})
    assert run(missing, update(schedule), update(param)).applied == 2
    assert [c[0] for c in missing.calls] == ["replace_schedule", "create_schedule",
                                             "replace_deployment_parameter",
                                             "create_deployment_parameter"]
    assert missing.calls[2] == ("replace_deployment_parameter", "t",
                                {"name": "t", "type": "text", "value": "v"})
    plain = Recorder()
    run(plain, update(schedule), update(topic))
    assert plain.calls == [("replace_schedule", "Ops", "nightly", dict(schedule.body)),
                           ("replace_notification", "topics", "DONE", dict(topic.body))]


def test_a_connection_whose_type_changed_is_deleted_then_created() -> None:
    old = metadata_entry(Kind.CONNECTION, {"name": "c", "type": "MySQL"}, "d0")
    new = metadata_entry(Kind.CONNECTION, {"name": "c", "type": "PostgreSQL"}, "d1")
    retyped = Recorder({"delete_connection": [api_error(NotFoundError, 404)]})
    assert run(retyped, update(new, actual=old)).ok  # already gone: fine
    assert retyped.calls == [("delete_connection", "c"), ("create_connection", dict(new.body))]
    same_type = Recorder()
    kept = metadata_entry(Kind.CONNECTION, {"name": "c", "type": "PostgreSQL",
                                            "parameters": {"HOST": "x"}}, "d0")
    run(same_type, update(new, actual=kept))
    assert same_type.calls == [("replace_connection", "c", dict(new.body))]
    fresh = Recorder()
    run(fresh, create(new))
    assert fresh.calls == [("create_connection", dict(new.body))]
    cache = DigestCache(None)
    run(Recorder(), create(metadata_entry(Kind.CONNECTION, {"name": "c"})), cache=cache)
    assert cache.lookup("connection:c", 0, WRITTEN) == ""


def test_a_project_missing_after_its_import_fails_naming_it(files: dict[str, Path]) -> None:
    project = file_entry(Kind.PROJECT, "P", 5, "sha-p", (), files["p.fsproject"])
    client = Recorder(projects=[{"name": "Other", "lastUpdated": "t"}])
    result = run(client, create(project))
    assert result.status == "failed" and result.applied == 0
    assert result.failures == [(
        "create project P", "the package imported, but the node has no project named 'P': "
        "check `name:` in the manifest against the package")]
    first = Recorder(projects=[{"name": "P", "lastUpdated": "t1"}, {"name": "P", "lastUpdated": "t2"}])
    cache = DigestCache(None)
    run(first, create(project), cache=cache)
    assert cache.lookup("project:P", 0, "t1") == "sha-p"


def test_each_kind_is_deleted_with_the_right_call_and_forgotten() -> None:
    cache = DigestCache(None)
    entries = [metadata_entry(Kind.REPOSITORY, {"name": "R"}),
               file_entry(Kind.ITEM, "R/w.fmw", 1, "a"),
               file_entry(Kind.RESOURCE, "DATA:/in/a.csv", 1, "b"),
               metadata_entry(Kind.SCHEDULE, SCHEDULE),
               metadata_entry(Kind.CONNECTION, {"name": "c"}),
               metadata_entry(Kind.DEPLOYMENT_PARAMETER, {"name": "t"}),
               Entry(Kind.PROJECT, "P", "d", body={"id": 42}),
               metadata_entry(Kind.TOPIC, TOPIC),
               metadata_entry(Kind.SUBSCRIPTION, {"name": "s"}),
               metadata_entry(Kind.PUBLICATION, {"name": "p"})]
    for e in entries:
        cache.record(f"{e.kind}:{e.key}", 1, None, "x")
    client = Recorder({"delete_item": [api_error(NotFoundError, 404)]})
    result = run(client, *(delete(e) for e in entries), cache=cache)
    assert result.ok and result.applied == 10 and result.bytes_sent == 0
    assert client.calls == [
        ("delete_repository", "R"), ("delete_item", "R", "w.fmw"),
        ("delete_resource", "DATA", "/in/a.csv"), ("delete_schedule", "Ops", "nightly"),
        ("delete_connection", "c"), ("delete_deployment_parameter", "t"), ("delete_project", "42"),
        ("delete_notification", "topics", "DONE"), ("delete_notification", "subscriptions", "s"),
        ("delete_notification", "publications", "p")]
    assert all(cache.lookup(f"{e.kind}:{e.key}", 1, None) is None for e in entries)


def test_a_delete_that_fails_otherwise_is_remembered_and_reported() -> None:
    cache = DigestCache(None)
    topic = metadata_entry(Kind.TOPIC, TOPIC)
    cache.record("topic:DONE", 1, None, "x")
    client = Recorder({"delete_notification": [api_error(ConflictError, 409)]})
    result = run(client, delete(topic), cache=cache)
    assert (result.status, result.applied) == ("failed", 0)
    assert result.failures == [("delete topic DONE", "n1: POST /x -> 409: ConflictError here")]
    assert cache.lookup("topic:DONE", 1, None) == "x"


def test_transient_failures_are_retried_with_backoff_then_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("time.sleep", waits.append)
    topic = metadata_entry(Kind.TOPIC, TOPIC)
    policy = RetryPolicy(attempts=4, initial_s=0.2, max_s=0.5)
    flaky = Recorder({"create_notification": [api_error(ServerError, 503)] * 2})
    assert run(flaky, create(topic), retry=policy).ok
    assert [c[0] for c in flaky.calls] == ["create_notification"] * 3 and waits == [0.2, 0.4]
    waits.clear()
    down = Recorder({"create_notification": [api_error(ServerError, 503)] * 9})
    result = run(down, create(topic), retry=policy)
    assert len(down.calls) == 4 and waits == [0.2, 0.4, 0.5]  # capped at max_s
    assert result.failures == [("create topic DONE", "n1: POST /x -> 503: ServerError here")]
    waits.clear()
    refused = Recorder({"create_notification": [api_error(InvalidRequestError, 422)]})
    assert run(refused, create(topic), retry=policy).status == "failed"
    assert len(refused.calls) == 1 and waits == []  # a refusal is not retried


def test_an_unreachable_node_stops_its_plan_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda s: None)
    gone = api_error(NodeUnreachableError, None)
    topic, other = metadata_entry(Kind.TOPIC, TOPIC), metadata_entry(Kind.TOPIC, {"name": "B"})
    steps: list = []
    client = Recorder({"create_notification": [gone, gone]})
    result = run(client, create(topic), create(other), retry=RetryPolicy(attempts=2), steps=steps)
    assert (result.status, result.applied, result.ok) == ("unreachable", 0, False)
    assert result.failures == [("create topic DONE", "NodeUnreachableError here")]
    assert len(client.calls) == 2 and steps == [create(topic)]  # B never tried


def test_an_unforeseen_exception_fails_that_action_only() -> None:
    boom = Recorder({"create_notification": [KeyError("x")]})
    topic, other = metadata_entry(Kind.TOPIC, TOPIC), metadata_entry(Kind.TOPIC, {"name": "B"})
    steps: list = []
    result = run(boom, create(topic), create(other), steps=steps)
    assert (result.status, result.applied) == ("failed", 1)
    assert result.failures == [("create topic DONE", "unexpected KeyError: 'x'")]
    assert steps == [create(topic), create(other)]


def test_failure_text_masks_secrets_and_names_unreachable_nodes() -> None:
    assert failure_text(RuntimeError("pw-xyz-secret in here"), ["pw-xyz-secret", None, ""]) == \
        "unexpected RuntimeError: *** in here"
    assert failure_text(api_error(NodeUnreachableError, None)) == "NodeUnreachableError here"
    assert failure_text(api_error(NotFoundError, 404)) == "n1: POST /x -> 404: NotFoundError here"
    assert is_unreachable(api_error(NodeTimeoutError, None))
    assert not is_unreachable(api_error(NotFoundError, 404))
    assert not is_unreachable(RuntimeError("no status"))


class ServicesNode(Recorder):
    """A node whose upload answers list no services; `services` reads back `given` (per item
    name, else `default`), as a real node might assign them."""

    def __init__(self, default: list[str], given: dict[str, list[str]] | None = None,
                 errors: dict[str, list[Exception]] | None = None) -> None:
        super().__init__(errors=errors, upload_answer={"lastPublishDate": "2026-11-26"})
        self.default, self.given = default, given or {}

    def __getattr__(self, name: str):
        if name != "services":
            return super().__getattr__(name)

        def services(repo: str, item: str) -> list[str]:
            self.calls.append(("services", repo, item))
            return list(reversed(self.given.get(item, self.default)))
        return services


def item_named(name: str, services: list[str], path: Path, stamp: str | None = None):
    return file_entry(Kind.ITEM, f"R/{name}", 5, f"sha-{name}", services, path, stamp=stamp)


def test_what_a_node_gives_a_new_upload_is_read_back_once_per_file_type(
        files: dict[str, Path]) -> None:
    """Creates: the first upload of each file type is read back; the others follow its rule.
    Only items that then lack the wanted services get set_services."""
    node = ServicesNode(default=["fmejobsubmitter"])
    run(node, create(item_named("a.fmw", ["fmejobsubmitter"], files["w.fmw"])),
        create(item_named("b.fmw", ["fmedatadownload", "fmejobsubmitter"], files["w.fmw"])),
        create(item_named("c.FMW", ["fmejobsubmitter"], files["w.fmw"])),
        create(item_named("d.fmwt", ["fmejobsubmitter"], files["w.fmw"])))
    assert [c for c in node.calls if c[0] != "upload_item"] == [
        ("services", "R", "a.fmw"),
        ("set_services", "R", "b.fmw", ["fmedatadownload", "fmejobsubmitter"]),
        ("services", "R", "d.fmwt")]


def test_whether_a_republish_keeps_services_is_learnt_from_the_first_one(
        files: dict[str, Path]) -> None:
    """Updates: the first re-publish is read back; if the node kept the item's services, the
    next ones are trusted to keep theirs; if it did not, every later one gets set_services."""
    def republish(name: str, had: list[str], wants: list[str]):
        old = item_named(name, had, files["w.fmw"], stamp="old-stamp")
        return Action(Change.UPDATE, Kind.ITEM, old.key, item_named(name, wants, files["w.fmw"]),
                      old, "file")
    keeps = ServicesNode(default=[], given={"a.fmw": ["fmejobsubmitter", "fmedatadownload"]})
    run(keeps, republish("a.fmw", ["fmedatadownload", "fmejobsubmitter"],
                         ["fmedatadownload", "fmejobsubmitter"]),
        republish("b.fmw", ["fmejobsubmitter"], ["fmejobsubmitter"]),
        republish("c.fmw", ["fmejobsubmitter"], ["fmedatadownload"]))
    assert [c for c in keeps.calls if c[0] != "upload_item"] == [
        ("services", "R", "a.fmw"), ("set_services", "R", "c.fmw", ["fmedatadownload"])]
    resets = ServicesNode(default=["fmejobsubmitter"])
    run(resets, republish("a.fmw", ["fmedatadownload"], ["fmedatadownload"]),
        republish("b.fmw", ["fmedatadownload"], ["fmedatadownload"]))
    assert [c for c in resets.calls if c[0] != "upload_item"] == [
        ("services", "R", "a.fmw"), ("set_services", "R", "a.fmw", ["fmedatadownload"]),
        ("set_services", "R", "b.fmw", ["fmedatadownload"])]


def test_a_create_that_meets_an_existing_item_reads_its_services_and_learns_no_rule(
        files: dict[str, Path]) -> None:
    node = ServicesNode(default=["fmedatadownload"],
                        errors={"upload_item": [api_error(ConflictError)]})
    run(node, create(item_named("a.fmw", ["fmedatadownload"], files["w.fmw"])),
        create(item_named("b.fmw", ["fmedatadownload"], files["w.fmw"])))
    assert [c[0:3] + tuple(str(x) for x in c[4:]) if c[0] == "upload_item" else c
            for c in node.calls] == [
        ("upload_item", "R", files["w.fmw"], "('overwrite', False)"),
        ("upload_item", "R", files["w.fmw"], "('overwrite', True)"),
        ("services", "R", "a.fmw"),  # the existing item's, no rule from it
        ("upload_item", "R", files["w.fmw"], "('overwrite', False)"),
        ("services", "R", "b.fmw")]  # so the first real create is read back


def test_what_the_applier_writes_and_deletes_is_kept_in_the_nodes_ledger(
        files: dict[str, Path]) -> None:
    """Each write is recorded as written (digest, the node's new stamp, size — 0 for a project,
    which lists none —, sha256, services, the run and its user); each delete forgets the
    entry; a failed write records nothing."""
    client = Recorder(upload_answer={"services": [{"name": "fmejobsubmitter"}],
                                     "lastPublishDate": "2026-11-26T07:00:00Z"},
                      projects=[{"name": "P", "lastUpdated": "t1"}],
                      errors={"create_notification": [api_error(FmeApiError, 500)]})
    item = file_entry(Kind.ITEM, "R/w.fmw", 5, "sha-w", ["fmejobsubmitter"], files["w.fmw"])
    project = file_entry(Kind.PROJECT, "P", 5, "sha-p", (), files["p.fsproject"])
    gone = metadata_entry(Kind.TOPIC, {"name": "OLD"})
    ledger = Ledger("n1", entries={"topic:OLD": LedgerEntry(gone.digest), "topic:KEEP":
                                   LedgerEntry("k")})
    applier = NodeApplier(client, DigestCache(None), LocalFiles(), ONCE,  # type: ignore[arg-type]
                          ledger=ledger, run=SyncRun("20261126T0700Z-ab12", "ops@laptop"))
    applier.apply(NodePlan("n1", [create(item), create(project), delete(gone),
                                  create(metadata_entry(Kind.TOPIC, TOPIC))]))
    written = ledger.entries["item:R/w.fmw"]
    assert (written.digest, written.stamp, written.size, written.sha256, written.services,
            written.sync_id, written.user) == (item.digest, "2026-11-26T07:00:00Z", 5, "sha-w",
                                               ("fmejobsubmitter",), "20261126T0700Z-ab12",
                                               "ops@laptop")
    imported = ledger.entries["project:P"]
    assert (imported.digest, imported.stamp, imported.size) == (project.digest, "t1", 0)
    assert set(ledger.entries) == {"item:R/w.fmw", "project:P", "topic:KEEP"}


# --- how many actions run at once, and on which thread --------------------------------------
class Overlaps(Recorder):
    """A Recorder whose calls note their thread and how many run at once. With `meet`, calls
    wait in pairs at a barrier: a pair that never overlaps breaks it (the action then fails)."""

    def __init__(self, meet: bool = False, pause_s: float = 0.0,
                 errors: dict[str, list[Exception]] | None = None) -> None:
        super().__init__(errors=errors, projects=[{"name": "P0"}, {"name": "P1"}])
        self.threads: set[int] = set()
        self.running = self.most = 0
        self._count = threading.Lock()
        self._pair = threading.Barrier(2, timeout=3) if meet else None
        self._pause_s = pause_s

    def __getattr__(self, name: str):
        recorded = super().__getattr__(name)

        def call(*args: object, **kwargs: object) -> object:
            with self._count:
                self.threads.add(threading.get_ident())
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                if self._pair is not None and name != "projects":
                    self._pair.wait()
                time.sleep(self._pause_s)
                return recorded(*args, **kwargs)
            finally:
                with self._count:
                    self.running -= 1
        return call


def topics(count: int) -> list[Action]:
    return [create(metadata_entry(Kind.TOPIC, {"name": f"T{i}"})) for i in range(count)]


def test_by_default_actions_run_one_at_a_time_in_the_callers_thread() -> None:
    """Concurrency 1 (the default, and anything below it) uses no thread pool at all."""
    for concurrency in (None, 1, 0):
        client = Overlaps()
        kwargs = {} if concurrency is None else {"concurrency": concurrency}
        applier = NodeApplier(client, DigestCache(None), LocalFiles(), ONCE,  # type: ignore[arg-type]
                              **kwargs)
        result = applier.apply(NodePlan("n1", topics(3)))
        assert result.ok and result.applied == 3, concurrency
        assert client.threads == {threading.get_ident()} and client.most == 1, concurrency


@pytest.mark.parametrize("count", [2, 6])
def test_a_waves_actions_run_concurrency_at_a_time(count: int) -> None:
    """Pairs meet (so two do run at once, even in a wave of two) and never more than two run."""
    client = Overlaps(meet=True, pause_s=0.01)
    applier = NodeApplier(client, DigestCache(None), LocalFiles(), ONCE,  # type: ignore[arg-type]
                          concurrency=2)
    result = applier.apply(NodePlan("n1", topics(count)))
    assert result.ok and result.applied == count, result.failures
    assert client.most == 2


def test_project_imports_run_one_at_a_time_whatever_the_concurrency(
        files: dict[str, Path]) -> None:
    client = Overlaps(pause_s=0.02)
    projects = [create(file_entry(Kind.PROJECT, f"P{i}", 5, f"sha-{i}", (), files["p.fsproject"]))
                for i in range(2)]
    applier = NodeApplier(client, DigestCache(None), LocalFiles(), ONCE,  # type: ignore[arg-type]
                          concurrency=4)
    assert applier.apply(NodePlan("n1", projects)).applied == 2
    assert client.most == 1


def test_a_node_lost_mid_wave_stays_unreachable_whatever_failed_beside_it() -> None:
    """Two actions run at once: one finds the node gone, the other is refused. The node is
    reported unreachable (not merely failed), both failures are listed in plan order, and the
    next wave is not attempted."""
    gone, refused = api_error(NodeUnreachableError, None), api_error(InvalidRequestError, 422)
    client = Overlaps(meet=True, errors={"create_notification": [gone, refused]})
    later = create(metadata_entry(Kind.SCHEDULE, SCHEDULE))
    applier = NodeApplier(client, DigestCache(None), LocalFiles(), ONCE,  # type: ignore[arg-type]
                          concurrency=2)
    result = applier.apply(NodePlan("n1", [*topics(2), later]))
    assert (result.status, result.applied) == ("unreachable", 0)
    assert {text for _, text in result.failures} == {
        "NodeUnreachableError here", "n1: POST /x -> 422: InvalidRequestError here"}
    assert [action for action, _ in result.failures] == ["create topic T0", "create topic T1"]
    assert not [c for c in client.calls if c[0] == "create_schedule"]


def test_a_lost_node_ends_the_plan_and_still_reports() -> None:
    """One at a time: the node is lost in the first wave; later waves are skipped, and the
    result still says what happened."""
    client = Recorder({"create_notification": [api_error(NodeUnreachableError, None)]})
    result = run(client, *topics(1), create(metadata_entry(Kind.SCHEDULE, SCHEDULE)))
    assert result is not None and (result.status, result.applied) == ("unreachable", 0)
    assert [c[0] for c in client.calls] == ["create_notification"]


def test_creates_and_republishes_learn_separate_rules_per_last_suffix(
        files: dict[str, Path]) -> None:
    """The rule's key is the upload kind and the name's last suffix: a create teaches nothing
    about re-publishes (or the reverse), and `a.v1.fmw` and `b.v2.fmw` are both `.fmw`."""
    node = ServicesNode(default=["fmejobsubmitter"])
    old = item_named("c.fmw", ["fmedatadownload"], files["w.fmw"], stamp="old-stamp")
    republish = Action(Change.UPDATE, Kind.ITEM, old.key,
                       item_named("c.fmw", ["fmedatadownload"], files["w.fmw"]), old, "file")
    run(node, create(item_named("a.v1.fmw", ["fmejobsubmitter"], files["w.fmw"])),
        create(item_named("b.v2.fmw", ["fmejobsubmitter"], files["w.fmw"])), republish)
    assert [c for c in node.calls if c[0] != "upload_item"] == [
        ("services", "R", "a.v1.fmw"),
        ("services", "R", "c.fmw"), ("set_services", "R", "c.fmw", ["fmedatadownload"])]


def test_a_services_only_update_keeps_the_nodes_stamp_in_the_ledger(
        files: dict[str, Path]) -> None:
    """Nothing was re-published, so the publish stamp the node showed is still its stamp."""
    item = file_entry(Kind.ITEM, "R/w.fmw", 5, "sha-w", ["fmedatadownload"], files["w.fmw"])
    on_node = file_entry(Kind.ITEM, "R/w.fmw", 5, "sha-w", ["fmejobsubmitter"], files["w.fmw"],
                         stamp="2026-01-02T03:04:05Z")
    ledger = Ledger("n1")
    NodeApplier(Recorder(), DigestCache(None), LocalFiles(), ONCE,  # type: ignore[arg-type]
                ledger=ledger).apply(NodePlan("n1", [update(item, "services", on_node)]))
    assert ledger.entries["item:R/w.fmw"].stamp == "2026-01-02T03:04:05Z"


def test_a_write_without_a_named_run_is_recorded_with_an_empty_id_and_user() -> None:
    ledger = Ledger("n1")
    NodeApplier(Recorder(), DigestCache(None), LocalFiles(), ONCE,  # type: ignore[arg-type]
                ledger=ledger).apply(NodePlan("n1", topics(1)))
    written = ledger.entries["topic:T0"]
    assert (written.sync_id, written.user) == ("", "")
