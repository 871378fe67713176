"""Sync at real-world speed (issue 14), as behaviour — the figures live in `./dev bench`:
a machine with an empty cache plans without downloading (the node's ledger), a no-op costs
O(pages) requests per node, requests to one node run concurrently but never beyond the bound,
an overloaded node's 429/503 + Retry-After is honoured, and the apply order still holds."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fmeaa import app
from fmeaa.client import connect
from fmeaa.emulator import Sandbox
from fmeaa.emulator.node import EmulatedNode
from fmeaa.sync.apply import NodeApplier
from fmeaa.sync.digest_cache import DigestCache
from fmeaa.sync.engine import DEFAULT_NODE_CONCURRENCY, EngineSettings, Observer
from fmeaa.sync.plan import Action, Change, NodePlan
from fmeaa.sync.snapshot import APPLY_ORDER, Entry, Kind, file_entry, metadata_entry
from tests.conftest import TEST_PASSWORD

ITEMS = 130  # two pages of 100 on a V4 list, and far more entries than a no-op makes requests


def make_content(root: Path, items: int = ITEMS) -> Path:
    (root / "ws").mkdir(parents=True)
    (root / "res" / "sub").mkdir(parents=True)
    for i in range(items):
        (root / "ws" / f"w{i:04d}.fmw").write_bytes(f"#! workspace {i}\n".encode() * 20)
    for i in range(3):
        (root / "res" / f"r{i}.txt").write_text(f"resource {i}\n")
        (root / "res" / "sub" / f"s{i}.txt").write_text(f"nested {i}\n")
    manifest = {"version": 1,
                "repositories": [{"name": "Bench", "items": [
                    {"file": f"ws/w{i:04d}.fmw", "services": ["fmejobsubmitter"]}
                    for i in range(items)]}],
                "topics": [{"name": "T1"}],
                "resources": [{"connection": "FME_SHAREDRESOURCE_DATA", "source": "res",
                               "target": "/bench"}]}
    (root / "fmeaa-content.yaml").write_text(yaml.safe_dump(manifest))
    return root


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Sandbox, app.ClusterRef, Path]]:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        ref = app.ClusterRef(inventory=box.write_inventory(tmp_path / "nodes.json"))
        yield box, ref, make_content(tmp_path / "content")


def request(ref: app.ClusterRef, content: Path, cache: Path, **settings: Any
            ) -> app.ContentRequest:
    return app.ContentRequest(str(content), ref,
                              EngineSettings(cache_dir=cache, timeout_s=20, **settings))


def content_downloaded(node: EmulatedNode) -> int:
    """Bytes of content the node sent (fmeaa's own ledger and lock files not counted)."""
    return sum(n for what, n in node.downloads.items()
               if what != "resource:FME_SHAREDRESOURCE_BACKUP")


def per_entry_paths(node: EmulatedNode) -> dict[str, int]:
    """Paths asked for more often than a no-op asks any list: requests made per entry."""
    return {p: n for p, n in node.requests_by_path.items() if n > 8}


def test_an_empty_cache_plans_and_verifies_without_downloading(cluster, tmp_path: Path) -> None:
    """A new CI runner (empty cache) trusts what each node's ledger says fmeaa wrote there: no
    byte of content is downloaded and no item's services asked for when nothing changed."""
    box, ref, content = cluster
    assert app.sync(request(ref, content, tmp_path / "operator")).ok
    for node in box.nodes:
        node.reset_counters()
    plan = app.plan(request(ref, content, tmp_path / "runner-1"))
    assert not plan.changes
    assert app.verify(request(ref, content, tmp_path / "runner-2")).in_sync
    noop = app.sync(request(ref, content, tmp_path / "runner-3"))
    assert noop.ok and all(n.applied == 0 for n in noop.nodes.values())
    for node in box.nodes:
        assert content_downloaded(node) == 0, node.name
        assert node.uploaded_bytes < 1000  # the lock file only: no content, no new ledger
        assert not [p for p in node.requests_by_path if "services" in p or "{item}" in p]


def test_no_op_requests_per_node_grow_with_pages_not_entries(cluster, tmp_path: Path) -> None:
    """With the emulator listing items WITHOUT services (as real servers do), a no-op from an
    empty cache makes O(pages) requests per node: kinds + entries/page + a constant."""
    box, ref, content = cluster
    assert app.sync(request(ref, content, tmp_path / "operator")).ok
    for node in box.nodes:
        node.reset_counters()
    assert app.sync(request(ref, content, tmp_path / "runner")).ok
    kinds, entries, constant = len(Kind), ITEMS + 6 + 2, 16
    bound = kinds + math.ceil(entries / 100) + constant
    for node in box.nodes:
        assert node.request_count <= bound, (node.name, dict(node.requests_by_path))
        assert per_entry_paths(node) == {}


def writes(node: EmulatedNode) -> dict[str, int]:
    """Requests that change a node: any but GET, the login (POST …/tokens) and V4's
    download (POST …/downloadzip)."""
    return {p: n for p, n in node.requests_by_path.items()
            if not p.startswith("GET ") and not p.endswith(("/tokens", "/downloadzip"))}


def test_a_no_op_takes_no_lock_and_writes_nothing(cluster, tmp_path: Path) -> None:
    """Nothing to write (no action, no ledger to update), so no cluster lock either: a no-op
    from an empty cache only reads (the lists, the ledger); no lock file is created or
    removed, nothing is uploaded."""
    box, ref, content = cluster
    assert app.sync(request(ref, content, tmp_path / "operator")).ok
    for node in box.nodes:
        node.reset_counters()
    noop = app.sync(request(ref, content, tmp_path / "runner"))
    assert noop.ok and all(n.in_sync and n.applied == 0 for n in noop.nodes.values())
    for node in box.nodes:
        assert writes(node) == {}, node.name
        assert node.uploaded_bytes == 0
        assert node.downloads["resource:FME_SHAREDRESOURCE_BACKUP"] > 0  # the ledger was read


def test_a_plan_made_without_the_lock_is_made_again_under_it(cluster, tmp_path: Path) -> None:
    """A sync that has something to write takes the lock, then reads and plans again: work
    another run did between the first read and the lock is not done twice, and the lock is
    held before the first write."""
    box, ref, content = cluster
    other = request(ref, content, tmp_path / "other")
    order: list[str] = []

    class Interleave(Observer):
        def __init__(self) -> None:
            self.reads = 0

        def phase(self, name: str, total: int) -> None:
            order.append(name)
            if name == "reading nodes":
                self.reads += 1
                if self.reads == 2:  # planned without the lock, then the lock was taken
                    order.append("locked" if all(lock_file(n).exists() for n in box.nodes)
                                 else "not locked")

    def lock_file(node: EmulatedNode) -> Path:
        return node.state.data_dir / "resources" / "FME_SHAREDRESOURCE_BACKUP" / "fme-aa" / \
            "sync.lock"

    class SyncOtherFirst(Interleave):
        steps = 0

        def step(self, node: str, action: object = None) -> None:
            self.steps += 1
            if self.reads == 1 and self.steps == len(box.nodes):  # every node read once
                order.append("other")  # another operator syncs everything meanwhile
                assert app.sync(other).ok

    for node in box.nodes:
        node.reset_counters()
    late = app.sync(request(ref, content, tmp_path / "late"), observer=SyncOtherFirst())
    assert order[:4] == ["reading nodes", "other", "reading nodes", "locked"], order
    assert late.ok and all(n.applied == 0 for n in late.nodes.values())  # nothing left to do
    for node in box.nodes:  # every item was sent once: by the other run
        assert node.requests_by_path["POST /fmeapiv4/repositories/{repo}/items"] == ITEMS


def test_stamps_that_moved_are_read_again_and_deep_reads_everything(cluster, tmp_path: Path
                                                                    ) -> None:
    """Trust holds only while the node's stamps are the recorded ones: a republished item is
    downloaded again and its services asked for; `--deep` reads every byte and every item's
    services, and so sees services changed without a republish."""
    box, ref, content = cluster
    assert app.sync(request(ref, content, tmp_path / "operator")).ok
    node = box.node("fme-2")
    synced = node.state.repositories["Bench"].items["w0000.fmw"].last_publish
    with connect("fme-2", node.url, username="admin", password=TEST_PASSWORD) as c:
        c.upload_item("Bench", content / "ws" / "w0001.fmw", "w0000.fmw", overwrite=True)
        c.set_services("Bench", "w0002.fmw", ["fmedatadownload"])  # stamp does not move
    # The hand re-publish is stamped later than the sync's: a publish date is whole seconds on
    # a V3 node and milliseconds on V4, and within one its stamp would not move (README,
    # "Known limits"); the test is about a stamp that moved.
    republished = node.state.repositories["Bench"].items["w0000.fmw"]
    republished.last_publish = max(republished.last_publish, synced + 1)
    node.reset_counters()
    plan = app.plan(request(ref, content, tmp_path / "runner"))
    changed = [(a.key, a.change) for a in plan.nodes["fme-2"].actions
               if a.change not in ("unchanged",)]
    assert changed == [("Bench/w0000.fmw", "update")]
    assert content_downloaded(node) == (content / "ws" / "w0001.fmw").stat().st_size
    node.reset_counters()
    deep = app.plan(request(ref, content, tmp_path / "runner", deep=True))
    changed = sorted((a.key, a.detail) for a in deep.nodes["fme-2"].actions
                     if a.change == "update")
    assert changed == [("Bench/w0000.fmw", "file"), ("Bench/w0002.fmw", "services")]
    assert node.downloads["item"] == sum(p.stat().st_size for p in (content / "ws").iterdir())
    assert node.requests_by_path["GET /fmeapiv4/workspaces/{repo}/{item}"] == ITEMS  # services
    assert node.downloads["resource:FME_SHAREDRESOURCE_DATA"] > 0


def test_requests_to_one_node_run_concurrently_within_the_bound(cluster, tmp_path: Path) -> None:
    box, ref, content = cluster
    for node in box.nodes:
        node.faults.latency_s = 0.01
    result = app.sync(request(ref, content, tmp_path / "cache", node_concurrency=3))
    assert result.ok
    for node in box.nodes:
        assert 2 <= node.max_in_flight <= 3, node.name


def test_a_node_that_throttles_beyond_the_bound_is_never_throttled(cluster, tmp_path: Path
                                                                   ) -> None:
    """A node that refuses more than 2 requests at once never sees a third from fmeaa
    configured for 2: the bound holds across reading, applying, the lock and the ledger."""
    box, ref, content = cluster
    for node in box.nodes:
        node.faults.throttle_above = 2
        node.faults.latency_s = 0.005
    assert app.sync(request(ref, content, tmp_path / "cache", node_concurrency=2)).ok
    assert app.verify(request(ref, content, tmp_path / "other", node_concurrency=2)).in_sync
    assert [n.throttled for n in box.nodes] == [0, 0]


class Clock:
    """A clock whose sleep records the wait and moves time on (no wall-clock in tests)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_429_with_retry_after_is_honoured_for_reads_and_writes(sandbox: Sandbox,
                                                                tmp_path: Path) -> None:
    node = sandbox.nodes[0]
    clock = Clock()
    waits = clock.waits
    client = connect(node.name, node.url, username="admin", password=TEST_PASSWORD)
    client._sleep, client._clock = clock.sleep, lambda: clock.now
    client.login()
    node.faults.retry_after_s = 1.5
    node.faults.throttle_next = 2
    assert "Samples" in [r["name"] for r in client.repositories()]
    assert node.throttled == 2
    assert waits == [1.5, 1.5]
    assert client.limit == 2  # halved twice: fewer requests at once until the node copes
    # A refused write was not processed: it is sent again, and lands once.
    node.faults.throttle_next = 1
    file = tmp_path / "a.fmw"
    file.write_text("#! a\n")
    client.upload_item("Samples", file)
    assert node.throttled == 3 and waits == [1.5, 1.5, 1.5]
    assert "a.fmw" in node.state.repositories["Samples"].items
    assert client.limit <= 2
    for _ in range(40):  # answers without throttling: the limit grows back, one at a time
        client.repositories()
    assert client.limit == client.max_concurrent == 8
    client.close()
    # Discovery and login are waited out too (a new client's first calls).
    fresh = connect(node.name, node.url, username="admin", password=TEST_PASSWORD)
    fresh._sleep, fresh._clock = clock.sleep, lambda: clock.now
    node.faults.throttle_next = 3
    fresh.login()
    assert fresh.repositories() and node.throttled == 6 and len(waits) == 6
    fresh.close()


def test_a_write_refused_more_often_than_the_client_waits_is_retried_by_the_applier(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """429 means "not processed": a write the node kept refusing beyond the client's own
    patience is a transient failure the applier tries again (it failed a sync at random
    before, whenever one upload met more refusals in a row than the client waits out)."""
    monkeypatch.setattr("time.sleep", lambda s: None)
    node = sandbox.nodes[0]
    client = connect(node.name, node.url, username="admin", password=TEST_PASSWORD,
                     max_concurrent=2)
    client._sleep = lambda s: None
    client.login()
    file = tmp_path / "a.fmw"
    file.write_text("#! a\n")
    node.faults.retry_after_s = 0
    node.faults.throttle_next = client.throttle_retries + 2  # beyond one call's patience
    result = NodeApplier(client, DigestCache(None), LocalFilesFor(file)).apply(NodePlan(
        node.name, [Action(Change.CREATE, Kind.ITEM, "Samples/a.fmw",
                           file_entry(Kind.ITEM, "Samples/a.fmw", 5, "0" * 64, (), file))]))
    assert result.ok, result.failures
    assert "a.fmw" in node.state.repositories["Samples"].items
    client.close()


class LocalFilesFor:
    def __init__(self, file: Path) -> None:
        self.file = file

    def file_for(self, entry: Entry) -> Path:
        return self.file


def test_a_sync_converges_on_a_node_that_throttles(cluster, tmp_path: Path) -> None:
    box, ref, content = cluster
    slow = box.node("fme-2")
    slow.faults.throttle_above = 1
    slow.faults.retry_after_s = 0.01
    slow.faults.latency_s = 0.002
    assert app.sync(request(ref, content, tmp_path / "cache", node_concurrency=6)).ok
    slow.faults.throttle_above = None
    assert app.verify(request(ref, content, tmp_path / "cache")).in_sync


class RecordingClient:
    """Just enough of FmeClient for the applier: records when each write starts and ends."""

    node = "fme-1"

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()

    def _call(self, key: str) -> dict[str, Any]:
        with self.lock:
            self.events.append(("start", key, time.monotonic()))
        time.sleep(0.002)  # let several run at once
        with self.lock:
            self.events.append(("end", key, time.monotonic()))
        return {}

    def create_repository(self, name: str, description: str = "") -> None:
        self._call(f"repository:{name}")

    def upload_item(self, repo: str, path: Path, name: str, overwrite: bool = False) -> Any:
        return self._call(f"item:{repo}/{name}")

    def set_services(self, repo: str, name: str, services: list[str]) -> None:
        pass

    def services(self, repo: str, name: str) -> list[str]:
        return []

    def create_notification(self, kind: str, body: dict[str, Any]) -> None:
        self._call(f"topic:{body['name']}")

    def create_schedule(self, body: dict[str, Any]) -> None:
        self._call(f"schedule:{body['category']}/{body['name']}")

    def delete_item(self, repo: str, name: str) -> None:
        self._call(f"delete-item:{repo}/{name}")

    def delete_repository(self, name: str) -> None:
        self._call(f"delete-repository:{name}")


class Files:
    def file_for(self, entry: Entry) -> Path:
        return Path("/dev/null")


def test_concurrent_apply_keeps_parents_before_children_and_deletes_last() -> None:
    """Actions of one kind run at once; no action starts before every action it may depend on
    (earlier kinds) has finished, and deletes start after every create."""
    creates: list[Entry] = [metadata_entry(Kind.REPOSITORY, {"name": f"R{i}"}) for i in range(3)]
    creates += [file_entry(Kind.ITEM, f"R{i % 3}/w{i}.fmw", 1, "x", ["fmejobsubmitter"])
                for i in range(12)]
    creates += [metadata_entry(Kind.TOPIC, {"name": f"T{i}"}) for i in range(4)]
    creates += [metadata_entry(Kind.SCHEDULE, {"name": f"s{i}", "category": "c", "cron": "x"})
                for i in range(4)]
    rank = {k: i for i, k in enumerate(APPLY_ORDER)}
    creates.sort(key=lambda e: (rank[e.kind], e.key))
    deletes = [file_entry(Kind.ITEM, f"Old/w{i}.fmw", 1, "y") for i in range(5)]
    deletes.append(metadata_entry(Kind.REPOSITORY, {"name": "Gone"}))
    actions = [Action(Change.CREATE, e.kind, e.key, e) for e in creates]
    actions += [Action(Change.DELETE, e.kind, e.key, None, e) for e in deletes]
    client = RecordingClient()
    result = NodeApplier(client, DigestCache(None, enabled=False), Files(),  # type: ignore[arg-type]
                         concurrency=6).apply(NodePlan("fme-1", actions))
    assert result.ok and result.applied == len(actions)
    started = {k: t for e, k, t in client.events if e == "start"}
    ended = {k: t for e, k, t in client.events if e == "end"}
    order = [f"{'delete-' if a.change is Change.DELETE else ''}{a.kind}:{a.key}" for a in actions]
    group = [(a.kind, a.change is Change.DELETE) for a in actions]
    for i, key in enumerate(order):
        earlier = [order[j] for j in range(i) if group[j] != group[i]]
        assert all(ended[e] <= started[key] for e in earlier), key
    overlapping = max(sum(1 for k in order if started[k] <= started[x] < ended[k]) for x in order)
    assert overlapping > 1  # one kind's actions did run at once


def test_an_answered_request_no_longer_counts_as_in_flight(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that has its answer may send its next request at once: by then the emulator
    has stopped counting the answered one, else a bounded client would seem to exceed its
    bound (seen under load: 4 at once from a client bound to 3). Marking a request done is
    slowed here so that doing it after the answer went out could not go unnoticed."""
    node = sandbox.nodes[0]
    marked = node.request_done

    def slowly() -> None:
        time.sleep(0.05)
        marked()
    monkeypatch.setattr(node, "request_done", slowly)
    with connect(node.name, node.url, username="admin", password=TEST_PASSWORD) as c:
        for _ in range(3):
            c.repositories()
            assert node.in_flight == 0


def test_emulator_counts_requests_per_path(sandbox: Sandbox) -> None:
    node = sandbox.nodes[0]
    with connect(node.name, node.url, username="admin", password=TEST_PASSWORD) as c:
        c.login()
        node.reset_counters()
        c.repositories()
        c.repositories()
        c.items("Samples")
    assert node.requests_by_path["GET /fmeapiv4/repositories"] == 2
    assert sum(n for p, n in node.requests_by_path.items() if p.endswith("/items")) == 1
    assert node.request_count == 3


def test_services_are_set_only_where_an_upload_leaves_others(cluster, tmp_path: Path) -> None:
    """What services a node gives a new item, and whether a re-publish keeps them, is read back
    once per node (UNCONFIRMED for real FME), not per item; services are then set only on
    items that need others — and every node ends with exactly the wanted services."""
    box, ref, content = cluster
    manifest = content / "fmeaa-content.yaml"
    raw = yaml.safe_load(manifest.read_text())
    for item in raw["repositories"][0]["items"][:5]:
        item["services"] = ["fmedatadownload", "fmejobsubmitter"]
    manifest.write_text(yaml.safe_dump(raw))
    assert app.sync(request(ref, content, tmp_path / "cache")).ok
    for node in box.nodes:
        paths = node.requests_by_path
        set_calls = sum(n for p, n in paths.items() if p.startswith("PUT") and "services" in p)
        read_backs = sum(n for p, n in paths.items()
                         if p.startswith("GET") and ("services" in p or "{item}" in p))
        # Read back once per rule, not per item: only the requests already in flight when
        # the first answer arrives can read too (at most the concurrency bound, each rule).
        assert set_calls == 5 and read_backs <= 2 * DEFAULT_NODE_CONCURRENCY, dict(paths)
        items = {k: v[2] for k, v in node_state_items(node).items()}
        assert all(items[f"Bench/w{i:04d}.fmw"] == ["fmedatadownload", "fmejobsubmitter"]
                   for i in range(5))
        assert all(s == ["fmejobsubmitter"] for k, s in items.items()
                   if k.startswith("Bench/") and int(k[7:11]) >= 5)
        node.reset_counters()
    for i in range(20):  # a re-publish keeps an item's services: learnt, then relied on
        (content / "ws" / f"w{i:04d}.fmw").write_text(f"#! release 2 of {i}\n")
    assert app.sync(request(ref, content, tmp_path / "cache")).ok
    assert app.verify(request(ref, content, tmp_path / "deep", deep=True)).in_sync
    for node in box.nodes:
        set_calls = sum(n for p, n in node.requests_by_path.items()
                        if p.startswith("PUT") and "services" in p)
        assert set_calls == 0


def node_state_items(node: EmulatedNode) -> dict[str, tuple[int, str, list[str]]]:
    return {f"{r.name}/{i.name}": (i.file.size, i.file.sha256, sorted(i.services))
            for r in node.state.repositories.values() for i in r.items.values()}


def test_pages_asked_for_at_once_still_give_every_item_when_a_node_pages_otherwise() -> None:
    """The pages of an expected list are asked for at once, assuming the node honours
    `limit=100`; a node that gives shorter pages (or more items than expected) still has its
    whole list read."""
    import httpx

    from fmeaa.client.transport import Transport

    items = [{"name": f"w{i}"} for i in range(230)]
    cap = {"size": 50}

    def answer(request: httpx.Request) -> httpx.Response:
        limit = min(int(request.url.params["limit"]), cap["size"])
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json={"items": items[offset:offset + limit],
                                         "totalCount": len(items), "offset": offset,
                                         "limit": limit})

    http = Transport("fme-1", "http://node", transport=httpx.MockTransport(answer))
    assert http.paged("/list", expect=230) == items  # pages of 50: read again, page by page
    cap["size"] = 100
    assert http.paged("/list", expect=120) == items  # more than expected: read on
    assert http.paged("/list") == items
