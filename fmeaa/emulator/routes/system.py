"""Routes for the node itself: emulator counters, health (v3 and v4), version and info, tokens
(v3 and v4), jobs and licensing (v3 and v4). These are what connecting, logging in, draining and
seeding a node need, as opposed to the content the sync reads and writes (other route modules).

Every shape is the real-server sample in safesoftware/fmeflow-cli named beside it (`cmd/…`).
"""

from __future__ import annotations

import re
import time
from typing import Any

from fmeaa.emulator.server import (
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
from fmeaa.emulator.versions import (
    V4_HEALTH,
    V4_JOB_SUBMIT,
    V4_JOBS,
    V4_LICENSE,
    V4_TOKENS,
    FmeVersion,
)

ZERO_TIME = "0001-01-01T00:00:00Z"  # what real servers put in unset times (jobs_v3_test.go)


def _version(h: FmeRequestHandler) -> FmeVersion:
    return h.server.node.version


# --- emulator-only: counters for tests and the benchmark (not part of FME's API) -------------
@route("GET", "/__emulator__/stats", public=True)
def emulator_stats(h: FmeRequestHandler) -> Any:
    node = h.server.node
    return {"node": node.name, "requests": node.request_count, "uploadedBytes": node.uploaded_bytes,
            "downloadedBytes": node.downloaded_bytes, "downloads": dict(node.downloads),
            "maxInFlight": node.max_in_flight,
            "throttled": node.throttled, "byPath": dict(node.requests_by_path)}


@route("POST", "/__emulator__/stats/reset", public=True)
def emulator_stats_reset(h: FmeRequestHandler) -> Any:
    h.server.node.reset_counters()
    return Response(204)


# --- health, version, info, tokens -----------------------------------------------------------
@route("GET", f"{V3}/healthcheck", public=True)
def v3_health(h: FmeRequestHandler) -> Any:
    return {"status": "ok"}  # healthcheck_test.go okResponseV3


# healthcheck_test.go okResponseV4. A bare /fmeapiv4/healthcheck is UNCONFIRMED (every caller
# appends /liveness or /readiness), so it is not served.
@route("GET", f"{V4}/healthcheck/liveness", public=True, since=V4_HEALTH)
@route("GET", f"{V4}/healthcheck/readiness", public=True, since=V4_HEALTH)
def v4_health(h: FmeRequestHandler) -> Any:
    return {"status": "ok", "message": "FME Server is healthy."}


@route("GET", "/fmeinfo/version", basic_or_token=True)
def fmeinfo_version(h: FmeRequestHandler) -> Any:
    """The build, called by fmeflow-cli's login before anything else (login.go; shape
    info_v4_test.go). Outside /fmeapiv4; answers to a token or to Basic credentials."""
    v = _version(h)
    return {"buildNumber": v.build, "buildString": v.build_string, "releaseYear": v.release_year,
            "majorVersion": v.major, "minorVersion": 0, "hotfixVersion": 0}


@route("GET", f"{V3}/info")
def v3_info(h: FmeRequestHandler) -> Any:
    v = _version(h)  # info_v3_test.go: `version` is the product name only
    return {"currentTime": time.strftime("%a-%d-%b-%Y %I:%M:%S %p", time.gmtime()),
            "licenseManagement": True, "build": v.build_string, "timeZone": "+0000",
            "version": v.product}


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
    now = _iso(time.time())  # login_v3_test.go tokenResponse
    return Response(201, {"lastSaveDate": now, "createdDate": now,
                          "restricted": bool(body.get("restricted", False)),
                          "name": body.get("name", "fmeaa"),
                          "description": body.get("description", ""), "type": "USER",
                          "user": _state(h).username, "enabled": bool(body.get("enabled", True)),
                          "expirationDate": _iso(expiry), "token": token})


@route("POST", f"{V4}/tokens", basic=True, since=V4_TOKENS)
def v4_token(h: FmeRequestHandler) -> Any:
    body, token, expiry = _token_request(h, "secondsToExpiry")
    now = _iso(time.time())  # login_v4_test.go tokenResponse
    return Response(201, {"name": body.get("name", "fmeaa"),
                          "description": body.get("description", ""),
                          "owner": _state(h).username, "type": "USER",
                          "customPermissions": bool(body.get("customPermissions", False)),
                          "enabled": bool(body.get("enabled", True)), "created": now,
                          "updated": now, "secondsToExpiry": body.get("secondsToExpiry", 3600),
                          "expiration": _iso(expiry), "token": token})


# --- jobs (drain waits for running ones) -------------------------------------------------------
def _v3_job(job: dict[str, Any]) -> dict[str, Any]:
    """A running job as V3 lists it (jobs_v3_test.go responseV3Running): status PULLED."""
    started = _iso(job.get("timeStarted", time.time()))
    empty_result = {"timeRequested": ZERO_TIME, "requesterResultPort": 0,
                    "numFeaturesOutput": 0, "requesterHost": "", "timeStarted": ZERO_TIME,
                    "id": 0, "timeFinished": ZERO_TIME, "priority": 0, "statusMessage": "",
                    "status": ""}
    return {"request": {"TMDirectives": {"rtc": False, "ttc": -1, "tag": "Default", "ttl": -1},
                        "NMDirectives": {"directives": []}},
            "timeDelivered": ZERO_TIME, "workspace": job.get("workspace", "emulated.fmw"),
            "numErrors": 0, "numLines": 0, "engineHost": "emulated-engine",
            "timeQueued": started, "cpuPct": 0, "description": "", "timeStarted": started,
            "repository": job.get("repository", "Samples"), "userName": "admin",
            "result": empty_result, "cpuTime": 0, "id": job.get("id", 0),
            "timeFinished": ZERO_TIME, "engineName": "emulated-engine", "numWarnings": 0,
            "timeSubmitted": started, "elapsedTime": 0, "peakMemUsage": 0, "status": "PULLED"}


def _v4_job(job: dict[str, Any]) -> dict[str, Any]:
    """A running job as V4 lists it (jobs_v4_test.go responseV4Active): status running."""
    started = _iso(job.get("timeStarted", time.time()))
    return {"id": job.get("id", 0), "description": "", "engineHost": "emulated-engine",
            "engineName": "emulated-engine", "repository": job.get("repository", "Samples"),
            "queue": "Default", "queueType": "Standard", "resultDatasetDownloadUrl": "",
            "status": "running", "timeFinished": ZERO_TIME, "timeQueued": started,
            "timeStarted": started, "runtimeUsername": "admin",
            "runtimeUserID": "00000000-0000-0000-0000-000000000001",
            "workspace": job.get("workspace", "emulated.fmw"), "elapsedTime": 0, "cpuTime": 0,
            "cpuPercent": 0, "peakMemoryUsage": 0, "lineCount": 0, "warningCount": 0,
            "errorCount": 0}


@route("GET", f"{V3}/transformations/jobs/running")
def v3_running_jobs(h: FmeRequestHandler) -> Any:
    with _state(h).lock:
        return _page(list(_state(h).running_jobs), h.query, _v3_job)


@route("GET", f"{V4}/jobs", since=V4_JOBS)
def v4_jobs(h: FmeRequestHandler) -> Any:
    """`status` repeats (`?status=queued&status=running`, jobs.go); this emulator runs no queue,
    so only `running` (or no filter) lists anything."""
    wanted = set(h.query_all("status"))
    with _state(h).lock:
        jobs = list(_state(h).running_jobs) if not wanted or "running" in wanted else []
    return _page(jobs, h.query, _v4_job, default_limit=100)


# --- submitted jobs (smoke jobs of canary rollouts) ----------------------------------------------
# The emulator runs no workspace: a job of an existing workspace ends after a moment in success,
# or in failure when the node's `failing_jobs` fault names it. A job of a missing workspace is
# refused 404 (UNCONFIRMED status: no public sample shows it).
V3_OUTCOME = {"queued": "QUEUED", "success": "SUCCESS", "failure": "FME_FAILURE"}
V3_MESSAGE = {"queued": "", "success": "Translation Successful",
              "failure": "Terminator: Termination Message: 'Translation Terminated'"}


def _submit(h: FmeRequestHandler, repository: str, workspace: str,
            parameters: dict[str, Any]) -> Response:
    try:
        job_id = _state(h).submit_job(repository, workspace, parameters)
    except KeyError:
        raise ApiError(404, f"Repository item {workspace} does not exist in {repository}.") \
            from None
    return Response(202, {"id": job_id})  # run.go: 202 {id}


@route("POST", f"{V3}/transformations/submit/{{repository}}/{{workspace}}")
def v3_submit(h: FmeRequestHandler, repository: str, workspace: str) -> Any:
    listed = h.json_body().get("publishedParameters") or []
    return _submit(h, repository, workspace, {p.get("name"): p.get("value") for p in listed})


@route("POST", f"{V4}/jobs", since=V4_JOB_SUBMIT)
def v4_submit(h: FmeRequestHandler) -> Any:
    body = h.json_body()
    if not body.get("repository") or not body.get("workspace"):
        raise ApiError(400, "repository and workspace are required")
    return _submit(h, str(body["repository"]), str(body["workspace"]),
                   dict(body.get("publishedParameters") or {}))


def _job(h: FmeRequestHandler, job_id: str) -> dict[str, Any]:
    job = _state(h).job_view(int(job_id)) if job_id.isdigit() else None
    if job is None:
        raise ApiError(404, f"Job {job_id} does not exist.")
    return job


@route("GET", f"{V3}/transformations/jobs/id/{{job_id}}")
def v3_job(h: FmeRequestHandler, job_id: str) -> Any:
    """jobs_v3_test.go responseV3SingleJob: the status, and the result's status message."""
    job = _job(h, job_id)
    shape = _v3_job({**job, "timeStarted": job["submitted"]})
    status = V3_OUTCOME[job["status"]]
    finished = _iso(job["finished"]) if job["finished"] else ZERO_TIME
    shape["result"].update(status="" if status == "QUEUED" else status, id=job["id"],
                           statusMessage=V3_MESSAGE[job["status"]], timeFinished=finished)
    return {**shape, "status": status, "timeFinished": finished}


@route("GET", f"{V4}/jobs/{{job_id}}", since=V4_JOBS)
def v4_job(h: FmeRequestHandler, job_id: str) -> Any:
    """jobs_v4_test.go responseV4SingleJob: lower-case status."""
    job = _job(h, job_id)
    shape = _v4_job({**job, "timeStarted": job["submitted"]})
    return {**shape, "status": job["status"],
            "timeFinished": _iso(job["finished"]) if job["finished"] else ZERO_TIME}


# --- licensing ---------------------------------------------------------------------------------
@route("GET", f"{V3}/licensing/license/status")
def v3_license_status(h: FmeRequestHandler) -> Any:
    view = _state(h).license_view()  # licenseStatus_test.go responseV3
    return {"expiryDate": view["expiration"] or "", "maximumEngines": view["maximumEngines"],
            "serialNumber": view["serialNumber"], "isLicenseExpired": False,
            "isLicensed": view["licensed"], "maximumAuthors": view["maximumAuthors"]}


@route("GET", f"{V4}/license/status", since=V4_LICENSE)
def v4_license_status(h: FmeRequestHandler) -> Any:
    view = _state(h).license_view()  # licenseStatus_test.go responseV4
    return {"licensed": view["licensed"], "expiration": view["expiration"] or "",
            "maximumEngines": view["maximumEngines"], "expired": False,
            "serialNumber": view["serialNumber"], "maximumAuthors": view["maximumAuthors"]}


# Licensing is asynchronous: a request is answered 202 and completes later (request.go polls
# request/status). The emulator's serial-number syntax check is its own (UNCONFIRMED).
SERIAL = re.compile(r"^[A-Z0-9]{4}(-[A-Z0-9]{4}){2,3}$")


def _request_license(h: FmeRequestHandler, serial: str) -> Response:
    if not serial:
        raise ApiError(422, "serialNumber is required")
    _state(h).start_license_request(serial, valid=bool(SERIAL.match(serial)))
    return Response(202)


@route("POST", f"{V3}/licensing/request")
def v3_license_request(h: FmeRequestHandler) -> Any:
    return _request_license(h, h.form_body().get("serialNumber", [""])[0])  # form (request.go)


@route("POST", f"{V4}/license/request", since=V4_LICENSE)
def v4_license_request(h: FmeRequestHandler) -> Any:
    return _request_license(h, str(h.json_body().get("serialNumber", "")))  # JSON (request.go)


def _refresh(h: FmeRequestHandler) -> Response:
    state = _state(h)
    if not state.license.get("serialNumber"):
        raise ApiError(409, "no serial number on record: request a licence first")
    state.start_license_request(state.license["serialNumber"], valid=True)
    return Response(202)


@route("POST", f"{V3}/licensing/refresh")
def v3_license_refresh(h: FmeRequestHandler) -> Any:
    return _refresh(h)


@route("POST", f"{V4}/license/refresh", since=V4_LICENSE)
def v4_license_refresh(h: FmeRequestHandler) -> Any:
    return _refresh(h)


def _request_status(h: FmeRequestHandler, upper: bool) -> dict[str, Any]:
    """{status, message}: upper case in V3, lower case in V4 (refreshStatus_test.go,
    requestStatus_test.go). The emulator keeps one request status for requests and refreshes."""
    view = _state(h).license_view()
    status = view["requestStatus"]
    return {"status": status.upper() if upper else status, "message": view["requestMessage"]}


@route("GET", f"{V3}/licensing/request/status")
@route("GET", f"{V3}/licensing/refresh/status")
def v3_license_request_status(h: FmeRequestHandler) -> Any:
    return _request_status(h, upper=True)


@route("GET", f"{V4}/license/request/status", since=V4_LICENSE)
@route("GET", f"{V4}/license/refresh/status", since=V4_LICENSE)
def v4_license_request_status(h: FmeRequestHandler) -> Any:
    return _request_status(h, upper=False)
