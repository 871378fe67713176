"""REST V3 (`/fmerest/v3`, FME Server 2021 … FME Flow 2025): how each operation's request is
built and its answer read. Paths come from `api_table`; each method takes the chosen Endpoint.
Answers are returned in the client's neutral shapes (see `FmeClient`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmeaa.client.api_table import Endpoint
from fmeaa.client.dialect import Dialect
from fmeaa.client.transport import content_disposition, quote, quote_path

TOKEN_SECONDS = 3600


def service_names(raw: list[Any]) -> list[str]:
    """Sorted service names, whether a server lists them as names or as {name, …} objects."""
    return sorted(s["name"] if isinstance(s, dict) else str(s) for s in raw)


def _fs(ep: Endpoint, connection: str, path: str = "") -> str:
    tail = quote_path(path)
    return ep.url(connection=quote(connection), path=f"/{tail}" if tail else "")


class V3(Dialect):

    # --- auth -----------------------------------------------------------------------------------
    def token_body(self, name: str, username: str | None) -> dict[str, Any]:
        return {"name": name, "description": "fmeaa sync", "restricted": False, "enabled": True,
                "expirationTimeout": TOKEN_SECONDS, "user": username}

    # --- repositories and items -------------------------------------------------------------------
    def repositories_create(self, ep: Endpoint, repository: str, description: str) -> None:
        # a form body (fmeflow-cli repositories_create.go)
        self.http.request("POST", ep.path, data={"name": repository, "description": description})

    def items_list(self, ep: Endpoint, repository: str, item_type: str | None, expect: int = 0,
                   fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        params = {"type": item_type} if item_type else None
        return self.http.paged(ep.url(repository=quote(repository)), params, expect, fields)

    def items_get(self, ep: Endpoint, repository: str, item: str) -> dict[str, Any]:
        detail = self.http.json("GET", ep.url(repository=quote(repository), item=quote(item)))
        return {**detail, "services": service_names(detail.get("services") or [])}

    def _upload(self, ep: Endpoint, method: str, repository: str, name: str, file: Path
                ) -> dict[str, Any]:
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Disposition": content_disposition(name)}
        path = ep.url(repository=quote(repository), item=quote(name))
        answer = self.http.json(method, path, file=file, headers=headers)
        return answer if isinstance(answer, dict) else {}

    def items_create(self, ep: Endpoint, repository: str, item: str, file: Path
                     ) -> dict[str, Any]:
        return self._upload(ep, "POST", repository, item, file)

    def items_replace(self, ep: Endpoint, repository: str, item: str, file: Path
                      ) -> dict[str, Any]:
        return self._upload(ep, "PUT", repository, item, file)

    def items_download(self, ep: Endpoint, repository: str, item: str, dest: Path | None) -> str:
        return self.http.download(ep.url(repository=quote(repository), item=quote(item)), dest)

    def items_delete(self, ep: Endpoint, repository: str, item: str) -> None:
        self.http.request("DELETE", ep.url(repository=quote(repository), item=quote(item)))

    def services_get(self, ep: Endpoint, repository: str, item: str) -> list[str]:
        raw = self.http.json("GET", ep.url(repository=quote(repository), item=quote(item)))
        return service_names(raw)

    def services_set(self, ep: Endpoint, repository: str, item: str, services: list[str]
                     ) -> list[str]:
        result = self.http.json("PUT", ep.url(repository=quote(repository), item=quote(item)),
                                data={"services": sorted(services)})
        return service_names(result) if isinstance(result, list) else sorted(services)

    # --- schedules and notifications (whole JSON bodies) ------------------------------------------
    # --- resources ------------------------------------------------------------------------------
    def resources_connections(self, ep: Endpoint) -> list[str]:
        return sorted(c["name"] for c in self.http.json("GET", ep.path))

    def resources_list(self, ep: Endpoint, connection: str, path: str) -> list[dict[str, Any]]:
        """Every file below `path` as {path, size, date}, one listing per directory."""
        def folder(at: str) -> tuple[list[dict[str, Any]], list[str]]:
            listing = self.http.json("GET", _fs(ep, connection, at), params={"depth": 1})
            contents = listing.get("contents", [])
            return ([{"path": e["path"], "size": e.get("size", 0), "date": e.get("date")}
                     for e in contents if e["type"] != "DIR"],
                    [e["path"] for e in contents if e["type"] == "DIR"])
        return self.http.walk(path, folder)

    def resources_download(self, ep: Endpoint, connection: str, path: str, dest: Path | None
                           ) -> str:
        return self.http.download(_fs(ep, connection, path), dest)

    def resources_upload(self, ep: Endpoint, connection: str, directory: str, file: Path,
                         name: str, overwrite: bool = True) -> None:
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Disposition": content_disposition(name)}
        self.http.request("POST", _fs(ep, connection, directory), file=file, headers=headers,
                          params={"overwrite": str(overwrite).lower(),
                                  "createDirectories": "true"})

    def resources_delete(self, ep: Endpoint, connection: str, path: str) -> None:
        self.http.request("DELETE", _fs(ep, connection, path))

    # --- jobs and licensing -----------------------------------------------------------------------
    def jobs_running(self, ep: Endpoint) -> list[dict[str, Any]]:
        return self.http.paged(ep.path)

    def jobs_submit(self, ep: Endpoint, repository: str, workspace: str,
                    parameters: dict[str, str]) -> int:
        body = {"publishedParameters": [{"name": k, "value": v} for k, v in parameters.items()]}
        url = ep.url(repository=quote(repository), workspace=quote(workspace))
        return int(self.http.json("POST", url, json=body)["id"])  # run.go: 202 {id}

    def jobs_get(self, ep: Endpoint, job_id: int) -> dict[str, Any]:
        raw = self.http.json("GET", ep.url(id=str(job_id)))  # jobs_v3_test.go responseV3SingleJob
        result = raw.get("result") or {}
        return {"id": raw.get("id", job_id), "status": str(raw.get("status", "")).upper(),
                "statusMessage": result.get("statusMessage", "")}

    def license_status(self, ep: Endpoint) -> dict[str, Any]:
        return self.http.json("GET", ep.path)

    def license_request(self, ep: Endpoint, serial_number: str, contact: dict[str, str]) -> None:
        self.http.request("POST", ep.path, data={"serialNumber": serial_number, **contact})

    def license_request_status(self, ep: Endpoint) -> dict[str, Any]:
        return self.http.json("GET", ep.path)

    def license_refresh(self, ep: Endpoint) -> None:
        self.http.request("POST", ep.path)
