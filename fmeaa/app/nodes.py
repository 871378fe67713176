"""The `nodes` operation: every node's address, health, FME version, licence and load-balancer
state. Works without credentials (health and load-balancer state need none)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fmeaa.app.results import NodesResult, NodeStatusReport
from fmeaa.app.targets import ClusterRef, resolve_targets
from fmeaa.client import FmeApiError, connect
from fmeaa.cluster.credentials import CredentialsError, CredentialSource
from fmeaa.cluster.inventory import Inventory, NodeTarget
from fmeaa.cluster.target_group import target_states


def node_status(node: NodeTarget, credentials: CredentialSource | None, timeout: float
                ) -> NodeStatusReport:
    row = NodeStatusReport(name=node.name, url=node.rest_url, instance_id=node.instance_id)
    try:
        creds = credentials.for_node(node.name) if credentials else None
    except CredentialsError:
        creds = None
    try:
        with connect(node.name, node.rest_url, **(creds.login() if creds else {}),
                     timeout=timeout) as client:
            client.health()
            row.health = "healthy"
            if creds is None:
                return row
            client.ensure_token()
            version = client.version()
            row.version, row.api = version["buildString"], version["apis"]
            licence = client.license_status()
            row.licensed = bool(licence.get("isLicensed"))
            row.license_expiry = licence.get("expiryDate")
    except FmeApiError as exc:
        if row.health == "healthy":
            row.error = str(exc)
        else:
            row.error = exc.detail
            row.health = "unhealthy" if exc.status else "unreachable"
    return row


def _load_balancer_states(inventory: Inventory, rows: list[NodeStatusReport]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError  # only AWS calls need botocore

    try:
        states = target_states(inventory)
        lb_error = None
    except (BotoCoreError, ClientError) as exc:
        states, lb_error = {}, f"target health unavailable ({type(exc).__name__})"
    for row in rows:
        if not inventory.load_balancer.target_group_arn:
            row.in_load_balancer = "no target group"
        elif lb_error:
            row.in_load_balancer = lb_error
        else:
            row.in_load_balancer = states.get(row.instance_id or "", "not registered")


def nodes(ref: ClusterRef, timeout_s: float = 10.0) -> NodesResult:
    targets = resolve_targets(ref)
    whole = targets.whole
    try:
        credentials: CredentialSource | None = targets.credentials()
    except CredentialsError:
        if targets.secret_id:
            raise  # asked for by name: its failure (no region, no such secret) is the answer
        credentials = None  # health and LB state need none; version and licence do
    with ThreadPoolExecutor(max_workers=min(8, len(whole.nodes))) as pool:
        rows = list(pool.map(lambda n: node_status(n, credentials, timeout_s), whole.nodes))
    _load_balancer_states(whole, rows)
    return NodesResult(cluster=whole.cluster_name, nodes=rows,
                       credentials_given=credentials is not None)
