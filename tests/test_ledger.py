"""The ledger kept on each node (issue 14, issue 15 item 3): what fmeaa wrote there, read back
by any machine. Stored through the node's REST API, as a base plus a small delta."""

from __future__ import annotations

import json
from pathlib import Path

from fmeaa.client import FmeClient
from fmeaa.emulator import Sandbox
from fmeaa.sync import ledger as ledgers
from fmeaa.sync.ledger import Ledger, LedgerEntry, SyncRun
from fmeaa.sync.snapshot import Kind, Snapshot, file_entry, metadata_entry


def on_disk(box: Sandbox, name: str) -> Path:
    return box.nodes[0].state.data_dir / "resources" / ledgers.LEDGER_CONNECTION / \
        ledgers.LEDGER_DIRECTORY / name


def entry(n: int, stamp: str = "2025-01-01T00:00:00Z") -> LedgerEntry:
    return LedgerEntry(digest=f"{n:064x}", size=100 + n, stamp=stamp, sha256=f"{n:064x}",
                       services=("fmejobsubmitter",), written_at=1.0, sync_id="s1", user="u")


def test_a_node_without_a_ledger_reads_as_empty(client: FmeClient) -> None:
    found = ledgers.read(client)
    assert found.entries == {} and found.generation == 0 and found.damaged is None


def test_written_ledger_is_read_back_by_another_machine(client: FmeClient, sandbox: Sandbox
                                                        ) -> None:
    mine = ledgers.read(client)
    for n in range(5):
        mine.record(Kind.ITEM, f"R/w{n}.fmw", entry(n))
    assert ledgers.write(client, mine) == "base"
    assert ledgers.write(client, mine) == "unchanged"  # nothing new: nothing sent
    theirs = ledgers.read(client)
    assert theirs.entries == mine.entries and theirs.generation == 1
    assert theirs.get(Kind.ITEM, "R/w3.fmw") == entry(3)
    assert json.loads(on_disk(sandbox, ledgers.BASE_NAME).read_bytes())["node"] == client.node


def test_a_small_change_is_sent_as_a_small_delta(client: FmeClient, sandbox: Sandbox) -> None:
    mine = ledgers.read(client)
    for n in range(300):
        mine.record(Kind.ITEM, f"R/w{n}.fmw", entry(n))
    ledgers.write(client, mine)
    base_size = on_disk(sandbox, ledgers.BASE_NAME).stat().st_size
    again = ledgers.read(client)
    again.record(Kind.ITEM, "R/w7.fmw", entry(7, stamp="2025-02-02T00:00:00Z"))
    again.forget(Kind.ITEM, "R/w8.fmw")
    assert ledgers.write(client, again) == "delta"
    assert on_disk(sandbox, ledgers.DELTA_NAME).stat().st_size < base_size / 20
    assert on_disk(sandbox, ledgers.BASE_NAME).stat().st_size == base_size  # base untouched
    third = ledgers.read(client)
    assert third.entries == again.entries
    assert third.get(Kind.ITEM, "R/w7.fmw").stamp == "2025-02-02T00:00:00Z"  # type: ignore[union-attr]
    assert third.get(Kind.ITEM, "R/w8.fmw") is None


def test_a_large_delta_is_folded_into_a_new_base(client: FmeClient, sandbox: Sandbox) -> None:
    mine = ledgers.read(client)
    for n in range(100):
        mine.record(Kind.ITEM, f"R/w{n}.fmw", entry(n))
    ledgers.write(client, mine)
    small = ledgers.read(client)
    small.record(Kind.ITEM, "R/w1.fmw", entry(1, stamp="later"))
    assert ledgers.write(client, small) == "delta"
    big = ledgers.read(client)
    for n in range(100):
        big.record(Kind.ITEM, f"R/w{n}.fmw", entry(n, stamp="much later"))
    assert ledgers.write(client, big) == "base"
    assert not on_disk(sandbox, ledgers.DELTA_NAME).exists()
    found = ledgers.read(client)
    assert found.generation == 2 and found.entries == big.entries


def test_a_delta_of_an_older_base_is_ignored(client: FmeClient, sandbox: Sandbox) -> None:
    """A run that stopped between writing a new base and deleting the delta leaves a stale
    delta behind: it must not undo the new base."""
    mine = ledgers.read(client)
    for n in range(100):
        mine.record(Kind.ITEM, f"R/w{n}.fmw", entry(n))
    ledgers.write(client, mine)
    stale = ledgers.read(client)
    stale.forget(Kind.ITEM, "R/w5.fmw")
    ledgers.write(client, stale)
    left_behind = on_disk(sandbox, ledgers.DELTA_NAME).read_bytes()
    fresh = ledgers.read(client)
    for n in range(100):
        fresh.record(Kind.ITEM, f"R/w{n}.fmw", entry(n, stamp="new"))
    assert ledgers.write(client, fresh) == "base"
    on_disk(sandbox, ledgers.DELTA_NAME).write_bytes(left_behind)
    found = ledgers.read(client)
    assert found.get(Kind.ITEM, "R/w5.fmw") is not None
    assert found.entries == fresh.entries


def test_a_damaged_ledger_reads_as_empty_and_is_rewritten(client: FmeClient, sandbox: Sandbox
                                                          ) -> None:
    mine = ledgers.read(client)
    mine.record(Kind.ITEM, "R/a.fmw", entry(1))
    ledgers.write(client, mine)
    on_disk(sandbox, ledgers.BASE_NAME).write_bytes(b"{not json")
    found = ledgers.read(client)
    assert found.entries == {} and found.damaged and "damaged" in found.damaged
    found.record(Kind.ITEM, "R/a.fmw", entry(1))
    assert ledgers.write(client, found) == "base"
    assert ledgers.read(client).entries == found.entries


def test_trust_holds_while_size_and_stamp_are_the_recorded_ones() -> None:
    book = Ledger("fme-1")
    book.record(Kind.ITEM, "R/a.fmw", entry(1, stamp="t1"))
    assert book.trusted_sha256(Kind.ITEM, "R/a.fmw", 101, "t1") == f"{1:064x}"
    assert book.trusted_sha256(Kind.ITEM, "R/a.fmw", 101, "t2") is None  # republished
    assert book.trusted_sha256(Kind.ITEM, "R/a.fmw", 102, "t1") is None  # other size
    assert book.trusted_sha256(Kind.RESOURCE, "R/a.fmw", 101, "t1") is None  # other kind
    assert book.trusted_services("R/a.fmw", "t1") == ("fmejobsubmitter",)
    assert book.trusted_services("R/a.fmw", "t2") is None
    # just uploaded, the node's stamp not seen yet: the first listing's stamp is taken
    book.record(Kind.RESOURCE, "C:/x", LedgerEntry(digest="d", size=5, sha256="d"))
    assert book.trusted_sha256(Kind.RESOURCE, "C:/x", 5, "any") == "d"
    assert book.trusted_sha256(Kind.RESOURCE, "C:/x", 6, "any") is None


def test_settle_records_what_matches_and_keeps_evidence_of_the_rest() -> None:
    item = lambda name, sha, stamp="t": file_entry(  # noqa: E731
        Kind.ITEM, f"R/{name}", 10, sha, ["fmejobsubmitter"], stamp=stamp)
    topic = metadata_entry(Kind.TOPIC, {"name": "T"})
    wanted = Snapshot([item("same.fmw", "a"), item("new.fmw", "b"), item("failed.fmw", "c"),
                       item("vanished.fmw", "d"), topic,
                       file_entry(Kind.RESOURCE, "C:/in/noise.log", 1, "n")],
                      resource_roots=[("C", "/in")],
                      ignore=[(Kind.RESOURCE, "C:/in/*.log")])
    book = Ledger("fme-1")
    old_same = LedgerEntry.of(item("same.fmw", "a", stamp="t0"), "old-run", "ann", at=5.0)
    book.record(Kind.ITEM, "R/same.fmw", old_same)
    book.record(Kind.ITEM, "R/failed.fmw", LedgerEntry.of(item("failed.fmw", "z"), "old", "ann"))
    book.record(Kind.ITEM, "R/vanished.fmw", LedgerEntry.of(item("vanished.fmw", "d"), "o", "a"))
    book.record(Kind.ITEM, "R/pruned.fmw", LedgerEntry.of(item("pruned.fmw", "p"), "o", "a"))
    book.record(Kind.ITEM, "R/dropped.fmw", LedgerEntry.of(item("dropped.fmw", "q"), "o", "a"))
    book.record(Kind.RESOURCE, "C:/elsewhere/f", LedgerEntry(digest="e", size=1, sha256="e"))
    book.record(Kind.RESOURCE, "C:/in/noise.log", LedgerEntry(digest="old-noise", size=1))
    actual = Snapshot([item("same.fmw", "a", stamp="t9"), item("new.fmw", "b"),
                       item("failed.fmw", "z"), item("hand-made.fmw", "h"), topic,
                       item("dropped.fmw", "q"),
                       file_entry(Kind.RESOURCE, "C:/in/noise.log", 2, "m")],
                      resource_roots=[("C", "/in")])
    book.settle(wanted, actual, SyncRun("run-2", "bob"))
    same = book.get(Kind.ITEM, "R/same.fmw")
    assert same is not None and same.stamp == "t9"  # the node's current stamp
    assert (same.sync_id, same.user, same.written_at) == ("old-run", "ann", 5.0)  # not rewritten
    new = book.get(Kind.ITEM, "R/new.fmw")
    assert new is not None and (new.sync_id, new.user, new.sha256) == ("run-2", "bob", "b")
    assert book.get(Kind.TOPIC, "T") is not None
    assert book.get(Kind.ITEM, "R/failed.fmw").sha256 == "z"  # type: ignore[union-attr]
    assert book.get(Kind.ITEM, "R/vanished.fmw") is not None  # wanted, gone: drift evidence
    assert book.get(Kind.ITEM, "R/pruned.fmw") is None  # gone and not wanted
    assert book.get(Kind.ITEM, "R/dropped.fmw") is not None  # dropped from the source, on the
    # node still: its record stays, so the next plan calls it pending (not extra)
    assert book.get(Kind.ITEM, "R/hand-made.fmw") is None  # never fmeaa's
    assert book.get(Kind.RESOURCE, "C:/elsewhere/f") is not None  # not read this time
    assert book.get(Kind.RESOURCE, "C:/in/noise.log").digest == "old-noise"  # type: ignore[union-attr]
