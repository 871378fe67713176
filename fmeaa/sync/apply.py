"""Apply one node's plan through its REST client: ordered, retried, isolated.

Creates and updates run in dependency order, deletes after them in reverse order (see
`fmeaa.sync.plan`). Transient failures (5xx, timeouts, dropped connections) are retried with
exponential backoff, a bounded number of times. Every call is idempotent in effect (a create
that meets "already exists" replaces; a delete that meets "not found" is done), so a re-run
after any interruption converges.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from fmeaa.client import (
    ConflictError,
    FmeApiError,
    FmeClient,
    NodeUnreachableError,
    NotFoundError,
)
from fmeaa.client.rest import service_names
from fmeaa.client.retry import retrying
from fmeaa.sync.bounded import bounded_map
from fmeaa.sync.digest_cache import DigestCache
from fmeaa.sync.ledger import Ledger, LedgerEntry, SyncRun
from fmeaa.sync.node_reader import NOTIFICATION_KINDS, WRITTEN
from fmeaa.sync.plan import Action, Change, NodePlan
from fmeaa.sync.snapshot import Entry, Kind, split_item_key, split_resource_key


class FileProvider(Protocol):
    def file_for(self, entry: Entry) -> Path: ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    initial_s: float = 0.2
    max_s: float = 2.0


@dataclass
class NodeResult:
    node: str
    status: str = "ok"  # ok | failed | unreachable
    applied: int = 0
    bytes_sent: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (action, error message)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class NodeApplier:
    """Applies one node's plan. Actions of one kind run `concurrency` at a time (the client
    bounds what the node receives); kinds run one after another in the plan's order — what an
    entry depends on before it, deletes after every create and update — so no action ever
    runs before one it depends on. With a ledger, each action that succeeded is recorded in it
    (written to the node by the engine once the node has been read again)."""

    def __init__(self, client: FmeClient, cache: DigestCache, files: FileProvider,
                 retry: RetryPolicy = RetryPolicy(),
                 on_step: Callable[[Action], None] | None = None, *,
                 concurrency: int = 1, ledger: Ledger | None = None,
                 run: SyncRun | None = None) -> None:
        self.client, self.cache, self.files = client, cache, files
        self.retry = retry
        self.on_step = on_step or (lambda action: None)
        self.concurrency = max(1, concurrency)
        self.ledger = ledger
        self.run = run or SyncRun("", "")
        # What this node does to services on upload, learnt once (see _services_after_upload).
        self._rules: dict[tuple[str, str], tuple[str, ...] | str] = {}
        self._rules_lock = threading.Lock()

    def apply(self, plan: NodePlan) -> NodeResult:
        result = NodeResult(plan.node)
        changes = plan.changes
        outcome: dict[int, tuple[str, str] | None] = {}  # action index → failure (or None)
        gone = threading.Event()  # the node stopped answering: the rest is not attempted

        def one(index: int) -> None:
            if gone.is_set():
                return
            action = changes[index]
            try:
                self._retrying(lambda: self._do(action))
                outcome[index] = None
            except NodeUnreachableError as exc:
                gone.set()  # the rest would only time out one by one
                outcome[index] = ("unreachable", exc.detail)
            except Exception as exc:  # an API error, or anything unforeseen: this action failed,
                outcome[index] = ("failed", failure_text(exc))  # the node's other actions run
            finally:
                self.on_step(action)

        for wave in _waves(changes):
            if gone.is_set():
                break
            if self.concurrency == 1 or len(wave) == 1 or changes[wave[0]].kind is Kind.PROJECT:
                for index in wave:  # project imports change many things at once: one by one
                    one(index)
            else:
                with ThreadPoolExecutor(max_workers=min(self.concurrency, len(wave))) as pool:
                    # not 10,000 futures at once: memory stays flat
                    for _ in bounded_map(pool, one, wave, ahead=4 * self.concurrency):
                        pass
        for index, action in enumerate(changes):  # reported in plan order, whatever ran first
            if index not in outcome:
                continue
            failure = outcome[index]
            if failure is None:
                result.applied += 1
                result.bytes_sent += action.bytes_to_send
                continue
            status, text = failure
            if result.status != "unreachable":
                result.status = status
            result.failures.append((describe(action), text))
        return result

    def _retrying(self, call: Callable[[], Any]) -> Any:
        return retrying(call, attempts=self.retry.attempts, initial_s=self.retry.initial_s,
                        max_s=self.retry.max_s)

    # --- one action ---------------------------------------------------------------------------
    def _do(self, action: Action) -> None:
        if action.change is Change.DELETE:
            assert action.actual is not None
            with contextlib.suppress(NotFoundError):  # already gone: the goal is reached
                self._delete(action.actual)
            self.cache.forget(f"{action.kind}:{action.key}")
            if self.ledger is not None:
                self.ledger.forget(action.kind, action.key)
            return
        entry = action.desired
        assert entry is not None
        stamp = self._write(action, entry)
        if self.ledger is not None:  # what fmeaa wrote, with the node's stamp if it said one
            size = 0 if entry.kind is Kind.PROJECT else entry.size  # a project lists no size
            written = LedgerEntry.of(replace(entry, stamp=stamp, size=size), self.run.sync_id,
                                     self.run.user)
            self.ledger.record(entry.kind, entry.key, written)

    def _write(self, action: Action, entry: Entry) -> Any:
        """Create or update one entry; the node's new date stamp for it, when known."""
        if entry.kind is Kind.ITEM:
            return self._put_item(action, entry)
        if entry.kind is Kind.PROJECT:
            return self._import_project(entry)
        if entry.kind is Kind.REPOSITORY:
            with contextlib.suppress(ConflictError):
                self.client.create_repository(entry.key, str(entry.body.get("description", "")))
        elif entry.kind is Kind.RESOURCE:
            self._put_resource(entry)
        elif entry.kind is Kind.CONNECTION:
            self._put_connection(action, entry)
        elif entry.kind is Kind.DEPLOYMENT_PARAMETER:
            body = dict(entry.body)
            if not body.get("choiceSettings"):
                body.pop("choiceSettings", None)
            self._upsert(action.change, lambda: self.client.create_deployment_parameter(body),
                         lambda: self.client.replace_deployment_parameter(entry.key, body))
        elif entry.kind is Kind.SCHEDULE:
            category, name = entry.body["category"], entry.body["name"]
            self._upsert(action.change,
                         lambda: self.client.create_schedule(dict(entry.body)),
                         lambda: self.client.replace_schedule(category, name, dict(entry.body)))
        else:
            kind = NOTIFICATION_KINDS[entry.kind]
            self._upsert(action.change,
                         lambda: self.client.create_notification(kind, dict(entry.body)),  # type: ignore[arg-type]
                         lambda: self.client.replace_notification(kind, entry.key, dict(entry.body)))  # type: ignore[arg-type]
        return None

    @staticmethod
    def _upsert(change: Change, create: Callable[[], Any], replace: Callable[[], Any]) -> None:
        """Create or replace, whichever the node's current state needs (a retried create may
        have succeeded before its answer was lost)."""
        if change is Change.CREATE:
            try:
                create()
            except ConflictError:
                replace()
        else:
            try:
                replace()
            except NotFoundError:
                create()

    def _put_item(self, action: Action, entry: Entry) -> Any:
        """Upload (unless only the services differ) and set the services; the node's publish
        stamp as its answer gives it (else None: taken from the next listing)."""
        repo, name = split_item_key(entry.key)
        before = sorted(action.actual.services) if action.actual is not None else None
        current: list[str] | None = before  # the node's services, as far as known
        stamp = action.actual.stamp if action.actual is not None else None
        if action.detail != "services":
            path = self.files.file_for(entry)
            overwrite = action.change is Change.UPDATE
            try:
                info = self.client.upload_item(repo, path, name, overwrite=overwrite)
            except (ConflictError, NotFoundError):
                overwrite = not overwrite
                info = self.client.upload_item(repo, path, name, overwrite=overwrite)
            info = info if isinstance(info, dict) else {}
            stamp = info.get("lastPublishDate")
            self.cache.record(f"{Kind.ITEM}:{entry.key}", entry.size, stamp,
                              entry.file_sha256 or "")
            if "services" in info:
                current = service_names(info["services"] or [])
            else:
                current = self._services_after_upload(repo, name, overwrite, before)
        # Set services only when the node does not already have exactly the wanted ones.
        wanted = sorted(entry.services)
        if current != wanted:
            self.client.set_services(repo, name, wanted)
        return stamp

    def _services_after_upload(self, repo: str, name: str, overwrite: bool,
                               before: list[str] | None) -> list[str] | None:
        """An item's services right after an upload whose answer does not list them. What a
        node gives a new item (and whether a re-publish keeps an item's services) is not
        documented (UNCONFIRMED), so it is read back from the node once per run, upload kind
        and file type, and the same rule applied to the node's other uploads of that kind: one
        request per node instead of one per item. None: unknown (the services are then set)."""
        rule_key = ("replace" if overwrite else "create", name.rpartition(".")[2].lower())
        with self._rules_lock:
            rule = self._rules.get(rule_key)
        if rule is None:
            found = self.client.services(repo, name)
            if overwrite and before is None:  # a create that met an existing item: no rule
                return sorted(found)
            if overwrite:
                rule = "keep" if before is not None and sorted(found) == before else "unknown"
            else:
                rule = tuple(sorted(found))
            with self._rules_lock:
                self._rules.setdefault(rule_key, rule)
            return sorted(found)
        if rule == "keep":
            return before
        return list(rule) if isinstance(rule, tuple) else None

    def _put_connection(self, action: Action, entry: Entry) -> None:
        client = self.client
        retyped = action.actual is not None and action.actual.body.get("type") != entry.body.get(
            "type")
        if retyped:  # a V4 update carries no type (fmeflow-cli connections_update.go)
            with contextlib.suppress(NotFoundError):
                client.delete_connection(entry.key)
        self._upsert(Change.CREATE if retyped else action.change,
                     lambda: client.create_connection(dict(entry.body)),
                     lambda: client.replace_connection(entry.key, dict(entry.body)))
        # Remember what credentials we wrote: the node will never show them again.
        self.cache.record(f"{Kind.CONNECTION}:{entry.key}", 0, WRITTEN, entry.secret_digest or "")

    def _import_project(self, entry: Entry) -> Any:
        """Import the package (upload → preview → run → wait), then remember which package the
        node's project now is, by its `lastUpdated` (see NodeReader._projects)."""
        self.client.import_project(self.files.file_for(entry))
        project = next((p for p in self.client.projects() if p["name"] == entry.key), None)
        if project is None:
            raise FmeApiError(self.client.node, "POST", "/fmeapiv4/projects/imports", None,
                              f"the package imported, but the node has no project named "
                              f"{entry.key!r}: check `name:` in the manifest against the package")
        self.cache.record(f"{Kind.PROJECT}:{entry.key}", 0, project.get("lastUpdated"),
                          entry.file_sha256 or "")
        return project.get("lastUpdated")

    def _put_resource(self, entry: Entry) -> None:
        connection, path = split_resource_key(entry.key)
        directory, _, name = path.rpartition("/")
        self.client.upload_resource(connection, directory or "/", self.files.file_for(entry), name)
        self.cache.record(f"{Kind.RESOURCE}:{entry.key}", entry.size, None, entry.file_sha256 or "")

    def _delete(self, entry: Entry) -> None:
        if entry.kind is Kind.REPOSITORY:
            self.client.delete_repository(entry.key)
        elif entry.kind is Kind.ITEM:
            self.client.delete_item(*split_item_key(entry.key))
        elif entry.kind is Kind.RESOURCE:
            self.client.delete_resource(*split_resource_key(entry.key))
        elif entry.kind is Kind.SCHEDULE:
            self.client.delete_schedule(entry.body["category"], entry.body["name"])
        elif entry.kind is Kind.CONNECTION:
            self.client.delete_connection(entry.key)
        elif entry.kind is Kind.DEPLOYMENT_PARAMETER:
            self.client.delete_deployment_parameter(entry.key)
        elif entry.kind is Kind.PROJECT:
            self.client.delete_project(str(entry.body["id"]))
        else:
            self.client.delete_notification(NOTIFICATION_KINDS[entry.kind], entry.key)  # type: ignore[arg-type]


def _waves(changes: list[Action]) -> list[list[int]]:
    """Indices of `changes` in runs of one kind and direction (the plan orders them)."""
    waves: list[list[int]] = []
    last: tuple[Kind, bool] | None = None
    for index, action in enumerate(changes):
        group = (action.kind, action.change is Change.DELETE)
        if group != last:
            waves.append([])
            last = group
        waves[-1].append(index)
    return waves


def describe(action: Action) -> str:
    return f"{action.change} {action.kind} {action.key}"


def failure_text(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """What to report for a failure: an API error as it is (node, method, path, status), any
    other exception by its type and message, with the given secrets masked."""
    if isinstance(exc, FmeApiError):
        text = exc.detail if exc.status is None else str(exc)
    else:
        text = f"unexpected {type(exc).__name__}: {exc}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def is_unreachable(exc: BaseException) -> bool:
    """No HTTP answer at all (refused, timed out, connection broken). A node that answered —
    even 404 or 500 — is reachable: its failure is reported with the path and status."""
    return isinstance(exc, FmeApiError) and exc.status is None
