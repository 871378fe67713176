"""REST V4 routes for resources (FME Flow 2025.1+, support.safe.com article 40926498090125):
folder info, zip download, multipart upload and delete, addressed by connection and `?path=`
(as called by eea/Products.Reportek, a third-party client). Entry keys besides `name` and `type`,
the folder `type` spelling, that an upload creates missing folders, and the connection list are
UNCONFIRMED. Files live in the same tree as the V3 routes'."""

from __future__ import annotations

import secrets
import zipfile
from pathlib import Path
from typing import Any

from fmeaa.emulator.multipart import MultipartError, MultipartReader, boundary_of
from fmeaa.emulator.routes.resources import _resource_path
from fmeaa.emulator.server import V4, ApiError, FmeRequestHandler, Response, _iso, _page, _state, route
from fmeaa.emulator.state import NodeState
from fmeaa.emulator.versions import V4_RESOURCES

BASE = f"{V4}/resources/connections"


@route("GET", BASE, since=V4_RESOURCES, unconfirmed=True)
def v4_resource_connections(h: FmeRequestHandler) -> Any:
    names = sorted(p.name for p in (_state(h).data_dir / "resources").iterdir() if p.is_dir())
    return _page([{"name": n, "type": "system"} for n in names], h.query, default_limit=100)


def _target(h: FmeRequestHandler, connection: str) -> tuple[Path, Path]:
    if "path" not in h.query:
        raise ApiError(400, "path is required")  # Reportek: "path is a required query parameter"
    return _resource_path(h, connection, h.query["path"])


@route("GET", f"{BASE}/{{connection}}/info", since=V4_RESOURCES)
def v4_resource_info(h: FmeRequestHandler, connection: str) -> Any:
    _, target = _target(h, connection)
    if not target.exists():
        raise ApiError(404, f"{h.query['path']} does not exist.")
    if target.is_file():
        return _entry(target)
    children = sorted(c for c in target.iterdir() if not c.name.startswith("."))
    return {**_entry(target), "contents": [_entry(c) for c in children]}


def _entry(p: Path) -> dict[str, Any]:
    stat = p.stat()
    return {"name": p.name, "type": "directory" if p.is_dir() else "file",
            "size": 0 if p.is_dir() else stat.st_size, "lastModified": _iso(stat.st_mtime)}


@route("POST", f"{BASE}/{{connection}}/downloadzip", since=V4_RESOURCES)
def v4_resource_download(h: FmeRequestHandler, connection: str) -> Any:
    """JSON {path, items, zipFileName} → a zip of those items of the folder (Reportek)."""
    body = h.json_body()
    _, folder = _resource_path(h, connection, str(body.get("path", "/")))
    names = body.get("items") or []
    if not isinstance(names, list) or not names or len(names) > 500:
        raise ApiError(400, "items must list 1 to 500 names")
    files = [folder / str(n) for n in names]
    missing = [str(n) for n, f in zip(names, files, strict=True) if not f.is_file()]
    if missing:
        raise ApiError(404, f"{', '.join(missing)} does not exist.")
    archive = _state(h).data_dir / f".download-{secrets.token_hex(8)}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        for f in files:
            zipped.write(f, f.name)
    return Response(200, file=archive, size=archive.stat().st_size, unlink_after=True,
                    what=f"resource:{connection}",
                    content_type="application/zip")


@route("POST", f"{BASE}/{{connection}}/upload", since=V4_RESOURCES)
def v4_resource_upload(h: FmeRequestHandler, connection: str) -> Any:
    """?path=/dir&overwrite=true, multipart: one part `files` per file (Reportek)."""
    _, directory = _target(h, connection)
    overwrite = h.query.get("overwrite", "false").lower() == "true"
    if directory.exists() and not directory.is_dir():
        raise ApiError(409, f"{h.query['path']} is a file, not a folder")
    directory.mkdir(parents=True, exist_ok=True)  # UNCONFIRMED: that missing folders are made
    written: list[dict[str, Any]] = []
    conflicts: list[str] = []
    try:
        reader = MultipartReader(h.body_chunks(), boundary_of(h.headers.get("Content-Type", "")))
        for part in reader.parts():
            if part.name not in ("files", "file") or not part.filename or "/" in part.filename:
                continue
            target = directory / part.filename
            if target.exists() and not overwrite:
                conflicts.append(part.filename)
                continue
            try:
                size = _state(h).write_resource(target, part.body, overwrite=overwrite)
            except FileExistsError:  # created by a concurrent upload since the check above
                conflicts.append(part.filename)
                continue
            h.server.node.uploaded_bytes += size
            written.append({"name": part.filename, "size": size})
    except MultipartError as exc:
        raise ApiError(400, str(exc)) from None
    if conflicts and not written:
        raise ApiError(409, f"{', '.join(conflicts)} already exists (overwrite=false)")
    return Response(207 if conflicts else 201, {"items": written})  # body shape UNCONFIRMED


@route("DELETE", f"{BASE}/{{connection}}/item", since=V4_RESOURCES)
def v4_resource_delete(h: FmeRequestHandler, connection: str) -> Any:
    root, target = _target(h, connection)
    if target == root.resolve() or not target.exists():
        raise ApiError(404, f"{h.query['path']} does not exist.")
    NodeState.remove_tree(target)
    return Response(204)
