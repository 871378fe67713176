"""Routes for v4 connections (named credentials for databases and web services). Kept apart
because their bodies hold secrets: the emulator never logs them and never returns credential
parameters (the REST client's FmeClientV4 connection calls).
"""

from __future__ import annotations

import re
from typing import Any

from fmeaa.emulator.server import V4, ApiError, FmeRequestHandler, Response, _changed, _page, _state, route


# --- connections (v4; bodies hold credentials — the emulator never logs them) ------------------
def _connection(h: FmeRequestHandler, name: str) -> dict[str, Any]:
    found = _state(h).connections.get(name)
    if found is None:
        raise ApiError(404, f"Connection '{name}' does not exist")
    return found


def _valid_connection(body: dict[str, Any]) -> dict[str, Any]:
    if not body.get("name") or not body.get("category"):
        raise ApiError(422, "connection needs 'name' and 'category'")  # UNCONFIRMED field set
    return body


# Credential parameters are never returned (fmeflow-cli's connection samples carry USER_NAME
# but no PASSWORD); which names count is UNCONFIRMED.
_HIDDEN_PARAMETER = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)


def _connection_view(body: dict[str, Any]) -> dict[str, Any]:
    parameters = {k: v for k, v in (body.get("parameters") or {}).items()
                  if not _HIDDEN_PARAMETER.search(k)}
    return {**body, "owner": "admin", "shareable": True, "parameters": parameters}


@route("GET", f"{V4}/connections")
def list_connections(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        return _page([v for _, v in sorted(_state(h).connections.items())], h.query,
                     _connection_view)


@route("POST", f"{V4}/connections")
def create_connection(h: FmeRequestHandler) -> Any:
    body = _valid_connection(h.json_body())
    with _state(h).lock:
        if body["name"] in _state(h).connections:
            raise ApiError(409, f"Connection '{body['name']}' already exists")
        _state(h).connections[body["name"]] = body
    _changed(h)
    return Response(201)


@route("GET", f"{V4}/connections/{{name}}")
def get_connection(h: FmeRequestHandler, name: str) -> Any:
    return _connection_view(_connection(h, name))


@route("PUT", f"{V4}/connections/{{name}}")
def replace_connection(h: FmeRequestHandler, name: str) -> Any:
    _connection(h, name)
    body = _valid_connection({**h.json_body(), "name": name})
    with _state(h).lock:
        _state(h).connections[name] = body
    _changed(h)
    return Response(204)


@route("DELETE", f"{V4}/connections/{{name}}")
def delete_connection(h: FmeRequestHandler, name: str) -> Any:
    _connection(h, name)
    with _state(h).lock:
        del _state(h).connections[name]
    _changed(h)
    return Response(204)
