"""Routes for what makes a node act on its own: schedules, and notifications (topics,
subscriptions, publications). The REST client sends and reads these as whole JSON bodies (its
schedules and notifications calls), so the emulator stores them as given after light validation.
"""

from __future__ import annotations

from typing import Any

from fmeaa.emulator.server import (
    V3,
    V4,
    ApiError,
    FmeRequestHandler,
    Response,
    _changed,
    _page_for,
    _state,
    route,
)
from fmeaa.emulator.server import route as _route

# --- schedules -----------------------------------------------------------------------------------
SCHEDULE_REQUIRED = ("name", "category", "repository", "workspace")


def _validate_schedule(body: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in SCHEDULE_REQUIRED if not body.get(k)]
    if missing:
        raise ApiError(422, f"missing schedule field(s): {', '.join(missing)}")
    if body.get("recurrence", "cron") == "cron" and len(str(body.get("cron", "")).split()) not in (6, 7):
        # FME uses Quartz cron: seconds minutes hours day-of-month month day-of-week [year].
        raise ApiError(422, "cron must be a Quartz expression with 6 or 7 fields")
    return {"enabled": True, "description": "", "request": {}, **body}


# V4 schedules and notifications: no public caller; the V4 paths (V3's, without the grouping
# segment, as every known V4 family) and bodies (V3's) are UNCONFIRMED — the same rows as
# fmeaa/client/api_table.py. Served only by versions without V3 (versions.FmeVersion.serves).
@route("GET", f"{V3}/schedules")
@route("GET", f"{V4}/schedules", unconfirmed=True)
def list_schedules(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        items = [s for _, s in sorted(_state(h).schedules.items())]
    return _page_for(h, items)


@route("POST", f"{V3}/schedules")
@route("POST", f"{V4}/schedules", unconfirmed=True)
def create_schedule(h: FmeRequestHandler) -> Any:
    body = _validate_schedule(h.json_body())
    key = (body["category"], body["name"])
    with _state(h).lock:
        if key in _state(h).schedules:
            raise ApiError(409, f"Schedule '{key[0]}/{key[1]}' already exists")
        _state(h).schedules[key] = body
    _changed(h)
    return Response(201, body)


def _schedule(h: FmeRequestHandler, category: str, name: str) -> dict[str, Any]:
    found = _state(h).schedules.get((category, name))
    if found is None:
        raise ApiError(404, f"Schedule '{category}/{name}' does not exist")
    return found


@route("GET", f"{V3}/schedules/{{category}}/{{name}}")
@route("GET", f"{V4}/schedules/{{category}}/{{name}}", unconfirmed=True)
def get_schedule(h: FmeRequestHandler, category: str, name: str) -> Any:
    return _schedule(h, category, name)


@route("PUT", f"{V3}/schedules/{{category}}/{{name}}")
@route("PUT", f"{V4}/schedules/{{category}}/{{name}}", unconfirmed=True)
def replace_schedule(h: FmeRequestHandler, category: str, name: str) -> Any:
    _schedule(h, category, name)
    body = _validate_schedule({**h.json_body(), "category": category, "name": name})
    with _state(h).lock:
        _state(h).schedules[(category, name)] = body
    _changed(h)
    return body


@route("DELETE", f"{V3}/schedules/{{category}}/{{name}}")
@route("DELETE", f"{V4}/schedules/{{category}}/{{name}}", unconfirmed=True)
def delete_schedule(h: FmeRequestHandler, category: str, name: str) -> Any:
    _schedule(h, category, name)
    with _state(h).lock:
        del _state(h).schedules[(category, name)]
    _changed(h)
    return Response(204)


# --- notifications: topics, subscriptions, publications -----------------------------------------
def _collection(h: FmeRequestHandler, kind: str) -> dict[str, dict[str, Any]]:
    return getattr(_state(h), kind)


def _check_topics(h: FmeRequestHandler, body: dict[str, Any]) -> None:
    topics = body.get("topics", [])
    if not isinstance(topics, list):
        raise ApiError(400, "topics must be a list")
    missing = sorted(set(topics) - set(_state(h).topics))
    if missing:
        raise ApiError(422, f"unknown topic(s): {', '.join(missing)}")


def _register_notification_kind(kind: str, needs_topics: bool, base: str,
                                unconfirmed: bool = False) -> None:
    def route(method: str, template: str) -> Any:
        return _route(method, template, unconfirmed=unconfirmed)

    @route("GET", base)
    def list_all(h: FmeRequestHandler) -> Any:
        with _state(h).lock:
            items = [v for _, v in sorted(_collection(h, kind).items())]
        return _page_for(h, items)

    @route("POST", base)
    def create(h: FmeRequestHandler) -> Any:
        body = h.json_body()
        name = body.get("name")
        if not name:
            raise ApiError(422, "name is required")
        if needs_topics:
            _check_topics(h, body)
        with _state(h).lock:
            if name in _collection(h, kind):
                raise ApiError(409, f"'{name}' already exists in {kind}")
            _collection(h, kind)[name] = body
        _changed(h)
        return Response(201, body)

    def existing(h: FmeRequestHandler, name: str) -> dict[str, Any]:
        found = _collection(h, kind).get(name)
        if found is None:
            raise ApiError(404, f"'{name}' does not exist in {kind}")
        return found

    @route("GET", f"{base}/{{name}}")
    def get_one(h: FmeRequestHandler, name: str) -> Any:
        return existing(h, name)

    @route("PUT", f"{base}/{{name}}")
    def replace(h: FmeRequestHandler, name: str) -> Any:
        existing(h, name)
        body = {**h.json_body(), "name": name}
        if needs_topics:
            _check_topics(h, body)
        with _state(h).lock:
            _collection(h, kind)[name] = body
        _changed(h)
        return body

    @route("DELETE", f"{base}/{{name}}")
    def delete(h: FmeRequestHandler, name: str) -> Any:
        existing(h, name)
        if kind == "topics":
            users = [s["name"] for coll in ("subscriptions", "publications")
                     for s in _collection(h, coll).values() if name in s.get("topics", [])]
            if users:  # UNCONFIRMED: the real server's rule; dependents must go first
                raise ApiError(409, f"topic '{name}' is used by: {', '.join(sorted(users))}")
        with _state(h).lock:
            del _collection(h, kind)[name]
        _changed(h)
        return Response(204)


for _kind, _needs in (("topics", False), ("subscriptions", True), ("publications", True)):
    _register_notification_kind(_kind, _needs, f"{V3}/notifications/{_kind}")
    _register_notification_kind(_kind, _needs, f"{V4}/{_kind}", unconfirmed=True)
