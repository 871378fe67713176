"""The sync engine: connect to every node, read desired and actual content, plan, apply.

Phases, so that bad input never touches a node:
1. validate (inventory, content, credentials) — done by the caller before the engine exists;
2. connect: log in to every node in parallel; bad credentials abort everything here;
3. read: each node's snapshot (a node that is down is reported, the others go on);
4. plan (pure) and 5. apply, nodes in parallel (bounded), each isolated from the others.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmeaa.client import AuthenticationError, FmeApiError, FmeClient, connect
from fmeaa.cluster.credentials import CredentialSource
from fmeaa.cluster.inventory import Inventory
from fmeaa.sync import ledger as ledgers
from fmeaa.sync.apply import NodeApplier, NodeResult, RetryPolicy, failure_text, is_unreachable
from fmeaa.sync.content_source import NodeSource
from fmeaa.sync.digest_cache import DigestCache
from fmeaa.sync.ledger import Ledger, SyncRun
from fmeaa.sync.node_reader import NodeReader
from fmeaa.sync.plan import Action, ContentPlan, desired_for_node, plan_content
from fmeaa.sync.snapshot import Kind, Snapshot, split_item_key


def new_sync_id() -> str:
    """A run's id: sortable by time, unique across machines."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def default_cache_dir() -> Path:
    return Path(os.environ.get("FMEAA_CACHE_DIR") or Path.home() / ".cache" / "fmeaa")


def local_digest_cache(settings: EngineSettings) -> DigestCache:
    """Digests of content-directory files, remembered by (size, mtime)."""
    return DigestCache(settings.cache_dir / "local-files.json", enabled=not settings.deep)


class CredentialsRejectedError(RuntimeError):
    """A node rejected the credentials: nothing was changed anywhere."""


# Requests in flight to one node at once. Chosen from `./dev bench` (README, "Speed"): at 50 ms
# per request a full sync gains little beyond 8, and 8 keeps a node far from the thread pools
# FME's web application serves requests with (UNCONFIRMED sizes; a node that is overloaded
# says so with 429/503 and Retry-After, which the client honours).
DEFAULT_NODE_CONCURRENCY = 8


@dataclass
class EngineSettings:
    parallel: int = 4  # nodes worked on at once
    node_concurrency: int = DEFAULT_NODE_CONCURRENCY  # requests in flight per node
    timeout_s: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache_dir: Path = field(default_factory=default_cache_dir)
    deep: bool = False  # ignore remembered digests: re-read every byte
    api: str = "auto"  # the client's API preference (fmeaa.client.connect `prefer`)


class Observer:
    """Progress callbacks; the CLI passes a rich progress bar, tests pass nothing."""

    def phase(self, name: str, total: int) -> None: ...
    def step(self, node: str, action: Action | None = None) -> None: ...
    def note(self, message: str) -> None:
        """A long step without a count (draining, waiting for health…)."""


@dataclass
class NodeStatus:
    node: str
    url: str
    error: str | None = None  # why the node could not be used
    reachable: bool = True  # False only when it gave no HTTP answer at all

    @property
    def state(self) -> str:
        """ok | unreachable (no answer) | failed (it answered, with an error)."""
        if self.error is None:
            return "ok"
        return "failed" if self.reachable else "unreachable"


class SyncEngine:
    def __init__(self, inventory: Inventory, credentials: CredentialSource,
                 settings: EngineSettings | None = None, observer: Observer | None = None) -> None:
        self.inventory = inventory
        self.credentials = credentials
        self.settings = settings or EngineSettings()
        self.observer = observer or Observer()
        self.clients: dict[str, FmeClient] = {}
        self.status: dict[str, NodeStatus] = {n.name: NodeStatus(n.name, n.rest_url)
                                              for n in inventory.nodes}
        self._caches: dict[str, DigestCache] = {}
        # Runs "one" schedules that name no owner: the whole cluster's first node, even when
        # this engine only sees some nodes (seeding passes it in).
        self.default_owner = inventory.nodes[0].name
        self._spool: tempfile.TemporaryDirectory[str] | None = None
        # Each node's ledger (what fmeaa wrote there) and what it was last read to hold.
        self.run = SyncRun(sync_id=new_sync_id(), user=current_user())
        self.ledgers: dict[str, Ledger] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self._progress = threading.Lock()  # observers are told one step at a time

    # --- plumbing -----------------------------------------------------------------------------
    def _pool(self, jobs: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=max(1, min(self.settings.parallel, jobs)))

    def cache(self, node: str) -> DigestCache:
        if node not in self._caches:
            url = self.inventory.node(node).rest_url
            tag = hashlib.sha1(url.encode()).hexdigest()[:10]
            path = self.settings.cache_dir / self.inventory.cluster_name / f"{node}-{tag}.json"
            self._caches[node] = DigestCache(path, enabled=not self.settings.deep)
        return self._caches[node]

    @property
    def lock_path(self) -> Path:
        return self.settings.cache_dir / f"{self.inventory.cluster_name}.lock"

    def usable(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n in self.clients and self.status[n].error is None]

    def _failed(self, name: str, exc: BaseException) -> None:
        """Mark one node failed: any exception there is that node's failure, never the run's."""
        creds = self.credentials.for_node(name)
        self.status[name].error = failure_text(exc, (creds.password, creds.token))
        self.status[name].reachable = not is_unreachable(exc)

    def _step(self, node: str, action: Action | None = None) -> None:
        with self._progress:  # actions of one node run on several threads
            self.observer.step(node, action)

    # --- phase 2: connect ---------------------------------------------------------------------
    def connect(self, names: Sequence[str]) -> None:
        """Log in to each node. Unreachable nodes are marked; rejected credentials raise
        CredentialsRejectedError before anything else happens."""
        def login(name: str) -> tuple[str, FmeClient | None, Exception | None]:
            client = None
            node = self.inventory.node(name)
            creds = self.credentials.for_node(name)
            try:
                client = connect(name, node.rest_url, **creds.login(),
                                 prefer=self.settings.api,  # type: ignore[arg-type]
                                 timeout=self.settings.timeout_s,
                                 read_retries=self.settings.retry.attempts - 1,
                                 max_concurrent=self.settings.node_concurrency)
                client.ensure_token()  # a token-only login is proven by the version call
                return name, client, None
            except Exception as exc:  # an API error, or anything unforeseen on this node
                if client is not None:
                    client.close()
                return name, None, exc

        # A node that already failed in this run (at the cluster lock's connect, say) is not
        # tried again: its row already says why, and a dead node would cost its timeouts twice.
        todo = [n for n in names if n not in self.clients and self.status[n].error is None]
        rejected = []
        with self._pool(len(todo)) as pool:
            for name, client, error in pool.map(login, todo):
                if client is not None:
                    self.clients[name] = client
                elif isinstance(error, AuthenticationError):
                    rejected.append(name)
                else:
                    assert error is not None
                    self._failed(name, error)
        if rejected:
            raise CredentialsRejectedError(
                f"node(s) {', '.join(rejected)} rejected the credentials from "
                f"{self.credentials.where}; no node was changed")

    # --- phase 3: read ------------------------------------------------------------------------
    def read_nodes(self, names: Sequence[str], resource_roots: Iterable[tuple[str, str]],
                   desired: Snapshot | None = None) -> dict[str, Snapshot]:
        """Each node's snapshot. With the `desired` snapshot, the repositories it holds are
        listed at once with everything else (see NodeReader `expect`)."""
        roots = list(resource_roots)
        expect = Counter(split_item_key(e.key)[0] for e in desired.of(Kind.ITEM)) \
            if desired is not None else {}
        live = self.usable(names)
        self.observer.phase("reading nodes", len(live))

        def read(name: str) -> tuple[str, Snapshot | None, Exception | None]:
            try:
                # The ledger is read once per run: a re-read after applying keeps what the
                # appliers recorded in it.
                reader = NodeReader(self.clients[name], self.cache(name),
                                    ledger=self.ledgers.get(name),
                                    load_ledger=name not in self.ledgers, deep=self.settings.deep,
                                    concurrency=self.settings.node_concurrency,
                                    expect=expect)
                snap = reader.read(roots)
                if reader.ledger is not None:
                    self.ledgers[name] = reader.ledger
                self.snapshots[name] = snap
                return name, snap, None
            except Exception as exc:  # an API error, or anything unforeseen on this node
                return name, None, exc
            finally:
                self._step(name)

        found: dict[str, Snapshot] = {}
        with self._pool(len(live)) as pool:
            for name, snap, error in pool.map(read, live):
                if snap is None:
                    assert error is not None
                    self._failed(name, error)
                else:
                    found[name] = snap
        return found

    def read_reference(self, source: NodeSource, schedule_policy: str = "one") -> Snapshot:
        self.connect([source.node])
        if source.node not in self.clients:
            raise FmeApiError(source.node, "GET", "/", None,
                              f"reference node unreachable: {self.status[source.node].error}")
        self._spool = tempfile.TemporaryDirectory(prefix="fmeaa-spool-")
        return source.read(self.clients[source.node], self.cache(source.node),
                           Path(self._spool.name), schedule_policy,
                           concurrency=self.settings.node_concurrency)

    # --- phase 4: plan ------------------------------------------------------------------------
    def plan(self, desired: Snapshot, targets: Sequence[str], prune: bool) -> ContentPlan:
        actual = self.read_nodes(targets, desired.resource_roots, desired)
        return plan_content(desired, actual, [n for n in targets if n in actual], prune,
                            default_owner=self.default_owner, recorded=self.recorded())

    def recorded(self) -> dict[str, dict[tuple[Kind, str], str]]:
        """Per node, the digests its ledger holds (what fmeaa last wrote there)."""
        return {name: ledger.digests() for name, ledger in self.ledgers.items()}

    # --- phase 5: apply -----------------------------------------------------------------------
    def apply(self, plan: ContentPlan, files: Any) -> dict[str, NodeResult]:
        work = {n: p for n, p in plan.nodes.items() if p.changes}
        self.observer.phase("applying", sum(len(p.changes) for p in work.values()))

        def run(name: str) -> NodeResult:
            applier = NodeApplier(self.clients[name], self.cache(name), files, self.settings.retry,
                                  on_step=lambda action: self._step(name, action),
                                  concurrency=self.settings.node_concurrency,
                                  ledger=self.ledgers.get(name), run=self.run)
            try:
                return applier.apply(work[name])
            except Exception as exc:  # never the run's traceback: this node's failure
                return NodeResult(name, "failed", failures=[("apply", failure_text(exc))])
            finally:
                self.cache(name).save()

        results = {n: NodeResult(n) for n in plan.nodes}
        with self._pool(len(work)) as pool:
            for result in pool.map(run, list(work)):
                results[result.node] = result
        return results

    # --- after applying: the ledger -------------------------------------------------------------
    def record_ledgers(self, desired: Snapshot, names: Sequence[str]) -> dict[str, str]:
        """Write each node's ledger (`fmeaa.sync.ledger`): what it now holds as the source has
        it, from its last read (call after the convergence re-read). A node that failed in this
        run is left alone (its next run reads it again). Returns node → why its ledger could not
        be written; never raises: the content is synced either way, and a node without a
        ledger only costs the next run downloads."""
        return self.write_ledgers(self._settle(desired, names))

    def write_ledgers(self, names: Sequence[str]) -> dict[str, str]:
        """Write each node's ledger as it stands: what the appliers recorded of this run's
        writes and deletes (a rollback, which has no source to settle against). Returns node
        → why it could not be written; never raises."""
        todo = [n for n in self.usable(names) if n in self.ledgers]

        def record(name: str) -> tuple[str, str | None]:
            ledger = self.ledgers[name]
            try:
                ledgers.write(self.clients[name], ledger)
            except Exception as exc:  # an API error, or anything unforeseen on this node
                creds = self.credentials.for_node(name)
                return name, failure_text(exc, (creds.password, creds.token))
            return name, None

        with self._pool(len(todo)) as pool:
            return {name: error for name, error in pool.map(record, todo) if error}

    def _settle(self, desired: Snapshot, names: Sequence[str]) -> list[str]:
        """Settle each usable node's ledger against its last read; the nodes settled."""
        todo = [n for n in self.usable(names) if n in self.ledgers and n in self.snapshots]
        for name in todo:
            self.ledgers[name].settle(desired_for_node(desired, name, self.default_owner),
                                      self.snapshots[name], self.run)
        return todo

    def writes_needed(self, plan: ContentPlan, desired: Snapshot, names: Sequence[str]) -> bool:
        """Whether syncing `names` as planned would write anything to a node: an action, or a
        ledger that no longer says what the node holds (settled from the last read)."""
        return plan.has_changes or any(ledgers.needs_writing(self.ledgers[n])
                                       for n in self._settle(desired, names))

    def forget_snapshots(self, names: Iterable[str]) -> None:
        """Let go of what these nodes were last read to hold (they are about to be read again;
        their ledgers, with what the appliers recorded, are kept)."""
        for name in names:
            self.snapshots.pop(name, None)

    def forget_reads(self) -> None:
        """Forget what the nodes were read to hold (snapshots and ledgers): the next read asks
        the nodes again, ledgers included (another run may have written them since)."""
        self.ledgers.clear()
        self.snapshots.clear()

    def save_caches(self) -> None:
        for cache in self._caches.values():
            cache.save()

    def close(self) -> None:
        self.save_caches()
        for client in self.clients.values():
            client.close()
        if self._spool is not None:
            shutil.rmtree(self._spool.name, ignore_errors=True)
            self._spool = None

    def __enter__(self) -> SyncEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


