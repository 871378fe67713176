"""REST V4 routes for repository items: the workspace list and detail (confirmed: fmeflow-cli
workspaces.go, shapes workspaces_test.go), and the item list, publish, download, delete and
service registration a V4-only node needs — which no public source confirms. Those are marked
UNCONFIRMED (served only by versions without V3) and follow the same rows as
fmeaa/client/api_table.py, so that correcting one table means correcting the other.
"""

from __future__ import annotations

import time
from typing import Any

from fmeaa.emulator.multipart import MultipartError, MultipartReader, boundary_of
from fmeaa.emulator.routes.repositories import (
    OWNER_ID,
    _detail_common,
    _item,
    _repo,
    _title,
)
from fmeaa.emulator.server import (
    KNOWN_SERVICES,
    V4,
    ApiError,
    FmeRequestHandler,
    Response,
    _changed,
    _iso_ms,
    _page,
    _state,
    route,
)
from fmeaa.emulator.state import Repository, RepositoryItem, item_type
from fmeaa.emulator.versions import V4_REPOSITORIES

# V3 service names ↔ the keys of a V4 `services` object (workspaces_test.go); `notification`
# is UNCONFIRMED (the sample's workspace has no notification service).
SERVICE_KEYS = {"fmejobsubmitter": "jobSubmitter", "fmedatadownload": "dataDownload",
                "fmedatastreaming": "dataStreaming", "fmekmllink": "kmlNetworkLink",
                "fmenotification": "notification"}
V4_TYPES = {"WORKSPACE": "workspace", "CUSTOMTRANSFORMER": "customTransformer",
            "CUSTOMFORMAT": "customFormat", "TEMPLATE": "template"}  # only "workspace" is seen


def _v4_type(item: RepositoryItem) -> str:
    return V4_TYPES.get(item.type, item.type.lower())


def _v4_item(repo: Repository, item: RepositoryItem, owner: str) -> dict[str, Any]:
    """workspaces_test.go responseV4's item: 17 keys."""
    return {"name": item.name, "title": _title(item), "description": "", "type": _v4_type(item),
            "repositoryName": repo.name, "lastSaveDate": _iso_ms(item.file.modified),
            "lastPublishDate": _iso_ms(item.last_publish), "lastPublishUserId": OWNER_ID,
            "lastPublishUser": owner, "totalFileSize": item.file.size, "fileCount": 1,
            "averageCpuPercent": 0.0, "averagePeakMemoryUsage": 0, "averageCpuTime": 0,
            "totalRuns": 0, "averageElapsedTime": 0, "favorite": False}


def _v4_services(item: RepositoryItem) -> dict[str, Any]:
    """The keyed services object of workspaces_test.go responseV4SingleWorkspace."""
    return {key: {"registered": name in item.services}
            for name, key in SERVICE_KEYS.items()}


@route("GET", f"{V4}/workspaces", since=V4_REPOSITORIES)
def v4_workspaces(h: FmeRequestHandler) -> Any:
    """?repository=R&filterString=… (workspaces.go)."""
    wanted_repo, needle = h.query.get("repository"), h.query.get("filterString", "").lower()
    owner = _state(h).username
    with _state(h).lock:
        found = [(r, i) for r in sorted(_state(h).repositories.values(), key=lambda r: r.name)
                 if not wanted_repo or r.name == wanted_repo
                 for i in r.items.by_name()
                 if i.type == "WORKSPACE" and needle in i.name.lower()]
        return _page(found, h.query, lambda ri: _v4_item(ri[0], ri[1], owner), default_limit=100)


@route("GET", f"{V4}/workspaces/{{repo}}/{{item}}", since=V4_REPOSITORIES)
def v4_workspace(h: FmeRequestHandler, repo: str, item: str) -> Any:
    """workspaces_test.go responseV4SingleWorkspace: 27 keys."""
    _, found = _item(h, repo, item)
    return {**_detail_common(found, _state(h).username, h.server.node.version.build),
            "type": _v4_type(found), "favorite": False, "averageCpuPercent": 0.0,
            "averagePeakMemoryUsage": 0, "averageCpuTime": 0, "averageElapsedTime": 0,
            "services": _v4_services(found)}


@route("PUT", f"{V4}/workspaces/{{repo}}/{{item}}/services", unconfirmed=True)
def v4_set_services(h: FmeRequestHandler, repo: str, item: str) -> Any:
    """UNCONFIRMED: the detail's keyed `services` object, `registered` per service."""
    _, found = _item(h, repo, item)
    body = h.json_body()
    names = dict(SERVICE_KEYS)
    unknown = sorted(set(body) - set(names.values()))
    if unknown:
        raise ApiError(400, f"unknown service(s): {', '.join(unknown)}")
    wanted = sorted(name for name, key in names.items()
                    if isinstance(body.get(key), dict) and body[key].get("registered")
                    and name in KNOWN_SERVICES)
    with _state(h).lock:
        found.services = wanted
    _changed(h)
    return Response(204)


@route("GET", f"{V4}/repositories/{{repo}}/items", unconfirmed=True)
def v4_items(h: FmeRequestHandler, repo: str) -> Any:
    """The path is in support.safe.com article 42307169945229; the item keys are UNCONFIRMED
    (assumed those of the workspace list)."""
    r = _repo(h, repo)
    wanted = h.query.get("type", "").lower()
    owner = _state(h).username
    with _state(h).lock:
        items = [i for i in r.items.by_name() if _v4_type(i).lower() == wanted] \
            if wanted else r.items.by_name()
        return _page(items, h.query, lambda i: _v4_item(r, i, owner), default_limit=100)


@route("POST", f"{V4}/repositories/{{repo}}/items", unconfirmed=True)
def v4_publish(h: FmeRequestHandler, repo: str) -> Any:
    """UNCONFIRMED: multipart part `file`; `?overwrite=true` replaces (else 409 if it exists)."""
    r = _repo(h, repo)
    overwrite = h.query.get("overwrite", "false").lower() == "true"
    try:
        reader = MultipartReader(h.body_chunks(), boundary_of(h.headers.get("Content-Type", "")))
        stored, filename = None, None
        for part in reader.parts():  # every part is read to the end: the connection lives on
            if part.name == "file" and part.filename and filename is None:
                filename = part.filename
                if "/" not in filename and (overwrite or filename not in r.items):
                    stored = _state(h).store_stream(part.body)  # a dropped upload leaves nothing
    except MultipartError as exc:
        raise ApiError(400, str(exc)) from None
    if not filename or "/" in filename:
        raise ApiError(400, "a multipart part `file` with a filename (no '/') is required")
    if stored is None:
        raise ApiError(409, f"Item {filename} already exists.")
    h.server.node.uploaded_bytes += stored.size
    with _state(h).lock:
        old = r.items.get(filename)
        services = old.services if old else ["fmejobsubmitter"]  # UNCONFIRMED default service
        r.items[filename] = RepositoryItem(filename, item_type(filename), stored, services,
                                           time.time())
    if old:
        _state(h).drop_blob(old.file)
    _changed(h)
    return Response(201, _v4_item(r, r.items[filename], _state(h).username))


@route("GET", f"{V4}/repositories/{{repo}}/items/{{item}}/download", unconfirmed=True)
def v4_download(h: FmeRequestHandler, repo: str, item: str) -> Any:
    _, found = _item(h, repo, item)
    return Response(200, file=_state(h).blob_path(found.file), size=found.file.size, what="item")


@route("DELETE", f"{V4}/repositories/{{repo}}/items/{{item}}", unconfirmed=True)
def v4_delete_item(h: FmeRequestHandler, repo: str, item: str) -> Any:
    r, found = _item(h, repo, item)
    with _state(h).lock:
        del r.items[item]
    _state(h).drop_blob(found.file)
    _changed(h)
    return Response(204)
