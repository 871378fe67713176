"""`fmeaa nodes`: every node's address, health, FME version and REST API, licence and
load-balancer state."""

from __future__ import annotations

from rich.table import Table

from fmeaa import app
from fmeaa.app.results import NodesResult
from fmeaa.commands.common import (
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


def print_nodes(result: NodesResult) -> None:
    table = Table(title=f"cluster {result.cluster}: {len(result.nodes)} node(s)")
    for column in ("node", "REST URL", "health", "FME version", "REST API", "licence",
                   "in load balancer"):
        table.add_column(column)
    for r in result.nodes:
        health = {"healthy": "[green]healthy[/]"}.get(r.health, f"[red]{r.health}[/]")
        licence = "—" if r.licensed is None else (
            f"licensed until {r.license_expiry}" if r.licensed else "[red]NOT licensed[/]")
        table.add_row(r.name, r.url, health, r.version or "—", r.api or "—", licence,
                      r.in_load_balancer)
    stdout.print(table)
    if not result.credentials_given:
        stdout.print("version and licence need credentials ($FMEAA_PASSWORD or --secret-id)")


def nodes(inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
          secret_id: SecretOpt = None, timeout: TimeoutOpt = 10.0,
          allow_http: AllowHttpOpt = False, as_json: JsonOpt = False) -> None:
    """List the cluster's nodes: REST URL, health, FME version, licence status and expiry, and
    the node's state in the load balancer's target group."""
    with reported_errors():
        result = app.nodes(cluster_ref(inventory, cluster, region, secret_id,
                                       allow_http=allow_http), timeout)
    emit_json(result.to_json()) if as_json else print_nodes(result)
