"""`fmeaa sandbox`: start N emulated FME nodes on 127.0.0.1 and write a node inventory."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

PASSWORD_ENV = "FMEAA_PASSWORD"
USERNAME = "admin"


def parse_fault(spec: str) -> tuple[str, str, float | None]:
    """`fme-2:latency=0.5`, `fme-3:error_rate=0.2`, `fme-1:drop_upload_after=65536`,
    `fme-1:token_ttl=5` (tokens expire after 5 s), `fme-1:down`, `fme-4:unlicensed` (a BYOL
    clone that must request its licence), `fme-2:jobs=3` (3 running jobs), `fme-2:fail_jobs`
    (every job submitted there ends in failure: a smoke job that fails), or an overloaded
    node: `fme-2:throttle_above=4` (429 beyond 4 requests in flight), `fme-2:throttle_next=10`
    (the next 10 requests answered 429), `fme-2:retry_after=2` (the Retry-After they carry)."""
    node, _, rest = spec.partition(":")
    kind, _, value = rest.partition("=")
    if not node or kind not in ("latency", "error_rate", "drop_upload_after", "token_ttl", "down",
                                "unlicensed", "jobs", "fail_jobs", "throttle_above",
                                "throttle_next", "retry_after"):
        raise typer.BadParameter(
            f"{spec!r}: use NODE:latency=SECONDS, NODE:error_rate=0..1, "
            "NODE:drop_upload_after=BYTES, NODE:token_ttl=SECONDS, NODE:down, NODE:unlicensed, "
            "NODE:jobs=N, NODE:fail_jobs, NODE:throttle_above=N, NODE:throttle_next=N or "
            "NODE:retry_after=SECONDS")
    if kind in ("down", "unlicensed", "fail_jobs"):
        return node, kind, None
    try:
        return node, kind, float(value)
    except ValueError:
        raise typer.BadParameter(f"{spec!r}: {value!r} is not a number") from None


def parse_versions(specs: list[str]) -> tuple[str | None, dict[str, str]]:
    """`--fme-version 2026.1` (every node) and `--fme-version fme-1=2025.2` (one node: a cluster
    in the middle of a rolling upgrade) → (default version or None, {node: version})."""
    from fmeaa.emulator.versions import VERSIONS  # only rehearsals need the emulator

    default, per_node = None, {}
    for spec in specs:
        node, _, version = spec.rpartition("=")
        if version not in VERSIONS:
            raise typer.BadParameter(f"{spec!r}: the emulator plays FME {', '.join(VERSIONS)} "
                                     "(use VERSION or NODE=VERSION)")
        if node:
            per_node[node] = version
        else:
            default = version
    return default, per_node


def sandbox(
    nodes: Annotated[int, typer.Option("--nodes", "-n", min=1, max=20,
                                       help="How many nodes to start.")] = 3,
    fme_version: Annotated[list[str] | None, typer.Option(
        "--fme-version", help="FME version the nodes emulate (default: the newest, 2026.1); "
        "NODE=VERSION for one node, e.g. fme-1=2025.2 (repeatable).")] = None,
    inventory: Annotated[Path, typer.Option(help="Where to write the node inventory.")] = Path(
        "nodes.json"),
    state_dir: Annotated[Path, typer.Option(help="Each node's state lives here.")] = Path(
        ".fmeaa/sandbox"),
    persist: Annotated[bool, typer.Option(
        help="Keep node state in --state-dir across restarts.")] = False,
    fault: Annotated[list[str] | None, typer.Option(
        help="Inject a fault, e.g. fme-2:latency=0.5 (repeatable).")] = None,
    duration: Annotated[float, typer.Option(
        help="Stop after this many seconds (0 = until Ctrl-C).")] = 0,
    load_balancer: Annotated[bool, typer.Option(
        "--load-balancer", help="Also emulate the ALB's target groups (AWS's ELBv2 API, by moto "
                                "on 127.0.0.1; needs `pip install 'fme-aa[sandbox]'`) so drain, "
                                "undrain, scale-in-check, seed and rolling can be rehearsed.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the inventory as JSON.")] = False,
) -> None:
    """Start emulated FME nodes (an EMULATOR of the REST API, not FME Server) for rehearsals.

    The admin password comes from $FMEAA_PASSWORD, or is generated and written to
    STATE_DIR/credentials.env (mode 600) as `export` lines: `source` it. It is never printed.
    """
    from fmeaa.emulator import Sandbox  # only rehearsals need the emulator

    faults = [parse_fault(f) for f in fault or []]
    version, per_node = parse_versions(fme_version or [])
    unknown = sorted(set(per_node) - {f"fme-{i + 1}" for i in range(nodes)})
    if unknown:
        raise typer.BadParameter(f"--fme-version names no such node: {', '.join(unknown)} "
                                 f"(the nodes are fme-1 … fme-{nodes})")
    state_dir.mkdir(parents=True, exist_ok=True)
    password = os.environ.get(PASSWORD_ENV) or secrets.token_urlsafe(18)
    credentials = state_dir / "credentials.env"
    if PASSWORD_ENV not in os.environ:
        credentials.touch(mode=0o600)
        credentials.write_text(f"export FMEAA_USERNAME={shlex.quote(USERNAME)}\n"
                               f"export {PASSWORD_ENV}={shlex.quote(password)}\n")
    try:
        box = Sandbox(nodes, root=state_dir, password=password, persist=persist,
                      load_balancer=load_balancer, versions=per_node,
                      **({"fme_version": version} if version else {}))
    except RuntimeError as exc:  # the optional moto dependency is missing
        Console(stderr=True).print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    try:
        for node_name, kind, value in faults:
            try:
                node = box.node(node_name)
            except StopIteration:
                raise typer.BadParameter(f"no node named {node_name!r}") from None
            if kind == "down":
                node.stop()
            elif kind == "unlicensed":
                node.state.unlicense()
            elif kind == "fail_jobs":
                node.state.failing_jobs.add("*")
            elif kind == "jobs":
                node.state.start_jobs(int(value or 0))
            elif kind == "token_ttl":
                node.state.token_ttl_s = value
            elif kind in ("throttle_above", "throttle_next"):
                setattr(node.faults, kind, int(value or 0))
            elif kind == "retry_after":
                node.faults.retry_after_s = float(value or 0)
            else:
                setattr(node.faults, "latency_s" if kind == "latency" else kind,
                        int(value) if kind == "drop_upload_after" else value)  # type: ignore[arg-type]
        box.write_inventory(inventory)
        if as_json:
            typer.echo(json.dumps(box.inventory(), indent=2))
        else:
            table = Table(title=f"{nodes} emulated FME nodes (inventory: {inventory})")
            for column in ("node", "REST URL", "emulates", "state"):
                table.add_column(column)
            for n in box.nodes:
                table.add_row(n.name, n.url, n.version.build_string,
                              "running" if n.running else "down (fault)")
            Console(stderr=True).print(table)
            if box.load_balancer is not None:
                Console(stderr=True).print(
                    f"load balancer: target groups sandbox-web and sandbox-ws, every node "
                    f"registered (emulated ELBv2 API at {box.load_balancer.endpoint_url})")
            where = f"${PASSWORD_ENV}" if PASSWORD_ENV in os.environ else \
                f"{credentials} (load it with: source {shlex.quote(str(credentials))})"
            Console(stderr=True).print(f"credentials: user '{USERNAME}', password in {where}",
                                       highlight=False, markup=False)
        deadline = time.monotonic() + duration if duration > 0 else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        box.close()
