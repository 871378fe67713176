"""The planner is pure: desired + actual snapshots → actions. No servers here."""

from __future__ import annotations

import dataclasses

from fmeaa.sync.parity import parity
from fmeaa.sync.plan import Action, Cause, Change, plan_content, plan_node
from fmeaa.sync.snapshot import REFERENCE_NODE_KINDS, Kind, Snapshot, file_entry, metadata_entry


def repo(name: str):
    return metadata_entry(Kind.REPOSITORY, {"name": name})


def item(key: str, sha: str, services=("fmejobsubmitter",), size: int = 10):
    return file_entry(Kind.ITEM, key, size, sha, services)


def schedule(name: str, policy: str = "one", owner: str | None = None, enabled: bool = True):
    body = {"name": name, "category": "C", "repository": "R", "workspace": "w.fmw",
            "cron": "0 0 2 * * ?", "enabled": enabled}
    return metadata_entry(Kind.SCHEDULE, body, policy=policy, owner=owner)


def changes(plan) -> list[tuple[str, str, str, str]]:
    return [(a.change.value, a.kind.value, a.key, a.detail) for a in plan.actions
            if a.change is not Change.UNCHANGED]


def test_create_update_unchanged_by_digest() -> None:
    desired = Snapshot([repo("R"), item("R/a.fmw", "aa"), item("R/b.fmw", "bb")])
    actual = Snapshot([repo("R"), item("R/a.fmw", "aa"), item("R/b.fmw", "old")])
    assert changes(plan_node("n", desired, actual, prune=False)) == [
        ("update", "item", "R/b.fmw", "file")]
    assert changes(plan_node("n", desired, Snapshot(), prune=False)) == [
        ("create", "repository", "R", ""), ("create", "item", "R/a.fmw", ""),
        ("create", "item", "R/b.fmw", "")]


def test_services_only_change_sends_no_bytes() -> None:
    desired = Snapshot([repo("R"), item("R/a.fmw", "aa", ("fmedatadownload",), size=999)])
    actual = Snapshot([repo("R"), item("R/a.fmw", "aa", ("fmejobsubmitter",), size=999)])
    plan = plan_node("n", desired, actual, prune=False)
    assert changes(plan) == [("update", "item", "R/a.fmw", "services")]
    assert plan.bytes_to_send == 0


def test_extra_only_deleted_with_prune_and_in_reverse_dependency_order() -> None:
    desired = Snapshot([repo("R")], whole_kinds=REFERENCE_NODE_KINDS)  # a reference node
    actual = Snapshot([repo("R"), repo("Old"), item("Old/x.fmw", "xx"), item("R/y.fmw", "yy"),
                       metadata_entry(Kind.TOPIC, {"name": "T"}),
                       metadata_entry(Kind.SUBSCRIPTION, {"name": "S", "topics": ["T"]})])
    report = plan_node("n", desired, actual, prune=False)
    # Every entry beyond the source is reported, each once (Old's items too: nothing is deleted).
    assert changes(report) == [("extra", "subscription", "S", ""), ("extra", "item", "Old/x.fmw", ""),
                               ("extra", "item", "R/y.fmw", ""), ("extra", "topic", "T", ""),
                               ("extra", "repository", "Old", "")]
    assert report.changes == []
    pruned = plan_node("n", desired, actual, prune=True)
    # Subscriptions before topics, items before repositories; Old's items go with Old.
    assert changes(pruned) == [("delete", "subscription", "S", ""), ("delete", "item", "R/y.fmw", ""),
                               ("delete", "topic", "T", ""), ("delete", "repository", "Old", "")]


def test_resources_outside_managed_folders_are_not_judged() -> None:
    managed = file_entry(Kind.RESOURCE, "FME_SHAREDRESOURCE_DATA:/ref/a.csv", 1, "aa")
    desired = Snapshot([managed], resource_roots=[("FME_SHAREDRESOURCE_DATA", "/ref")])
    actual = Snapshot([managed,
                       file_entry(Kind.RESOURCE, "FME_SHAREDRESOURCE_DATA:/ref/old.csv", 1, "o"),
                       file_entry(Kind.RESOURCE, "FME_SHAREDRESOURCE_DATA:/other/x.csv", 1, "x"),
                       file_entry(Kind.RESOURCE, "FME_SHAREDRESOURCE_DATA:/reference.csv", 1, "r")])
    assert changes(plan_node("n", desired, actual, prune=True)) == [
        ("delete", "resource", "FME_SHAREDRESOURCE_DATA:/ref/old.csv", "")]


def test_one_policy_schedule_enabled_only_on_owner() -> None:
    desired = Snapshot([schedule("s1"), schedule("s2", owner="b"), schedule("s3", policy="all"),
                        schedule("s4", enabled=False)])
    empty = {n: Snapshot() for n in ("a", "b", "c")}
    plan = plan_content(desired, empty, ["a", "b", "c"])
    enabled = {n: [(a.key, a.desired.body["enabled"]) for a in p.actions]
               for n, p in plan.nodes.items()}
    assert enabled == {
        "a": [("C/s1", True), ("C/s2", False), ("C/s3", True), ("C/s4", False)],
        "b": [("C/s1", False), ("C/s2", True), ("C/s3", True), ("C/s4", False)],
        "c": [("C/s1", False), ("C/s2", False), ("C/s3", True), ("C/s4", False)]}


def test_seeding_a_subset_keeps_the_inventory_default_owner() -> None:
    desired = Snapshot([schedule("s1")])
    plan = plan_content(desired, {"d": Snapshot()}, ["d"], default_owner="a")
    assert plan.nodes["d"].actions[0].desired.body["enabled"] is False


def test_server_added_fields_are_not_drift() -> None:
    mine = metadata_entry(Kind.TOPIC, {"name": "T", "description": "x"})
    theirs = metadata_entry(Kind.TOPIC, {"name": "T", "description": "x", "id": 17,
                                         "created": "2026-01-01"})
    assert mine.digest == theirs.digest
    other = metadata_entry(Kind.TOPIC, {"name": "T", "description": "y"})
    assert other.digest != mine.digest


def topic(name: str):
    return metadata_entry(Kind.TOPIC, {"name": name})


def test_prune_acts_only_inside_what_the_source_manages() -> None:
    """A content directory manages what it lists, the items of the repositories it lists and the
    files below its resource folders — not a repository published by hand, FME's `Samples`, its
    `SAMPLE_TOPIC`, or a schedule or subscription it never listed."""
    listed = [repo("R"), item("R/a.fmw", "aa"), topic("T"), schedule("s1", policy="all"),
              file_entry(Kind.RESOURCE, "DATA:/ref/a.csv", 1, "r1")]
    desired = Snapshot(listed, resource_roots=[("DATA", "/ref")])
    strays = [item("R/stray.fmw", "st"), file_entry(Kind.RESOURCE, "DATA:/ref/old.csv", 1, "o")]
    never_managed = [repo("Extra"), item("Extra/x.fmw", "xx"), repo("Samples"),
                     item("Samples/austin.fmw", "sa"), topic("SAMPLE_TOPIC"), schedule("other"),
                     metadata_entry(Kind.SUBSCRIPTION, {"name": "S2", "topics": ["T"]})]
    actual = Snapshot(listed + strays + never_managed)
    kept = plan_node("n", desired, actual, prune=False)
    assert changes(kept) == [("extra", "resource", "DATA:/ref/old.csv", ""),
                             ("extra", "item", "R/stray.fmw", "")]
    pruned = plan_node("n", desired, actual, prune=True)
    assert changes(pruned) == [("delete", "resource", "DATA:/ref/old.csv", ""),
                               ("delete", "item", "R/stray.fmw", "")]
    # verify speaks the same language: extra inside the managed scope, unmanaged outside it.
    report = parity(desired, {"n": actual, "m": actual}, ["n", "m"], "n")
    status = {r.key: r.status for r in report.rows if r.status != "in sync"}
    assert status == {"R/stray.fmw": "extra", "DATA:/ref/old.csv": "extra", "Extra": "unmanaged",
                      "Extra/x.fmw": "unmanaged", "Samples": "unmanaged",
                      "Samples/austin.fmw": "unmanaged", "SAMPLE_TOPIC": "unmanaged",
                      "C/other": "unmanaged", "S2": "unmanaged"}
    assert report.in_sync  # identical everywhere: nothing to fix without --prune
    # Nodes that disagree about something unmanaged are drift all the same.
    lonely = Snapshot([*listed, repo("Extra")])
    assert parity(desired, {"n": lonely, "m": Snapshot(listed)}, ["n", "m"], "n").drift_count == 1


def test_a_connections_key_claims_every_connection() -> None:
    hand_made = metadata_entry(Kind.CONNECTION, {"name": "hand-made"}, secret_digest="x")
    silent = Snapshot([repo("R")], silent_kinds=[Kind.CONNECTION])
    claimed = Snapshot([repo("R")], whole_kinds=[Kind.CONNECTION])
    actual = Snapshot([repo("R"), hand_made])
    assert changes(plan_node("n", silent, actual, prune=True)) == []
    assert not [r for r in parity(silent, {"n": actual}, ["n"], "n").rows if r.key == "hand-made"]
    assert changes(plan_node("n", claimed, actual, prune=True)) == [
        ("delete", "connection", "hand-made", "")]


def test_notification_topics_are_compared_as_a_set() -> None:
    """A node may list a subscription's topics in another order: that is not drift."""
    body = {"name": "s", "subscriberName": "email", "topics": ["B", "A", "C"]}
    wanted = metadata_entry(Kind.SUBSCRIPTION, body)
    listed = metadata_entry(Kind.SUBSCRIPTION, {**body, "topics": ["C", "A", "B"]})
    assert wanted.digest == listed.digest
    assert wanted.body["topics"] == ["A", "B", "C"]
    other = metadata_entry(Kind.SUBSCRIPTION, {**body, "topics": ["A", "B"]})
    assert other.digest != wanted.digest
    plan = plan_node("n", Snapshot([wanted]), Snapshot([listed]), prune=False)
    assert [a.change for a in plan.actions] == [Change.UNCHANGED]


def _without_cause(actions: list[Action]) -> list[Action]:
    return [dataclasses.replace(a, cause=None) for a in actions]


def test_every_action_carries_both_sides_and_its_detail() -> None:
    """Apply and the reports read `desired`, `actual` and `detail` of every action, not only its
    change: each is what the planner was given, for every kind of change."""
    same, new, old = topic("Same"), topic("Changed"), metadata_entry(Kind.TOPIC, {"name": "Changed",
                                                                              "description": "old"})
    res_new = file_entry(Kind.RESOURCE, "DATA:/ref/a.csv", 3, "new")
    res_old = file_entry(Kind.RESOURCE, "DATA:/ref/a.csv", 3, "old")
    gone = topic("Gone")
    desired = Snapshot([repo("R"), same, new, res_new], resource_roots=[("DATA", "/ref")],
                       whole_kinds=[Kind.TOPIC])
    actual = Snapshot([same, old, res_old, gone])
    expected = [Action(Change.CREATE, Kind.REPOSITORY, "R", repo("R"), None),
                Action(Change.UPDATE, Kind.TOPIC, "Changed", new, old, "definition"),
                Action(Change.UNCHANGED, Kind.TOPIC, "Same", same, same),
                Action(Change.UPDATE, Kind.RESOURCE, "DATA:/ref/a.csv", res_new, res_old, "file")]
    kept = plan_node("n", desired, actual, prune=False)
    assert kept.node == "n"
    # (each action's cause — pending, drift, extra — is tested in tests/test_drift.py)
    assert _without_cause(kept.actions) == [*expected,
                                            Action(Change.EXTRA, Kind.TOPIC, "Gone", None, gone)]
    assert {c.value: kept.count(c) for c in Change if kept.count(c)} == {
        "create": 1, "update": 2, "unchanged": 1, "extra": 1}
    pruned = plan_node("n", desired, actual, prune=True)
    assert _without_cause(pruned.actions) == [
        *expected, Action(Change.DELETE, Kind.TOPIC, "Gone", None, gone)]
    assert pruned.count(Change.DELETE) == 1 and pruned.count(Change.EXTRA) == 0
    assert pruned.bytes_to_send == 3  # the resource's file; metadata sends no file


def test_plan_content_plans_each_node_by_name_and_only_prunes_when_asked() -> None:
    desired = Snapshot([repo("R")], whole_kinds=[Kind.REPOSITORY])
    actual = {"a": Snapshot([repo("Old")]), "b": Snapshot([repo("R")])}
    plan = plan_content(desired, actual, ["a", "b", "absent"])
    assert plan.prune is False and list(plan.nodes) == ["a", "b"]  # no snapshot: not planned
    assert [p.node for p in plan.nodes.values()] == ["a", "b"]
    assert changes(plan.nodes["a"]) == [("create", "repository", "R", ""),
                                        ("extra", "repository", "Old", "")]
    assert plan.has_changes and not plan_content(desired, {"b": actual["b"]}, ["b"]).has_changes
    pruning = plan_content(desired, actual, ["a", "b"], prune=True)
    assert pruning.prune is True
    assert changes(pruning.nodes["a"])[-1] == ("delete", "repository", "Old", "")
    assert plan_content(desired, {}, []).nodes == {}  # no nodes: nothing planned, no error


def test_each_change_carries_its_cause_from_the_ledger() -> None:
    """Pending: the source moved (or fmeaa never wrote it); drift: the node moved since fmeaa
    wrote it; extra: on the node, never written by fmeaa. Unchanged entries have no cause."""
    ok, new, hand, gone, gone_by_hand = (item(f"R/{n}.fmw", n) for n in "abcde")
    desired = Snapshot([repo("R"), ok, item("R/b.fmw", "b2"), item("R/c.fmw", "c2"), gone,
                        gone_by_hand])
    extra, dropped, dropped_edited = (item(f"R/{n}.fmw", n) for n in ("x", "y", "z"))
    actual = Snapshot([repo("R"), ok, new, item("R/c.fmw", "hand-edit"), extra, dropped,
                       dropped_edited])
    recorded = {ok.id: "a", new.id: new.digest, hand.id: hand.digest, gone_by_hand.id: "e",
                dropped.id: dropped.digest, dropped_edited.id: "wrote-before"}
    for prune in (False, True):
        plan = plan_node("n", desired, actual, prune=prune, recorded=recorded)
        causes = {a.key: (a.change.value, a.cause and a.cause.value) for a in plan.actions}
        removed = "delete" if prune else "extra"
        assert causes == {
            "R": ("unchanged", None), "R/a.fmw": ("unchanged", None),
            "R/b.fmw": ("update", "pending"), "R/c.fmw": ("update", "drift"),
            "R/d.fmw": ("create", "pending"), "R/e.fmw": ("create", "drift"),
            "R/x.fmw": (removed, "extra"), "R/y.fmw": (removed, "pending"),
            "R/z.fmw": (removed, "drift")}, prune
    whole = plan_content(desired, {"n": actual, "m": Snapshot()}, ["n", "m"],
                         recorded={"n": recorded})
    assert {a.key: a.cause for a in whole.nodes["n"].actions} == \
        {a.key: a.cause for a in plan_node("n", desired, actual, False, recorded).actions}
    assert {a.cause for a in whole.nodes["m"].actions} == {Cause.PENDING}
    assert whole.nodes["n"].causes() == {"pending": 3, "drift": 3, "extra": 1}
    tally = whole.tallied()  # what a result keeps of the plan: counts, not the actions
    assert tally.prune is False and set(tally.nodes) == {"n", "m"}
    assert [tally.nodes["n"].count(c) for c in (Change.UNCHANGED, Change.UPDATE, Change.CREATE,
                                                Change.EXTRA, Change.DELETE)] == [2, 2, 2, 3, 0]
    assert tally.nodes["m"].count(Change.CREATE) == 6 and tally.nodes["m"].node == "m"
    assert plan_content(desired, {"n": actual}, ["n"], prune=True).tallied().prune is True


def test_ignored_entries_are_neither_updated_nor_deleted() -> None:
    """An entry an ignore rule matches is created where missing, and otherwise only reported
    as ignored — changed or extra, with or without prune."""
    rules = [(Kind.ITEM, "R/cache-*")]
    desired = Snapshot([repo("R"), item("R/cache-a.fmw", "a"), item("R/cache-b.fmw", "b"),
                        item("R/w.fmw", "w")], ignore=rules)
    actual = Snapshot([repo("R"), item("R/cache-a.fmw", "edited"), item("R/cache-x.fmw", "x"),
                       item("R/w.fmw", "w"), item("R/other.fmw", "o")])
    for prune in (False, True):
        plan = plan_node("n", desired, actual, prune=prune)
        assert [(a.change.value, a.key) for a in plan.actions] == [
            ("unchanged", "R"), ("ignored", "R/cache-a.fmw"), ("create", "R/cache-b.fmw"),
            ("unchanged", "R/w.fmw"), ("ignored", "R/cache-x.fmw"),
            ("delete" if prune else "extra", "R/other.fmw")], prune
        ignored = {a.key: a for a in plan.actions if a.change is Change.IGNORED}
        # Reported with both sides, as verify shows them: what the source has, what the node has.
        assert ignored["R/cache-a.fmw"].desired == desired[(Kind.ITEM, "R/cache-a.fmw")]
        assert ignored["R/cache-a.fmw"].actual == actual[(Kind.ITEM, "R/cache-a.fmw")]
        assert ignored["R/cache-x.fmw"].desired is None
        assert ignored["R/cache-x.fmw"].actual == actual[(Kind.ITEM, "R/cache-x.fmw")]
