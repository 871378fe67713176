"""Property-based tests (hypothesis) of the pure planner: for any desired and actual content,
applying the plan and planning again leaves nothing to do, and prune never deletes what the
source contains."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fmeaa.sync.plan import Change, plan_content
from fmeaa.sync.snapshot import Kind, Snapshot, file_entry, metadata_entry, split_item_key

NODES = ["a", "b", "c"]
names = st.sampled_from(["x", "y", "z", "w"])
shas = st.sampled_from(["s1", "s2", "s3"])
services = st.lists(st.sampled_from(["fmejobsubmitter", "fmedatadownload"]), max_size=2,
                    unique=True)
ROOTS = [("DATA", "/managed")]


@st.composite
def entries(draw: st.DrawFn) -> list:
    found = []
    for repo in draw(st.lists(names, max_size=3, unique=True)):
        found.append(metadata_entry(Kind.REPOSITORY, {"name": repo}))
        for item in draw(st.lists(names, max_size=3, unique=True)):
            found.append(file_entry(Kind.ITEM, f"{repo}/{item}.fmw", 10, draw(shas), draw(services)))
    for topic in draw(st.lists(names, max_size=2, unique=True)):
        found.append(metadata_entry(Kind.TOPIC, {"name": topic, "description": draw(names)}))
    for sub in draw(st.lists(names, max_size=2, unique=True)):
        found.append(metadata_entry(Kind.SUBSCRIPTION, {"name": sub, "subscriberName": draw(names)}))
    for conn in draw(st.lists(names, max_size=2, unique=True)):
        found.append(metadata_entry(Kind.CONNECTION, {"name": conn, "category": "database",
                                                      "parameters": {"HOST": draw(names)}},
                                    secret_digest=draw(shas)))
    for folder in ("/managed", "/elsewhere"):
        for f in draw(st.lists(names, max_size=2, unique=True)):
            found.append(file_entry(Kind.RESOURCE, f"DATA:{folder}/{f}.csv", 5, draw(shas)))
    for s in draw(st.lists(names, max_size=2, unique=True)):
        body = {"name": s, "category": "C", "cron": "0 0 2 * * ?", "repository": "x",
                "workspace": "x.fmw", "enabled": draw(st.booleans())}
        found.append(metadata_entry(Kind.SCHEDULE, body, policy=draw(st.sampled_from(["one", "all"])),
                                    owner=draw(st.sampled_from([None, *NODES]))))
    return found



def as_held_on(node: str, desired: list) -> Snapshot:
    """The oracle, written independently of the planner: what `node` must hold. A `one`-policy
    schedule is enabled only on its owner (default: the first node); everything else as given."""
    held = []
    for entry in desired:
        if entry.kind is Kind.SCHEDULE and entry.policy == "one":
            enabled = bool(entry.body["enabled"]) and node == (entry.owner or NODES[0])
            entry = metadata_entry(Kind.SCHEDULE, {**entry.body, "enabled": enabled},
                                   policy="one", owner=entry.owner or NODES[0])
        held.append(entry)
    return Snapshot(held)


def apply(actual: Snapshot, plan, wanted: Snapshot) -> Snapshot:
    """What a node holds after a perfect apply: the simulator of `fmeaa.sync.apply`."""
    held = dict(actual.items())
    for action in plan.changes:
        if action.change is Change.DELETE:
            held.pop((action.kind, action.key), None)
            if action.kind is Kind.REPOSITORY:  # its items go with it
                held = {k: e for k, e in held.items()
                        if not (k[0] is Kind.ITEM and split_item_key(k[1])[0] == action.key)}
        else:
            held[(action.kind, action.key)] = wanted[(action.kind, action.key)]
    return Snapshot(held.values())


@settings(max_examples=150, deadline=None)
@given(desired=entries(), data=st.data(), prune=st.booleans())
def test_apply_then_plan_again_is_a_no_op(desired: list, data: st.DataObject, prune: bool) -> None:
    source = Snapshot(desired, ROOTS)
    actual = {n: Snapshot(data.draw(entries())) for n in NODES}
    first = plan_content(source, actual, NODES, prune)
    after = {n: apply(actual[n], first.nodes[n], as_held_on(n, desired))
             for n in NODES}
    second = plan_content(source, after, NODES, prune)
    assert not second.has_changes, {n: p.changes for n, p in second.nodes.items()}


@settings(max_examples=150, deadline=None)
@given(desired=entries(), data=st.data())
def test_prune_never_deletes_what_the_source_holds(desired: list, data: st.DataObject) -> None:
    source = Snapshot(desired, ROOTS)
    actual = {n: Snapshot(data.draw(entries())) for n in NODES}
    plan = plan_content(source, actual, NODES, prune=True)
    for node_plan in plan.nodes.values():
        for action in node_plan.changes:
            if action.change is Change.DELETE:
                assert (action.kind, action.key) not in source
                # Only inside what a content directory manages: the repositories it lists and
                # the folders it names. Never a repository, topic, schedule… it does not list.
                if action.kind is Kind.RESOURCE:
                    assert action.key.startswith("DATA:/managed/")
                else:
                    assert action.kind is Kind.ITEM
                    assert (Kind.REPOSITORY, split_item_key(action.key)[0]) in source


@settings(max_examples=100, deadline=None)
@given(desired=entries())
def test_one_policy_schedules_run_on_exactly_one_node(desired: list) -> None:
    source = Snapshot(desired, ROOTS)
    plan = plan_content(source, {n: Snapshot() for n in NODES}, NODES)
    for entry in source.of(Kind.SCHEDULE):
        on = [n for n in NODES for a in plan.nodes[n].actions
              if a.key == entry.key and a.desired.body["enabled"]]
        if entry.policy == "one":
            assert len(on) == (1 if entry.body["enabled"] else 0)
        else:
            assert len(on) == (3 if entry.body["enabled"] else 0)
