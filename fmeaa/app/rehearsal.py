"""The rehearsals (`fmeaa demo`), on emulated FME nodes on 127.0.0.1, no AWS and no FME licence.

`rehearse`: the whole job: N nodes → plan → sync → verify → add a node → seed it → verify all →
tear down. It runs the very operations the real commands run, on a cluster in the middle of a
rolling upgrade: the first node emulates the previous FME Flow release (REST V3 beside V4), the
others the newest (V4 only), so each node is seen spoken to in its own API.

`rehearse_migration` (`fmeaa demo --from-server`): one "old server" (an older FME Flow holding
content, a database connection and a deployment parameter) migrated into N empty nodes of the
newest release: plan, sync and verify against `url:` the old server, and its content digest
before = after (it was only read)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from fmeaa.app import content
from fmeaa.app.results import Document, ParityResult, RehearsalResult, RehearsalStep, SyncResult
from fmeaa.app.targets import ClusterRef
from fmeaa.client import connect
from fmeaa.cluster.credentials import (
    PASSWORD_ENV,
    SOURCE_PASSWORD_ENV,
    SOURCE_USERNAME_ENV,
    USERNAME_ENV,
)
from fmeaa.sync.content_source import secret_variable
from fmeaa.sync.engine import EngineSettings

if TYPE_CHECKING:
    from fmeaa.emulator.versions import FmeVersion

EXAMPLE_CONTENT = Path(__file__).resolve().parents[2] / "examples" / "content"

# (title, result document or None, ok) after each step, for a front end to show as it goes.
StepCallback = Callable[[str, Document | None, bool], None]


class ServerUnchanged(Document):
    """The old server's content digest (everything it holds) before and after the migration."""

    server: str
    before: str
    after: str
    unchanged: bool


class NodeList(Document):
    nodes: dict[str, str]  # name → REST URL
    versions: dict[str, str] = Field(default_factory=dict)  # name → its FME release and APIs


def _described(version: FmeVersion) -> str:
    apis = "+".join(a for a, has in (("V3", version.has_v3), ("V4", version.has_v4)) if has)
    return f"{version.product} {version.name} (REST {apis})"


def _node_list(nodes: list) -> NodeList:
    return NodeList(nodes={n.name: n.url for n in nodes},
                    versions={n.name: _described(n.version) for n in nodes})


class _Steps:
    """The steps of one rehearsal, each shown to the front end as it finishes."""

    def __init__(self, on_step: StepCallback | None) -> None:
        self.started = time.monotonic()
        self.steps: list[RehearsalStep] = []
        self.on_step = on_step

    def __call__(self, title: str, document: Document | None = None, ok: bool = True) -> None:
        self.steps.append(RehearsalStep(step=title, ok=ok,
                                        result=document.to_json() if document else None))
        if self.on_step is not None:
            self.on_step(title, document, ok)

    def result(self) -> RehearsalResult:
        return RehearsalResult(ok=all(s.ok for s in self.steps),
                               seconds=round(time.monotonic() - self.started, 2), steps=self.steps)


@contextmanager
def _environment(*names: str) -> Iterator[None]:
    """A rehearsal hands its generated passwords over in-process; the caller's are restored."""
    saved = {var: os.environ.get(var) for var in names}
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def rehearse(source: Path = EXAMPLE_CONTENT, nodes: int = 3,
             on_step: StepCallback | None = None) -> RehearsalResult:
    from fmeaa.emulator import Sandbox  # only rehearsals need the emulator
    from fmeaa.emulator.versions import NEWEST, PREVIOUS

    step = _Steps(on_step)

    with _environment(USERNAME_ENV, PASSWORD_ENV), \
            tempfile.TemporaryDirectory(prefix="fmeaa-demo-") as tmp, \
            Sandbox(nodes, root=Path(tmp) / "nodes", fme_version=NEWEST,
                    versions={"fme-1": PREVIOUS} if nodes > 1 else {}) as box:
        inventory = box.write_inventory(Path(tmp) / "nodes.json")
        # The rehearsal's own emulated nodes: hand their generated password over in-process.
        os.environ[USERNAME_ENV], os.environ[PASSWORD_ENV] = "admin", box.password
        settings = EngineSettings(cache_dir=Path(tmp) / "cache", timeout_s=10)

        def request(only: tuple[str, ...] = ()) -> content.ContentRequest:
            return content.ContentRequest(str(source), ClusterRef(inventory=inventory, only=only),
                                          settings)

        step(f"{nodes} emulated FME nodes (REST emulator, not FME Server), mid rolling upgrade",
             _node_list(box.nodes))
        step(f"plan: {source} against every node", content.plan(request()))
        synced: SyncResult = content.sync(request())
        step("sync: each node directly, in parallel", synced, synced.ok)
        parity: ParityResult = content.verify(request())
        step("verify: parity matrix", parity, parity.in_sync)
        new = box.add_node()
        box.write_inventory(inventory)
        step(f"scale out: {new.name} joins empty; seed it before it takes traffic",
             content.plan(request((new.name,))))
        seeded = content.sync(request((new.name,)))
        step(f"seed {new.name}", seeded, seeded.ok)
        parity = content.verify(request())
        step(f"verify all {len(box.nodes)} nodes", parity, parity.in_sync)
    return step.result()


OLD_RELEASE = "2024.2"  # the server being migrated from: an older FME Flow (REST V3 and V4)
WAREHOUSE = {"name": "warehouse", "category": "database", "type": "PostgreSQL",
             "parameters": {"HOST": "db.internal", "PORT": "5432", "USER_NAME": "fme"}}


def rehearse_migration(source: Path = EXAMPLE_CONTENT, nodes: int = 3,
                       on_step: StepCallback | None = None) -> RehearsalResult:
    """From one FME server to Active-Active, end to end on emulated servers."""
    import secrets

    from fmeaa.emulator import Sandbox
    from fmeaa.emulator.versions import NEWEST

    step = _Steps(on_step)

    credential = secret_variable(WAREHOUSE["name"], "PASSWORD")
    variables = (USERNAME_ENV, PASSWORD_ENV, SOURCE_USERNAME_ENV, SOURCE_PASSWORD_ENV, credential)
    with _environment(*variables), \
            tempfile.TemporaryDirectory(prefix="fmeaa-migration-") as tmp, \
            Sandbox(1, root=Path(tmp) / "old", prefix="old", fme_version=OLD_RELEASE) as old, \
            Sandbox(nodes, root=Path(tmp) / "nodes", fme_version=NEWEST) as box:
        server = old.nodes[0]
        settings = EngineSettings(cache_dir=Path(tmp) / "cache", timeout_s=10)
        # The old server's own content, published the way its users did (here: by a sync to
        # it as a one-node cluster), plus a connection whose password only it knows.
        os.environ[USERNAME_ENV], os.environ[PASSWORD_ENV] = "admin", old.password
        content.sync(content.ContentRequest(
            str(source), ClusterRef(inventory=old.write_inventory(Path(tmp) / "old.json")),
            settings))
        warehouse_password = secrets.token_urlsafe(12)
        with connect("old", server.url, username="admin", password=old.password) as client:
            client.create_connection({**WAREHOUSE, "parameters": {
                **WAREHOUSE["parameters"], "PASSWORD": warehouse_password}})
            client.create_deployment_parameter({"name": "target_env", "type": "text",
                                                "value": "production"})
        before = server.state.content_digest()
        # Hand the rehearsal's generated passwords over in-process: the nodes' own, the old
        # server's own, and the connection's (a server never returns it).
        os.environ[PASSWORD_ENV] = box.password
        os.environ[SOURCE_USERNAME_ENV], os.environ[SOURCE_PASSWORD_ENV] = "admin", old.password
        os.environ[credential] = warehouse_password
        inventory = box.write_inventory(Path(tmp) / "nodes.json")
        url = f"url:{server.url}"

        def request() -> content.ContentRequest:
            return content.ContentRequest(url, ClusterRef(inventory=inventory), settings)

        step(f"the old server: {_described(server.version)} with content (not in the "
             "cluster's inventory)", NodeList(nodes={"old server": server.url},
                                              versions={"old server": _described(
                                                  server.version)}))
        step(f"the new cluster: {nodes} empty emulated nodes",
             _node_list(box.nodes))
        step(f"plan: {url} → every node", content.plan(request()))
        synced: SyncResult = content.sync(request())
        step("sync from the old server (read only) to each node directly", synced, synced.ok)
        parity: ParityResult = content.verify(request())
        step("verify every node against the old server", parity, parity.in_sync)
        after = server.state.content_digest()
        step("the old server is unchanged: its content digest before = after",
             ServerUnchanged(server=server.url, before=before, after=after,
                             unchanged=before == after), before == after)
    return step.result()
