"""`fmeaa nodes`: every node's address, health, FME version and REST API, licence and
load-balancer state."""

from __future__ import annotations

import re

import typer
from rich.markup import escape

from fmeaa import app
from fmeaa.app.results import NodesResult
from fmeaa.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    AllowHttpOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    RegionOpt,
    SecretOpt,
    TimeoutOpt,
    cluster_ref,
    emit_json,
    reported_errors,
    stdout,
)
from fmeaa.commands.tables import Column, FittedTable


def _day(expiry: str | None) -> str:
    """`2027-12-31T00:00:00Z` → `2027-12-31`: a licence expires on a day (--json keeps it all)."""
    if expiry and re.fullmatch(r"\d{4}-\d{2}-\d{2}T00:00:00(\.0+)?(Z|[+-]00:?00)?", expiry):
        return expiry[:10]
    return expiry or "?"


def print_nodes(result: NodesResult) -> None:
    table = FittedTable(f"cluster {result.cluster}: {len(result.nodes)} node(s)", [
        Column("node", key=True), Column("REST URL", key=True), Column("health"),
        Column("FME version", drop=3), Column("REST API", drop=4), Column("licence", drop=1),
        Column("in load balancer", drop=2),
        Column("problem")])
    for r in result.nodes:
        health = {"healthy": "[green]healthy[/]"}.get(r.health, f"[red]{r.health}[/]")
        licence = "—" if r.licensed is None else (
            f"licensed until {_day(r.license_expiry)}" if r.licensed else "[red]NOT licensed[/]")
        table.add_row(r.name, r.url, health, escape(r.version or "—"), r.api or "—", licence,
                      escape(r.in_load_balancer), escape(r.error or ""))
    stdout.print(table.build(stdout.width))
    if not result.credentials_given:
        stdout.print("version and licence need credentials ($FMEAA_PASSWORD or --secret-id)")


def nodes(inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
          secret_id: SecretOpt = None, timeout: TimeoutOpt = 10.0,
          allow_http: AllowHttpOpt = False, as_json: JsonOpt = False) -> None:
    """List the cluster's nodes: REST URL, health, FME version, licence status and expiry, and
    the node's state in the load balancer's target group. Exit 1 if a node is unreachable or
    unhealthy, or refused what was asked of it (credentials, version, licence)."""
    with reported_errors():
        result = app.nodes(cluster_ref(inventory, cluster, region, secret_id,
                                       allow_http=allow_http), timeout)
    emit_json(result.to_json()) if as_json else print_nodes(result)
    raise typer.Exit(EXIT_OK if result.all_healthy else EXIT_FAILED)
