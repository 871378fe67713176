"""Entries and digests: what counts as the same content (so no false drift) and what does not
(so no missed drift). Pure functions, no servers."""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path

from fmeaa.sync.snapshot import (
    Entry,
    Kind,
    Snapshot,
    body_digest,
    file_entry,
    metadata_entry,
    public_parameters,
    schedule_for_node,
    secret_parameters_digest,
    split_resource_key,
)

PARAMETER = {"name": "p", "type": "dropdown", "value": "a",
             "choiceSettings": {"choiceSet": "userDefined", "choices": [{"value": "a"}]}}


def test_absent_null_and_empty_choice_settings_are_one_thing() -> None:
    bare = metadata_entry(Kind.DEPLOYMENT_PARAMETER, {"name": "p", "value": "x"})
    for settings in (None, {}, {"choices": None}, {"choices": []}, {"choiceSet": ""}):
        other = metadata_entry(Kind.DEPLOYMENT_PARAMETER, {"name": "p", "value": "x",
                                                           "choiceSettings": settings})
        assert other.body["choiceSettings"] == {} and other.digest == bare.digest, settings
    dropdown = metadata_entry(Kind.DEPLOYMENT_PARAMETER, PARAMETER)
    assert dropdown.body["choiceSettings"] == PARAMETER["choiceSettings"]
    changed = {**PARAMETER, "choiceSettings": {"choiceSet": "userDefined", "choices": [{"value": "b"}]}}
    assert metadata_entry(Kind.DEPLOYMENT_PARAMETER, changed).digest != dropdown.digest
    # A setting that is set keeps its value, even the empty string's neighbours.
    zero = metadata_entry(Kind.DEPLOYMENT_PARAMETER, {**PARAMETER, "choiceSettings": {"n": 0}})
    assert zero.body["choiceSettings"] == {"n": 0}


def test_a_repository_is_compared_by_name_only() -> None:
    """Repositories have no update call: a description differing on a node is not drift."""
    assert body_digest(Kind.REPOSITORY, {"name": "R", "description": "a"}) == \
        body_digest(Kind.REPOSITORY, {"name": "R", "description": "b"})
    assert body_digest(Kind.REPOSITORY, {"name": "R"}) != body_digest(Kind.REPOSITORY, {"name": "S"})
    assert body_digest(Kind.REPOSITORY, {}) != body_digest(Kind.REPOSITORY, {"name": "None"})
    assert body_digest(Kind.REPOSITORY, {}) == body_digest(Kind.REPOSITORY, {"name": ""})


def test_nested_key_order_is_not_drift_and_dates_digest() -> None:
    """A node returns JSON objects in its own key order; YAML gives dates as date objects."""
    one = {"name": "s", "subscriberName": "email", "properties": {"a": 1, "b": 2}}
    two = {"name": "s", "subscriberName": "email", "properties": {"b": 2, "a": 1}}
    assert metadata_entry(Kind.SUBSCRIPTION, one).digest == metadata_entry(Kind.SUBSCRIPTION, two).digest
    conn1 = {"name": "c", "type": "PostgreSQL", "parameters": {"HOST": "h", "PORT": "5432"}}
    conn2 = {"name": "c", "type": "PostgreSQL", "parameters": {"PORT": "5432", "HOST": "h"}}
    assert metadata_entry(Kind.CONNECTION, conn1, "s").digest == \
        metadata_entry(Kind.CONNECTION, conn2, "s").digest
    dated = {"name": "s", "subscriberName": "email", "properties": {"from": datetime.date(2026, 1, 2)}}
    assert metadata_entry(Kind.SUBSCRIPTION, dated).digest != metadata_entry(Kind.SUBSCRIPTION, one).digest
    dated_conn = {**conn1, "parameters": {"SINCE": datetime.date(2026, 1, 2)}}
    assert metadata_entry(Kind.CONNECTION, dated_conn, "s").digest != \
        metadata_entry(Kind.CONNECTION, conn1, "s").digest


def test_connection_digests_compare_public_parameters_and_the_secret_digest() -> None:
    """Nodes never return credentials: the public parameters are compared as they are, the
    credentials only through the digest of what fme-aa resolved (desired) or last wrote."""
    body = {"name": "c", "type": "PostgreSQL", "parameters": {"HOST": "h", "PASSWORD": "pw-xyz-secret"}}
    entry = metadata_entry(Kind.CONNECTION, body, "d1")
    assert entry.secret_digest == "d1"
    # What the node shows (no password) is the same connection when the secret digest agrees.
    shown = {"name": "c", "type": "PostgreSQL", "parameters": {"HOST": "h"}}
    assert metadata_entry(Kind.CONNECTION, shown, "d1").digest == entry.digest
    assert metadata_entry(Kind.CONNECTION, shown, "d2").digest != entry.digest
    moved = {**shown, "parameters": {"HOST": "elsewhere"}}
    assert metadata_entry(Kind.CONNECTION, moved, "d1").digest != entry.digest
    assert body_digest(Kind.CONNECTION, shown) == body_digest(Kind.CONNECTION, shown, "")
    assert public_parameters(body["parameters"]) == {"HOST": "h"}


def test_the_secret_digest_changes_with_the_credentials_only() -> None:
    one = secret_parameters_digest({"HOST": "h", "PASSWORD": "pw-xyz-secret", "USER": "u"})
    assert one == secret_parameters_digest({"USER": "u", "PASSWORD": "pw-xyz-secret", "HOST": "other"})
    assert one != secret_parameters_digest({"HOST": "h", "PASSWORD": "node2-secret", "USER": "u"})
    assert "pw-xyz-secret" not in one and len(one) == 64
    # Two credentials in another order (the manifest's, a secret's JSON) are the same ones.
    assert secret_parameters_digest({"PASSWORD": "a", "API_TOKEN": "b"}) == \
        secret_parameters_digest({"API_TOKEN": "b", "PASSWORD": "a"})
    assert secret_parameters_digest({"PASSWORD": datetime.date(2026, 1, 2)}) != \
        secret_parameters_digest({})


def test_metadata_entries_carry_no_secret_digest_unless_given() -> None:
    assert metadata_entry(Kind.TOPIC, {"name": "T"}).secret_digest is None
    assert metadata_entry(Kind.TOPIC, {"name": "T"}).digest == \
        metadata_entry(Kind.TOPIC, {"name": "T"}, "").digest


def test_file_entries_keep_size_services_and_path() -> None:
    item = file_entry(Kind.ITEM, "R/a.fmw", 42, "aa", ["b", "a"], Path("/x/a.fmw"))
    assert (item.size, item.services, item.local_path, item.file_sha256) == \
        (42, ("a", "b"), Path("/x/a.fmw"), "aa")
    assert item.digest != "aa"  # an item's digest covers its services too
    resource = file_entry(Kind.RESOURCE, "DATA:/a.csv", 7, "bb", (), Path("/x/a.csv"))
    assert (resource.digest, resource.size, resource.local_path) == ("bb", 7, Path("/x/a.csv"))


def test_a_resource_key_splits_at_the_connection() -> None:
    assert split_resource_key("DATA:/in/a:b.csv") == ("DATA", "/in/a:b.csv")
    desired = Snapshot([], resource_roots=[("DATA", "/in")])
    assert desired.covers_resource("DATA:/in/a:b.csv")


def test_resource_folders_cover_what_lies_below_them() -> None:
    roots = Snapshot([], resource_roots=[("DATA", "/in"), ("DATA", "/refX"), ("LOGS", "/")])
    assert roots.covers_resource("DATA:/in") and roots.covers_resource("DATA:/in/a.csv")
    assert not roots.covers_resource("DATA:/inbox/a.csv")  # a sibling sharing the prefix
    assert not roots.covers_resource("DATA:/ref/a.csv")  # /refX is not /ref
    assert roots.covers_resource("LOGS:/any/where.log")  # the connection's root: everything
    assert not roots.covers_resource("OTHER:/in/a.csv")


def test_with_entries_keeps_what_the_snapshot_manages() -> None:
    base = Snapshot([], resource_roots=[("DATA", "/in")], whole_kinds=[Kind.TOPIC],
                    silent_kinds=[Kind.CONNECTION])
    copy = base.with_entries([metadata_entry(Kind.REPOSITORY, {"name": "R"})])
    assert (copy.resource_roots, copy.whole_kinds, copy.silent_kinds) == \
        (base.resource_roots, base.whole_kinds, base.silent_kinds)
    assert len(copy) == 1 and len(base) == 0


def test_a_one_schedule_is_enabled_on_its_owner_only() -> None:
    body = {"name": "s", "category": "C", "cron": "0 0 2 * * ?", "repository": "R", "workspace": "w"}
    entry = metadata_entry(Kind.SCHEDULE, body, policy="one")
    on_owner = schedule_for_node(entry, "a", "a")
    assert on_owner.body["enabled"] is True and on_owner.owner == "a"
    elsewhere = schedule_for_node(entry, "b", "a")
    assert elsewhere.body["enabled"] is False and elsewhere.owner == "a"
    assert elsewhere.digest != on_owner.digest
    # An entry without an `enabled` field (FME's default: enabled) runs on its owner.
    raw = Entry(Kind.SCHEDULE, "C/s", "d", body={"name": "s", "category": "C"}, policy="one")
    assert schedule_for_node(raw, "a", "a").body["enabled"] is True
    assert schedule_for_node(entry, "b", "b") is not entry  # "one": rewritten per node
    everywhere = metadata_entry(Kind.SCHEDULE, body, policy="all")
    assert schedule_for_node(everywhere, "b", "a") is everywhere


def test_file_entries_keep_stamp_path_and_services_and_share_equal_service_sets() -> None:
    first = file_entry(Kind.ITEM, "R/a.fmw", 3, "aa", ["z", "a"], stamp="2026-11-26T01:02:03")
    second = file_entry(Kind.ITEM, "R/b.fmw", 3, "bb", ("a", "z"), local_path=Path("/c/b.fmw"))
    assert first.services == ("a", "z") and first.services is second.services
    assert first.stamp == "2026-11-26T01:02:03" and second.stamp is None
    assert first.local_file is None and second.local_file == str(Path("/c/b.fmw"))
    fresh = f"service-{uuid.uuid4().hex}"  # never seen by this process's shared table
    unseen = file_entry(Kind.RESOURCE, "C:/x", 1, "cc", (fresh,))
    assert unseen.services == (fresh,) and unseen.digest == "cc"


def test_ignore_rules_match_kind_and_key_and_survive_a_copy() -> None:
    rules = [(Kind.RESOURCE, "FME_SHAREDRESOURCE_DATA:/cache/*")]
    snap = Snapshot([], ignore=rules)
    cached = file_entry(Kind.RESOURCE, "FME_SHAREDRESOURCE_DATA:/cache/t.bin", 1, "aa")
    kept = file_entry(Kind.RESOURCE, "FME_SHAREDRESOURCE_DATA:/data/t.bin", 1, "aa")
    same_key_other_kind = file_entry(Kind.ITEM, "FME_SHAREDRESOURCE_DATA:/cache/t.bin", 1, "aa")
    assert snap.ignores(cached) and not snap.ignores(kept)
    assert not snap.ignores(same_key_other_kind)
    copy = snap.with_entries([kept])
    assert copy.ignore == tuple(rules) and copy.ignores(cached)
