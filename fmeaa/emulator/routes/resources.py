"""Routes for resources: the shared file systems (resource connections) of a node, listed,
downloaded, uploaded and deleted by path (the REST client's resource_* calls). Files are stored on
disk under the node's data directory, so large uploads stream instead of sitting in memory.
"""

from __future__ import annotations

from typing import Any

from fmeaa.emulator.server import V3, ApiError, FmeRequestHandler, Response, _filename, _iso, _state, route
from fmeaa.emulator.state import NodeState


# --- resources (shared files) --------------------------------------------------------------------
@route("GET", f"{V3}/resources/connections")
def resource_connections(h: FmeRequestHandler) -> Any:
    names = sorted(p.name for p in (_state(h).data_dir / "resources").iterdir() if p.is_dir())
    return [{"name": n, "type": "SYSTEM", "displayName": n} for n in names]


def _resource_path(h: FmeRequestHandler, connection: str, path: str) -> Any:
    root = _state(h).resource_root(connection)
    if root is None:
        raise ApiError(404, f"Resource connection '{connection}' does not exist")
    target = NodeState.resolve_inside(root, path)
    if target is None:
        raise ApiError(400, "path escapes the resource connection")
    return root, target


def _entry(root: Any, p: Any, depth: int) -> dict[str, Any]:
    rel = "/" + str(p.relative_to(root)).replace("\\", "/").lstrip(".")
    stat = p.stat()
    entry = {"name": p.name if p != root else "", "path": rel.rstrip("/") or "/",
             "type": "DIR" if p.is_dir() else "FILE", "size": 0 if p.is_dir() else stat.st_size,
             "date": _iso(stat.st_mtime)}
    if p.is_dir():
        children = sorted(c for c in p.iterdir() if not c.name.startswith("."))
        entry["contents"] = [_entry(root, c, depth - 1) for c in children] if depth > 0 else []
    return entry


@route("GET", f"{V3}/resources/connections/{{connection}}/filesys")
@route("GET", f"{V3}/resources/connections/{{connection}}/filesys/{{path}}")
def list_resource(h: FmeRequestHandler, connection: str, path: str = "") -> Any:
    root, target = _resource_path(h, connection, path)
    if not target.exists():
        raise ApiError(404, f"'{path}' does not exist in {connection}")
    if target.is_file() and "application/octet-stream" in h.headers.get("Accept", ""):
        return Response(200, file=target, size=target.stat().st_size,
                        what=f"resource:{connection}")
    return _entry(root, target, int(h.query.get("depth", "1")))


@route("POST", f"{V3}/resources/connections/{{connection}}/filesys")
@route("POST", f"{V3}/resources/connections/{{connection}}/filesys/{{path}}")
def upload_resource(h: FmeRequestHandler, connection: str, path: str = "") -> Any:
    _, directory = _resource_path(h, connection, path)
    create_dirs = h.query.get("createDirectories", "false").lower() == "true"
    if not directory.exists():
        if not create_dirs:
            raise ApiError(404, f"directory '{path}' does not exist (createDirectories=false)")
        directory.mkdir(parents=True)
    if not directory.is_dir():
        raise ApiError(409, f"'{path}' is a file, not a directory")
    content_type = h.headers.get("Content-Type", "").split(";")[0]
    if content_type == "application/x-www-form-urlencoded":
        name = h.form_body().get("directoryname", [""])[0]
        if not name or "/" in name:
            raise ApiError(422, "directoryname is required")
        new_dir = directory / name
        if new_dir.exists():
            raise ApiError(409, f"'{name}' already exists")
        new_dir.mkdir()
        return Response(201, {"name": name, "type": "DIR"})
    filename = _filename(h.headers.get("Content-Disposition"))
    if content_type != "application/octet-stream" or not filename or "/" in filename:
        raise ApiError(400, "upload needs application/octet-stream and a Content-Disposition filename")
    target = directory / filename
    overwrite = h.query.get("overwrite", "false").lower() == "true"
    if target.exists() and not overwrite:
        raise ApiError(409, f"'{filename}' already exists (overwrite=false)")
    try:
        size = _state(h).write_resource(target, h.body_chunks(), overwrite=overwrite)
    except FileExistsError:  # created by a concurrent upload since the check above
        raise ApiError(409, f"'{filename}' already exists (overwrite=false)") from None
    h.server.node.uploaded_bytes += size
    return Response(201, {"name": filename, "type": "FILE", "size": size})


@route("DELETE", f"{V3}/resources/connections/{{connection}}/filesys/{{path}}")
def delete_resource(h: FmeRequestHandler, connection: str, path: str) -> Any:
    root, target = _resource_path(h, connection, path)
    if target == root.resolve() or not target.exists():
        raise ApiError(404, f"'{path}' does not exist in {connection}")
    NodeState.remove_tree(target)
    return Response(204)
