"""Contract: the JSON shapes and status codes the client relies on, pinned against the emulator
(raw HTTP, no client code in between). Sources: Safe's REST API docs and
safesoftware/fmeflow-cli `cmd/*_test.go`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fmeaa.emulator import Sandbox
from tests.conftest import TEST_PASSWORD


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A node that serves V3 beside V4 (FME Flow 2025.2)."""
    with Sandbox(1, root=tmp_path / "nodes", password=TEST_PASSWORD, fme_version="2025.2") as box:
        yield box

ENVELOPE = {"offset", "limit", "totalCount", "items"}


def _token(base: str, v4: bool = False) -> dict[str, str]:
    path = "/fmeapiv4/tokens" if v4 else "/fmerest/v3/tokens"
    body = {"secondsToExpiry": 600} if v4 else {"expirationTimeout": 600, "name": "contract"}
    r = httpx.post(base + path, json=body, auth=("admin", TEST_PASSWORD), timeout=5)
    assert r.status_code == 201
    expected = {"token", "expiration", "owner"} if v4 else {"token", "expirationDate", "name", "user"}
    assert expected <= set(r.json())
    return {"Authorization": f"fmetoken token={r.json()['token']}"}


def test_status_codes_and_shapes(sandbox: Sandbox) -> None:
    base = sandbox.nodes[0].url
    auth = _token(base)
    assert httpx.get(base + "/fmerest/v3/healthcheck").json() == {"status": "ok"}
    assert httpx.get(base + "/fmeapiv4/healthcheck/liveness").json()["status"] == "ok"
    missing = httpx.get(base + "/fmerest/v3/repositories")
    assert missing.status_code == 401 and set(missing.json()) == {"message"}
    listing = httpx.get(base + "/fmerest/v3/repositories", headers=auth,
                        params={"limit": -1, "offset": -1}).json()
    assert set(listing) == ENVELOPE and listing["limit"] == -1
    assert set(listing["items"][0]) == {"name", "description", "owner", "sharable"}
    created = httpx.post(base + "/fmerest/v3/repositories", headers=auth,
                         data={"name": "C", "description": "d"})
    assert created.status_code == 201
    again = httpx.post(base + "/fmerest/v3/repositories", headers=auth, data={"name": "C"})
    assert again.status_code == 409 and "message" in again.json()
    upload = httpx.post(base + "/fmerest/v3/repositories/C/items", headers={
        **auth, "Content-Type": "application/octet-stream",
        "Content-Disposition": 'attachment; filename="a.fmw"'}, content=b"x")
    assert upload.status_code == 201
    item = upload.json()
    assert {"name", "title", "type", "totalFileSize", "lastSaveDate", "lastPublishDate"} <= set(item)
    assert httpx.get(base + "/fmerest/v3/repositories/C/items/nope", headers=auth).status_code == 404
    bad_json = httpx.post(base + "/fmerest/v3/schedules", headers={
        **auth, "Content-Type": "application/json"}, content=b"{not json")
    assert bad_json.status_code == 400
    incomplete = httpx.post(base + "/fmerest/v3/schedules", headers=auth, json={"name": "x"})
    assert incomplete.status_code == 422
    deleted = httpx.delete(base + "/fmerest/v3/repositories/C/items/a.fmw", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert httpx.get(base + "/fmerest/v3/no/such/thing", headers=auth).status_code == 404


def test_v4_repositories_shape(sandbox: Sandbox) -> None:
    base = sandbox.nodes[0].url
    auth = _token(base, v4=True)
    created = httpx.post(base + "/fmeapiv4/repositories", headers=auth,
                         json={"name": "V4", "description": ""})
    assert created.status_code == 201
    listing = httpx.get(base + "/fmeapiv4/repositories", headers=auth).json()
    assert set(listing) == ENVELOPE
    repo = next(r for r in listing["items"] if r["name"] == "V4")
    assert {"name", "description", "owner", "sharable", "workspaceCount", "fileCount",
            "totalFileSize"} <= set(repo)
