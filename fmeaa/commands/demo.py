"""`fmeaa demo`: the one-command rehearsal on emulated nodes (no AWS, no FME licence needed).

3 emulated nodes → plan → sync → verify → add a 4th node → seed it → verify all → tear down.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.rule import Rule

from fmeaa.commands.common import EXIT_FAILED, EXIT_OK, reported_errors, stdout
from fmeaa.commands.content import (
    Job,
    print_parity,
    print_plan,
    print_results,
    run_plan,
    run_sync,
    run_verify,
)
from fmeaa.credentials import PASSWORD_ENV, USERNAME_ENV
from fmeaa.engine import EngineSettings

EXAMPLE_CONTENT = Path(__file__).resolve().parents[2] / "examples" / "content"


def demo(
    source: Annotated[Path, typer.Option(help="Content directory to sync.")] = EXAMPLE_CONTENT,
    nodes: Annotated[int, typer.Option(min=1, max=10, help="Nodes to start with.")] = 3,
) -> None:
    """Rehearse the whole job on emulated FME nodes on 127.0.0.1: sync a content directory to
    every node, prove parity, then scale out by one node and seed it before it would take
    traffic. Everything is torn down at the end."""
    from fmeaa.emulator import Sandbox  # only rehearsals need the emulator

    started = time.monotonic()
    ok = True
    with tempfile.TemporaryDirectory(prefix="fmeaa-demo-") as tmp, \
            Sandbox(nodes, root=Path(tmp) / "nodes") as box, reported_errors():
        inventory = box.write_inventory(Path(tmp) / "nodes.json")
        # The demo's own emulated nodes: hand their generated password to the sync in-process.
        os.environ[USERNAME_ENV], os.environ[PASSWORD_ENV] = "admin", box.password
        engine_settings = EngineSettings(cache_dir=Path(tmp) / "cache", timeout_s=10)

        def job(only: list[str] | None = None) -> Job:
            return Job(str(source), inventory, None, None, None, only, False, engine_settings)

        def step(title: str) -> None:
            stdout.print(Rule(f"[bold]{title}"))

        step(f"1. {nodes} emulated FME nodes (REST emulator, not FME Server)")
        for n in box.nodes:
            stdout.print(f"  {n.name}  {n.url}")
        step(f"2. plan: {source} against every node")
        print_plan(run_plan(job(), prune=False), show_unchanged=False)
        step("3. sync: each node directly, in parallel")
        result = run_sync(job(), prune=False)
        print_results(result)
        ok &= result["ok"]
        step("4. verify: parity matrix")
        parity = run_verify(job())
        print_parity(parity, show_all=True)
        ok &= parity["inSync"]

        new = box.add_node()
        box.write_inventory(inventory)
        step(f"5. scale out: {new.name} joins empty; seed it before it takes traffic")
        print_plan(run_plan(job([new.name]), prune=False), show_unchanged=False)
        seeded = run_sync(job([new.name]), prune=False)
        print_results(seeded)
        ok &= seeded["ok"]
        step(f"6. verify all {len(box.nodes)} nodes")
        parity = run_verify(job())
        print_parity(parity, show_all=False)
        ok &= parity["inSync"]
        for var in (USERNAME_ENV, PASSWORD_ENV):
            os.environ.pop(var, None)
    verdict = "[green]rehearsal passed[/]" if ok else "[red]rehearsal FAILED[/]"
    stdout.print(f"{verdict} in {time.monotonic() - started:.1f} s; emulated nodes torn down.")
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)
