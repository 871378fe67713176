"""An FME server outside the cluster as the content source (`--source url:https://old-server`):
the migration from one server to Active-Active. The old server is read and never written,
never counted as a node, and checked by the nodes' rules before anything is contacted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fmeaa.client.api_table import TABLE
from fmeaa.client.read_only import POST_READS, READ_OPERATIONS, WriteRefusedError, connect_read_only
from fmeaa.emulator import Sandbox
from fmeaa.emulator.node import EmulatedNode
from tests.conftest import TEST_PASSWORD
from tests.sync_helpers import EXAMPLE, fmeaa, node_items

OLD_PASSWORD = "old-Server-Pa55word-do-not-leak"
WAREHOUSE_PASSWORD = "warehouse-Pa55-do-not-leak"


@pytest.fixture
def old_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedNode]:
    """An emulated FME Flow 2024.2 server with the example content, a database connection and a
    deployment parameter — the server being migrated from. Its password is its own."""
    old = Sandbox(1, root=tmp_path / "old", password=OLD_PASSWORD, prefix="old",
                  fme_version="2024.2")
    inventory = old.write_inventory(tmp_path / "old.json")
    monkeypatch.setenv("FMEAA_PASSWORD", OLD_PASSWORD)
    assert fmeaa("sync", "-s", EXAMPLE, "-i", inventory, "--cache-dir", tmp_path / "c0").code == 0
    server = old.nodes[0]
    server.state.connections["warehouse"] = {
        "name": "warehouse", "category": "database", "type": "PostgreSQL",
        "parameters": {"HOST": "db.internal", "USER_NAME": "fme", "PASSWORD": "on-the-old-one"}}
    server.state.deployment_parameters["target_env"] = {"name": "target_env", "type": "text",
                                                        "value": "production"}
    server.state.schedules[("Roads", "hourly-road-check")]["enabled"] = False
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)  # the nodes' own
    monkeypatch.setenv("FMEAA_SOURCE_PASSWORD", OLD_PASSWORD)
    monkeypatch.setenv("FMEAA_SECRET_WAREHOUSE_PASSWORD", WAREHOUSE_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    yield server
    old.close()


def test_sync_from_the_old_server_brings_every_node_to_parity_and_leaves_it_unchanged(
        tmp_path: Path, old_server: EmulatedNode) -> None:
    before = old_server.state.content_digest()
    source = f"url:{old_server.url}"
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        planned = fmeaa("plan", "-s", source, "-i", inventory, "--json")
        assert planned.code == 0, planned.err
        assert planned.json["source"] == f"server {old_server.url}"
        assert set(planned.json["nodes"]) == {"fme-1", "fme-2", "fme-3"}  # never the old one
        synced = fmeaa("sync", "-s", source, "-i", inventory, "--json")
        assert synced.code == 0, synced.err + synced.out
        verified = fmeaa("verify", "-s", source, "-i", inventory, "--json")
        assert verified.code == 0, verified.out
        assert verified.json["inSync"] is True and verified.json["nodes"] == [
            "fme-1", "fme-2", "fme-3"]
        old_items = {k: v for k, v in node_items_of(old_server).items()}
        for node in box.nodes:
            assert node_items(box, node.name) == old_items
            # Connections come over with the credentials from the environment.
            assert node.state.connections["warehouse"]["parameters"] == {
                "HOST": "db.internal", "USER_NAME": "fme", "PASSWORD": WAREHOUSE_PASSWORD}
            assert node.state.deployment_parameters["target_env"]["value"] == "production"
        # Schedules under the cluster's policy: `one`, owned by the cluster's first node (the
        # old server is not a node); disabled on the old server, disabled everywhere.
        enabled = {n.name: {k: s["enabled"] for k, s in n.state.schedules.items()}
                   for n in box.nodes}
        assert enabled["fme-1"] == {("Parcels", "nightly-parcels"): True,
                                    ("Roads", "hourly-road-check"): False}
        assert not any(enabled["fme-2"].values()) and not any(enabled["fme-3"].values())
        again = fmeaa("plan", "-s", source, "-i", inventory, "--detailed-exitcode")
        assert again.code == 0, again.out
    assert old_server.state.content_digest() == before


def node_items_of(node: EmulatedNode) -> dict[str, tuple[int, str, list[str]]]:
    return {f"{r.name}/{i.name}": (i.file.size, i.file.sha256, sorted(i.services))
            for r in node.state.repositories.values() for i in r.items.values()}


def test_the_digest_sees_any_change_on_the_old_server(old_server: EmulatedNode) -> None:
    """The before = after proof above can fail: a write of any kind changes the digest."""
    before = old_server.state.content_digest()
    (old_server.state.data_dir / "resources" / "FME_SHAREDRESOURCE_BACKUP" / "x").write_text("1")
    assert old_server.state.content_digest() != before
    middle = old_server.state.content_digest()
    old_server.state.schedules[("Parcels", "nightly-parcels")]["enabled"] = False
    assert old_server.state.content_digest() != middle


# --- the client never writes -------------------------------------------------------------------
def _recording_client() -> tuple[object, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    client = connect_read_only("old", "https://old.example", token="t",
                               transport=httpx.MockTransport(handler))
    return client, sent


@pytest.mark.parametrize("op", sorted({e.op for e in TABLE} - READ_OPERATIONS - {"tokens.create"}))
def test_every_write_operation_is_refused_before_a_request_is_sent(op: str) -> None:
    client, sent = _recording_client()
    with pytest.raises(WriteRefusedError, match="fmeaa only reads"):
        client._run(op)  # type: ignore[attr-defined]
    assert sent == []


@pytest.mark.parametrize("method", ["create_repository", "delete_repository", "upload_item",
                                    "delete_item", "set_services", "create_schedule",
                                    "replace_schedule", "delete_schedule", "create_notification",
                                    "upload_resource", "delete_resource", "create_connection",
                                    "replace_connection", "delete_connection",
                                    "create_deployment_parameter", "delete_project",
                                    "import_project", "preview_project", "request_license",
                                    "refresh_license"])
def test_the_clients_write_methods_are_refused_too(method: str, tmp_path: Path) -> None:
    client, sent = _recording_client()
    file = tmp_path / "x.fmw"
    file.write_text("x")
    args = {"create_repository": ("R",), "delete_repository": ("R",),
            "upload_item": ("R", file), "delete_item": ("R", "x"),
            "set_services": ("R", "x", ["fmejobsubmitter"]), "create_schedule": ({},),
            "replace_schedule": ("C", "n", {}), "delete_schedule": ("C", "n"),
            "create_notification": ("topics", {}), "upload_resource": ("C", "/", file),
            "delete_resource": ("C", "/x"), "create_connection": ({},),
            "replace_connection": ("c", {}), "delete_connection": ("c",),
            "create_deployment_parameter": ({},), "delete_project": ("1",),
            "import_project": (file,), "preview_project": (file,),
            "request_license": ("SERIAL",), "refresh_license": ()}[method]
    with pytest.raises(WriteRefusedError):
        getattr(client, method)(*args)
    assert sent == []


def test_the_read_operations_are_reads_in_every_api() -> None:
    """An operation may only be on the read list if every endpoint it has is a GET (or one of
    the two documented downloads FME serves as POST), so a write can never slip onto it."""
    for endpoint in TABLE:
        if endpoint.op in READ_OPERATIONS:
            assert endpoint.method == "GET" or endpoint.op in POST_READS, endpoint
    assert POST_READS <= READ_OPERATIONS
    assert {e.op for e in TABLE if e.method == "POST" and e.op in POST_READS} == POST_READS


# --- refused before anything is contacted --------------------------------------------------------
@pytest.mark.parametrize(("url", "message"), [
    ("url:http://10.0.0.5:8080", "plain HTTP"),
    ("url:https://old-fme-123.eu-west-1.elb.amazonaws.com", "load balancer"),
    ("url:http://127.0.0.2:9", "load balancer"),  # the sandbox inventory's load balancer
    ("url:ftp://old", "not an http(s) URL"),
])
def test_the_nodes_url_rules_apply_to_the_source(tmp_path: Path, url: str, message: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_SOURCE_PASSWORD", OLD_PASSWORD)
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        result = fmeaa("sync", "-s", url, "-i", inventory, "--json")
        assert result.code == 1 and message in result.err
        assert json.loads(result.out)["error"]["type"] == "InventoryError"
        assert all(n.request_count == 0 for n in box.nodes)


def test_a_node_of_the_cluster_or_credentials_in_the_url_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_SOURCE_PASSWORD", OLD_PASSWORD)
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        node = fmeaa("plan", "-s", f"url:{box.nodes[1].url}", "-i", inventory)
        assert node.code == 1 and "is node 'fme-2' of the cluster; use node:fme-2" in node.err
        creds = fmeaa("plan", "-s", "url:https://admin:hunter2-secret@old.example", "-i",
                      inventory)
        assert creds.code == 1 and "carries credentials" in creds.err
        assert "hunter2-secret" not in creds.err + creds.out
        assert all(n.request_count == 0 for n in box.nodes)


def test_the_source_needs_its_own_credentials(tmp_path: Path, old_server: EmulatedNode,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The nodes' password is never sent to the old server in its place."""
    monkeypatch.delenv("FMEAA_SOURCE_PASSWORD")
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        requests = old_server.request_count
        result = fmeaa("sync", "-s", f"url:{old_server.url}", "-i", inventory)
        assert result.code == 1 and "FMEAA_SOURCE_PASSWORD" in result.err
        assert old_server.request_count == requests
        assert all(n.request_count == 0 for n in box.nodes)
        monkeypatch.setenv("FMEAA_SOURCE_PASSWORD", "wrong")
        rejected = fmeaa("sync", "-s", f"url:{old_server.url}", "-i", inventory)
        assert rejected.code == 1
        assert "the source server" in rejected.err and "rejected the credentials from " \
            "$FMEAA_SOURCE_PASSWORD" in rejected.err
        assert all(n.request_count == 0 for n in box.nodes)


def test_missing_connection_credentials_are_all_named_before_any_node_is_contacted(
        tmp_path: Path, old_server: EmulatedNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FMEAA_SECRET_WAREHOUSE_PASSWORD")
    old_server.state.connections["archive"] = {
        "name": "archive", "category": "database", "type": "PostgreSQL",
        "parameters": {"HOST": "archive.internal"}}
    before = old_server.state.content_digest()
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        result = fmeaa("sync", "-s", f"url:{old_server.url}", "-i", inventory)
        assert result.code == 1
        assert "connections[archive].parameters.PASSWORD" in result.err
        assert "$FMEAA_SECRET_ARCHIVE_PASSWORD is not set" in result.err
        assert "$FMEAA_SECRET_WAREHOUSE_PASSWORD is not set" in result.err
        assert all(n.request_count == 0 for n in box.nodes)
    assert old_server.state.content_digest() == before


def test_the_source_credentials_can_come_from_secrets_manager(
        aws: str, tmp_path: Path, old_server: EmulatedNode,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from tests.aws_server import REGION

    monkeypatch.delenv("FMEAA_SOURCE_PASSWORD")
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="fme-aa/old-server", SecretString=json.dumps({"username": "admin",
                                                           "password": OLD_PASSWORD}))
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        source = f"url:{old_server.url}"
        synced = fmeaa("sync", "-s", source, "-i", inventory, "--source-secret-id",
                       "fme-aa/old-server")
        assert synced.code == 0, synced.err
        assert fmeaa("verify", "-s", source, "-i", inventory, "--source-secret-id",
                     "fme-aa/old-server").code == 0
        missing = fmeaa("plan", "-s", source, "-i", inventory, "--source-secret-id", "no/such")
        assert missing.code == 1 and "cannot read secret 'no/such'" in missing.err


def test_export_from_the_old_server_round_trips_to_the_nodes(
        tmp_path: Path, old_server: EmulatedNode) -> None:
    """export --from url: needs no inventory; the directory it writes, synced to the nodes,
    verifies against the old server itself, which is unchanged."""
    import yaml

    before = old_server.state.content_digest()
    exported = fmeaa("export", "--from", f"url:{old_server.url}", tmp_path / "content", "--json")
    assert exported.code == 0, exported.err
    assert exported.json["secretVariables"] == ["FMEAA_SECRET_WAREHOUSE_PASSWORD"]
    manifest = yaml.safe_load((tmp_path / "content" / "fmeaa-content.yaml").read_text())
    schedules = {s["name"]: s for s in manifest["schedules"]}
    assert schedules["nightly-parcels"]["policy"] == "one"
    assert "owner" not in schedules["nightly-parcels"]  # the old server is no node to own it
    assert schedules["hourly-road-check"]["enabled"] is False
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inventory = box.write_inventory(tmp_path / "nodes.json")
        assert fmeaa("sync", "-s", tmp_path / "content", "-i", inventory).code == 0
        verified = fmeaa("verify", "-s", f"url:{old_server.url}", "-i", inventory)
        assert verified.code == 0, verified.out
    assert old_server.state.content_digest() == before


def test_a_new_node_is_seeded_from_the_old_server(tmp_path: Path, old_server: EmulatedNode) -> None:
    before = old_server.state.content_digest()
    with Sandbox(1, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        new = box.add_node()
        inventory = box.write_inventory(tmp_path / "nodes.json")
        seeded = fmeaa("seed", new.name, "-s", f"url:{old_server.url}", "-i", inventory,
                       "--no-register", "--json")
        assert seeded.code == 0, seeded.err
        assert node_items(box, new.name) == node_items_of(old_server)
        assert new.state.connections["warehouse"]["parameters"]["PASSWORD"] == WAREHOUSE_PASSWORD
        # `one` schedules are owned by the cluster's first node, not by the node seeded.
        assert not any(s["enabled"] for s in new.state.schedules.values())
    assert old_server.state.content_digest() == before


def test_the_migration_rehearsal_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """`fmeaa demo --from-server`: an old FME Flow server with content, migrated (url:, read
    only) into empty nodes of the newest release, verified against it, and unchanged."""
    import os

    monkeypatch.setenv("FMEAA_SOURCE_PASSWORD", "operator-own-value")
    shown = fmeaa("demo", "--from-server")
    assert shown.code == 0, shown.out
    assert "rehearsal passed" in shown.out and "unchanged" in shown.out
    assert os.environ["FMEAA_SOURCE_PASSWORD"] == "operator-own-value"  # restored
    assert "FMEAA_SECRET_WAREHOUSE_PASSWORD" not in os.environ
    machine = fmeaa("demo", "--from-server", "--json", "--nodes", "2")
    assert machine.code == 0 and machine.json["ok"] is True
    steps = machine.json["steps"]
    assert [s["ok"] for s in steps] == [True] * 6
    assert steps[0]["result"]["versions"] == {"old server": "FME Flow 2024.2 (REST V3+V4)"}
    assert set(steps[1]["result"]["versions"].values()) == {"FME Flow 2026.1 (REST V4)"}
    assert steps[3]["result"]["nodes"]["fme-2"]["created"] == 17
    assert steps[4]["result"]["inSync"] and steps[4]["result"]["nodes"] == ["fme-1", "fme-2"]
    unchanged = steps[5]["result"]
    assert unchanged["unchanged"] is True and unchanged["before"] == unchanged["after"]


def test_an_upgrade_may_reseed_from_the_old_server(tmp_path: Path) -> None:
    """`fmeaa upgrade -s url:…` is not mistaken for a content directory."""
    import importlib

    from fmeaa.app.targets import ClusterRef
    from fmeaa.app.upgrade import UpgradeRequest

    upgrade = importlib.import_module("fmeaa.app.upgrade")
    request = UpgradeRequest(stack="prod", cluster=ClusterRef(inventory=tmp_path / "nodes.json"),
                             source="url:https://old.example")
    assert upgrade._validate(request, {}, []) == []
    directory = UpgradeRequest(stack="prod", cluster=ClusterRef(inventory=tmp_path / "n.json"),
                               source=str(tmp_path / "missing"))
    assert any(p.startswith("--source:") for p in upgrade._validate(directory, {}, []))
