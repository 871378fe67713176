"""Which REST endpoint each operation uses on a given FME node: ONE table, operation × API × path,
every row with its public source or marked UNCONFIRMED.

FME Server 2021–2025 serve REST V3 (`/fmerest/v3`); FME Flow adds REST V4 (`/fmeapiv4`) from 2023
and removes V3 in 2026.1 (support.safe.com articles 25407706416909, 40926498090125). Each node is
spoken to in its own API, per operation, by this rule (`NodeApi.choose`):

1. a CONFIRMED V4 endpoint, when the node's build is at least the row's `since`;
2. else the V3 endpoint, when the node still serves V3;
3. else an UNCONFIRMED V4 endpoint (no public caller or document settles it — only used on a
   node that leaves no choice);
4. else the operation is not possible on that node (UnsupportedOperationError, naming why).

`since` builds are where safesoftware/fmeflow-cli (cmd/*.go at d7e61eb) switches to V4 for that
family. No V4 path ends in "/": from 2026.1 that answers 404 (support.safe.com 43846485872653).
Sources: [cli:f] = fmeflow-cli `cmd/f`; [v3docs] = Safe's REST API V3 reference; [S-n] =
support.safe.com article n; [rep] = eea/Products.Reportek RemoteFMEConversionApplication.py
(third-party V4 caller); [bcgov] = bcgov/operational-utilities Set_FMESchedules.ps1.
"""

from __future__ import annotations

from dataclasses import dataclass

V3 = "/fmerest/v3"
V4 = "/fmeapiv4"
V4_BASE_BUILD = 23139  # [cli:healthcheck.go] first V4 use; FME Flow 2023.0


@dataclass(frozen=True)
class Endpoint:
    op: str
    api: str  # "v3" | "v4" | "info" (outside both: /fmeinfo)
    method: str
    path: str  # a template: {repository}, {item}, {category}, {name}, {connection}, {kind}…
    source: str
    confirmed: bool = True
    since: int = 0  # first build that serves it (V4 rows)

    def url(self, **segments: str) -> str:
        return self.path.format(**segments)


def _v3(op: str, method: str, path: str, source: str, confirmed: bool = True) -> Endpoint:
    return Endpoint(op, "v3", method, V3 + path, source, confirmed)


def _v4(op: str, method: str, path: str, source: str, since: int = V4_BASE_BUILD,
        confirmed: bool = True) -> Endpoint:
    return Endpoint(op, "v4", method, V4 + path, source, confirmed, since)


def _unconfirmed(op: str, method: str, path: str, evidence: str) -> Endpoint:
    return _v4(op, method, path, f"UNCONFIRMED: {evidence}", confirmed=False)


ITEM = "/repositories/{repository}/items/{item}"
WORKSPACE = "/workspaces/{repository}/{item}"
SCHEDULE = "/schedules/{category}/{name}"
FILESYS = "/resources/connections/{connection}/filesys{path}"
RESOURCES_V4 = "/resources/connections/{connection}"
FLATTENED = ("V4 drops V3's grouping segment everywhere it is known (transformations/jobs → jobs, "
             "licensing → license, migration → migrations)")

TABLE: tuple[Endpoint, ...] = (
    # --- node, auth ----------------------------------------------------------------------------
    Endpoint("version", "info", "GET", "/fmeinfo/version", "[cli:login.go, info.go]"),
    _v4("health", "GET", "/healthcheck/liveness", "[cli:healthcheck.go]"),
    _v3("health", "GET", "/healthcheck", "[cli:healthcheck.go]"),
    _v4("tokens.create", "POST", "/tokens", "[cli:login.go]", since=25208),
    _v3("tokens.create", "POST", "/tokens", "[cli:login.go]"),
    # --- repositories ----------------------------------------------------------------------------
    _v4("repositories.list", "GET", "/repositories", "[cli:repositories.go]"),
    _v3("repositories.list", "GET", "/repositories", "[cli:repositories.go]"),
    _v4("repositories.get", "GET", "/repositories/{repository}", "[cli:repositories.go]"),
    _v3("repositories.get", "GET", "/repositories/{repository}", "[cli:repositories.go]"),
    _v4("repositories.create", "POST", "/repositories", "[cli:repositories_create.go]"),
    _v3("repositories.create", "POST", "/repositories", "[cli:repositories_create.go]"),
    _v4("repositories.delete", "DELETE", "/repositories/{repository}",
        "[cli:repositories_delete.go]"),
    _v3("repositories.delete", "DELETE", "/repositories/{repository}",
        "[cli:repositories_delete.go]"),
    # --- repository items (workspaces, custom transformers…) and their services ---------------
    _v3("items.list", "GET", "/repositories/{repository}/items", "[cli:workspaces.go]"),
    _unconfirmed("items.list", "GET", "/repositories/{repository}/items",
                 "path in [S-42307169945229]; item keys assumed as /fmeapiv4/workspaces' "
                 "([cli:workspaces_test.go])"),
    _v4("items.get", "GET", WORKSPACE, "[cli:workspaces.go, workspaces_test.go]"),
    _v3("items.get", "GET", ITEM, "[cli:workspaces.go]"),
    _v3("items.create", "POST", "/repositories/{repository}/items", "[v3docs]"),
    _unconfirmed("items.create", "POST", "/repositories/{repository}/items",
                 "multipart part `file`, as every known V4 upload ([cli:projects_upload.go], "
                 "[rep])"),
    _v3("items.replace", "PUT", ITEM, "[v3docs]"),
    _unconfirmed("items.replace", "POST", "/repositories/{repository}/items",
                 "the create call with ?overwrite=true, as V4 resource uploads ([rep])"),
    _v3("items.download", "GET", ITEM, "UNCONFIRMED in V3 too: Accept application/octet-stream "
        "[v3docs]", confirmed=False),
    _unconfirmed("items.download", "GET", ITEM + "/download", "no public caller"),
    _v3("items.delete", "DELETE", ITEM, "[v3docs]"),
    _unconfirmed("items.delete", "DELETE", ITEM, "no public caller"),
    _v4("services.get", "GET", WORKSPACE, "`services` of the detail [cli:workspaces_test.go]"),
    _v3("services.get", "GET", ITEM + "/services", "[v3docs]; shape [cli:workspaces_test.go]"),
    _v3("services.set", "PUT", ITEM + "/services", "[v3docs] form `services` repeated"),
    _unconfirmed("services.set", "PUT", WORKSPACE + "/services",
                 "GET of this path is seen in third-party code; body = the detail's keyed "
                 "`services` object"),
    # --- schedules -------------------------------------------------------------------------------
    _v3("schedules.list", "GET", "/schedules", "[v3docs], [bcgov]"),
    _unconfirmed("schedules.list", "GET", "/schedules", FLATTENED),
    _v3("schedules.create", "POST", "/schedules", "[v3docs]"),
    _unconfirmed("schedules.create", "POST", "/schedules", FLATTENED),
    _v3("schedules.replace", "PUT", SCHEDULE, "[v3docs], [bcgov]"),
    _unconfirmed("schedules.replace", "PUT", SCHEDULE, FLATTENED),
    _v3("schedules.delete", "DELETE", SCHEDULE, "[v3docs]"),
    _unconfirmed("schedules.delete", "DELETE", SCHEDULE, FLATTENED),
    # --- notifications: {kind} = topics | subscriptions | publications ---------------------------
    _v3("notifications.list", "GET", "/notifications/{kind}", "[v3docs]"),
    _unconfirmed("notifications.list", "GET", "/{kind}", FLATTENED),
    _v3("notifications.create", "POST", "/notifications/{kind}", "[v3docs]"),
    _unconfirmed("notifications.create", "POST", "/{kind}", FLATTENED),
    _v3("notifications.replace", "PUT", "/notifications/{kind}/{name}", "[v3docs]"),
    _unconfirmed("notifications.replace", "PUT", "/{kind}/{name}", FLATTENED),
    _v3("notifications.delete", "DELETE", "/notifications/{kind}/{name}", "[v3docs]"),
    _unconfirmed("notifications.delete", "DELETE", "/{kind}/{name}", FLATTENED),
    # --- resources (shared files) ----------------------------------------------------------------
    _v3("resources.connections", "GET", "/resources/connections", "[v3docs]"),
    _unconfirmed("resources.connections", "GET", "/resources/connections", "no public caller"),
    _v3("resources.list", "GET", FILESYS, "[v3docs] ?depth=1"),
    _unconfirmed("resources.list", "GET", RESOURCES_V4 + "/info",
                 "?path= [rep]; entry keys besides name and type"),
    _v3("resources.download", "GET", FILESYS, "[v3docs] Accept application/octet-stream"),
    _unconfirmed("resources.download", "POST", RESOURCES_V4 + "/downloadzip",
                 "JSON {path, items, zipFileName} → a zip [rep]"),
    _v3("resources.upload", "POST", FILESYS, "[v3docs] octet-stream, createDirectories"),
    _unconfirmed("resources.upload", "POST", RESOURCES_V4 + "/upload",
                 "?path=&overwrite=, multipart `files` [rep]; that it creates missing folders"),
    _v3("resources.delete", "DELETE", FILESYS, "[v3docs]"),
    _unconfirmed("resources.delete", "DELETE", RESOURCES_V4 + "/item", "?path= [rep]"),
    # --- connections and deployment parameters (V4 only) -----------------------------------------
    _v4("connections.list", "GET", "/connections", "[cli:connections.go]"),
    _v4("connections.get", "GET", "/connections/{name}", "[cli:connections.go]"),
    _v4("connections.create", "POST", "/connections", "[cli:connections_create.go]"),
    _v4("connections.replace", "PUT", "/connections/{name}", "[cli:connections_update.go]"),
    _v4("connections.delete", "DELETE", "/connections/{name}", "[cli:connections_delete.go]"),
    _v4("deploymentparameters.list", "GET", "/deploymentparameters",
        "[cli:deploymentparameters.go]"),
    _v4("deploymentparameters.create", "POST", "/deploymentparameters",
        "[cli:deploymentparameters_create.go]"),
    _v4("deploymentparameters.replace", "PUT", "/deploymentparameters/{name}",
        "[cli:deploymentparameters_update.go]"),
    _v4("deploymentparameters.delete", "DELETE", "/deploymentparameters/{name}",
        "[cli:deploymentparameters_delete.go]"),
    # --- jobs and licensing (drain, seed) --------------------------------------------------------
    _v4("jobs.running", "GET", "/jobs", "[cli:jobs.go] ?status=running", since=25208),
    _v3("jobs.running", "GET", "/transformations/jobs/running", "[cli:jobs.go]"),
    # a smoke job (canary rollouts): submit, then poll its status
    _v4("jobs.submit", "POST", "/jobs", "[cli:run.go] JSON {repository, workspace, "
        "publishedParameters: {name: value}} → {id}", since=26018),
    _v3("jobs.submit", "POST", "/transformations/submit/{repository}/{workspace}",
        "[cli:run.go] JSON {publishedParameters: [{name, value}]} → {id}"),
    _v4("jobs.get", "GET", "/jobs/{id}", "[cli:jobs.go] --id", since=25208),
    _v3("jobs.get", "GET", "/transformations/jobs/id/{id}", "[cli:jobs.go] --id"),
    _v4("license.status", "GET", "/license/status", "[cli:licenseStatus.go]", since=23319),
    _v3("license.status", "GET", "/licensing/license/status", "[cli:licenseStatus.go]"),
    _v4("license.request", "POST", "/license/request", "[cli:request.go] JSON", since=23319),
    _v3("license.request", "POST", "/licensing/request", "[cli:request.go] form"),
    _v4("license.request_status", "GET", "/license/request/status", "[cli:request.go]",
        since=23319),
    _v3("license.request_status", "GET", "/licensing/request/status", "[cli:request.go]"),
    _v4("license.refresh", "POST", "/license/refresh", "[cli:refresh.go]", since=23319),
    _v3("license.refresh", "POST", "/licensing/refresh", "[cli:refresh.go]"),
    # --- projects (V4) ---------------------------------------------------------------------------
    _v4("projects.list", "GET", "/projects", "[cli:projects.go]", since=23283),
    _v4("projects.delete", "DELETE", "/projects/{id}", "[cli:projects_delete.go]", since=23283),
    _v4("projects.export", "POST", "/projects/{id}/export/download", "[cli:projects_download.go]",
        since=23766),
    _v4("projects.import_upload", "POST", "/projects/imports/upload",
        "[cli:projects_upload.go] (the /projects/imports path: cli commit e790524)", since=25049),
    _v4("projects.task", "GET", "/projects/tasks/{id}", "[cli:projects_upload.go]", since=25049),
    _v4("projects.import_items", "GET", "/projects/imports/{id}/items", "[cli:projects_upload.go]",
        since=25049),
    _v4("projects.import_run", "POST", "/projects/imports/{id}/run", "[cli:projects_upload.go]",
        since=25049),
    _v4("projects.import_get", "GET", "/projects/imports/{id}", "[cli:projects_upload.go]",
        since=25049),
    _v4("projects.import_delete", "DELETE", "/projects/imports/{id}", "[cli:projects_upload.go]",
        since=25049),
)

assert not any(e.api == "v4" and e.path.endswith("/") for e in TABLE)  # [S-43846485872653]

# A product name per release line, for messages: builds below 23000 are FME Server.
FLOW_FIRST_BUILD = 23000


@dataclass(frozen=True)
class NodeApi:
    """What one node serves, learnt when fmeaa connects: its build (GET /fmeinfo/version) and
    whether it still answers REST V3 (its public health check)."""

    build: int  # 0 when the node did not say
    build_string: str
    has_v3: bool

    @property
    def has_v4(self) -> bool:
        return self.build >= V4_BASE_BUILD

    @property
    def label(self) -> str:
        """"FME Flow 2026.1 - Build 26180 - linux-x64", or what is known of it."""
        return self.build_string or (f"build {self.build}" if self.build else "unknown build")

    def endpoint(self, op: str, prefer: str = "auto") -> Endpoint | None:
        """The endpoint this node is spoken to for `op`: the rule in the module docstring, or,
        with `prefer` "v3"/"v4", that API wherever the node has a row of it."""
        rows = [e for e in TABLE if e.op == op]
        v4 = [e for e in rows if e.api == "v4" and self.has_v4 and self.build >= e.since]
        other = [e for e in rows if e.api == "info"]
        v3 = [e for e in rows if e.api == "v3" and self.has_v3]
        order = {"v3": (v3, other, v4), "v4": (v4, other, v3)}.get(
            prefer, ([e for e in v4 if e.confirmed], other, v3, v4))
        for choice in order:
            if choice:
                return choice[0]
        return None

    def apis(self) -> str:
        """The APIs this node answers, for `fmeaa nodes`: "v4", "v3+v4" or "v3"."""
        return "+".join(a for a, has in (("v3", self.has_v3), ("v4", self.has_v4)) if has)


def operations() -> list[str]:
    seen: dict[str, None] = {}
    for e in TABLE:
        seen.setdefault(e.op, None)
    return list(seen)


def first_v4_build(op: str) -> int | None:
    builds = [e.since for e in TABLE if e.op == op and e.api == "v4"]
    return min(builds) if builds else None


def markdown_table(columns: list[tuple[str, int, bool]]) -> str:
    """The README's table: one row per operation, one column per (release, build, has V3), each
    cell the API fmeaa uses there ("—": not possible), then the paths and their sources. Every
    UNCONFIRMED choice says so. `tests/test_api_table.py` keeps the README equal to this."""
    header = ["operation", *(label for label, _, _ in columns), "V4 path", "V3 path", "source"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for op in operations():
        if op == "version":
            continue
        cells = []
        for _, build, has_v3 in columns:
            ep = NodeApi(build, "", has_v3).endpoint(op)
            cells.append("—" if ep is None else ep.api if ep.confirmed
                         else f"{ep.api} UNCONFIRMED")
        rows = {e.api: e for e in TABLE if e.op == op}
        v4, v3 = rows.get("v4"), rows.get("v3")
        path = lambda e: f"`{e.method} {e.path}`" if e else "—"  # noqa: E731
        sources = "; ".join(f"{e.api}: {e.source}" for e in (v4, v3) if e)
        lines.append("| " + " | ".join([op, *cells, path(v4), path(v3), sources]) + " |")
    return "\n".join(lines)
