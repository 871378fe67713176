"""The emulator's FME Flow project packages (.fsproject): what a project carries, how it is
written on export and applied on import.

Safe does not document the inside of a real .fsproject, and fmeaa never looks inside one (it
uploads, previews and imports packages as opaque bytes). So this format is the EMULATOR'S OWN: a
zip with `project.json` ({name, description, version, items}) and the files of its workspaces.
Item types and ids follow support.safe.com article 42307169945229 (`{"type": "workspace",
"id": "Repository/ws.fmw"}`); which items are "selectable" at import (connections, deployment
parameters, users in fmeflow-cli's projects_upload_test.go sample) is UNCONFIRMED beyond that.
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmeaa.emulator.state import NodeState, Repository, RepositoryItem, item_type

MANIFEST = "project.json"
SELECTABLE = ("connection", "deploymentParameter", "user")
CHUNK = 64 * 1024
SENSITIVE = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)  # as routes/connections.py


class PackageError(ValueError):
    """Not a project package this emulator can read."""


def read_package(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as zipped:
            document = json.loads(zipped.read(MANIFEST))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise PackageError(f"not a project package ({type(exc).__name__})") from None
    if not isinstance(document, dict) or not document.get("name"):
        raise PackageError("project.json has no name")
    return document


def _exists(state: NodeState, item: dict[str, Any]) -> bool:
    kind, key = item["type"], item["id"]
    if kind == "repository":
        return key in state.repositories
    if kind == "workspace":
        repo, _, name = key.partition("/")
        return repo in state.repositories and name in state.repositories[repo].items
    if kind == "schedule":
        return tuple(key.split("/", 1)) in state.schedules
    store = {"topic": state.topics, "deploymentParameter": state.deployment_parameters,
             "connection": state.connections}.get(kind)
    return store is not None and key in store


def preview(state: NodeState, document: dict[str, Any]) -> list[dict[str, Any]]:
    """The import preview (fmeflow-cli projects_upload_test.go's item keys). `previewAction`:
    "overwritten" for an item the node has, "new" otherwise (the second value is UNCONFIRMED)."""
    rows = []
    for item in document.get("items", []):
        existing = _exists(state, item)
        rows.append({"id": item["id"], "jobId": 0, "name": item["id"].rsplit("/", 1)[-1],
                     "type": item["type"], "ownerId": None, "ownerName": state.username,
                     "ownerStatus": "id_match", "originalOwner": state.username,
                     "selected": True, "existing": existing,
                     "previewAction": "overwritten" if existing else "new",
                     "action": "unknown", "source": "project"})
    return rows


def apply(state: NodeState, package: Path, document: dict[str, Any],
          selected: set[tuple[str, str]]) -> list[dict[str, str]]:
    """Import the package's items (selectable ones only when selected); returns them."""
    imported = []
    with zipfile.ZipFile(package) as zipped:
        for item in document.get("items", []):
            kind, key = item["type"], item["id"]
            if kind in SELECTABLE and (kind, key) not in selected:
                continue
            _apply_item(state, zipped, item)
            imported.append({"type": kind, "id": key})
    return imported


def _apply_item(state: NodeState, zipped: zipfile.ZipFile, item: dict[str, Any]) -> None:
    kind, key = item["type"], item["id"]
    definition = item.get("definition") or {}
    with state.lock:
        if kind == "repository":
            state.repositories.setdefault(key, Repository(key, definition.get("description", "")))
        elif kind == "workspace":
            repo_name, _, name = key.partition("/")
            repo = state.repositories.setdefault(repo_name, Repository(repo_name))
            with zipped.open(item["file"]) as source:
                stored = state.store_stream(iter(lambda: source.read(CHUNK), b""))
            old = repo.items.get(name)
            repo.items[name] = RepositoryItem(name, item_type(name), stored,
                                              sorted(definition.get("services", [])), time.time())
            if old:
                state.drop_blob(old.file)
        elif kind == "schedule":
            category, _, name = key.partition("/")
            state.schedules[(category, name)] = {**definition, "category": category, "name": name}
        elif kind == "topic":
            state.topics[key] = {"name": key, "description": definition.get("description", "")}
        elif kind == "deploymentParameter":
            state.deployment_parameters[key] = {**definition, "name": key}
        elif kind == "connection":
            state.connections[key] = {**definition, "name": key}


def write_package(state: NodeState, project: dict[str, Any], dest: Path) -> None:
    """A package of the project's items as the node holds them now (no credentials: exports
    never include sensitive information here)."""
    items = []
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zipped:
        for ref in project.get("items", []):
            item = {"type": ref["type"], "id": ref["id"]}
            for extra in _describe(state, ref, zipped):
                item.update(extra)
            items.append(item)
        zipped.writestr(MANIFEST, json.dumps({
            "name": project["name"], "description": project.get("description", ""),
            "version": project.get("version", "1.0.0"), "items": items}, indent=1))


def _describe(state: NodeState, ref: dict[str, str], zipped: zipfile.ZipFile
              ) -> Iterator[dict[str, Any]]:
    kind, key = ref["type"], ref["id"]
    if kind == "repository" and key in state.repositories:
        yield {"definition": {"description": state.repositories[key].description}}
    elif kind == "workspace":
        repo, _, name = key.partition("/")
        found = state.repositories.get(repo)
        item = found.items.get(name) if found else None
        if item is not None:
            arcname = f"items/{repo}/{name}"
            zipped.write(state.blob_path(item.file), arcname)
            yield {"file": arcname, "definition": {"services": list(item.services)}}
    elif kind == "schedule":
        definition = state.schedules.get(tuple(key.split("/", 1)))  # type: ignore[arg-type]
        if definition is not None:
            yield {"definition": dict(definition)}
    elif kind == "topic" and key in state.topics:
        yield {"definition": dict(state.topics[key])}
    elif kind == "deploymentParameter" and key in state.deployment_parameters:
        yield {"definition": dict(state.deployment_parameters[key])}
    elif kind == "connection" and key in state.connections:
        public = {k: v for k, v in state.connections[key].items()
                  if k not in ("username", "password")}
        public["parameters"] = {k: v for k, v in (public.get("parameters") or {}).items()
                                if not SENSITIVE.search(k)}
        yield {"definition": public}
