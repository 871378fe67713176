"""REST V4 (`/fmeapiv4`, FME Flow 2023+; the only API from 2026.1): how each operation's request
is built and its answer read, returned in the client's neutral shapes (V3's key names, upper-case
enums), so callers never see which API answered. Paths come from `api_table`, where every
UNCONFIRMED row is marked; the shape guesses they imply are marked here."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from fmeaa.client.api_table import Endpoint
from fmeaa.client.dialect import Dialect
from fmeaa.client.errors import NotFoundError
from fmeaa.client.multipart import Multipart
from fmeaa.client.transport import CHUNK, clean_path, quote

TOKEN_SECONDS = 3600
# V3 service names ↔ keys of a V4 workspace's `services` object (fmeflow-cli
# workspaces_test.go: jobSubmitter, dataDownload, dataStreaming, kmlNetworkLink).
# `notification` for fmenotification is UNCONFIRMED (the sample's workspace has none).
SERVICE_KEYS = {"fmejobsubmitter": "jobSubmitter", "fmedatadownload": "dataDownload",
                "fmedatastreaming": "dataStreaming", "fmekmllink": "kmlNetworkLink",
                "fmenotification": "notification"}
SERVICE_NAMES = {v: k for k, v in SERVICE_KEYS.items()}
# V4 item types → V3's (only "workspace" is seen, in workspaces_test.go; the rest UNCONFIRMED).
ITEM_TYPES = {"workspace": "WORKSPACE", "customtransformer": "CUSTOMTRANSFORMER",
              "customformat": "CUSTOMFORMAT", "template": "TEMPLATE"}
V3_ITEM_TYPES = {v: k for k, v in ITEM_TYPES.items()}


def service_names_v4(services: dict[str, Any]) -> list[str]:
    """Registered services of a V4 `services` object, as V3 names."""
    return sorted(SERVICE_NAMES.get(key, key) for key, value in (services or {}).items()
                  if isinstance(value, dict) and value.get("registered"))


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    kind = str(raw.get("type", ""))
    return {**raw, "type": ITEM_TYPES.get(kind.lower(), kind.upper())}


class V4(Dialect):

    # --- auth -----------------------------------------------------------------------------------
    def token_body(self, name: str, username: str | None) -> dict[str, Any]:
        return {"name": name, "description": "fmeaa sync", "enabled": True,
                "customPermissions": False, "secondsToExpiry": TOKEN_SECONDS}  # login.go

    # --- repositories and items -------------------------------------------------------------------
    def repositories_create(self, ep: Endpoint, repository: str, description: str) -> None:
        self.http.request("POST", ep.path, json={"name": repository, "description": description})

    def items_list(self, ep: Endpoint, repository: str, item_type: str | None, expect: int = 0,
                   fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        params = {"type": V3_ITEM_TYPES.get(item_type.upper(), item_type)} if item_type else None
        found = self.http.paged(ep.url(repository=quote(repository)), params, expect,
                                fields and (*fields, "type"))
        return [_item(i) for i in found]

    def items_get(self, ep: Endpoint, repository: str, item: str) -> dict[str, Any]:
        detail = self.http.json("GET", ep.url(repository=quote(repository), item=quote(item)))
        return {**_item(detail), "services": service_names_v4(detail.get("services") or {})}

    def _upload(self, ep: Endpoint, repository: str, item: str, file: Path, overwrite: bool
                ) -> dict[str, Any]:
        answer = self.http.json("POST", ep.url(repository=quote(repository)),
                                params={"overwrite": "true"} if overwrite else None,
                                multipart=Multipart("file", item, file))
        return _item(answer) if isinstance(answer, dict) else {}

    def items_create(self, ep: Endpoint, repository: str, item: str, file: Path
                     ) -> dict[str, Any]:
        return self._upload(ep, repository, item, file, overwrite=False)

    def items_replace(self, ep: Endpoint, repository: str, item: str, file: Path
                      ) -> dict[str, Any]:
        return self._upload(ep, repository, item, file, overwrite=True)

    def items_download(self, ep: Endpoint, repository: str, item: str, dest: Path | None) -> str:
        return self.http.download(ep.url(repository=quote(repository), item=quote(item)), dest)

    def items_delete(self, ep: Endpoint, repository: str, item: str) -> None:
        self.http.request("DELETE", ep.url(repository=quote(repository), item=quote(item)))

    def services_get(self, ep: Endpoint, repository: str, item: str) -> list[str]:
        detail = self.http.json("GET", ep.url(repository=quote(repository), item=quote(item)))
        return service_names_v4(detail.get("services") or {})

    def services_set(self, ep: Endpoint, repository: str, item: str, services: list[str]
                     ) -> list[str]:
        body = {SERVICE_KEYS.get(s, s): {"registered": s in services}
                for s in sorted(set(SERVICE_KEYS) | set(services))}  # unknown names: the node says
        self.http.request("PUT", ep.url(repository=quote(repository), item=quote(item)),
                          json=body)
        return sorted(services)

    # --- schedules and notifications: V3's bodies (UNCONFIRMED in V4) ----------------------------
    # --- resources: by connection and ?path= (eea/Products.Reportek, third-party) ------------------
    def resources_connections(self, ep: Endpoint) -> list[str]:
        return sorted(c["name"] for c in self.http.paged(ep.path))

    def resources_list(self, ep: Endpoint, connection: str, path: str) -> list[dict[str, Any]]:
        """Every file below `path`. An entry's `type` is "file" or a folder (its spelling, and
        `size`/`lastModified`, are UNCONFIRMED)."""
        def folder(at: str) -> tuple[list[dict[str, Any]], list[str]]:
            here = clean_path(at)
            listing = self.http.json("GET", ep.url(connection=quote(connection)),
                                     params={"path": here})
            files, folders = [], []
            for entry in listing.get("contents", []):
                child = str(PurePosixPath(here) / entry["name"])
                if str(entry.get("type", "")).lower() == "file":
                    files.append({"path": child, "size": entry.get("size", 0),
                                  "date": entry.get("lastModified") or entry.get("date")})
                else:
                    folders.append(child)
            return files, folders
        return self.http.walk(path, folder)

    def resources_download(self, ep: Endpoint, connection: str, path: str, dest: Path | None
                           ) -> str:
        """One file, through the zip download (the only V4 download a public caller uses)."""
        folder, _, name = clean_path(path).rpartition("/")
        with tempfile.TemporaryDirectory(prefix="fmeaa-zip-") as tmp:
            archive = Path(tmp) / "download.zip"
            self.http.download(ep.url(connection=quote(connection)), archive, method="POST",
                               json={"path": folder or "/", "items": [name],
                                     "zipFileName": "download.zip"}, accept="application/zip")
            try:
                return _extract_one(archive, name, dest)
            except (KeyError, zipfile.BadZipFile) as exc:
                raise NotFoundError(self.http.node, "POST", ep.path, None,
                                    f"{path}: not in the zip the node sent ({exc})") from None

    def resources_upload(self, ep: Endpoint, connection: str, directory: str, file: Path,
                         name: str, overwrite: bool = True) -> None:
        self.http.request("POST", ep.url(connection=quote(connection)),
                          params={"path": clean_path(directory),
                                  "overwrite": str(overwrite).lower()},
                          multipart=Multipart("files", name, file))

    def resources_delete(self, ep: Endpoint, connection: str, path: str) -> None:
        self.http.request("DELETE", ep.url(connection=quote(connection)),
                          params={"path": clean_path(path)})

    # --- connections and deployment parameters ----------------------------------------------------
    def connections_list(self, ep: Endpoint) -> list[dict[str, Any]]:
        return self.http.paged(ep.path)

    def connections_get(self, ep: Endpoint, name: str) -> dict[str, Any]:
        return self.http.json("GET", ep.url(name=quote(name)))

    def connections_create(self, ep: Endpoint, body: dict[str, Any]) -> None:
        self.http.request("POST", ep.path, json=body)

    def connections_replace(self, ep: Endpoint, name: str, body: dict[str, Any]) -> None:
        # connections_update.go sends no name and no type: a type cannot change by update.
        update = {k: v for k, v in body.items() if k not in ("name", "type")}
        self.http.request("PUT", ep.url(name=quote(name)), json=update)

    def connections_delete(self, ep: Endpoint, name: str) -> None:
        self.http.request("DELETE", ep.url(name=quote(name)))

    def deploymentparameters_list(self, ep: Endpoint) -> list[dict[str, Any]]:
        return self.http.paged(ep.path)

    def deploymentparameters_create(self, ep: Endpoint, body: dict[str, Any]) -> None:
        self.http.request("POST", ep.path, json=body)

    def deploymentparameters_replace(self, ep: Endpoint, name: str, body: dict[str, Any]
                                     ) -> None:
        update = {k: v for k, v in body.items() if k != "name"}  # deploymentparameters_update.go
        self.http.request("PUT", ep.url(name=quote(name)), json=update)

    def deploymentparameters_delete(self, ep: Endpoint, name: str) -> None:
        self.http.request("DELETE", ep.url(name=quote(name)))

    # --- projects: list, export, delete, and the import (fmeflow-cli projects_upload.go) ----------
    def projects_list(self, ep: Endpoint) -> list[dict[str, Any]]:
        return self.http.paged(ep.path)

    def projects_delete(self, ep: Endpoint, project_id: str) -> None:
        self.http.request("DELETE", ep.url(id=quote(project_id)))

    def projects_export(self, ep: Endpoint, project_id: str, dest: Path) -> str:
        body = {"exportPackageName": dest.name, "includeSensitiveInfo": False,
                "excludeAllSelectableItems": False, "selectedItems": []}  # projects_download.go
        return self.http.download(ep.url(id=quote(project_id)), dest, method="POST", json=body)

    def projects_import_upload(self, ep: Endpoint, package: Path) -> str:
        """Upload a package (multipart part `file`) → 201; the task id is the last segment of
        the Location header."""
        response = self.http.request("POST", ep.path, multipart=Multipart("file", package.name,
                                                                          package), ok=(201,))
        return response.headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]

    def projects_task(self, ep: Endpoint, task_id: str) -> dict[str, Any]:
        return self.http.json("GET", ep.url(id=quote(task_id)))

    def projects_import_items(self, ep: Endpoint, task_id: str, selectable: bool
                              ) -> list[dict[str, Any]]:
        params = {"selectable": "true"} if selectable else None
        return self.http.paged(ep.url(id=quote(task_id)), params)

    def projects_import_run(self, ep: Endpoint, task_id: str, selected: list[dict[str, str]]
                            ) -> None:
        body = {"overwrite": True, "pauseNotifications": True, "disableItems": False,
                "selectedItems": selected}
        self.http.request("POST", ep.url(id=quote(task_id)), json=body, ok=(202,))

    def projects_import_get(self, ep: Endpoint, task_id: str) -> dict[str, Any]:
        return self.http.json("GET", ep.url(id=quote(task_id)))

    def projects_import_delete(self, ep: Endpoint, task_id: str) -> None:
        self.http.request("DELETE", ep.url(id=quote(task_id)))

    # --- jobs and licensing: answers in V3's terms --------------------------------------------------
    def jobs_running(self, ep: Endpoint) -> list[dict[str, Any]]:
        return self.http.paged(ep.path, {"status": "running"})

    def jobs_submit(self, ep: Endpoint, repository: str, workspace: str,
                    parameters: dict[str, str]) -> int:
        body = {"repository": repository, "workspace": workspace,
                "publishedParameters": dict(parameters)}  # run.go JobRequestV4
        return int(self.http.json("POST", ep.path, json=body)["id"])  # 202 {id}

    def jobs_get(self, ep: Endpoint, job_id: int) -> dict[str, Any]:
        raw = self.http.json("GET", ep.url(id=str(job_id)))  # jobs_v4_test.go responseV4SingleJob
        # lower-case statuses (queued, running, success, failure, cancelled) → V3's upper case
        return {"id": raw.get("id", job_id), "status": str(raw.get("status", "")).upper(),
                "statusMessage": raw.get("statusMessage", "")}

    def license_status(self, ep: Endpoint) -> dict[str, Any]:
        raw = self.http.json("GET", ep.path)  # licenseStatus_test.go: V4 keys → V3 keys
        return {"isLicensed": raw.get("licensed"), "isLicenseExpired": raw.get("expired"),
                "expiryDate": raw.get("expiration"), "serialNumber": raw.get("serialNumber"),
                "maximumEngines": raw.get("maximumEngines"),
                "maximumAuthors": raw.get("maximumAuthors")}

    def license_request(self, ep: Endpoint, serial_number: str, contact: dict[str, str]) -> None:
        body = {"serialNumber": serial_number, "subscribeToUpdates": False, **contact}
        self.http.request("POST", ep.path, json=body)  # request.go

    def license_request_status(self, ep: Endpoint) -> dict[str, Any]:
        raw = self.http.json("GET", ep.path)  # lower-case statuses (requestStatus_test.go)
        return {**raw, "status": str(raw.get("status", "")).upper()}

    def license_refresh(self, ep: Endpoint) -> None:
        self.http.request("POST", ep.path)


def _extract_one(archive: Path, name: str, dest: Path | None) -> str:
    """Stream the member `name` of a zip to `dest` (None: only digest it); its sha256."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(archive) as zipped:
        member = next((m for m in zipped.namelist() if PurePosixPath(m).name == name), None)
        if member is None:
            raise KeyError(name)
        partial = dest.with_name(f".{dest.name}.partial") if dest else None
        with zipped.open(member) as source, \
                (partial.open("wb") if partial else contextlib.nullcontext()) as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
        if partial is not None and dest is not None:
            partial.replace(dest)
    return digest.hexdigest()
