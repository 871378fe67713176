"""`fmeaa demo`: the one-command rehearsal on emulated nodes (no AWS, no FME licence needed).
The steps are `fmeaa.app.rehearse`; this module shows each as it finishes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.rule import Rule

from fmeaa import app
from fmeaa.app.rehearsal import EXAMPLE_CONTENT, NodeList, ServerUnchanged
from fmeaa.app.results import Document, ParityResult, PlanResult, SyncResult
from fmeaa.commands.common import EXIT_FAILED, EXIT_OK, JsonOpt, emit_json, reported_errors, stdout
from fmeaa.commands.content import print_parity, print_plan, print_results


def demo(
    source: Annotated[Path, typer.Option(help="Content directory to sync.")] = EXAMPLE_CONTENT,
    nodes: Annotated[int, typer.Option(min=1, max=10, help="Nodes to start with.")] = 3,
    from_server: Annotated[bool, typer.Option(
        "--from-server", help="Rehearse the migration from one FME server instead: an emulated "
                              "old server holding the content is synced (url:, read only) into "
                              "empty nodes, verified against, and proven unchanged.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Rehearse the whole job on emulated FME nodes on 127.0.0.1: sync a content directory to
    every node, prove parity, then scale out by one node and seed it before it would take
    traffic (or, with --from-server, migrate an old server's content into the nodes).
    Everything is torn down at the end."""
    count = 0
    parity_shown = False

    def show(title: str, document: Document | None, ok: bool) -> None:
        nonlocal count, parity_shown
        count += 1
        if as_json:
            return
        stdout.print(Rule(f"[bold]{count}. {title}"))
        if isinstance(document, NodeList):
            for name, url in document.nodes.items():
                stdout.print(f"  {name}  {url}  {document.versions.get(name, '')}")
        elif isinstance(document, PlanResult):
            print_plan(document, show_unchanged=False)
        elif isinstance(document, SyncResult):
            print_results(document)
        elif isinstance(document, ParityResult):
            print_parity(document, show_all=not parity_shown)  # the first matrix in full
            parity_shown = True
        elif isinstance(document, ServerUnchanged):
            verdict = "[green]unchanged[/]" if document.unchanged else "[red]CHANGED[/]"
            stdout.print(f"  {document.server}: {document.before[:16]}… → "
                         f"{document.after[:16]}…  {verdict}")

    with reported_errors():
        rehearse = app.rehearse_migration if from_server else app.rehearse
        result = rehearse(source, nodes, on_step=show)
    if as_json:
        emit_json(result.to_json())
    else:
        verdict = "[green]rehearsal passed[/]" if result.ok else "[red]rehearsal FAILED[/]"
        stdout.print(f"{verdict} in {result.seconds:.1f} s; emulated nodes torn down.")
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)
