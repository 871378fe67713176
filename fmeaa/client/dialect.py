"""What REST V3 and V4 do the same way, once: the base of both API dialects. Health, reading and
deleting repositories, and schedules and notifications (JSON definitions created, replaced and
deleted) are the same calls at the path the api_table row gives (the rows differ per API)."""

from __future__ import annotations

from typing import Any

from fmeaa.client.api_table import Endpoint
from fmeaa.client.transport import Transport, quote


class Dialect:
    def __init__(self, http: Transport) -> None:
        self.http = http

    def health(self, ep: Endpoint) -> dict[str, Any]:
        return self.http.json("GET", ep.path)

    def repositories_list(self, ep: Endpoint) -> list[dict[str, Any]]:
        return self.http.paged(ep.path)

    def repositories_get(self, ep: Endpoint, repository: str) -> dict[str, Any]:
        return self.http.json("GET", ep.url(repository=quote(repository)))

    def repositories_delete(self, ep: Endpoint, repository: str) -> None:
        self.http.request("DELETE", ep.url(repository=quote(repository)))

    def schedules_list(self, ep: Endpoint) -> list[dict[str, Any]]:
        return self.http.paged(ep.path)

    def schedules_create(self, ep: Endpoint, body: dict[str, Any]) -> None:
        self.http.request("POST", ep.path, json=body)

    def schedules_replace(self, ep: Endpoint, category: str, name: str, body: dict[str, Any]
                          ) -> None:
        self.http.request("PUT", ep.url(category=quote(category), name=quote(name)), json=body)

    def schedules_delete(self, ep: Endpoint, category: str, name: str) -> None:
        self.http.request("DELETE", ep.url(category=quote(category), name=quote(name)))

    def notifications_list(self, ep: Endpoint, kind: str) -> list[dict[str, Any]]:
        return self.http.paged(ep.url(kind=kind))

    def notifications_create(self, ep: Endpoint, kind: str, body: dict[str, Any]) -> None:
        self.http.request("POST", ep.url(kind=kind), json=body)

    def notifications_replace(self, ep: Endpoint, kind: str, name: str, body: dict[str, Any]
                              ) -> None:
        self.http.request("PUT", ep.url(kind=kind, name=quote(name)), json=body)

    def notifications_delete(self, ep: Endpoint, kind: str, name: str) -> None:
        self.http.request("DELETE", ep.url(kind=kind, name=quote(name)))
