"""Routes for v4 connections (named credentials for databases and web services). Kept apart
because their bodies hold secrets: the emulator never logs them and never returns credential
parameters (the REST client's connection calls).
"""

from __future__ import annotations

import re
from typing import Any

from fmeaa.emulator.server import V4, ApiError, FmeRequestHandler, Response, _changed, _page, _state, route
from fmeaa.emulator.versions import V4_CONNECTIONS

# --- connections (v4; bodies hold credentials — the emulator never logs them) ------------------
# Shapes: fmeflow-cli connections_test.go — a connection is `name, category, type, owner,
# shareable` plus `parameters` (absent when it has none). `username`, `password` and
# `authenticationMethod` are write-only: sent on create/update (connections_create.go,
# connections_update.go), never returned.
NOT_FOUND = ("Unauthorized request by user admin due to lack of proper permissions or the object "
             "does not exist.")  # connections_delete_test.go


def _connection(h: FmeRequestHandler, name: str) -> dict[str, Any]:
    found = _state(h).connections.get(name)
    if found is None:
        raise ApiError(404, NOT_FOUND)
    return found


def _valid_connection(body: dict[str, Any]) -> dict[str, Any]:
    if not body.get("name") or not body.get("category"):
        raise ApiError(400, "Parameter Validation Failed")  # connections_create_test.go
    return body


# Credential parameters are never returned (the samples carry USER_NAME and an empty
# CLIENT_PRIV_KEY but no PASSWORD); which names count is UNCONFIRMED.
_HIDDEN_PARAMETER = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)


def _connection_view(h: FmeRequestHandler, body: dict[str, Any]) -> dict[str, Any]:
    view = {"name": body["name"], "category": body["category"], "type": body.get("type", ""),
            "owner": _state(h).username, "shareable": True}
    parameters = {k: v for k, v in (body.get("parameters") or {}).items()
                  if not _HIDDEN_PARAMETER.search(k)}
    if parameters:
        view["parameters"] = parameters
    return view


@route("GET", f"{V4}/connections", since=V4_CONNECTIONS)
def list_connections(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        return _page([v for _, v in sorted(_state(h).connections.items())], h.query,
                     lambda body: _connection_view(h, body), default_limit=100)


@route("POST", f"{V4}/connections", since=V4_CONNECTIONS)
def create_connection(h: FmeRequestHandler) -> Any:
    body = _valid_connection(h.json_body())
    with _state(h).lock:
        if body["name"] in _state(h).connections:
            raise ApiError(409, f"A connection with name \"{body['name']}\" already exists.")
        _state(h).connections[body["name"]] = body
    _changed(h)
    return Response(201)


@route("GET", f"{V4}/connections/{{name}}", since=V4_CONNECTIONS)
def get_connection(h: FmeRequestHandler, name: str) -> Any:
    return _connection_view(h, _connection(h, name))


@route("PUT", f"{V4}/connections/{{name}}", since=V4_CONNECTIONS)
def replace_connection(h: FmeRequestHandler, name: str) -> Any:
    """An update carries no `type` (connections_update.go): the stored type stays."""
    stored = _connection(h, name)
    update = h.json_body()
    body = _valid_connection({**stored, **update, "name": name, "type": stored.get("type", "")})
    with _state(h).lock:
        _state(h).connections[name] = body
    _changed(h)
    return Response(204)


@route("DELETE", f"{V4}/connections/{{name}}", since=V4_CONNECTIONS)
def delete_connection(h: FmeRequestHandler, name: str) -> Any:
    _connection(h, name)
    with _state(h).lock:
        del _state(h).connections[name]
    _changed(h)
    return Response(204)
