"""`fmeaa demo`: the one-command rehearsal on emulated nodes (no AWS, no FME licence needed).

3 emulated nodes → plan → sync → verify → add a 4th node → seed it → verify all → tear down.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.rule import Rule

from fmeaa.cluster.credentials import PASSWORD_ENV, USERNAME_ENV
from fmeaa.commands.common import EXIT_FAILED, EXIT_OK, JsonOpt, emit_json, reported_errors, stdout
from fmeaa.commands.content import (
    Job,
    print_parity,
    print_plan,
    print_results,
    run_plan,
    run_sync,
    run_verify,
)
from fmeaa.sync.engine import EngineSettings

EXAMPLE_CONTENT = Path(__file__).resolve().parents[2] / "examples" / "content"


def demo(
    source: Annotated[Path, typer.Option(help="Content directory to sync.")] = EXAMPLE_CONTENT,
    nodes: Annotated[int, typer.Option(min=1, max=10, help="Nodes to start with.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Rehearse the whole job on emulated FME nodes on 127.0.0.1: sync a content directory to
    every node, prove parity, then scale out by one node and seed it before it would take
    traffic. Everything is torn down at the end."""
    from fmeaa.emulator import Sandbox  # only rehearsals need the emulator

    started = time.monotonic()
    steps: list[dict] = []

    def step(title: str, document: dict | None = None, show: Callable[[dict], None] | None = None,
             ok: bool = True) -> None:
        steps.append({"step": title, "ok": ok, **({"result": document} if document else {})})
        if not as_json:
            stdout.print(Rule(f"[bold]{len(steps)}. {title}"))
            if document is not None and show is not None:
                show(document)

    saved = {var: os.environ.get(var) for var in (USERNAME_ENV, PASSWORD_ENV)}
    with tempfile.TemporaryDirectory(prefix="fmeaa-demo-") as tmp, \
            Sandbox(nodes, root=Path(tmp) / "nodes") as box, reported_errors():
        inventory = box.write_inventory(Path(tmp) / "nodes.json")
        # The demo's own emulated nodes: hand their generated password to the sync in-process.
        os.environ[USERNAME_ENV], os.environ[PASSWORD_ENV] = "admin", box.password
        engine_settings = EngineSettings(cache_dir=Path(tmp) / "cache", timeout_s=10)

        def job(only: list[str] | None = None) -> Job:
            return Job(str(source), inventory, None, None, None, only, False, engine_settings)

        try:
            step(f"{nodes} emulated FME nodes (REST emulator, not FME Server)",
                 {"nodes": {n.name: n.url for n in box.nodes}},
                 lambda d: [stdout.print(f"  {k}  {v}") for k, v in d["nodes"].items()])
            step(f"plan: {source} against every node", run_plan(job(), prune=False),
                 lambda d: print_plan(d, show_unchanged=False))
            synced = run_sync(job(), prune=False)
            step("sync: each node directly, in parallel", synced, print_results, synced["ok"])
            parity = run_verify(job())
            step("verify: parity matrix", parity, lambda d: print_parity(d, show_all=True),
                 parity["inSync"])
            new = box.add_node()
            box.write_inventory(inventory)
            step(f"scale out: {new.name} joins empty; seed it before it takes traffic",
                 run_plan(job([new.name]), prune=False), lambda d: print_plan(d, False))
            seeded = run_sync(job([new.name]), prune=False)
            step(f"seed {new.name}", seeded, print_results, seeded["ok"])
            parity = run_verify(job())
            step(f"verify all {len(box.nodes)} nodes", parity,
                 lambda d: print_parity(d, show_all=False), parity["inSync"])
        finally:
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value
    ok = all(s["ok"] for s in steps)
    seconds = round(time.monotonic() - started, 2)
    if as_json:
        emit_json({"ok": ok, "seconds": seconds, "steps": steps})
    else:
        verdict = "[green]rehearsal passed[/]" if ok else "[red]rehearsal FAILED[/]"
        stdout.print(f"{verdict} in {seconds:.1f} s; emulated nodes torn down.")
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)
