"""Seed before serve, called directly (what the Pulumi NodeSeed and `fmeaa seed` run): health →
licence → sync → parity for one node, and every way it refuses, with a message that names the
node and what to do. Emulated nodes; Secrets Manager on moto where the request names secrets."""

from __future__ import annotations

import importlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from fmeaa.app.seed import (
    REPORTED_LICENCE_KEYS,
    SeedError,
    SeedRequest,
    content_digest,
    ensure_licensed,
    licence_report,
    read_serial,
    seed_node,
    wait_until,
)
from fmeaa.client import (
    FmeApiError,
    InvalidRequestError,
    NodeTimeoutError,
    NodeUnreachableError,
    ServerError,
)
from fmeaa.cluster.credentials import Credentials, CredentialSource
from fmeaa.cluster.inventory import InventoryError
from fmeaa.emulator import Sandbox
from fmeaa.sync.snapshot import Snapshot
from tests.aws_server import REGION
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import EXAMPLE, copy_example, node_items

seed = importlib.import_module("fmeaa.app.seed")  # the module (`fmeaa.app.seed` is a function)
SERIAL = {"serialNumber": "ABCD-EFGH-JKLM", "email": "ops@example.com", "firstName": "Ada"}


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as made:
        yield made


def creds() -> CredentialSource:
    return CredentialSource(Credentials("admin", TEST_PASSWORD), where="the test")


def request(box: Sandbox, node: str = "fme-2", **changes: object) -> SeedRequest:
    fields: dict = {"node": node, "rest_url": box.node(node).url, "default_owner": "fme-1",
                    "source": str(EXAMPLE), "timeout_s": 20}
    fields.update(changes)
    return SeedRequest(**fields)


def test_a_seed_syncs_the_node_and_proves_parity(box: Sandbox, tmp_path: Path) -> None:
    report = seed_node(request(box), creds(), cache_dir=tmp_path / "cache", poll_s=0.01)
    assert report == {"node": "fme-2", "applied": 15, "bytesSent": report["bytesSent"],
                      "licence": None}
    assert report["bytesSent"] > 0 and len(node_items(box, "fme-2")) == 5
    assert node_items(box, "fme-1") == {}  # one node only: the others are not touched
    schedules = box.node("fme-2").state.schedules
    assert schedules and not any(s["enabled"] for s in schedules.values())  # fme-1 owns "one"
    again = seed_node(request(box), creds(), cache_dir=tmp_path / "cache", poll_s=0.01)
    assert (again["applied"], again["bytesSent"]) == (0, 0)


def test_a_seed_from_a_reference_node_copies_its_content(box: Sandbox, tmp_path: Path) -> None:
    seed_node(request(box, "fme-1"), creds(), cache_dir=tmp_path / "c1", poll_s=0.01)
    from_node = request(box, source="node:fme-1", reference_url=box.node("fme-1").url)
    report = seed_node(from_node, creds(), cache_dir=tmp_path / "c2", poll_s=0.01)
    assert report["applied"] > 0 and node_items(box, "fme-2") == node_items(box, "fme-1")
    itself = seed_node(request(box, "fme-1", source="node:fme-1"), creds(), poll_s=0.01)
    assert itself == {"node": "fme-1", "applied": 0, "bytesSent": 0, "licence": None}
    with pytest.raises(SeedError) as caught:
        seed_node(request(box, source="node:fme-1"), creds(), poll_s=0.01)
    assert str(caught.value) == "seeding from node:fme-1 needs its REST URL"


def test_a_byol_clone_is_licensed_with_the_serial_before_the_sync(box: Sandbox,
                                                                   tmp_path: Path) -> None:
    state = box.node("fme-2").state
    state.unlicense()
    state.license_delay_s = 0
    report = seed_node(request(box, license_mode="byol"), creds(), serial=dict(SERIAL),
                       cache_dir=tmp_path / "cache", poll_s=0.01)
    assert report["licence"] == {"isLicensed": True, "isLicenseExpired": False,
                                 "expiryDate": report["licence"]["expiryDate"],
                                 "maximumEngines": 10, "maximumAuthors": 10}
    assert state.license["serialNumber"] == "ABCD-EFGH-JKLM" and report["applied"] == 15


def test_the_serial_comes_from_secrets_manager(aws: str, box: Sandbox, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sm = boto3.client("secretsmanager", region_name=REGION)
    sm.create_secret(Name="serial-json", SecretString=json.dumps(SERIAL))
    sm.create_secret(Name="serial-bare", SecretString=" ABCD-EFGH-JKLM\n")
    sm.create_secret(Name="serial-none", SecretString=json.dumps({"email": "x"}))
    sm.create_secret(Name="serial-list", SecretString="[1]")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):  # the region comes from the request
        monkeypatch.delenv(name)
    assert read_serial("serial-json", REGION) == SERIAL
    assert read_serial("serial-bare", REGION) == {"serialNumber": "ABCD-EFGH-JKLM"}
    for name in ("serial-none", "serial-list"):
        with pytest.raises(SeedError) as caught:
            read_serial(name, REGION)
        assert str(caught.value) == f"secret {name!r} holds no serialNumber"
    state = box.node("fme-2").state
    state.unlicense()
    state.license_delay_s = 0
    byol = request(box, license_mode="byol", serial_secret_id="serial-json", region=REGION)
    assert seed_node(byol, creds(), cache_dir=tmp_path / "cache", poll_s=0.01)["licence"][
        "isLicensed"] is True


def test_credentials_come_from_the_requests_secret(aws: str, box: Sandbox, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="admin", SecretString=json.dumps({"password": TEST_PASSWORD}))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):  # the region comes from the request
        monkeypatch.delenv(name)
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="smtp", SecretString=json.dumps({"password": "conn-secret-value"}))
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(
        "      # smtp_password: {secret: \"aws-sm:fme/smtp#password\"}",
        "      smtp_password: {secret: \"aws-sm:smtp#password\"}"))
    report = seed_node(request(box, credentials_secret_id="admin", region=REGION,
                               source=str(content)), cache_dir=tmp_path / "cache", poll_s=0.01)
    assert report["applied"] == 15
    stored = box.node("fme-2").state.subscriptions["gis-team-email"]
    assert stored["properties"]["smtp_password"] == "conn-secret-value"
    with pytest.raises(SeedError) as caught:
        seed_node(request(box, credentials_secret_id="missing", region=REGION), poll_s=0.01)
    assert str(caught.value) == "cannot read secret 'missing': ResourceNotFoundException"
    with pytest.raises(SeedError) as caught:
        seed_node(request(box), CredentialSource(None, {"fme-1": Credentials("a", "b")}, where="x"))
    assert str(caught.value) == "no credentials for node 'fme-2' in x"
    with pytest.raises(SeedError) as caught:
        seed_node(request(box))  # neither credentials nor a secret naming them
    assert str(caught.value) == ("fme-2: no FME credentials to seed it with: name the Secrets "
                                 "Manager secret that holds them (seed.credentialsSecretId)")


def test_an_unreachable_node_says_where_seeding_must_run(box: Sandbox) -> None:
    box.node("fme-2").stop()
    with pytest.raises(SeedError) as caught:
        seed_node(request(box, timeout_s=0.3), creds(), poll_s=0.01)
    text = str(caught.value)
    assert text.startswith("fme-2: FME health check: still not ready after 1 s (cannot connect")
    assert text.endswith(f". Can this machine reach {box.node('fme-2').url}? Seeding runs where "
                         "`pulumi up` (or `fmeaa seed`) runs: run it from inside the VPC with "
                         "adminCidr admitting it, or use seed.mode 'manual' and `fmeaa seed` "
                         "through SSM port forwarding (README, \"Seed before serve\")")


def test_an_unhealthy_node_is_reported_as_it_answered(box: Sandbox,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def unhealthy(self: object) -> dict:
        raise ServerError("fme-2", "GET", "/health", 503, "starting")
    monkeypatch.setattr("fmeaa.client.rest.FmeClient.health", unhealthy)
    with pytest.raises(SeedError) as caught:
        seed_node(request(box, timeout_s=0.2), creds(), poll_s=0.01)
    assert str(caught.value) == ("fme-2: FME health check: still not ready after 1 s (health "
                                 "check answered 503)")  # no advice about reaching it


def test_a_node_that_fails_during_the_sync_is_not_in_sync(box: Sandbox, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(self: object, repository: str, file: Path, name: str | None = None,
                overwrite: bool = False) -> dict:
        raise InvalidRequestError("fme-2", "POST", f"/repositories/{repository}", 422, "refused")
    monkeypatch.setattr("fmeaa.client.rest.FmeClient.upload_item", refused)
    with pytest.raises(SeedError) as caught:
        seed_node(request(box), creds(), cache_dir=tmp_path / "cache", poll_s=0.01)
    text = str(caught.value)
    assert text.startswith("fme-2: not in sync after seeding: create item Parcels/")
    problems = text.split(": not in sync after seeding: ", 1)[1].split("; ")
    assert "-> 422: refused" in text and 1 <= len(problems) <= 10  # at most the first ten
    assert all(p.startswith("create item ") for p in problems)
    assert node_items(box, "fme-2") == {}


def test_content_digest_follows_the_manifest_and_every_file(tmp_path: Path) -> None:
    content = copy_example(tmp_path / "content")
    first = content_digest(str(content))
    assert first == content_digest(str(content)) and len(first) == 64
    workspace = next((content / "workspaces").rglob("*.fmw"))
    workspace.write_bytes(workspace.read_bytes() + b" ")
    second = content_digest(str(content))
    assert second != first
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text() + "\n# a comment changes the manifest\n")
    assert content_digest(str(content)) != second
    assert content_digest("node:fme-1") == "node:fme-1"


def test_wait_until_polls_until_done_or_says_why_not(monkeypatch: pytest.MonkeyPatch) -> None:
    naps: list[float] = []
    monkeypatch.setattr(seed.time, "sleep", naps.append)
    answers = iter(["booting", "licensing", None])
    wait_until(lambda: next(answers), timeout_s=60, poll_s=2.5, what="x")
    assert naps == [2.5, 2.5]
    clock = iter([100.0, 100.0, 110.0])  # the deadline itself is too late
    monkeypatch.setattr(seed.time, "monotonic", lambda: next(clock))
    with pytest.raises(SeedError) as caught:
        wait_until(lambda: "still booting", timeout_s=10, poll_s=1, what="fme-9: health")
    assert str(caught.value) == "fme-9: health: still not ready after 10 s (still booting)"


class LicenceClient:
    node = "n1"

    def __init__(self, statuses: list[dict], requests: list[dict]) -> None:
        self.statuses, self.requests, self.calls = statuses, requests, []

    def license_status(self) -> dict:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def request_license(self, serial: str, **contact: str) -> None:
        self.calls.append((serial, contact))

    def license_request_status(self) -> dict:
        return self.requests.pop(0) if len(self.requests) > 1 else self.requests[0]


def test_ensure_licensed_requests_once_and_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    naps: list[float] = []
    monkeypatch.setattr(seed.time, "sleep", naps.append)
    licensed = {"isLicensed": True, "serialNumber": "ABCD-EFGH-JKLM", "maximumEngines": 4}
    done = LicenceClient([licensed], [{}])
    assert ensure_licensed(done, dict(SERIAL), 5, 0) == licence_report(licensed)  # type: ignore[arg-type]
    assert done.calls == []
    pending = LicenceClient([{"isLicensed": False}, {"isLicensed": False}, licensed],
                            [{"status": "REQUESTING"}, {}])
    assert ensure_licensed(pending, {"serialNumber": 123, "email": 7}, 5, 0.5)["isLicensed"] is True  # type: ignore[arg-type]
    assert pending.calls == [("123", {"email": "7"})] and naps == [0.5]
    failed = LicenceClient([{"isLicensed": False}], [{"status": "FAILED", "message": "bad serial"}])
    with pytest.raises(SeedError) as caught:
        ensure_licensed(failed, dict(SERIAL), 5, 0)  # type: ignore[arg-type]
    assert str(caught.value) == "n1: licence request failed: bad serial"
    slow = LicenceClient([{"isLicensed": False}], [{}])
    with pytest.raises(SeedError) as caught:
        ensure_licensed(slow, dict(SERIAL), 0, 0)  # type: ignore[arg-type]
    assert str(caught.value) == "n1: licence: still not ready after 0 s (licence request pending)"
    requesting = LicenceClient([{"isLicensed": False}], [{"status": "REQUESTING"}])
    with pytest.raises(SeedError) as caught:
        ensure_licensed(requesting, dict(SERIAL), 0, 0)  # type: ignore[arg-type]
    assert str(caught.value).endswith("(licence request REQUESTING)")


def test_the_licence_report_never_holds_the_serial() -> None:
    status = {"isLicensed": True, "serialNumber": "ABCD-EFGH-JKLM", "isLicenseExpired": False,
              "expiryDate": "2027", "maximumEngines": 4, "maximumAuthors": 2, "extra": 1}
    assert licence_report(status) == {k: status[k] for k in REPORTED_LICENCE_KEYS}
    assert "serialNumber" not in licence_report(status)
    assert licence_report({}) == dict.fromkeys(REPORTED_LICENCE_KEYS)


def test_health_check_reasons() -> None:
    class Down:
        def health(self) -> dict:
            raise NodeUnreachableError("n1", "GET", "/h", None, "cannot connect")

    class Sick:
        def health(self) -> dict:
            raise FmeApiError("n1", "GET", "/h", 500, "oops")

    class Fine:
        def health(self) -> dict:
            return {}
    assert seed._healthy(Down())() == "cannot connect"  # type: ignore[arg-type]
    assert seed._healthy(Sick())() == "health check answered 500"  # type: ignore[arg-type]
    assert seed._healthy(Fine())() is None  # type: ignore[arg-type]


def test_a_seed_keeps_what_the_node_holds_beyond_the_content_and_caches_in_temp(
        box: Sandbox, tmp_path: Path) -> None:
    """Seeding never prunes (a stray item in a managed repository stays: `sync --prune` is the
    operator's call); without a cache directory the digests go to the temporary directory."""
    state = box.node("fme-2").state
    stray = tmp_path / "stray.fmw"
    stray.write_text("#! published by hand\n")
    from fmeaa.client import connect
    with connect("fme-2", box.node("fme-2").url, username="admin", password=TEST_PASSWORD) as c:
        c.create_repository("Roads")
        c.upload_item("Roads", stray)
    report = seed_node(request(box, cluster="prod"), creds(), poll_s=0.01)
    assert report["applied"] == 14  # Roads existed already
    assert "stray.fmw" in state.repositories["Roads"].items
    cached = Path(tempfile.gettempdir()) / "fmeaa-seed" / "prod"
    assert cached.is_dir() and any(cached.iterdir())


def test_content_secret_references_are_resolved_for_the_seed(box: Sandbox, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(
        "      # smtp_password: {secret: \"aws-sm:fme/smtp#password\"}",
        "      smtp_password: {secret: \"env:SMTP_PASSWORD\"}"))
    monkeypatch.setenv("SMTP_PASSWORD", "conn-secret-value")
    seed_node(request(box, source=str(content)), creds(), cache_dir=tmp_path / "c", poll_s=0.01)
    stored = box.node("fme-2").state.subscriptions["gis-team-email"]
    assert stored["properties"]["smtp_password"] == "conn-secret-value"


def test_a_byol_seed_names_the_node_when_the_licence_is_refused(box: Sandbox) -> None:
    state = box.node("fme-2").state
    state.unlicense()
    state.license_delay_s = 0.05  # the request takes a few polls
    with pytest.raises(SeedError) as caught:
        seed_node(request(box, license_mode="byol"), creds(), serial={"serialNumber": "nope"},
                  poll_s=0.01)
    assert str(caught.value) == "fme-2: licence request failed: Invalid serial number"
    state.license_delay_s = 0.05
    report = seed_node(request(box, license_mode="byol"), creds(), serial=dict(SERIAL),
                       poll_s=0.01)
    assert report["licence"]["isLicensed"] is True


def test_a_node_that_answers_too_slowly_gets_the_same_advice(box: Sandbox,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(self: object) -> dict:
        raise NodeTimeoutError("fme-2", "GET", "/health", None, "no answer in time (30 s)")
    monkeypatch.setattr("fmeaa.client.rest.FmeClient.health", slow)
    with pytest.raises(SeedError) as caught:
        seed_node(request(box, timeout_s=0.1), creds(), poll_s=0.01)
    assert str(caught.value).startswith("fme-2: FME health check: still not ready after 1 s (no "
                                        "answer in time (30 s)). Can this machine reach ")


def test_the_health_wait_gets_what_is_left_of_the_seeds_time(box: Sandbox,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that moves 2 s per reading: 2 s have passed when the health wait starts, so it
    gets 10 − 2 = 8 s of the request's 10."""
    def unhealthy(self: object) -> dict:
        raise ServerError("fme-2", "GET", "/health", 503, "starting")
    monkeypatch.setattr("fmeaa.client.rest.FmeClient.health", unhealthy)
    readings = iter(range(100, 10_000, 2))
    monkeypatch.setattr(seed.time, "monotonic", lambda: next(readings))
    monkeypatch.setattr(seed.time, "sleep", lambda s: None)
    with pytest.raises(SeedError) as caught:
        seed_node(request(box, timeout_s=10), creds(), poll_s=0.01)
    assert str(caught.value).startswith("fme-2: FME health check: still not ready after 8 s")


def test_a_node_the_engine_cannot_reach_fails_the_seed(box: Sandbox, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from fmeaa.sync.engine import SyncEngine

    def unreachable(self: SyncEngine, names: list[str]) -> None:
        for name in names:
            self._failed(name, NodeUnreachableError(name, "GET", "/", None, "cannot connect"))
    monkeypatch.setattr(SyncEngine, "connect", unreachable)
    with pytest.raises(SeedError) as caught:
        seed_node(request(box), creds(), cache_dir=tmp_path / "c", poll_s=0.01)
    assert str(caught.value) == "fme-2: unreachable (cannot connect)"


def test_a_seed_that_applied_everything_but_shows_drift_fails(box: Sandbox, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Parity is the proof: when the node still differs after an apply without errors (here: its
    content read back as empty), the seed fails and lists the first ten differences."""
    real = seed.parity
    monkeypatch.setattr(seed, "parity", lambda desired, actual, nodes, owner, **kw: real(
        desired, {n: Snapshot() for n in nodes}, nodes, owner, **kw))
    with pytest.raises(SeedError) as caught:
        seed_node(request(box), creds(), cache_dir=tmp_path / "c", poll_s=0.01)
    text = str(caught.value)
    assert text.startswith("fme-2: not in sync after seeding: ")
    differences = text.removeprefix("fme-2: not in sync after seeding: ").split("; ")
    assert len(differences) == 10 and all(d.endswith(" differs") for d in differences)


def test_plain_http_to_a_remote_node_only_when_the_request_allows_it(
        box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pulumi seeds over the VPC's plain HTTP (`allow_http`, the default); without it a remote
    http:// URL is refused before anything is contacted. No remote host is contacted here: the
    client is a stand-in that cannot connect."""
    class Unreachable:
        def __init__(self, node: str, url: str, **_: object) -> None:
            self.node = node

        def __enter__(self) -> Unreachable:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def health(self) -> dict:
            raise NodeUnreachableError(self.node, "GET", "/", None, "cannot connect (stand-in)")
    monkeypatch.setattr(seed, "connect", Unreachable)
    remote = request(box, rest_url="http://fme-2.internal:8080", timeout_s=0.1)
    with pytest.raises(SeedError, match=r"Can this machine reach http://fme-2\.internal:8080"):
        seed_node(remote, creds(), poll_s=0.01)
    with pytest.raises(InventoryError, match="is plain HTTP"):
        seed_node(SeedRequest(**{**remote.__dict__, "allow_http": False}), creds(), poll_s=0.01)


def test_a_url_source_is_opened_with_its_own_settings_read_and_closed(
        box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeding from the old server (`url:`): the source is opened once, with its URL, its own
    secret, the request's region and HTTP rule, the seed's inventory and engine settings, its
    own credentials and a secret resolver in the request's region; its content is what the node
    gets; it is closed afterwards. (The old server itself is emulated in test_url_source.py.)"""
    from fmeaa.sync.content_source import DirectorySource, snapshot_of_directory
    from fmeaa.sync.digest_cache import DigestCache
    from fmeaa.sync.manifest import load_content_dir

    opened: list[tuple] = []
    resolved: list[tuple] = []
    monkeypatch.setattr(seed, "resolve_secret_ref",
                        lambda ref, region=None: resolved.append((ref, region)) or "v")

    class OldServer:
        def __init__(self, *args: object) -> None:
            opened.append((self, *args))
            self.content = load_content_dir(EXAMPLE)
            self.source = DirectorySource(self.content)
            self.closed = False

        def read(self) -> Snapshot:
            return snapshot_of_directory(self.content, DigestCache(None, enabled=False),
                                         lambda ref: "v")

        def close(self) -> None:
            self.closed = True
    monkeypatch.setattr(seed, "open_url_source", OldServer)
    theirs = Credentials("old-admin", "old-Server-Pa55word-do-not-leak")
    report = seed_node(request(box, source="url:https://fme-old.corp", source_secret_id="fme/old",
                               region=REGION, allow_http=True), creds(),
                       cache_dir=tmp_path / "c", poll_s=0.01, source_credentials=theirs)
    assert report["applied"] == 15 and len(node_items(box, "fme-2")) == 5
    (old, source, server, inventory, settings, resolver, credentials), = opened
    assert old.closed
    assert source == "url:https://fme-old.corp" and credentials is theirs
    assert (server.url, server.secret_id, server.region, server.allow_http) == \
        ("url:https://fme-old.corp", "fme/old", REGION, True)
    assert [n.name for n in inventory.nodes] == ["fme-2"] and settings.parallel == 1
    assert resolver("aws-sm:fme/smtp#password") == "v"
    assert resolved == [("aws-sm:fme/smtp#password", REGION)]


def test_moved_schedules_are_read_from_the_seeded_node_with_the_requests_owner(
        box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A schedule someone moved by hand keeps running where it runs now: the seed asks the node
    it seeds (and only it) where its schedules run, under the request's default owner, and names
    no inventory (None: it knows only this node, so whatever owner an override names counts)."""
    from fmeaa.client import FmeClient

    calls: list[tuple] = []

    def recorded(desired: Snapshot, clients: dict, owner: str, moves: object) -> Snapshot:
        calls.append((clients, owner, moves))
        return desired
    monkeypatch.setattr(seed, "honour_moves", recorded)
    seed_node(request(box, default_owner="fme-9"), creds(), cache_dir=tmp_path / "c",
              poll_s=0.01)
    (clients, owner, moves), = calls
    assert list(clients) == ["fme-2"] and isinstance(clients["fme-2"], FmeClient)
    assert (owner, moves) == ("fme-9", None)
