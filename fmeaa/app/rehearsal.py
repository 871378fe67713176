"""The rehearsal (`fmeaa demo`): the whole job on emulated FME nodes on 127.0.0.1, no AWS and
no FME licence: N nodes → plan → sync → verify → add a node → seed it → verify all → tear down.
It runs the very operations the real commands run, on a cluster in the middle of a rolling
upgrade: the first node emulates the previous FME Flow release (REST V3 beside V4), the others
the newest (V4 only), so each node is seen spoken to in its own API."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from fmeaa.app import content
from fmeaa.app.results import Document, ParityResult, RehearsalResult, RehearsalStep, SyncResult
from fmeaa.app.targets import ClusterRef
from fmeaa.cluster.credentials import PASSWORD_ENV, USERNAME_ENV
from fmeaa.sync.engine import EngineSettings

if TYPE_CHECKING:
    from fmeaa.emulator.versions import FmeVersion

EXAMPLE_CONTENT = Path(__file__).resolve().parents[2] / "examples" / "content"

# (title, result document or None, ok) after each step, for a front end to show as it goes.
StepCallback = Callable[[str, Document | None, bool], None]


class NodeList(Document):
    nodes: dict[str, str]  # name → REST URL
    versions: dict[str, str] = Field(default_factory=dict)  # name → its FME release and APIs


def _described(version: FmeVersion) -> str:
    apis = "+".join(a for a, has in (("V3", version.has_v3), ("V4", version.has_v4)) if has)
    return f"{version.product} {version.name} (REST {apis})"


def rehearse(source: Path = EXAMPLE_CONTENT, nodes: int = 3,
             on_step: StepCallback | None = None) -> RehearsalResult:
    from fmeaa.emulator import Sandbox  # only rehearsals need the emulator
    from fmeaa.emulator.versions import NEWEST, PREVIOUS

    started = time.monotonic()
    steps: list[RehearsalStep] = []

    def step(title: str, document: Document | None = None, ok: bool = True) -> None:
        steps.append(RehearsalStep(step=title, ok=ok,
                                   result=document.to_json() if document else None))
        if on_step is not None:
            on_step(title, document, ok)

    saved = {var: os.environ.get(var) for var in (USERNAME_ENV, PASSWORD_ENV)}
    with tempfile.TemporaryDirectory(prefix="fmeaa-demo-") as tmp, \
            Sandbox(nodes, root=Path(tmp) / "nodes", fme_version=NEWEST,
                    versions={"fme-1": PREVIOUS} if nodes > 1 else {}) as box:
        inventory = box.write_inventory(Path(tmp) / "nodes.json")
        # The rehearsal's own emulated nodes: hand their generated password over in-process.
        os.environ[USERNAME_ENV], os.environ[PASSWORD_ENV] = "admin", box.password
        settings = EngineSettings(cache_dir=Path(tmp) / "cache", timeout_s=10)

        def request(only: tuple[str, ...] = ()) -> content.ContentRequest:
            return content.ContentRequest(str(source), ClusterRef(inventory=inventory, only=only),
                                          settings)

        try:
            step(f"{nodes} emulated FME nodes (REST emulator, not FME Server), mid rolling upgrade",
                 NodeList(nodes={n.name: n.url for n in box.nodes},
                          versions={n.name: _described(n.version) for n in box.nodes}))
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
        finally:
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value
    return RehearsalResult(ok=all(s.ok for s in steps),
                           seconds=round(time.monotonic() - started, 2), steps=steps)
