"""Routes for repositories (v3 and v4), their items (upload, replace, download, delete) and each
item's registered services: the published workspaces and files the sync keeps in parity (the REST
client's repositories/items/services calls).
"""

from __future__ import annotations

import time
from typing import Any

from fmeaa.emulator.server import (
    KNOWN_SERVICES,
    V3,
    V4,
    ApiError,
    FmeRequestHandler,
    Response,
    _changed,
    _filename,
    _iso,
    _page,
    _state,
    route,
)
from fmeaa.emulator.state import Repository, RepositoryItem, item_type
from fmeaa.emulator.versions import V4_REPOSITORIES

OWNER_ID = "00000000-0000-0000-0000-000000000001"  # the emulator's one user (admin)


# --- repositories --------------------------------------------------------------------------------
def _repo(h: FmeRequestHandler, name: str) -> Repository:
    repo = _state(h).repositories.get(name)
    if repo is None:
        raise ApiError(404, f"Repository {name} does not exist.")  # repositories_delete_test.go
    return repo


def _repo_json(r: Repository, v4: bool = False) -> dict[str, Any]:
    """repositories_test.go: responseV3 (4 keys) and responseV4 (11 keys)."""
    if not v4:
        return {"owner": r.owner, "name": r.name, "description": r.description, "sharable": True}
    count = lambda kind: sum(1 for i in r.items.values() if i.type == kind)  # noqa: E731
    return {"name": r.name, "description": r.description, "ownerID": OWNER_ID, "owner": r.owner,
            "sharable": True, "totalFileSize": sum(i.file.size for i in r.items.values()),
            "fileCount": len(r.items), "workspaceCount": count("WORKSPACE"),
            "customTransformerCount": count("CUSTOMTRANSFORMER"),
            "customFormatCount": count("CUSTOMFORMAT"), "templateCount": count("TEMPLATE")}


@route("GET", f"{V3}/repositories")
def v3_repositories(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        repos = [_repo_json(r) for r in sorted(_state(h).repositories.values(), key=lambda r: r.name)]
    return _page(repos, h.query)


@route("GET", f"{V4}/repositories", since=V4_REPOSITORIES)
def v4_repositories(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        repos = [_repo_json(r, v4=True)
                 for r in sorted(_state(h).repositories.values(), key=lambda r: r.name)]
    return _page(repos, h.query, default_limit=100)


def _create_repository(h: FmeRequestHandler, name: str, description: str) -> Response:
    if not name or "/" in name:
        raise ApiError(422, "repository name is required and may not contain '/'")
    with _state(h).lock:
        if name in _state(h).repositories:
            raise ApiError(409, f"{name} is not a valid name. A repository named {name} already "
                                "exists.")  # repositories_create_test.go
        _state(h).repositories[name] = Repository(name, description)
    _changed(h)
    return Response(201, _repo_json(_state(h).repositories[name]))


@route("POST", f"{V3}/repositories")
def v3_create_repository(h: FmeRequestHandler) -> Any:
    form = h.form_body()  # v3 takes form-urlencoded (fmeflow-cli repositories_create.go)
    return _create_repository(h, form.get("name", [""])[0], form.get("description", [""])[0])


@route("POST", f"{V4}/repositories", since=V4_REPOSITORIES)
def v4_create_repository(h: FmeRequestHandler) -> Any:
    body = h.json_body()
    return _create_repository(h, str(body.get("name", "")), str(body.get("description", "")))


@route("GET", f"{V3}/repositories/{{repo}}")
@route("GET", f"{V4}/repositories/{{repo}}", since=V4_REPOSITORIES)
def get_repository(h: FmeRequestHandler, repo: str) -> Any:
    return _repo_json(_repo(h, repo), v4=h.path.startswith(V4))


@route("DELETE", f"{V3}/repositories/{{repo}}")
@route("DELETE", f"{V4}/repositories/{{repo}}", since=V4_REPOSITORIES)
def delete_repository(h: FmeRequestHandler, repo: str) -> Any:
    with _state(h).lock:
        removed = _repo(h, repo)
        del _state(h).repositories[repo]
    for item in removed.items.values():
        _state(h).drop_blob(item.file)
    _changed(h)
    return Response(204)


# --- repository items ----------------------------------------------------------------------------
# Shapes: fmeflow-cli workspaces_test.go — responseV3 (list: 15 keys, no `services`) and
# responseV3SingleWorkspace (detail: 27 keys, `services` as [{name, displayName}]). Statistics
# (runs, CPU) are zero: the emulator runs no jobs. `sha256` is never exposed: clients digest the
# bytes they download.
SERVICE_DISPLAY_NAMES = {"fmedatadownload": "Data Download", "fmedatastreaming": "Data Streaming",
                         "fmejobsubmitter": "Job Submitter", "fmekmllink": "KML Network Link",
                         "fmenotification": "Notification Service"}  # last one UNCONFIRMED


def _title(item: RepositoryItem) -> str:
    return item.name.rsplit(".", 1)[0]


def _v3_item(repo: Repository, item: RepositoryItem, owner: str) -> dict[str, Any]:
    return {"lastSaveDate": _iso(item.file.modified), "avgCpuPct": 0.0, "avgPeakMemUsage": 0,
            "description": "", "repositoryName": repo.name, "title": _title(item),
            "type": item.type, "userName": owner, "fileCount": 1, "avgCpuTime": 0,
            "lastPublishDate": _iso(item.last_publish), "name": item.name,
            "totalFileSize": item.file.size, "totalRuns": 0, "avgElapsedTime": 0}


def _detail_common(item: RepositoryItem, owner: str, build: int) -> dict[str, Any]:
    """The keys V3 and V4 details share (workspaces_test.go)."""
    return {"name": item.name, "title": _title(item), "description": "", "type": item.type,
            "buildNumber": build, "category": "", "history": "",
            "lastSaveDate": _iso(item.file.modified), "lastPublishDate": _iso(item.last_publish),
            "lastSaveBuild": "", "legalTermsConditions": "", "properties": [],
            "requirements": "", "requirementsKeyword": "", "resources": [], "usage": "",
            "userName": owner, "fileSize": item.file.size, "totalRuns": 0,
            "datasets": {"source": [], "destination": []}, "parameters": []}


def _v3_item_detail(repo: Repository, item: RepositoryItem, owner: str, build: int
                    ) -> dict[str, Any]:
    return {**_detail_common(item, owner, build), "avgCpuPct": 0.0, "avgPeakMemUsage": 0,
            "avgCpuTime": 0, "avgElapsedTime": 0, "enabled": True,
            "services": _v3_services(item)}


def _v3_services(item: RepositoryItem) -> list[dict[str, str]]:
    return [{"name": s, "displayName": SERVICE_DISPLAY_NAMES.get(s, s)} for s in item.services]


def _item(h: FmeRequestHandler, repo: str, name: str) -> tuple[Repository, RepositoryItem]:
    r = _repo(h, repo)
    item = r.items.get(name)
    if item is None:
        raise ApiError(404, f"Item {name} does not exist.")  # workspaces_test.go
    return r, item


@route("GET", f"{V3}/repositories/{{repo}}/items")
def list_items(h: FmeRequestHandler, repo: str) -> Any:
    r = _repo(h, repo)
    wanted = h.query.get("type")
    with _state(h).lock:
        items = [i for i in r.items.by_name() if not wanted or i.type == wanted.upper()] \
            if wanted else r.items.by_name()
        owner = _state(h).username
        return _page(items, h.query, lambda i: _v3_item(r, i, owner))


def _upload_item(h: FmeRequestHandler, repo: str, name: str | None, replace: bool) -> Response:
    if h.headers.get("Content-Type", "").split(";")[0] != "application/octet-stream":
        raise ApiError(415 if replace else 400, "expected Content-Type: application/octet-stream")
    r = _repo(h, repo)
    filename = name or _filename(h.headers.get("Content-Disposition"))
    if not filename:
        raise ApiError(400, "Content-Disposition with a filename is required")
    exists = filename in r.items
    if replace and not exists:
        raise ApiError(404, f"Item '{filename}' does not exist in repository '{repo}'")
    if not replace and exists:
        raise ApiError(409, f"Item '{filename}' already exists in repository '{repo}'")
    stored = _state(h).store_stream(h.body_chunks())  # a dropped upload leaves nothing behind
    h.server.node.uploaded_bytes += stored.size
    with _state(h).lock:
        old = r.items.get(filename)
        services = old.services if old else ["fmejobsubmitter"]  # UNCONFIRMED default service
        r.items[filename] = RepositoryItem(filename, item_type(filename), stored, services,
                                           time.time())
    if old:
        _state(h).drop_blob(old.file)
    _changed(h)
    # The answer to an upload is UNCONFIRMED; the list shape, without services.
    return Response(200 if replace else 201, _v3_item(r, r.items[filename], _state(h).username))


@route("POST", f"{V3}/repositories/{{repo}}/items")
def create_item(h: FmeRequestHandler, repo: str) -> Any:
    return _upload_item(h, repo, None, replace=False)


@route("PUT", f"{V3}/repositories/{{repo}}/items/{{item}}")
def replace_item(h: FmeRequestHandler, repo: str, item: str) -> Any:
    return _upload_item(h, repo, item, replace=True)


@route("GET", f"{V3}/repositories/{{repo}}/items/{{item}}")
def get_item(h: FmeRequestHandler, repo: str, item: str) -> Any:
    r, found = _item(h, repo, item)
    if "application/octet-stream" in h.headers.get("Accept", ""):
        return Response(200, file=_state(h).blob_path(found.file), size=found.file.size,
                        what="item")
    return _v3_item_detail(r, found, _state(h).username, h.server.node.version.build)


@route("DELETE", f"{V3}/repositories/{{repo}}/items/{{item}}")
def delete_item(h: FmeRequestHandler, repo: str, item: str) -> Any:
    r, found = _item(h, repo, item)
    with _state(h).lock:
        del r.items[item]
    _state(h).drop_blob(found.file)
    _changed(h)
    return Response(204)


@route("GET", f"{V3}/repositories/{{repo}}/items/{{item}}/services")
def get_services(h: FmeRequestHandler, repo: str, item: str) -> Any:
    _, found = _item(h, repo, item)
    return _v3_services(found)  # the detail's `services` (workspaces_test.go)


@route("PUT", f"{V3}/repositories/{{repo}}/items/{{item}}/services")
def set_services(h: FmeRequestHandler, repo: str, item: str) -> Any:
    _, found = _item(h, repo, item)
    services = h.form_body().get("services", [])
    unknown = sorted(set(services) - set(KNOWN_SERVICES))
    if unknown:
        raise ApiError(422, f"unknown service(s): {', '.join(unknown)}")
    with _state(h).lock:
        found.services = sorted(set(services))
    _changed(h)
    return _v3_services(found)  # UNCONFIRMED: the answer to setting services
