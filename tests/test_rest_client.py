"""REST client ↔ emulator over real HTTP on 127.0.0.1: every endpoint, errors, faults."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fmeaa.client import (
    AuthenticationError,
    ConflictError,
    EndpointMissingError,
    FmeClient,
    InvalidRequestError,
    NodeTimeoutError,
    NodeUnreachableError,
    NotFoundError,
    ServerError,
    TransferInterruptedError,
    UnsupportedOperationError,
    connect,
)
from fmeaa.client.rest import content_disposition
from fmeaa.client.transport import Transport, proxied
from fmeaa.emulator import EmulatedNode, Sandbox
from tests.conftest import TEST_PASSWORD


# The client is exercised against a node that still serves V3 beside V4 (confirmed V4 where it
# exists, V3 for the rest) and against one with V4 only (UNCONFIRMED V4 paths too).
@pytest.fixture(params=["2025.2", "2026.1"])
def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD,
                 fme_version=request.param) as box:
        yield box


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _login(node: EmulatedNode, **kwargs: object) -> FmeClient:
    c = connect(node.name, node.url, username="admin", password=TEST_PASSWORD, timeout=5,
                **kwargs)  # type: ignore[arg-type]
    c.login()
    return c


def test_health_needs_no_token(sandbox: Sandbox) -> None:
    node = sandbox.nodes[0]
    assert connect(node.name, node.url).health()["status"] == "ok"


def test_each_operation_uses_the_nodes_own_api(sandbox: Sandbox) -> None:
    """V4 where the node has it (confirmed), V3 only where it must, UNCONFIRMED V4 only on a
    node without V3 (fmeaa.client.api_table)."""
    node = sandbox.nodes[0]
    c = _login(node)
    version = c.version()
    assert version["buildNumber"] == node.version.build
    assert version["buildString"].startswith(f"FME Flow {node.version.name} - Build ")
    used = {op: c.endpoint(op) for op in ("tokens.create", "repositories.list", "items.list",
                                          "schedules.list", "jobs.running", "license.status")}
    assert {op: e.api for op, e in used.items() if e.confirmed} == {
        "tokens.create": "v4", "repositories.list": "v4", "jobs.running": "v4",
        "license.status": "v4", **({"items.list": "v3", "schedules.list": "v3"}
                                   if node.version.has_v3 else {})}
    if not node.version.has_v3:
        assert version["apis"] == "v4"
        assert all(e.api == "v4" for e in used.values())
        assert not any(e.path.endswith("/") for e in used.values())


def test_an_old_node_is_spoken_to_in_v3_and_refuses_v4_only_operations(tmp_path: Path) -> None:
    with Sandbox(1, root=tmp_path, password=TEST_PASSWORD, fme_version="2022.2") as box:
        c = _login(box.nodes[0])
        assert c.version()["apis"] == "v3" and c.endpoint("tokens.create").api == "v3"
        assert c.repositories() and c.license_status()["isLicensed"] is True
        assert not c.supports("connections.list")
        with pytest.raises(UnsupportedOperationError) as caught:
            c.connections()
        assert "FME Server 2022.2" in str(caught.value) and "REST V4" in str(caught.value)


def test_a_missing_endpoint_names_path_version_and_what_to_do(sandbox: Sandbox) -> None:
    """A node that lacks an endpoint fmeaa uses (here: removed from the emulator's router)
    answers 404 without a message; the error says which path, which version, what to do."""
    node = sandbox.nodes[0]
    c = _login(node)
    ep = c.endpoint("schedules.list")
    router = node._server.router  # type: ignore[union-attr]
    kept = router.routes
    router.routes = [r for r in kept if not (r.method == "GET" and r.pattern.match(ep.path))]
    try:
        with pytest.raises(EndpointMissingError) as caught:
            c.schedules()
    finally:
        router.routes = kept
    message = str(caught.value)
    assert ep.path in message and node.version.name in message
    assert ("UNCONFIRMED" in message) is (not ep.confirmed)
    assert "api_table.py" in message or "API documentation" in message


def test_bad_password_is_a_401_that_names_node_method_and_path(sandbox: Sandbox) -> None:
    node = sandbox.nodes[0]
    c = connect(node.name, node.url, username="admin", password="wrong-password")
    with pytest.raises(AuthenticationError) as caught:
        c.login()
    err = caught.value
    assert (err.node, err.status) == (node.name, 401) and err.path
    assert "wrong-password" not in str(err)


def test_unknown_token_is_rejected_and_never_echoed(sandbox: Sandbox) -> None:
    node = sandbox.nodes[0]
    c = connect(node.name, node.url, token="deadbeefdeadbeef")
    with pytest.raises(AuthenticationError) as caught:
        c.repositories()
    assert caught.value.status == 401 and "deadbeef" not in str(caught.value)
    assert "deadbeef" not in repr(c)


@pytest.mark.parametrize("prefer", ["auto", "v3"])
def test_repository_lifecycle_and_error_codes(sandbox: Sandbox, prefer: str) -> None:
    c = _login(sandbox.nodes[0], prefer=prefer)
    c.create_repository("Roads", "road workspaces")
    assert "Roads" in [r["name"] for r in c.repositories()]
    assert c.repository("Roads")["description"] == "road workspaces"
    with pytest.raises(ConflictError) as conflict:
        c.create_repository("Roads")
    assert conflict.value.status == 409
    c.delete_repository("Roads")
    with pytest.raises(NotFoundError):
        c.repository("Roads")
    with pytest.raises(NotFoundError):
        c.delete_repository("Roads")


def test_items_upload_overwrite_download_delete_and_services(
    client: FmeClient, tmp_path: Path
) -> None:
    client.create_repository("Roads")
    first = _file(tmp_path, "austin.fmw", b"#! <?xml version 1?> workspace v1")
    assert client.upload_item("Roads", first)["name"] == "austin.fmw"
    with pytest.raises(ConflictError):
        client.upload_item("Roads", first)
    second = _file(tmp_path, "austin-v2.fmw", b"workspace v2" * 100)
    client.upload_item("Roads", second, name="austin.fmw", overwrite=True)
    listed = client.items("Roads", item_type="WORKSPACE")
    assert [(i["name"], i["type"], i["totalFileSize"]) for i in listed] == [
        ("austin.fmw", "WORKSPACE", 1200)]
    digest = client.download_item("Roads", "austin.fmw", tmp_path / "back.fmw")
    assert (tmp_path / "back.fmw").read_bytes() == second.read_bytes()
    assert digest == hashlib.sha256(second.read_bytes()).hexdigest()
    assert client.services("Roads", "austin.fmw") == ["fmejobsubmitter"]
    assert client.set_services("Roads", "austin.fmw", ["fmedatadownload", "fmejobsubmitter"]) == [
        "fmedatadownload", "fmejobsubmitter"]
    with pytest.raises(InvalidRequestError) as bad:
        client.set_services("Roads", "austin.fmw", ["nonsense"])
    assert bad.value.status in (400, 422) and "nonsense" in str(bad.value)
    client.delete_item("Roads", "austin.fmw")
    assert client.items("Roads") == []
    with pytest.raises(NotFoundError):
        client.item("Roads", "austin.fmw")
    with pytest.raises(NotFoundError):
        client.items("NoSuchRepo")
    with pytest.raises(NotFoundError):
        client.upload_item("NoSuchRepo", first)


@pytest.mark.parametrize("name", ["my roads é.fmw", "50% done.fmw", 'say "hi" #1?.fmw',
                                  "道路.fmw", "a%2Fb.fmw"])
def test_item_names_round_trip_exactly(client: FmeClient, tmp_path: Path, name: str) -> None:
    """Whatever a reference node holds must survive the path segment and the upload header:
    percent-encoded segments, RFC 6266/5987 `filename*` for the name."""
    data = b"#! workspace\n"
    local = _file(tmp_path, "local.fmw", data)
    client.create_repository("Straßen #1")
    assert client.upload_item("Straßen #1", local, name=name)["name"] == name
    assert [i["name"] for i in client.items("Straßen #1")] == [name]
    client.upload_item("Straßen #1", local, name=name, overwrite=True)
    assert client.download_item("Straßen #1", name, None) == hashlib.sha256(data).hexdigest()
    assert client.set_services("Straßen #1", name, ["fmedatadownload"]) == ["fmedatadownload"]
    client.delete_item("Straßen #1", name)
    assert client.items("Straßen #1") == []


def test_resource_names_round_trip_exactly(client: FmeClient, tmp_path: Path) -> None:
    local = _file(tmp_path, "local.csv", b"a,b\n")
    client.upload_resource("FME_SHAREDRESOURCE_DATA", "dir ä #2", local, "file ü?.csv")
    files = list(client.walk_resources("FME_SHAREDRESOURCE_DATA"))
    assert [f["path"] for f in files] == ["/dir ä #2/file ü?.csv"]
    assert client.download_resource("FME_SHAREDRESOURCE_DATA", "/dir ä #2/file ü?.csv", None) \
        == hashlib.sha256(b"a,b\n").hexdigest()


def test_upload_names_use_rfc_6266_filename_star() -> None:
    assert content_disposition("austin.fmw") == 'attachment; filename="austin.fmw"'
    assert content_disposition("my roads é.fmw") == (
        "attachment; filename=\"my roads e.fmw\"; filename*=UTF-8''my%20roads%20%C3%A9.fmw")
    assert content_disposition('a "b" 5%.fmw') == (
        "attachment; filename=\"a _b_ 5_.fmw\"; filename*=UTF-8''a%20%22b%22%205%25.fmw")


def test_emulator_reads_filename_star_as_servers_do(tmp_path: Path) -> None:
    """The V3 upload names its file in a Content-Disposition header (a V3-serving release)."""
    box = Sandbox(1, root=tmp_path / "nodes", password=TEST_PASSWORD, fme_version="2025.2")
    client = connect("fme-1", box.nodes[0].url, username="admin", password=TEST_PASSWORD,
                     timeout=5)
    client.create_repository("R")
    url = f"{box.nodes[0].url}/fmerest/v3/repositories/R/items"
    for disposition, stored in [
        ("attachment; filename=\"fallback.fmw\"; filename*=UTF-8''r%C3%A9al.fmw", "réal.fmw"),
        ("attachment; filename*=utf-8'en'%E6%97%A5.fmw; filename=\"x.fmw\"", "日.fmw"),
        ('attachment; filename="a%20b.fmw"', "a%20b.fmw"),  # a plain filename is not decoded
        ('attachment; filename="q\\"uote.fmw"', 'q"uote.fmw'),
    ]:
        headers = {**client._headers(), "Content-Type": "application/octet-stream",
                   "Content-Disposition": disposition}
        response = httpx.post(url, content=b"x", headers=headers, timeout=5)
        assert response.status_code == 201 and response.json()["name"] == stored, disposition
    client.close()
    box.close()


def test_pagination_reads_every_page(client: FmeClient, sandbox: Sandbox) -> None:
    for i in range(230):
        client.create_repository(f"repo-{i:03d}")
    before = sandbox.nodes[0].request_count
    names = [r["name"] for r in client.repositories()]
    assert len(names) == 231 and len(set(names)) == 231  # + the default "Samples"
    assert sandbox.nodes[0].request_count - before == 3  # 100 + 100 + 31


def test_schedules_crud_and_validation(client: FmeClient) -> None:
    schedule = {"name": "nightly", "category": "Roads", "repository": "Roads",
                "workspace": "austin.fmw", "recurrence": "cron", "cron": "0 0 2 * * ?",
                "enabled": True}
    client.create_schedule(schedule)
    with pytest.raises(ConflictError):
        client.create_schedule(schedule)
    with pytest.raises(InvalidRequestError) as bad:
        client.create_schedule({**schedule, "name": "bad", "cron": "every night"})
    assert "Quartz" in str(bad.value)
    client.replace_schedule("Roads", "nightly", {**schedule, "enabled": False})
    assert [(s["name"], s["enabled"]) for s in client.schedules()] == [("nightly", False)]
    client.delete_schedule("Roads", "nightly")
    assert client.schedules() == []
    with pytest.raises(NotFoundError):
        client.delete_schedule("Roads", "nightly")


def test_notifications_need_their_topics(client: FmeClient) -> None:
    client.create_notification("topics", {"name": "ROADS_DONE", "description": "done"})
    with pytest.raises(InvalidRequestError):
        client.create_notification("subscriptions", {"name": "mail", "subscriberName": "email",
                                                     "topics": ["MISSING"], "properties": []})
    client.create_notification("subscriptions", {"name": "mail", "subscriberName": "email",
                                                 "topics": ["ROADS_DONE"], "properties": []})
    client.create_notification("publications", {"name": "hook", "publisherName": "http",
                                                "topics": ["ROADS_DONE"], "properties": []})
    with pytest.raises(ConflictError):
        client.delete_notification("topics", "ROADS_DONE")  # still used
    client.replace_notification("subscriptions", "mail", {"subscriberName": "email",
                                                          "topics": [], "properties": []})
    assert [s["topics"] for s in client.notifications("subscriptions")] == [[]]
    client.delete_notification("publications", "hook")
    client.delete_notification("topics", "ROADS_DONE")
    assert "ROADS_DONE" not in [t["name"] for t in client.notifications("topics")]


def test_resource_files_upload_list_download_delete(client: FmeClient, tmp_path: Path) -> None:
    assert "FME_SHAREDRESOURCE_DATA" in client.resource_connections()
    data = _file(tmp_path, "roads.csv", b"id,name\n1,Main St\n")
    client.upload_resource("FME_SHAREDRESOURCE_DATA", "city/roads", data)
    client.upload_resource("FME_SHAREDRESOURCE_DATA", "city", data, "top.csv")
    client.upload_resource("FME_SHAREDRESOURCE_DATA", "city/roads", data)  # overwrites
    files = list(client.walk_resources("FME_SHAREDRESOURCE_DATA"))
    assert sorted((f["path"], f["size"]) for f in files) == [("/city/roads/roads.csv", 18),
                                                              ("/city/top.csv", 18)]
    assert all(f["date"] for f in files)
    digest = client.download_resource("FME_SHAREDRESOURCE_DATA", "city/roads/roads.csv",
                                      tmp_path / "copy.csv")
    assert digest == hashlib.sha256(data.read_bytes()).hexdigest()
    assert (tmp_path / "copy.csv").read_bytes() == data.read_bytes()
    assert client.download_resource("FME_SHAREDRESOURCE_DATA", "city/top.csv", None) == digest
    client.delete_resource("FME_SHAREDRESOURCE_DATA", "city")
    assert list(client.walk_resources("FME_SHAREDRESOURCE_DATA")) == []
    with pytest.raises(NotFoundError):
        list(client.walk_resources("NO_SUCH_CONNECTION"))
    with pytest.raises(ValueError, match="may not contain"):
        list(client.walk_resources("FME_SHAREDRESOURCE_DATA", "../../etc"))


def test_emulator_refuses_resource_paths_that_escape(client: FmeClient, sandbox: Sandbox) -> None:
    base = f"{sandbox.nodes[0].url}"
    escaping = [httpx.get(f"{base}/fmeapiv4/resources/connections/FME_SHAREDRESOURCE_DATA/info",
                          params={"path": "/../../../etc"}, headers=client._headers(), timeout=5)]
    if sandbox.nodes[0].version.has_v3:
        escaping.append(httpx.get(f"{base}/fmerest/v3/resources/connections/"
                                  "FME_SHAREDRESOURCE_DATA/filesys/%2E%2E/%2E%2E/%2E%2E/etc",
                                  headers=client._headers(), timeout=5))
    for response in escaping:
        assert response.status_code == 400 and "escapes" in response.json()["message"]


def test_large_upload_streams_without_growing_client_memory(
    client: FmeClient, tmp_path: Path
) -> None:
    big = tmp_path / "big.fmw"
    chunk = os.urandom(1024 * 1024)
    with big.open("wb") as out:
        for _ in range(48):
            out.write(chunk)
    client.create_repository("Big")
    tracemalloc.start()
    try:
        client.upload_item("Big", big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 48 MiB went through client and emulator (same process); peak allocations stay ~chunk-sized.
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert client.items("Big")[0]["totalFileSize"] == 48 * 1024 * 1024


def test_each_node_keeps_its_own_state(sandbox: Sandbox, tmp_path: Path) -> None:
    one, two = _login(sandbox.nodes[0]), _login(sandbox.nodes[1])
    one.create_repository("OnlyOnOne")
    assert "OnlyOnOne" not in [r["name"] for r in two.repositories()]


def test_persisted_state_survives_a_restart(tmp_path: Path) -> None:
    with Sandbox(1, root=tmp_path / "p", password=TEST_PASSWORD, persist=True) as box:
        c = _login(box.nodes[0])
        c.create_repository("Kept")
        c.upload_item("Kept", _file(tmp_path, "a.fmw", b"abc"))
        c.create_notification("topics", {"name": "T1"})
    reborn = EmulatedNode("fme-1", tmp_path / "p" / "fme-1", TEST_PASSWORD, persist=True).start()
    try:
        c = _login(reborn)
        assert [i["name"] for i in c.items("Kept")] == ["a.fmw"]
        assert "T1" in [t["name"] for t in c.notifications("topics")]
    finally:
        reborn.stop()


# --- faults, each seen by the client as the right exception ------------------------------------
def test_node_down_is_unreachable_and_comes_back_on_the_same_port(sandbox: Sandbox) -> None:
    node = sandbox.nodes[1]
    c = _login(node)
    node.stop()
    with pytest.raises(NodeUnreachableError) as caught:
        c.repositories()
    assert caught.value.status is None and caught.value.node == node.name
    node.start()
    assert c.repositories()


def test_slow_node_times_out(sandbox: Sandbox) -> None:
    node = sandbox.nodes[0]
    c = connect(node.name, node.url, username="admin", password=TEST_PASSWORD, timeout=0.3)
    c.login()
    node.faults.latency_s = 0.6
    with pytest.raises(NodeTimeoutError):
        c.repositories()


def test_injected_5xx_is_a_server_error(client: FmeClient, sandbox: Sandbox) -> None:
    sandbox.nodes[0].faults.error_rate = 1.0
    with pytest.raises(ServerError) as caught:
        client.repositories()
    assert caught.value.status == 503
    assert client.health()["status"] == "ok"  # health is not affected by the fault


def test_expired_token_is_renewed_once_with_credentials(client: FmeClient,
                                                        sandbox: Sandbox) -> None:
    node = sandbox.nodes[0]
    node.state.expire_tokens()
    assert client.repositories()  # re-logged in transparently
    token_only = connect(node.name, node.url, token="x")
    node.state.expire_tokens()
    with pytest.raises(AuthenticationError):
        token_only.repositories()


def test_connection_dropped_mid_upload_stores_nothing(client: FmeClient, sandbox: Sandbox,
                                                      tmp_path: Path) -> None:
    node = sandbox.nodes[0]
    client.create_repository("Roads")
    node.faults.drop_upload_after = 256 * 1024
    big = _file(tmp_path, "big.fmw", os.urandom(2 * 1024 * 1024))
    with pytest.raises(TransferInterruptedError):
        client.upload_item("Roads", big)
    node.faults.drop_upload_after = None
    assert client.items("Roads") == []
    assert not list((node.state.data_dir / "blobs").glob("*.partial"))
    client.upload_item("Roads", big)  # and a retry succeeds
    assert client.items("Roads")[0]["totalFileSize"] == 2 * 1024 * 1024


def test_v4_connections_crud(sandbox: Sandbox) -> None:
    c = _login(sandbox.nodes[0])
    body = {"name": "pg-roads", "category": "database", "type": "PostgreSQL",
            "parameters": {"host": "db", "password": "conn-secret-value"}}
    c.create_connection(body)
    with pytest.raises(ConflictError):
        c.create_connection(body)
    assert c.connection("pg-roads")["type"] == "PostgreSQL"
    # An update carries no type (fmeflow-cli connections_update.go): the stored type stays.
    c.replace_connection("pg-roads", {"category": "database", "parameters": {"host": "db2"}})
    assert [(x["type"], x["parameters"]) for x in c.connections()] == [
        ("PostgreSQL", {"host": "db2"})]
    with pytest.raises(InvalidRequestError):
        c.create_connection({"name": "no-category"})
    c.delete_connection("pg-roads")
    with pytest.raises(NotFoundError) as missing:
        c.connection("pg-roads")
    assert "conn-secret-value" not in str(missing.value)


def test_running_jobs_and_license_status(client: FmeClient, sandbox: Sandbox) -> None:
    assert client.running_jobs() == []
    sandbox.nodes[0].state.running_jobs.append({"id": 7, "workspace": "austin.fmw"})
    assert [j["id"] for j in client.running_jobs()] == [7]
    status = client.license_status()
    assert status["isLicensed"] is True and status["maximumEngines"] == 10


def test_token_ttl_fault_expires_tokens_and_client_renews(sandbox: Sandbox) -> None:
    node = sandbox.nodes[2]
    c = _login(node)
    requests, logins = node.request_count, node.state.tokens_issued
    node.state.expire_tokens()  # the token dies (as after its TTL)
    assert c.repositories()  # 401 → one re-login → retry
    assert node.request_count - requests == 3
    assert (node.state.token_refusals, node.state.tokens_issued - logins) == (1, 1)


def test_retrying_backs_off_exponentially_and_raises_the_last_failure() -> None:
    from fmeaa.client.errors import NotFoundError, ServerError
    from fmeaa.client.retry import retrying

    waits: list[float] = []
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ServerError("fme-1", "GET", "/x", 503, f"try {len(calls)}")
        return "ok"

    assert retrying(flaky, attempts=4, initial_s=0.2, max_s=0.5, sleep=waits.append) == "ok"
    assert waits == [0.2, 0.4, 0.5]  # doubled, capped
    calls.clear()
    with pytest.raises(ServerError, match="try 2"):
        retrying(flaky, attempts=2, initial_s=0.1, max_s=1, sleep=waits.append)

    def missing() -> None:
        calls.append(1)
        raise NotFoundError("fme-1", "GET", "/x", 404, "gone")

    calls.clear()
    with pytest.raises(NotFoundError):  # not transient: never retried
        retrying(missing, attempts=4, initial_s=0.1, max_s=1, sleep=waits.append)
    assert len(calls) == 1


def test_a_node_behind_a_proxy_is_spoken_to_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync's own HTTP (`lean_http`) connects directly; when the environment names a proxy
    for a node's URL (and NO_PROXY does not exempt it) the client uses httpx, which honours it."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy",
                 "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    direct = Transport("fme-1", "https://fme-1.internal:443")
    assert direct._lean is not None and not proxied("https://fme-1.internal")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    assert proxied("https://fme-1.internal") and not proxied("http://fme-1.internal")
    assert Transport("fme-1", "https://fme-1.internal:443")._lean is None
    monkeypatch.setenv("NO_PROXY", ".internal")
    assert not proxied("https://fme-1.internal")
    assert Transport("fme-1", "https://fme-1.internal:443")._lean is not None
