"""`fmeaa drain`, `undrain`, `scale-in-check`, `seed` and `rolling`: moving one node out of
service and back without users ever reaching an empty or disappearing node."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fmeaa.app.seed import SeedError, SeedRequest, seed_node
from fmeaa.client import FmeClient, connect
from fmeaa.cluster.credentials import CredentialSource
from fmeaa.cluster.inventory import Inventory, NodeTarget
from fmeaa.cluster.node_lifecycle import LifecycleError, drain, scale_in_report, undrain, wait_for_jobs
from fmeaa.cluster.target_group import TargetGroups
from fmeaa.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    AllowHttpOpt,
    CacheDirOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    RegionOpt,
    SecretOpt,
    TimeoutOpt,
    emit_json,
    fail,
    reported_errors,
    resolve_credentials,
    resolve_inventory,
    stdout,
    working,
)
from fmeaa.sync.engine import default_cache_dir

NodeArg = Annotated[str, typer.Argument(help="The node's name in the inventory.")]
WaitOpt = Annotated[float, typer.Option(
    "--wait", min=1, help="Seconds to wait for the load balancer (draining, health).")]
PollOpt = Annotated[float, typer.Option(min=0.05, hidden=True, help="Seconds between polls.")]


def _client(node: NodeTarget, credentials: CredentialSource, timeout: float) -> FmeClient:
    creds = credentials.for_node(node.name)
    client = connect(node.name, node.rest_url, **creds.login(), api="v3", timeout=timeout,
                     read_retries=3)
    client.ensure_token()
    return client


def _seed_request(whole: Inventory, target: NodeTarget, source: str, wait: float,
                  allow_http: bool) -> SeedRequest:
    """Seeding `target` from `--source` (a content directory, or node:NAME of this inventory)."""
    reference_url = None
    if source.startswith("node:"):
        reference_url = whole.node(source.removeprefix("node:")).rest_url
    else:
        source = str(Path(source).resolve())
    return SeedRequest(node=target.name, rest_url=target.rest_url,
                       default_owner=whole.nodes[0].name, source=source,
                       reference_url=reference_url, region=whole.region, allow_http=allow_http,
                       timeout_s=wait, cluster=whole.cluster_name)


def _context(inventory: Path | None, cluster: str | None, region: str | None,
             allow_http: bool) -> tuple[Inventory, TargetGroups]:
    whole, _ = resolve_inventory(inventory, cluster, region, allow_http)
    return whole, TargetGroups(whole)


def drain_command(
    node: NodeArg, inventory: InventoryOpt = None, cluster: ClusterOpt = None,
    region: RegionOpt = None, secret_id: SecretOpt = None,
    wait_jobs: Annotated[bool, typer.Option(
        help="Also wait until the node's running FME jobs have finished.")] = False,
    job_timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for jobs.")] = 3600,
    wait: WaitOpt = 600, force: Annotated[bool, typer.Option(
        help="Drain even if another node is already out of service (capacity below N−1).")] = False,
    poll: PollOpt = 5.0, timeout: TimeoutOpt = 30.0, allow_http: AllowHttpOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Take a node out of the load balancer: deregister it from the target group(s), wait for
    the ALB to finish draining its connections and, with --wait-jobs, for its running jobs.
    Refuses when another node is already out (the cluster would drop below N−1)."""
    with reported_errors():
        whole, groups = _context(inventory, cluster, region, allow_http)
        target = whole.node(node)
        try:
            with working(f"draining {node}…", not as_json):
                drain(groups, whole, target, wait, force=force, poll_s=poll)
            if wait_jobs:
                with _client(target, resolve_credentials(whole, secret_id), timeout) as client, \
                        working(f"waiting for {node}'s running jobs…", not as_json):
                    wait_for_jobs(client, job_timeout, poll)
        except LifecycleError as exc:
            raise fail(str(exc)) from None
    document = {"node": node, "drained": True, "jobsFinished": wait_jobs}
    emit_json(document) if as_json else stdout.print(
        f"{node} is out of the load balancer" + (" and runs no jobs" if wait_jobs else ""))


def undrain_command(
    node: NodeArg, inventory: InventoryOpt = None, cluster: ClusterOpt = None,
    region: RegionOpt = None, wait: WaitOpt = 600, poll: PollOpt = 5.0,
    allow_http: AllowHttpOpt = False, as_json: JsonOpt = False,
) -> None:
    """Put a node back: register it with the target group(s) and wait until it is healthy."""
    with reported_errors():
        whole, groups = _context(inventory, cluster, region, allow_http)
        try:
            with working(f"registering {node} and waiting until healthy…", not as_json):
                undrain(groups, whole.node(node), wait, poll)
        except LifecycleError as exc:
            raise fail(str(exc)) from None
    emit_json({"node": node, "healthy": True}) if as_json else stdout.print(
        f"{node} is back in the load balancer and healthy")


def scale_in_check(
    node: NodeArg, inventory: InventoryOpt = None, cluster: ClusterOpt = None,
    region: RegionOpt = None, secret_id: SecretOpt = None, timeout: TimeoutOpt = 30.0,
    allow_http: AllowHttpOpt = False, as_json: JsonOpt = False,
) -> None:
    """Is NODE safe to remove? Exit 0 only if it is out of the load balancer, runs no jobs and
    is not the only node running any schedule (the owner of `one`-policy schedules)."""
    with reported_errors():
        whole, groups = _context(inventory, cluster, region, allow_http)
        whole.node(node)
        credentials = resolve_credentials(whole, secret_id)
        clients = {n.name: _client(n, credentials, timeout) for n in whole.nodes}
        try:
            report = scale_in_report(node, clients, groups)
        finally:
            for c in clients.values():
                c.close()
    if as_json:
        emit_json({"node": node, "safe": report.safe,
                   "checks": [{"check": c, "ok": ok, "detail": d} for c, ok, d in report.checks]})
    else:
        table = Table(title=f"can {node} be removed?")
        for column in ("check", "result", "detail"):
            table.add_column(column)
        for check, ok, detail in report.checks:
            table.add_row(check, "[green]ok[/]" if ok else "[red]NO[/]", detail)
        stdout.print(table)
        stdout.print(f"{node} is [green]safe to remove[/]" if report.safe
                     else f"{node} is [red]NOT safe to remove[/]")
    raise typer.Exit(EXIT_OK if report.safe else EXIT_FAILED)


def seed_command(
    node: NodeArg,
    source: Annotated[str, typer.Option("--source", "-s", envvar="FMEAA_SOURCE",
                                        help="Content directory or node:NAME.")],
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None,
    register: Annotated[bool, typer.Option(
        help="Register the node with the load balancer once it is in sync.")] = True,
    wait: WaitOpt = 600, poll: PollOpt = 5.0, allow_http: AllowHttpOpt = False,
    cache_dir: CacheDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Seed a new node (manual seed mode): wait for its health check, sync it, prove parity,
    then register it with the load balancer. Until then users cannot reach it."""
    with reported_errors():
        whole, groups = _context(inventory, cluster, region, allow_http)
        target = whole.node(node)
        credentials = resolve_credentials(whole, secret_id)
        request = _seed_request(whole, target, source, wait, allow_http)
        try:
            with working(f"seeding {node}: health, licence, sync, parity…", not as_json):
                result = seed_node(request, credentials,
                                   cache_dir=cache_dir or default_cache_dir(), poll_s=poll)
            registered = False
            if register and groups.present:
                with working(f"registering {node}…", not as_json):
                    undrain(groups, target, wait, poll)
                registered = True
        except (SeedError, LifecycleError) as exc:
            raise fail(str(exc)) from None
    result["registered"] = registered
    emit_json(result) if as_json else stdout.print(
        f"{node} seeded ({result['applied']} change(s), {result['bytesSent']:,} bytes), in sync"
        + (", registered and healthy" if registered else ", not registered"))


def rolling(
    command: Annotated[str, typer.Option(
        "--exec", help="Run per node while it is drained; {node}, {url} and {instance} are "
                       "substituted, and FMEAA_NODE/FMEAA_NODE_URL/FMEAA_INSTANCE_ID are set.")],
    source: Annotated[str, typer.Option("--source", "-s", envvar="FMEAA_SOURCE",
                                        help="Content to re-check (and re-seed) after each node.")],
    inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
    secret_id: SecretOpt = None, wait: WaitOpt = 600, job_timeout: Annotated[float, typer.Option(
        min=1, help="Seconds to wait for each node's running jobs.")] = 3600,
    poll: PollOpt = 5.0, allow_http: AllowHttpOpt = False, cache_dir: CacheDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rolling maintenance, one node at a time: drain (and wait for jobs) → run --exec → seed
    (sync + parity) → undrain and wait healthy → next node. Never more than one node out of
    service; stops at the first failure and leaves that node drained."""
    done: list[str] = []
    with reported_errors():
        whole, groups = _context(inventory, cluster, region, allow_http)
        credentials = resolve_credentials(whole, secret_id)
        for target in whole.nodes:
            try:
                if not as_json:
                    stdout.print(f"[bold]{target.name}[/]: drain → exec → seed → undrain")
                drain(groups, whole, target, wait, poll_s=poll)
                with _client(target, credentials, 30) as client:
                    wait_for_jobs(client, job_timeout, poll)
                argv = shlex.split(command.format(node=target.name, url=target.rest_url,
                                                  instance=target.instance_id or ""))
                env = {**os.environ, "FMEAA_NODE": target.name, "FMEAA_NODE_URL": target.rest_url,
                       "FMEAA_INSTANCE_ID": target.instance_id or ""}
                finished = subprocess.run(argv, env=env, check=False)
                if finished.returncode != 0:
                    raise LifecycleError(f"--exec failed on {target.name} (exit "
                                         f"{finished.returncode}); it stays drained")
                seed_node(_seed_request(whole, target, source, wait, allow_http), credentials,
                          cache_dir=cache_dir or default_cache_dir(), poll_s=poll)
                undrain(groups, target, wait, poll)
                done.append(target.name)
            except (LifecycleError, SeedError) as exc:
                raise fail(f"{exc} (done: {', '.join(done) or 'none'})") from None
    emit_json({"nodes": done}) if as_json else stdout.print(
        f"rolling maintenance done on {len(done)} node(s): {', '.join(done)}")
