"""Typed result documents of the operations: what a front end renders (a table, `--json`, a
GitHub Action's summary). One model per operation; `to_json()` gives the documented camelCase
shape, so the JSON of every front end is the same."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Document(BaseModel):
    # Each model's validator is built when first used (a command uses a few of them).
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# Why an entry is not as the source wants it (fmeaa.sync.plan.Cause), most serious first: what
# `--fail-on` selects, each with its own exit code (fmeaa.commands.common.EXIT_FOR_CAUSE).
CAUSES = ("drift", "pending", "extra")


# --- plan -------------------------------------------------------------------------------------
class PlannedAction(Document):
    # create | update | delete | extra | unchanged | ignored | preview (a project item's import)
    change: str
    kind: str
    key: str
    detail: str | None = None
    digest: str | None = None  # wanted
    current: str | None = None  # on the node now
    cause: str | None = None  # pending | drift | extra (create/update/delete/extra only)


class NodePlanReport(Document):
    url: str
    status: Literal["ok", "unreachable", "failed"]  # failed: it answered, with an error
    error: str | None = None
    summary: dict[str, int] | None = None
    causes: dict[str, int] | None = None  # pending / drift / extra: how many actions of each
    bytes_to_send: int | None = None
    actions: list[PlannedAction] = []


class PlanResult(Document):
    source: str
    prune: bool
    changes: bool
    nodes: dict[str, NodePlanReport]
    causes: dict[str, int] = {}  # over every node

    def found(self, cause: str) -> bool:
        return self.causes.get(cause, 0) > 0

    @property
    def all_reachable(self) -> bool:
        return all(n.status == "ok" for n in self.nodes.values())


# --- sync / publish -----------------------------------------------------------------------------
class Failure(Document):
    action: str
    error: str


class NodeSyncReport(Document):
    status: str  # ok | failed | unreachable
    error: str | None = None
    applied: int = 0  # changes done on the node
    created: int | None = None  # planned (all done only when status is ok)
    updated: int | None = None
    deleted: int | None = None
    unchanged: int | None = None
    bytes_sent: int = 0
    failures: list[Failure] = []
    in_sync: bool = False
    # why the node's ledger (what fmeaa wrote there) could not be written; the content is in
    # sync either way, the next run from another machine only downloads more
    ledger_error: str | None = None


class SyncResult(Document):
    ok: bool
    nodes: dict[str, NodeSyncReport]
    seconds: float | None = None  # from validating the input to the last check
    sync_id: str | None = None  # its history record on the changed nodes (`fmeaa rollback`)


# --- verify ---------------------------------------------------------------------------------------
class ParityRowReport(Document):
    kind: str
    key: str
    status: str  # in sync | pending | drift | extra | unmanaged | ignored
    digests: dict[str, str | None]
    expected: dict[str, str | None]
    drifted_nodes: list[str]  # nodes whose digest is not the expected one, whatever the cause
    causes: dict[str, str] = {}  # node → pending | drift | extra
    enabled_on: list[str] | None = None  # schedules only


class ParityResult(Document):
    source: str
    in_sync: bool
    drift: int  # rows with status drift
    pending: int = 0
    extra: int = 0
    unreadable: dict[str, str]
    nodes: list[str]
    rows: list[ParityRowReport]

    def found(self, cause: str) -> bool:
        """Whether any node of any row has this cause (a drift row may hold pending nodes)."""
        return any(r.status == cause or cause in r.causes.values() for r in self.rows)


# --- export ---------------------------------------------------------------------------------------
class ExportReport(Document):
    directory: str
    node: str
    files: int
    bytes: int
    secret_variables: list[str]
    connections_without_credentials: list[str]


# --- nodes ----------------------------------------------------------------------------------------
class NodeStatusReport(Document):
    name: str
    url: str
    instance_id: str | None = None
    health: str = "unreachable"  # healthy | unhealthy | unreachable
    version: str | None = None
    api: str | None = None  # the REST APIs the node answers: "v3+v4", "v4", "v3"
    licensed: bool | None = None
    license_expiry: str | None = None
    error: str | None = None
    in_load_balancer: str = "unknown"


class NodesResult(Document):
    cluster: str
    nodes: list[NodeStatusReport]
    credentials_given: bool = True

    @property
    def all_healthy(self) -> bool:
        """Every node answered its health check and everything asked of it (exit 0)."""
        return all(n.health == "healthy" and not n.error for n in self.nodes)


# --- lifecycle --------------------------------------------------------------------------------------
class DrainResult(Document):
    node: str
    drained: bool
    jobs_finished: bool
    schedules: ScheduleMoveResult | None = None  # with --move-schedules


class UndrainResult(Document):
    node: str
    healthy: bool


class Check(Document):
    check: str
    ok: bool
    detail: str


class ScaleInResult(Document):
    node: str
    safe: bool
    checks: list[Check]
    schedules: ScheduleMoveResult | None = None  # with --move-schedules: moved off first


class SeedResult(Document):
    node: str
    applied: int
    bytes_sent: int
    licence: dict[str, Any] | None = None
    registered: bool = False


class RollingResult(Document):
    nodes: list[str]
    schedules: list[ScheduleMove] = []  # with --move-schedules: every move, in order


class UnlockResult(Document):
    holders: str  # who held the cluster lock, and where ("" if nobody)
    removed_from: list[str]
    failed: dict[str, str]  # node → why its lock file could not be checked or removed


# --- rehearsal ----------------------------------------------------------------------------------------
class RehearsalStep(Document):
    step: str
    ok: bool
    result: dict[str, Any] | None = None


class RehearsalResult(Document):
    ok: bool
    seconds: float
    steps: list[RehearsalStep]


# --- upgrade ---------------------------------------------------------------------------------------
class UpgradeStepReport(Document):
    action: str  # desire | add | retire | roll | tidy
    nodes: list[str]
    settings_changed: list[str]  # the stack's fme-aa:* keys this step rewrote
    pulumi_up: bool
    serving: list[str] | None = None  # nodes healthy in the load balancer after the step
    archived_log_files: int | None = None  # retire with --archive-logs


class UpgradeResult(Document):
    strategy: str  # surge | in-place
    stack: str
    dry_run: bool
    serving_at_least: int  # N (surge) or N−1 (in-place): the floor every step kept
    steps: list[UpgradeStepReport]


# --- history and rollback ---------------------------------------------------------------------
class HistoryChangeReport(Document):
    kind: str
    key: str
    change: str  # create | update | delete (what the run did)


class HistorySyncReport(Document):
    id: str
    operation: str  # sync | publish | rollback
    at: str  # ISO-8601 UTC
    by: str  # user@host
    source: str
    status: str  # ok | failed | applying (unfinished: interrupted, or still running)
    created: int = 0
    updated: int = 0
    deleted: int = 0
    changes: list[HistoryChangeReport] | None = None  # with --show


class NodeHistoryReport(Document):
    status: str  # ok | failed | unreachable
    error: str | None = None
    syncs: list[HistorySyncReport] = []  # newest first
    pruned_through: str | None = None  # the newest record retention dropped


class HistoryResult(Document):
    nodes: dict[str, NodeHistoryReport]

    @property
    def all_read(self) -> bool:
        return all(n.status == "ok" for n in self.nodes.values())


class SkippedEntry(Document):
    kind: str
    key: str
    reason: str


class NodeRollbackReport(Document):
    status: str  # ok | failed | unreachable
    error: str | None = None
    undoes: list[str] = []  # the sync ids undone on this node, newest first
    actions: list[PlannedAction] = []
    skipped: list[SkippedEntry] = []  # entries a rollback cannot restore exactly, and why
    changed_since: list[str] = []  # entries someone changed on the node after the run wrote them
    applied: int = 0
    failures: list[Failure] = []
    in_sync: bool = False  # every restorable entry is back as it was


class RollbackResult(Document):
    target: str  # the sync id
    mode: Literal["before", "to"]  # the state right before that sync, or right after it
    dry_run: bool
    ok: bool
    sync_id: str | None = None  # this rollback's own history record (it can be undone too)
    nodes: dict[str, NodeRollbackReport]


# --- schedules ----------------------------------------------------------------------------------
class ScheduleMove(Document):
    schedule: str  # category/name
    from_node: str
    to_node: str
    disabled_on_from: bool  # False when the old owner could not be reached (see warnings)


class ScheduleMoveResult(Document):
    ok: bool
    moved: list[ScheduleMove] = []
    problems: list[str] = []  # schedules that could not be moved, and why
    warnings: list[str] = []
    record_written_to: list[str] = []  # nodes holding the new owner record


# --- canary rollout ---------------------------------------------------------------------------------
class WaveReport(Document):
    number: int
    nodes: list[str]
    status: str  # done | failed | skipped (before --from-wave) | not started
    sync: SyncResult | None = None
    smoke: dict[str, str] = {}  # node → "passed", or what the smoke job did
    drained: list[str] = []  # taken out of the load balancer while it changed
    problem: str | None = None


class RolloutResult(Document):
    ok: bool
    source: str
    sync_id: str | None = None  # one history record for the whole rollout (`fmeaa rollback`)
    waves: list[WaveReport]
    stopped_at: int | None = None  # the wave that failed
    next_steps: list[str] = []  # what to do next, as commands to paste
