"""REST V4 routes for deployment parameters (fmeflow-cli deploymentparameters*.go; shapes
deploymentparameters_test.go and deploymentparameters_update_test.go): named values workspaces
read — `text`, or a `dropdown` of database or web connections."""

from __future__ import annotations

import time
from typing import Any

from fmeaa.emulator.routes.connections import NOT_FOUND
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
from fmeaa.emulator.versions import V4_CONNECTIONS

BASE = f"{V4}/deploymentparameters"
CHOICE_SETS = ("dbConnections", "webConnections")


def _view(h: FmeRequestHandler, stored: dict[str, Any]) -> dict[str, Any]:
    view = {"name": stored["name"], "value": stored.get("value", ""),
            "type": stored.get("type", "text"), "owner": _state(h).username,
            "resourceMissing": False, "updated": _iso(stored.get("updated", time.time()))}
    choices = stored.get("choiceSettings")
    if choices:
        view["choiceSettings"] = choices
        # UNCONFIRMED semantics: a dropdown whose value names no connection misses its resource.
        view["resourceMissing"] = stored.get("value", "") not in _state(h).connections
    return view


def _validated(body: dict[str, Any]) -> dict[str, Any]:
    kind = body.get("type", "text")
    choices = body.get("choiceSettings")
    if kind not in ("text", "dropdown"):
        raise ApiError(400, "type must be text or dropdown")
    if kind == "dropdown" and (not isinstance(choices, dict)
                               or choices.get("choiceSet") not in CHOICE_SETS):
        raise ApiError(400, f"a dropdown needs choiceSettings.choiceSet in {CHOICE_SETS}")
    if kind == "text":
        body.pop("choiceSettings", None)
    return {**body, "type": kind, "updated": time.time()}


def _existing(h: FmeRequestHandler, name: str) -> dict[str, Any]:
    found = _state(h).deployment_parameters.get(name)
    if found is None:
        raise ApiError(404, NOT_FOUND)
    return found


@route("GET", BASE, since=V4_CONNECTIONS)
def list_parameters(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        stored = [v for _, v in sorted(_state(h).deployment_parameters.items())]
        return _page(stored, h.query, lambda p: _view(h, p), default_limit=100)


@route("GET", f"{BASE}/{{name}}", since=V4_CONNECTIONS)
def get_parameter(h: FmeRequestHandler, name: str) -> Any:
    return _view(h, _existing(h, name))


@route("POST", BASE, since=V4_CONNECTIONS)
def create_parameter(h: FmeRequestHandler) -> Any:
    body = h.json_body()
    name = str(body.get("name", ""))
    if not name:
        raise ApiError(400, "name is required")
    with _state(h).lock:
        if name in _state(h).deployment_parameters:
            raise ApiError(409, f'A deployment parameter with name "{name}" already exists.')
        _state(h).deployment_parameters[name] = _validated(body)
    _changed(h)
    return Response(201)


@route("PUT", f"{BASE}/{{name}}", since=V4_CONNECTIONS)
def replace_parameter(h: FmeRequestHandler, name: str) -> Any:
    """{type?, value, choiceSettings?} (deploymentparameters_update.go): the type may change."""
    stored = _existing(h, name)
    update = h.json_body()
    merged = {**stored, **update, "name": name}
    if update.get("type") == "text":
        merged.pop("choiceSettings", None)
    with _state(h).lock:
        _state(h).deployment_parameters[name] = _validated(merged)
    _changed(h)
    return Response(204)


@route("DELETE", f"{BASE}/{{name}}", since=V4_CONNECTIONS)
def delete_parameter(h: FmeRequestHandler, name: str) -> Any:
    _existing(h, name)
    with _state(h).lock:
        del _state(h).deployment_parameters[name]
    _changed(h)
    return Response(204)
