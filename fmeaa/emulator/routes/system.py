"""Routes for the node itself: emulator counters, health (v3 and v4), info, tokens (v3 and v4),
running jobs and licensing. These are what connecting, logging in, draining and seeding a node need
(the REST client's health/info/login/running_jobs/license_* calls), as opposed to the content that
the sync reads and writes, which the other route modules emulate.
"""

from __future__ import annotations

import re
import time
from typing import Any

from fmeaa.emulator.server import (
    BUILD,
    V3,
    V4,
    ApiError,
    FmeRequestHandler,
    Response,
    _iso,
    _page,
    _state,
    route,
)


# --- emulator-only: counters for tests and the benchmark (not part of FME's API) -------------
@route("GET", "/__emulator__/stats", public=True)
def emulator_stats(h: FmeRequestHandler) -> Any:
    node = h.server.node
    return {"node": node.name, "requests": node.request_count, "uploadedBytes": node.uploaded_bytes}


# --- health, info, tokens ------------------------------------------------------------------------
@route("GET", f"{V3}/healthcheck", public=True)
def v3_health(h: FmeRequestHandler) -> Any:
    return {"status": "ok"}


@route("GET", f"{V4}/healthcheck", public=True)
@route("GET", f"{V4}/healthcheck/liveness", public=True)
@route("GET", f"{V4}/healthcheck/readiness", public=True)
def v4_health(h: FmeRequestHandler) -> Any:
    return {"status": "ok", "message": "FME Flow is healthy."}


@route("GET", f"{V3}/info")
def v3_info(h: FmeRequestHandler) -> Any:
    return {"build": BUILD, "currentTime": _iso(time.time()), "licenseManagement": True,
            "timeZone": "UTC", "version": "FME Flow 2024.1"}


def _token_request(h: FmeRequestHandler, seconds_key: str) -> tuple[dict[str, Any], str, float]:
    body = h.json_body()
    seconds = body.get(seconds_key, 3600)
    if not isinstance(seconds, int) or seconds <= 0:
        raise ApiError(422, f"{seconds_key} must be a positive integer")
    token, expiry = _state(h).issue_token(seconds)
    return body, token, expiry


@route("POST", f"{V3}/tokens", basic=True)
def v3_token(h: FmeRequestHandler) -> Any:
    body, token, expiry = _token_request(h, "expirationTimeout")
    return Response(201, {"token": token, "expirationDate": _iso(expiry),
                          "name": body.get("name", "fmeaa"), "user": _state(h).username,
                          "enabled": True, "restricted": False})


@route("POST", f"{V4}/tokens", basic=True)
def v4_token(h: FmeRequestHandler) -> Any:
    body, token, expiry = _token_request(h, "secondsToExpiry")
    return Response(201, {"token": token, "expiration": _iso(expiry),
                          "owner": _state(h).username, "name": body.get("name", "fmeaa")})


# --- jobs and licensing (for drain and seeding) --------------------------------------------------
@route("GET", f"{V3}/transformations/jobs/running")
def running_jobs(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        return _page(list(_state(h).running_jobs), h.query)


@route("GET", f"{V3}/licensing/license/status")
def license_status(h: FmeRequestHandler) -> Any:
    return {k: v for k, v in _state(h).license_view().items() if k != "serialNumber"}


# Licensing is asynchronous: a request is answered 202 and completes later (fmeflow-cli
# request.go polls request/status). Status codes and field names here are UNCONFIRMED.
SERIAL = re.compile(r"^[A-Z0-9]{4}(-[A-Z0-9]{4}){2,3}$")


@route("POST", f"{V3}/licensing/request")
def license_request(h: FmeRequestHandler) -> Any:
    form = h.form_body()
    serial = form.get("serialNumber", [""])[0]
    if not serial:
        raise ApiError(422, "serialNumber is required")
    _state(h).start_license_request(serial, valid=bool(SERIAL.match(serial)))
    return Response(202, {"status": "REQUESTING"})


@route("POST", f"{V3}/licensing/refresh")
def license_refresh(h: FmeRequestHandler) -> Any:
    state = _state(h)
    if not state.license.get("serialNumber"):
        raise ApiError(409, "no serial number on record: request a licence first")
    state.start_license_request(state.license["serialNumber"], valid=True)
    return Response(202, {"status": "REQUESTING"})


@route("GET", f"{V3}/licensing/request/status")
def license_request_status(h: FmeRequestHandler) -> Any:
    view = _state(h).license_view()
    return {"status": view["requestStatus"], "message": view.get("requestMessage", "")}
