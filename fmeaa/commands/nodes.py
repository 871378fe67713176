"""`fmeaa nodes`: every node's address, health, FME version, licence and load-balancer state."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rich.table import Table

from fmeaa.client import FmeApiError, connect
from fmeaa.cluster.credentials import CredentialsError, CredentialSource
from fmeaa.cluster.inventory import Inventory, NodeTarget
from fmeaa.cluster.target_group import target_states
from fmeaa.commands.common import (
    AllowHttpOpt,
    ClusterOpt,
    InventoryOpt,
    JsonOpt,
    RegionOpt,
    SecretOpt,
    TimeoutOpt,
    emit_json,
    reported_errors,
    resolve_credentials,
    resolve_inventory,
    stdout,
)


def node_status(node: NodeTarget, credentials: CredentialSource | None, timeout: float
                ) -> dict[str, Any]:
    row: dict[str, Any] = {"name": node.name, "url": node.rest_url, "instanceId": node.instance_id,
                           "health": "unreachable", "version": None, "licensed": None,
                           "licenseExpiry": None, "error": None}
    try:
        creds = credentials.for_node(node.name) if credentials else None
    except CredentialsError:
        creds = None
    try:
        with connect(node.name, node.rest_url, **(creds.login() if creds else {}),
                     timeout=timeout) as client:
            client.health()
            row["health"] = "healthy"
            if creds is None:
                return row
            client.ensure_token()
            row["version"] = client.info().get("build")
            licence = client.license_status()
            row["licensed"] = bool(licence.get("isLicensed"))
            row["licenseExpiry"] = licence.get("expiryDate")
    except FmeApiError as exc:
        if row["health"] == "healthy":
            row["error"] = str(exc)
        else:
            row["error"] = exc.detail
            row["health"] = "unhealthy" if exc.status else "unreachable"
    return row


def collect(inventory: Inventory, credentials: CredentialSource | None, timeout: float
            ) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=min(8, len(inventory.nodes))) as pool:
        rows = list(pool.map(lambda n: node_status(n, credentials, timeout), inventory.nodes))
    from botocore.exceptions import BotoCoreError, ClientError  # only AWS calls need botocore

    try:
        states = target_states(inventory)
        lb_error = None
    except (BotoCoreError, ClientError) as exc:
        states, lb_error = {}, f"target health unavailable ({type(exc).__name__})"
    for row in rows:
        if not inventory.load_balancer.target_group_arn:
            row["inLoadBalancer"] = "no target group"
        elif lb_error:
            row["inLoadBalancer"] = lb_error
        else:
            row["inLoadBalancer"] = states.get(row["instanceId"] or "", "not registered")
    return rows


def nodes(inventory: InventoryOpt = None, cluster: ClusterOpt = None, region: RegionOpt = None,
          secret_id: SecretOpt = None, timeout: TimeoutOpt = 10.0,
          allow_http: AllowHttpOpt = False, as_json: JsonOpt = False) -> None:
    """List the cluster's nodes: REST URL, health, FME version, licence status and expiry, and
    the node's state in the load balancer's target group."""
    with reported_errors():
        whole, _ = resolve_inventory(inventory, cluster, region, allow_http)
        try:
            credentials: CredentialSource | None = resolve_credentials(whole, secret_id)
        except CredentialsError:
            credentials = None  # health and LB state need none; version and licence do
    rows = collect(whole, credentials, timeout)
    if as_json:
        emit_json({"cluster": whole.cluster_name, "nodes": rows})
        return
    table = Table(title=f"cluster {whole.cluster_name}: {len(rows)} node(s)")
    for column in ("node", "REST URL", "health", "FME version", "licence", "in load balancer"):
        table.add_column(column)
    for r in rows:
        health = {"healthy": "[green]healthy[/]"}.get(r["health"], f"[red]{r['health']}[/]")
        licence = "—" if r["licensed"] is None else (
            f"licensed until {r['licenseExpiry']}" if r["licensed"] else "[red]NOT licensed[/]")
        table.add_row(r["name"], r["url"], health, r["version"] or "—", licence,
                      r["inLoadBalancer"])
    stdout.print(table)
    if credentials is None:
        stdout.print("version and licence need credentials ($FMEAA_PASSWORD or --secret-id)")
