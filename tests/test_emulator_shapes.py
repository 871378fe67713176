"""The emulator answers like a real server: every response's key set equals the real-server
sample in safesoftware/fmeflow-cli (`cmd/<file>`, HEAD d7e61eb) named beside it. Raw HTTP, no
fmeaa client in between."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fmeaa.emulator import EmulatedNode, Sandbox
from tests.conftest import TEST_PASSWORD

ENVELOPE = {"offset", "limit", "totalCount", "items"}
# info_v4_test.go responseV4 (also login_v3/login_v4_test.go versionInfoResponse)
FMEINFO_VERSION = {"buildNumber", "buildString", "releaseYear", "majorVersion", "minorVersion",
                   "hotfixVersion"}
V3_INFO = {"currentTime", "licenseManagement", "build", "timeZone", "version"}  # info_v3_test.go
V3_TOKEN = {"lastSaveDate", "createdDate", "restricted", "name", "description", "type", "user",
            "enabled", "expirationDate", "token"}  # login_v3_test.go tokenResponse
V4_TOKEN = {"name", "description", "owner", "type", "customPermissions", "enabled", "created",
            "updated", "secondsToExpiry", "expiration", "token"}  # login_v4_test.go
V3_REPOSITORY = {"owner", "name", "description", "sharable"}  # repositories_test.go responseV3
V4_REPOSITORY = {"name", "description", "ownerID", "owner", "sharable", "totalFileSize",
                 "fileCount", "workspaceCount", "customTransformerCount", "customFormatCount",
                 "templateCount"}  # repositories_test.go responseV4
V3_ITEM = {"lastSaveDate", "avgCpuPct", "avgPeakMemUsage", "description", "repositoryName",
           "title", "type", "userName", "fileCount", "avgCpuTime", "lastPublishDate", "name",
           "totalFileSize", "totalRuns", "avgElapsedTime"}  # workspaces_test.go responseV3
V3_ITEM_DETAIL = {"avgCpuPct", "avgCpuTime", "avgElapsedTime", "avgPeakMemUsage", "buildNumber",
                  "category", "datasets", "description", "enabled", "fileSize", "history",
                  "lastPublishDate", "lastSaveBuild", "lastSaveDate", "legalTermsConditions",
                  "name", "parameters", "properties", "requirements", "requirementsKeyword",
                  "resources", "services", "title", "totalRuns", "type", "usage",
                  "userName"}  # workspaces_test.go responseV3SingleWorkspace
V3_JOB = {"request", "timeDelivered", "workspace", "numErrors", "numLines", "engineHost",
          "timeQueued", "cpuPct", "description", "timeStarted", "repository", "userName",
          "result", "cpuTime", "id", "timeFinished", "engineName", "numWarnings",
          "timeSubmitted", "elapsedTime", "peakMemUsage", "status"}  # jobs_v3_test.go
V4_JOB = {"id", "description", "engineHost", "engineName", "repository", "queue", "queueType",
          "resultDatasetDownloadUrl", "status", "timeFinished", "timeQueued", "timeStarted",
          "runtimeUsername", "runtimeUserID", "workspace", "elapsedTime", "cpuTime",
          "cpuPercent", "peakMemoryUsage", "lineCount", "warningCount",
          "errorCount"}  # jobs_v4_test.go responseV4Active
V3_LICENSE = {"expiryDate", "maximumEngines", "serialNumber", "isLicenseExpired", "isLicensed",
              "maximumAuthors"}  # licenseStatus_test.go responseV3
V4_LICENSE = {"licensed", "expiration", "maximumEngines", "expired", "serialNumber",
              "maximumAuthors"}  # licenseStatus_test.go responseV4
STATUS = {"status", "message"}  # refreshStatus_test.go, requestStatus_test.go
CONNECTION = {"name", "category", "type", "owner", "shareable", "parameters"}  # connections_test.go


@pytest.fixture
def node(tmp_path: Path) -> Iterator[EmulatedNode]:
    with Sandbox(1, root=tmp_path / "nodes", password=TEST_PASSWORD,
                 fme_version="2025.2") as box:
        yield box.nodes[0]


def _auth(base: str) -> dict[str, str]:
    r = httpx.post(base + "/fmerest/v3/tokens", json={"expirationTimeout": 600},
                   auth=("admin", TEST_PASSWORD))
    return {"Authorization": f"fmetoken token={r.json()['token']}"}


def test_version_info_and_tokens(node: EmulatedNode) -> None:
    base = node.url
    v3 = httpx.post(base + "/fmerest/v3/tokens", json={"expirationTimeout": 600, "name": "t"},
                    auth=("admin", TEST_PASSWORD))
    v4 = httpx.post(base + "/fmeapiv4/tokens", json={"secondsToExpiry": 600, "name": "t"},
                    auth=("admin", TEST_PASSWORD))
    assert (v3.status_code, set(v3.json())) == (201, V3_TOKEN)
    assert (v4.status_code, set(v4.json())) == (201, V4_TOKEN)
    auth = {"Authorization": f"fmetoken token={v4.json()['token']}"}
    version = httpx.get(base + "/fmeinfo/version", headers=auth).json()
    assert set(version) == FMEINFO_VERSION
    assert (version["releaseYear"], version["majorVersion"]) == (2025, 2)
    assert version["buildString"] == f"FME Flow 2025.2 - Build {version['buildNumber']} - linux-x64"
    basic = httpx.get(base + "/fmeinfo/version", auth=("admin", TEST_PASSWORD))
    assert basic.json() == version  # fmeflow-cli's login asks before it holds a token
    assert httpx.get(base + "/fmeinfo/version").status_code == 401
    assert set(httpx.get(base + "/fmerest/v3/info", headers=auth).json()) == V3_INFO


def test_v3_lists_without_paging_return_everything(node: EmulatedNode) -> None:
    """repositories_test.go and workspaces_test.go responseV3: offset -1, limit -1, all items."""
    for i in range(120):
        node.state.repositories[f"R{i:03}"] = type(node.state.repositories["Samples"])(f"R{i:03}")
    auth = _auth(node.url)
    everything = httpx.get(node.url + "/fmerest/v3/repositories", headers=auth).json()
    assert (everything["offset"], everything["limit"]) == (-1, -1)
    assert len(everything["items"]) == everything["totalCount"] == 121
    assert set(everything["items"][0]) == V3_REPOSITORY
    page = httpx.get(node.url + "/fmerest/v3/repositories", headers=auth,
                     params={"limit": 50, "offset": 100}).json()
    assert (page["offset"], page["limit"], len(page["items"])) == (100, 50, 21)
    v4 = httpx.get(node.url + "/fmeapiv4/repositories", headers=auth).json()
    assert (v4["offset"], v4["limit"], len(v4["items"])) == (0, 100, 100)  # responseV4
    assert set(v4["items"][0]) == V4_REPOSITORY


def test_items_list_has_no_services_and_the_detail_lists_name_and_display_name(
        node: EmulatedNode) -> None:
    auth = _auth(node.url)
    httpx.post(node.url + "/fmerest/v3/repositories", headers=auth, data={"name": "Roads"})
    upload = httpx.post(node.url + "/fmerest/v3/repositories/Roads/items", content=b"ws", headers={
        **auth, "Content-Type": "application/octet-stream",
        "Content-Disposition": 'attachment; filename="a.fmw"'})
    assert upload.status_code == 201
    listing = httpx.get(node.url + "/fmerest/v3/repositories/Roads/items", headers=auth).json()
    assert set(listing["items"][0]) == V3_ITEM and listing["items"][0]["type"] == "WORKSPACE"
    detail = httpx.get(node.url + "/fmerest/v3/repositories/Roads/items/a.fmw", headers=auth)
    assert set(detail.json()) == V3_ITEM_DETAIL
    assert detail.json()["services"] == [{"name": "fmejobsubmitter",
                                          "displayName": "Job Submitter"}]
    services = httpx.get(node.url + "/fmerest/v3/repositories/Roads/items/a.fmw/services",
                         headers=auth).json()
    assert services == detail.json()["services"]
    missing = httpx.get(node.url + "/fmerest/v3/repositories/Roads/items/b.fmw", headers=auth)
    assert missing.status_code == 404 and missing.json() == {"message": "Item b.fmw does not exist."}


def test_connections_never_return_credentials_and_an_update_keeps_the_type(
        node: EmulatedNode) -> None:
    auth = _auth(node.url)
    body = {"name": "pg", "category": "database", "type": "PostgreSQL",
            "username": "fme", "password": "never-returned-1",
            "parameters": {"HOST": "db", "USER_NAME": "fme", "PASSWORD": "never-returned-2"}}
    assert httpx.post(node.url + "/fmeapiv4/connections", headers=auth,
                      json=body).status_code == 201
    listing = httpx.get(node.url + "/fmeapiv4/connections", headers=auth)
    one = httpx.get(node.url + "/fmeapiv4/connections/pg", headers=auth)
    for text in (listing.text, one.text):
        assert "never-returned" not in text
    assert set(one.json()) == CONNECTION and set(listing.json()["items"][0]) == CONNECTION
    assert one.json()["parameters"] == {"HOST": "db", "USER_NAME": "fme"}
    update = {"category": "database", "username": "fme", "password": "never-returned-3",
              "parameters": {"HOST": "db2"}}  # connections_update.go sends no type
    assert httpx.put(node.url + "/fmeapiv4/connections/pg", headers=auth,
                     json=update).status_code == 204
    after = httpx.get(node.url + "/fmeapiv4/connections/pg", headers=auth).json()
    assert (after["type"], after["parameters"]) == ("PostgreSQL", {"HOST": "db2"})
    missing = httpx.get(node.url + "/fmeapiv4/connections/nope", headers=auth)
    assert missing.status_code == 404 and "object does not exist" in missing.json()["message"]


def test_running_jobs_in_both_apis(node: EmulatedNode) -> None:
    node.state.start_jobs(2)
    auth = _auth(node.url)
    v3 = httpx.get(node.url + "/fmerest/v3/transformations/jobs/running", headers=auth).json()
    assert [set(j) for j in v3["items"]] == [V3_JOB, V3_JOB]
    assert {j["status"] for j in v3["items"]} == {"PULLED"}  # jobs_v3_test.go responseV3Running
    v4 = httpx.get(node.url + "/fmeapiv4/jobs", headers=auth,
                   params=[("status", "queued"), ("status", "running")]).json()
    assert [set(j) for j in v4["items"]] == [V4_JOB, V4_JOB]
    assert {j["status"] for j in v4["items"]} == {"running"}
    done = httpx.get(node.url + "/fmeapiv4/jobs", headers=auth, params={"status": "success"})
    assert done.json()["items"] == []


def test_a_submitted_job_and_its_status_in_both_apis(node: EmulatedNode, tmp_path: Path
                                                     ) -> None:
    """run.go: submit answers 202 {id}; jobs_v3_test.go responseV3SingleJob and jobs_v4_test.go
    responseV4SingleJob: one job's keys, its status (V3 upper case with the result's message,
    V4 lower case). A job of a missing workspace is refused."""
    auth = _auth(node.url)
    workspace = tmp_path / "smoke.fmw"
    workspace.write_text("x")
    httpx.post(node.url + "/fmerest/v3/repositories", headers=auth, data={"name": "Ops"})
    httpx.post(node.url + "/fmerest/v3/repositories/Ops/items", headers={
        **auth, "Content-Disposition": 'attachment; filename="smoke.fmw"',
        "Content-Type": "application/octet-stream"}, content=b"x")
    node.state.job_seconds = 0  # ends at once: the test reads its final status
    submitted = httpx.post(node.url + "/fmerest/v3/transformations/submit/Ops/smoke.fmw",
                           headers=auth, json={"publishedParameters": [{"name": "A",
                                                                         "value": "1"}]})
    assert submitted.status_code == 202 and set(submitted.json()) == {"id"}
    job_id = submitted.json()["id"]
    assert node.state.jobs[job_id]["parameters"] == {"A": "1"}
    v3 = httpx.get(f"{node.url}/fmerest/v3/transformations/jobs/id/{job_id}", headers=auth).json()
    assert set(v3) == V3_JOB and v3["status"] == "SUCCESS"
    assert v3["result"]["statusMessage"] == "Translation Successful"
    node.state.failing_jobs.add("Ops/smoke.fmw")
    failing = httpx.post(node.url + "/fmerest/v3/transformations/submit/Ops/smoke.fmw",
                         headers=auth, json={}).json()["id"]
    v4 = httpx.get(f"{node.url}/fmeapiv4/jobs/{failing}", headers=auth).json()
    assert set(v4) == V4_JOB and v4["status"] == "failure"
    missing = httpx.post(node.url + "/fmerest/v3/transformations/submit/Ops/none.fmw",
                         headers=auth, json={})
    assert missing.status_code == 404


def test_licence_status_request_and_refresh_in_both_apis(node: EmulatedNode) -> None:
    auth = _auth(node.url)
    v3 = httpx.get(node.url + "/fmerest/v3/licensing/license/status", headers=auth).json()
    v4 = httpx.get(node.url + "/fmeapiv4/license/status", headers=auth).json()
    assert (set(v3), set(v4)) == (V3_LICENSE, V4_LICENSE)
    assert v3["isLicensed"] is v4["licensed"] is True
    node.state.license_delay_s = 60
    assert httpx.post(node.url + "/fmerest/v3/licensing/request", headers=auth,
                      data={"serialNumber": "AAAA-BBBB-CCCC"}).status_code == 202
    for path, status in (("/fmerest/v3/licensing/refresh/status", "REQUESTING"),
                         ("/fmerest/v3/licensing/request/status", "REQUESTING"),
                         ("/fmeapiv4/license/refresh/status", "requesting"),
                         ("/fmeapiv4/license/request/status", "requesting")):
        answer = httpx.get(node.url + path, headers=auth)
        assert answer.status_code == 200, path
        assert set(answer.json()) == STATUS and answer.json()["status"] == status


def test_unknown_endpoints_answer_without_a_message(node: EmulatedNode) -> None:
    """A missing route is not a missing object: its error document has no `message` (the
    framework's default; UNCONFIRMED for FME), which is how the client tells them apart."""
    auth = _auth(node.url)
    missing = httpx.get(node.url + "/fmeapiv4/no/such/thing", headers=auth)
    assert missing.status_code == 404 and "message" not in missing.json()
    wrong_method = httpx.delete(node.url + "/fmerest/v3/healthcheck", headers=auth)
    assert wrong_method.status_code == 405 and "message" not in wrong_method.json()


# deploymentparameters_test.go response; a dropdown adds choiceSettings
DEPLOYMENT_PARAMETER = {"name", "value", "type", "owner", "resourceMissing", "updated"}


def test_deployment_parameters(node: EmulatedNode) -> None:
    auth = _auth(node.url)
    base = node.url + "/fmeapiv4/deploymentparameters"
    assert httpx.post(base, headers=auth, json={"name": "t", "type": "text",
                                                "value": "v"}).status_code == 201
    dropdown = {"name": "d", "type": "dropdown", "value": "pg",
                "choiceSettings": {"choiceSet": "dbConnections", "family": "PostgreSQL"}}
    assert httpx.post(base, headers=auth, json=dropdown).status_code == 201
    again = httpx.post(base, headers=auth, json=dropdown)
    assert again.status_code == 409  # deploymentparameters_create_test.go parameterExistsBody
    assert again.json() == {"message": 'A deployment parameter with name "d" already exists.'}
    listing = httpx.get(base, headers=auth).json()
    assert (listing["offset"], listing["limit"], listing["totalCount"]) == (0, 100, 2)
    shapes = {p["name"]: set(p) for p in listing["items"]}
    assert shapes == {"d": DEPLOYMENT_PARAMETER | {"choiceSettings"}, "t": DEPLOYMENT_PARAMETER}
    assert httpx.put(base + "/t", headers=auth, json={"value": "w"}).status_code == 204
    assert httpx.get(base + "/t", headers=auth).json()["value"] == "w"
    assert httpx.delete(base + "/nope", headers=auth).status_code == 404


# projects_test.go responsev4; project_items_test.go itemsResponse; projects_upload_test.go
PROJECT = {"description", "hasIcon", "hubPublisherUid", "hubUid", "id", "lastUpdateUser",
           "lastUpdateUserID", "lastUpdated", "name", "owner", "ownerID", "readme", "shareable",
           "version"}
PROJECT_ITEM = {"id", "name", "type", "owner", "lastUpdated", "dependencies"}
IMPORT_ITEM = {"id", "jobId", "name", "type", "ownerId", "ownerName", "ownerStatus",
               "originalOwner", "selected", "existing", "previewAction", "action", "source"}


def test_projects_and_their_import(node: EmulatedNode, tmp_path: Path) -> None:
    auth = _auth(node.url)
    base = node.url + "/fmeapiv4/projects"
    assert httpx.post(base, headers=auth, json={"name": "P"}).status_code == 201
    listing = httpx.get(base, headers=auth).json()
    assert set(listing) == ENVELOPE and set(listing["items"][0]) == PROJECT
    project_id = listing["items"][0]["id"]
    added = httpx.post(f"{base}/{project_id}/items/batch/add", headers=auth,
                       json={"items": [{"type": "repository", "id": "Samples"}]})
    assert added.status_code == 200
    items = httpx.get(f"{base}/{project_id}/items", headers=auth).json()["items"]
    assert [set(i) for i in items] == [PROJECT_ITEM]
    package = httpx.post(f"{base}/{project_id}/export/download", headers={
        **auth, "Accept": "application/octet-stream"}, json={"exportPackageName": "p"})
    assert package.status_code == 200 and package.content[:2] == b"PK"
    missing = httpx.post(f"{base}/nope/export/download", headers=auth, json={})
    assert missing.status_code == 422  # projects_download.go
    upload = httpx.post(f"{base}/imports/upload", headers=auth,
                        files={"file": ("p.fsproject", package.content)})
    assert upload.status_code == 201
    task = upload.headers["Location"].rsplit("/", 1)[-1]
    statuses = [httpx.get(f"{base}/tasks/{task}", headers=auth).json()["status"]
                for _ in range(2)]
    assert statuses == ["generatingPreview", "success"]
    preview = httpx.get(f"{base}/imports/{task}/items", headers=auth).json()["items"]
    assert [set(i) for i in preview] == [IMPORT_ITEM]
    assert preview[0]["previewAction"] == "overwritten"  # the node has Samples already
    run = httpx.post(f"{base}/imports/{task}/run", headers=auth,
                     json={"overwrite": True, "selectedItems": []})
    assert run.status_code == 202
    done = [httpx.get(f"{base}/imports/{task}", headers=auth).json()["status"] for _ in range(2)]
    assert done == ["importing", "imported"]
    assert httpx.delete(f"{base}/imports/{task}", headers=auth).status_code == 204
    not_a_package = httpx.post(f"{base}/imports/upload", headers=auth,
                               files={"file": ("x.fsproject", b"not a zip")})
    assert not_a_package.status_code == 500  # projects_upload.go: not a valid project file


# workspaces_test.go responseV4 (list) and responseV4SingleWorkspace (detail)
V4_WORKSPACE = {"name", "title", "description", "type", "repositoryName", "lastSaveDate",
                "lastPublishDate", "lastPublishUserId", "lastPublishUser", "totalFileSize",
                "fileCount", "averageCpuPercent", "averagePeakMemoryUsage", "averageCpuTime",
                "totalRuns", "averageElapsedTime", "favorite"}
V4_WORKSPACE_DETAIL = {"name", "title", "type", "buildNumber", "category", "history",
                       "lastSaveDate", "lastPublishDate", "lastSaveBuild", "legalTermsConditions",
                       "properties", "requirements", "requirementsKeyword", "resources", "usage",
                       "userName", "fileSize", "favorite", "averageCpuPercent",
                       "averagePeakMemoryUsage", "averageCpuTime", "totalRuns",
                       "averageElapsedTime", "description", "datasets", "services", "parameters"}


def test_v4_workspaces(node: EmulatedNode) -> None:
    auth = _auth(node.url)
    httpx.post(node.url + "/fmerest/v3/repositories", headers=auth, data={"name": "Roads"})
    httpx.post(node.url + "/fmerest/v3/repositories/Roads/items", content=b"ws", headers={
        **auth, "Content-Type": "application/octet-stream",
        "Content-Disposition": 'attachment; filename="a.fmw"'})
    listing = httpx.get(node.url + "/fmeapiv4/workspaces", headers=auth,
                        params={"repository": "Roads"}).json()
    assert (listing["offset"], listing["limit"]) == (0, 100)
    assert [set(w) for w in listing["items"]] == [V4_WORKSPACE]
    assert listing["items"][0]["type"] == "workspace"
    detail = httpx.get(node.url + "/fmeapiv4/workspaces/Roads/a.fmw", headers=auth).json()
    assert set(detail) == V4_WORKSPACE_DETAIL
    assert detail["services"]["jobSubmitter"] == {"registered": True}
    assert detail["services"]["dataDownload"] == {"registered": False}
    missing = httpx.get(node.url + "/fmeapiv4/workspaces/Roads/b.fmw", headers=auth)
    assert missing.status_code == 404 and missing.json() == {"message": "Item b.fmw does not exist."}


def test_publish_dates_have_milliseconds_in_v4_and_whole_seconds_in_v3(node: EmulatedNode
                                                                        ) -> None:
    """As fmeflow-cli's workspaces_test.go samples show: V4 "2022-12-07T18:50:52.635Z", V3
    "2022-12-07T18:50:52Z" — the same instant."""
    import re

    auth = _auth(node.url)
    httpx.post(node.url + "/fmerest/v3/repositories", headers=auth, data={"name": "Roads"})
    httpx.post(node.url + "/fmerest/v3/repositories/Roads/items", content=b"ws", headers={
        **auth, "Content-Type": "application/octet-stream",
        "Content-Disposition": 'attachment; filename="a.fmw"'})
    v4 = httpx.get(node.url + "/fmeapiv4/workspaces", headers=auth,
                   params={"repository": "Roads"}).json()["items"][0]
    v3 = httpx.get(node.url + "/fmerest/v3/repositories/Roads/items", headers=auth
                   ).json()["items"][0]
    for key in ("lastPublishDate", "lastSaveDate"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", v4[key]), v4[key]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v3[key]), v3[key]
        assert v4[key][:19] == v3[key][:19]


def test_a_stopped_node_stops_serving_at_once_whatever_its_poll_interval(tmp_path: Path) -> None:
    """`shutdown` wakes the server's loop: it does not wait for the next poll (an hour here;
    socketserver's own loop would hang the test), the port then refuses connections, and the
    node starts again on the same port."""
    import socket
    import threading

    from fmeaa.emulator.listener import EmulatorHTTPServer

    node = EmulatedNode("fme-x", tmp_path / "x", TEST_PASSWORD)
    server = EmulatorHTTPServer(("127.0.0.1", 0), node)
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 3600},
                            daemon=True)
    loop.start()
    port = server.server_address[1]
    answered = httpx.get(f"http://127.0.0.1:{port}/fmeinfo/version", timeout=5)
    assert answered.status_code == 401  # it serves: it asks who is asking
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    stopper.start()
    stopper.join(timeout=5)
    loop.join(timeout=5)
    assert not stopper.is_alive() and not loop.is_alive()
    server.server_close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    node.port = port
    node.start()
    try:
        assert httpx.get(f"{node.url}/fmeinfo/version", timeout=5).status_code == 401
    finally:
        node.stop()
