"""REST V4 routes for FME Flow projects: list, create, add items (support.safe.com article
42307169945229), items, export, delete (fmeflow-cli projects*.go), and the import in its steps —
upload, task (preview), items, run, status, delete (projects_upload.go; the /projects/imports
path since cli commit e790524). Shapes: projects_test.go, project_items_test.go,
projects_upload_test.go. Packages are the emulator's own format (fmeaa.emulator.packages).

Preview and import complete when the client first asks after starting them ("generatingPreview"
then "success"; "importing" then "imported"), so clients poll as against a real node without the
emulator depending on time.
"""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from fmeaa.emulator import packages
from fmeaa.emulator.multipart import MultipartError, MultipartReader, boundary_of
from fmeaa.emulator.routes.connections import NOT_FOUND
from fmeaa.emulator.routes.repositories import OWNER_ID
from fmeaa.emulator.server import (
    V4,
    ApiError,
    FmeRequestHandler,
    Response,
    _changed,
    _iso,
    _page,
    _state,
    route,
)
from fmeaa.emulator.state import write_atomically
from fmeaa.emulator.versions import V4_PROJECT_EXPORT, V4_PROJECT_IMPORT, V4_PROJECTS

BASE = f"{V4}/projects"


def _view(project: dict[str, Any]) -> dict[str, Any]:
    """projects_test.go responseV4's project: 14 keys."""
    return {"id": project["id"], "name": project["name"],
            "description": project.get("description", ""),
            "version": project.get("version", "1.0.0"), "owner": "admin", "ownerID": OWNER_ID,
            "shareable": True, "lastUpdated": project["lastUpdated"],
            "lastUpdateUser": "admin", "lastUpdateUserID": OWNER_ID, "hubUid": None,
            "hubPublisherUid": None, "readme": project.get("readme", ""), "hasIcon": False}


def _project(h: FmeRequestHandler, project_id: str, status: int = 404) -> dict[str, Any]:
    found = _state(h).projects.get(project_id)
    if found is None:
        raise ApiError(status, NOT_FOUND)
    return found


def _touch(project: dict[str, Any]) -> None:
    """A new `lastUpdated` (milliseconds, and never the same twice: clients compare it)."""
    ms = max(int(time.time() * 1000), project.get("updatedMs", 0) + 1)
    project["updatedMs"] = ms
    project["lastUpdated"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + \
        f".{ms % 1000:03d}Z"


@route("GET", BASE, since=V4_PROJECTS)
def list_projects(h: FmeRequestHandler) -> Any:
    needle = h.query.get("filterString", "").lower()
    with _state(h).lock:
        found = [p for p in sorted(_state(h).projects.values(), key=lambda p: p["name"])
                 if needle in p["name"].lower()]
        return _page(found, h.query, _view, default_limit=100)


@route("POST", BASE, since=V4_PROJECTS)
def create_project(h: FmeRequestHandler) -> Any:
    body = h.json_body()
    name = str(body.get("name", ""))
    if not name:
        raise ApiError(400, "name is required")
    with _state(h).lock:
        if any(p["name"] == name for p in _state(h).projects.values()):
            raise ApiError(409, f'A project with name "{name}" already exists.')
        project = {"id": str(uuid.uuid4()), "name": name,
                   "description": str(body.get("description", "")), "items": []}
        _touch(project)
        _state(h).projects[project["id"]] = project
    _changed(h)
    return Response(201)


@route("GET", f"{BASE}/{{project_id}}", since=V4_PROJECTS)
def get_project(h: FmeRequestHandler, project_id: str) -> Any:
    return _view(_project(h, project_id))


@route("DELETE", f"{BASE}/{{project_id}}", since=V4_PROJECTS)
def delete_project(h: FmeRequestHandler, project_id: str) -> Any:
    _project(h, project_id)
    with _state(h).lock:
        del _state(h).projects[project_id]
    _changed(h)
    return Response(204)


@route("POST", f"{BASE}/{{project_id}}/items/batch/add", since=V4_PROJECTS)
def add_items(h: FmeRequestHandler, project_id: str) -> Any:
    """{items: [{type, id}]} (article 42307169945229)."""
    project = _project(h, project_id)
    items = h.json_body().get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("type")
                                              and i.get("id") for i in items):
        raise ApiError(400, "items must be a list of {type, id}")
    with _state(h).lock:
        known = {(i["type"], i["id"]) for i in project["items"]}
        project["items"] += [{"type": i["type"], "id": i["id"]} for i in items
                             if (i["type"], i["id"]) not in known]
        _touch(project)
    _changed(h)
    return Response(200)


@route("GET", f"{BASE}/{{project_id}}/items", since=V4_PROJECTS)
def project_items(h: FmeRequestHandler, project_id: str) -> Any:
    """project_items_test.go itemsResponse: {id, name, type, owner, lastUpdated, dependencies}."""
    project = _project(h, project_id)
    rows = [{"id": i["id"], "name": i["id"].rsplit("/", 1)[-1], "type": i["type"],
             "owner": "admin", "lastUpdated": project["lastUpdated"], "dependencies": []}
            for i in project["items"]]
    return _page(rows, h.query, default_limit=100)


@route("POST", f"{BASE}/{{project_id}}/export/download", since=V4_PROJECT_EXPORT)
def export_project(h: FmeRequestHandler, project_id: str) -> Any:
    project = _project(h, project_id, status=422)  # projects_download.go: 422 if no such project
    h.json_body()
    spool = _state(h).data_dir / f".export-{secrets.token_hex(8)}.fsproject"
    packages.write_package(_state(h), project, spool)
    return Response(200, file=spool, size=spool.stat().st_size, unlink_after=True,
                    what="project")


# --- import -----------------------------------------------------------------------------------
@route("POST", f"{BASE}/imports/upload", since=V4_PROJECT_IMPORT)
def import_upload(h: FmeRequestHandler) -> Any:
    """multipart part `file` → 201 with the task in `Location` (projects_upload.go)."""
    task_id = str(len(_state(h).project_imports) + 1)
    package = _state(h).data_dir / f".import-{task_id}-{secrets.token_hex(4)}.fsproject"
    received = False
    try:
        reader = MultipartReader(h.body_chunks(), boundary_of(h.headers.get("Content-Type", "")))
        for part in reader.parts():
            if part.name == "file" and not received:
                write_atomically(package.with_suffix(".partial"), package, part.body)
                received = True
    except MultipartError as exc:
        raise ApiError(400, str(exc)) from None
    if not received:
        raise ApiError(400, "a multipart part `file` is required")
    try:
        document = packages.read_package(package)
    except packages.PackageError as exc:
        package.unlink(missing_ok=True)
        raise ApiError(500, str(exc)) from None  # projects_upload.go: 500 = not a project file
    with _state(h).lock:
        _state(h).project_imports[task_id] = {
            "package": str(package), "document": document, "fileName": package.name,
            "taskStatus": "submitted", "status": "ready", "requested": _iso(time.time()),
            "preview": packages.preview(_state(h), document), "request": {}}
    return Response(201, headers={"Location": f"{BASE}/imports/{task_id}"})


def _import(h: FmeRequestHandler, task_id: str) -> dict[str, Any]:
    found = _state(h).project_imports.get(task_id)
    if found is None:
        raise ApiError(404, NOT_FOUND)
    return found


@route("GET", f"{BASE}/tasks/{{task_id}}", since=V4_PROJECT_IMPORT)
def import_task(h: FmeRequestHandler, task_id: str) -> Any:
    """projects_upload.go ProjectTaskV4; submitted → generatingPreview → success."""
    task = _import(h, task_id)
    with _state(h).lock:
        task["taskStatus"] = {"submitted": "generatingPreview"}.get(task["taskStatus"], "success")
    return {"id": int(task_id), "type": "import", "username": "admin",
            "startDate": task["requested"], "finishedDate": task["requested"],
            "status": task["taskStatus"], "projectName": task["document"]["name"],
            "successTopic": "", "failureTopic": "", "resourceName": "", "packagePath": "",
            "packageName": task["fileName"], "importMode": "UPDATE",
            "projectsImportMode": "UPDATE", "pauseNotifications": True, "result": "",
            "excludeSensitiveInfo": True, "disableProjectItems": False}


@route("GET", f"{BASE}/imports/{{task_id}}/items", since=V4_PROJECT_IMPORT)
def import_items(h: FmeRequestHandler, task_id: str) -> Any:
    task = _import(h, task_id)
    rows = task["preview"]
    if h.query.get("selectable", "false").lower() == "true":
        rows = [r for r in rows if r["type"] in packages.SELECTABLE]
    return _page(rows, h.query, default_limit=100)


@route("POST", f"{BASE}/imports/{{task_id}}/run", since=V4_PROJECT_IMPORT)
def import_run(h: FmeRequestHandler, task_id: str) -> Any:
    """{overwrite, pauseNotifications, disableItems, selectedItems, notification?} → 202."""
    task = _import(h, task_id)
    body = h.json_body()
    if task["taskStatus"] != "success":
        raise ApiError(409, "the import preview is not ready")
    selected = {(i.get("type"), i.get("id")) for i in body.get("selectedItems") or []}
    state = _state(h)
    document = task["document"]
    try:
        imported = packages.apply(state, Path(task["package"]), document, selected)
    except (KeyError, packages.PackageError) as exc:
        raise ApiError(422, f"the package is damaged ({exc})") from None
    with state.lock:
        project = next((p for p in state.projects.values() if p["name"] == document["name"]),
                       None) or {"id": str(uuid.uuid4()), "name": document["name"]}
        project.update(description=document.get("description", ""),
                       version=document.get("version", "1.0.0"), items=imported)
        _touch(project)
        state.projects[project["id"]] = project
        task.update(status="importing", request=body)
    Path(task["package"]).unlink(missing_ok=True)
    _changed(h)
    return Response(202)


@route("GET", f"{BASE}/imports/{{task_id}}", since=V4_PROJECT_IMPORT)
def import_status(h: FmeRequestHandler, task_id: str) -> Any:
    """projects_upload.go ProjectUploadV4; importing → imported."""
    task = _import(h, task_id)
    with _state(h).lock:
        if task["status"] == "importing" and task.get("polled"):
            task["status"] = "imported"
        task["polled"] = True
    return {"jobId": int(task_id), "status": task["status"], "owner": "admin",
            "ownerID": OWNER_ID, "requested": task["requested"], "generated": task["requested"],
            "fileName": task["fileName"], "request": task["request"]}


@route("DELETE", f"{BASE}/imports/{{task_id}}", since=V4_PROJECT_IMPORT)
def import_delete(h: FmeRequestHandler, task_id: str) -> Any:
    task = _import(h, task_id)
    with _state(h).lock:
        del _state(h).project_imports[task_id]
    Path(task["package"]).unlink(missing_ok=True)
    return Response(204)
