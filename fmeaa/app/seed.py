"""Seed before serve: bring one new node to the cluster's content, licensed and healthy, and
prove parity — before anything registers it with the load balancer.

Used by the Pulumi dynamic resource `components/node_seed.py` (during `pulumi up`) and by
`fmeaa seed NODE` (manual mode). Raises SeedError, with a message that never holds a secret,
when the node cannot be made ready in time.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmeaa.app.schedules import honour_moves
from fmeaa.app.sources import OpenSource, SourceServer, is_url_source, open_url_source
from fmeaa.client import FmeApiError, FmeClient, connect
from fmeaa.cluster.credentials import (
    Credentials,
    CredentialsError,
    CredentialSource,
    resolve_secret_ref,
)
from fmeaa.cluster.inventory import Inventory, NodeTarget, check_targets
from fmeaa.sync.content_source import (
    DirectorySource,
    NodeSource,
    UrlSource,
    snapshot_of_directory,
)
from fmeaa.sync.digest_cache import DigestCache, files_sha256
from fmeaa.sync.engine import EngineSettings, SyncEngine
from fmeaa.sync.manifest import MANIFEST_NAME, load_content_dir
from fmeaa.sync.parity import parity


class SeedError(RuntimeError):
    """The node could not be seeded; it must not take traffic."""


@dataclass(frozen=True)
class SeedRequest:
    node: str
    rest_url: str
    default_owner: str  # the cluster's first node: owner of "one" schedules without an owner
    source: str  # absolute content directory, node:NAME or url:https://SERVER
    reference_url: str | None = None  # with node:NAME
    source_secret_id: str | None = None  # with url: (else $FMEAA_SOURCE_PASSWORD)
    credentials_secret_id: str | None = None
    region: str | None = None
    license_mode: str = "marketplace"
    serial_secret_id: str | None = None
    allow_http: bool = True
    timeout_s: float = 1800.0
    cluster: str = "cluster"


def content_digest(source: str) -> str:
    """What the seed depends on: the content directory's manifest and every file's digest
    (a change makes `pulumi up` re-seed). A reference node or an outside server has no static
    digest."""
    if source.startswith("node:") or is_url_source(source):
        return source
    content = load_content_dir(Path(source))
    digest = hashlib.sha256((content.root / MANIFEST_NAME).read_bytes())
    for path, sha in files_sha256(content.files()).items():
        digest.update(f"{path.relative_to(content.root)}={sha}\n".encode())
    return digest.hexdigest()


def wait_until(check: Callable[[], str | None], timeout_s: float, poll_s: float, what: str) -> None:
    """Poll `check` (None = done, else the reason it is not) until done or `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        reason = check() or ""
        if not reason:
            return
        if time.monotonic() >= deadline:
            raise SeedError(f"{what}: still not ready after {timeout_s:.0f} s ({reason})")
        time.sleep(poll_s)


def _healthy(client: FmeClient) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            client.health()
            return None
        except FmeApiError as exc:
            return exc.detail if exc.status is None else f"health check answered {exc.status}"
    return check


# What a seed reports of a node's licence. Not the serial number: a BYOL serial is a secret (it
# lives in Secrets Manager), and FME's licence status returns it.
REPORTED_LICENCE_KEYS = ("isLicensed", "isLicenseExpired", "expiryDate", "maximumEngines",
                         "maximumAuthors")


def licence_report(status: dict[str, Any]) -> dict[str, Any]:
    return {k: status.get(k) for k in REPORTED_LICENCE_KEYS}


def ensure_licensed(client: FmeClient, serial: dict[str, Any], timeout_s: float,
                    poll_s: float) -> dict[str, Any]:
    """Request (or refresh) this machine's licence with the BYOL serial and wait for it.
    Returns the licence report (never the serial)."""
    status = client.license_status()
    if status.get("isLicensed"):
        return licence_report(status)
    contact = {k: str(v) for k, v in serial.items() if k != "serialNumber"}
    client.request_license(str(serial["serialNumber"]), **contact)

    def done() -> str | None:
        request = client.license_request_status()
        if request.get("status") == "FAILED":
            raise SeedError(f"{client.node}: licence request failed: {request.get('message')}")
        return None if client.license_status().get("isLicensed") else \
            f"licence request {request.get('status', 'pending')}"
    wait_until(done, timeout_s, poll_s, f"{client.node}: licence")
    return licence_report(client.license_status())


def read_serial(secret_id: str, region: str | None) -> dict[str, Any]:
    """The BYOL serial (and contact fields) from Secrets Manager: JSON with `serialNumber`,
    or the bare serial."""
    raw = resolve_secret_ref(f"aws-sm:{secret_id}", region=region)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = {"serialNumber": raw.strip()}
    if not isinstance(value, dict) or not value.get("serialNumber"):
        raise SeedError(f"secret {secret_id!r} holds no serialNumber")
    return value


def _serial(request: SeedRequest) -> dict[str, Any]:
    assert request.serial_secret_id
    return read_serial(request.serial_secret_id, request.region)


def seed_node(request: SeedRequest, credentials: CredentialSource | None = None,
              serial: dict[str, Any] | None = None, cache_dir: Path | None = None,
              poll_s: float = 5.0, source_credentials: Credentials | None = None
              ) -> dict[str, Any]:
    """Wait for health → licence (BYOL) → sync → prove parity, for ONE node. A `url:` source
    (the server being migrated from) is opened first, read only, so a bad source fails before
    the node is waited for."""
    nodes = [NodeTarget(name=request.node, rest_url=request.rest_url)]
    reference = request.source.removeprefix("node:") if request.source.startswith("node:") else None
    if reference and reference != request.node:
        if not request.reference_url:
            raise SeedError(f"seeding from node:{reference} needs its REST URL")
        nodes.append(NodeTarget(name=reference, rest_url=request.reference_url))
    inventory = check_targets(Inventory(cluster_name=request.cluster, region=request.region,
                                        nodes=nodes), allow_http=request.allow_http)
    if credentials is None and not request.credentials_secret_id:
        raise SeedError(f"{request.node}: no FME credentials to seed it with: name the Secrets "
                        "Manager secret that holds them (seed.credentialsSecretId)")
    try:
        credentials = credentials or CredentialSource.from_secrets_manager(
            str(request.credentials_secret_id), request.region)
        creds = credentials.for_node(request.node)
    except CredentialsError as exc:
        raise SeedError(str(exc)) from None
    settings = EngineSettings(parallel=1, timeout_s=60,
                              cache_dir=cache_dir or Path(tempfile.gettempdir()) / "fmeaa-seed")
    server: OpenSource | None = None
    if is_url_source(request.source):
        server = open_url_source(
            request.source, SourceServer(request.source, request.source_secret_id,
                                         request.region, request.allow_http),
            inventory, settings, lambda ref: resolve_secret_ref(ref, region=request.region),
            source_credentials)
    try:
        return _seed(request, inventory, credentials, creds, settings, server, serial, poll_s)
    finally:
        if server is not None:
            server.close()


def _seed(request: SeedRequest, inventory: Inventory, credentials: CredentialSource,
          creds: Credentials, settings: EngineSettings, server: OpenSource | None,
          serial: dict[str, Any] | None, poll_s: float) -> dict[str, Any]:
    reference = request.source.removeprefix("node:") if request.source.startswith("node:") else None
    started = time.monotonic()
    remaining = lambda: max(1.0, request.timeout_s - (time.monotonic() - started))  # noqa: E731
    with connect(request.node, request.rest_url, **creds.login(), timeout=30) as probe:
        try:
            wait_until(_healthy(probe), remaining(), poll_s, f"{request.node}: FME health check")
        except SeedError as exc:
            if "cannot connect" in str(exc) or "no answer in time" in str(exc):
                raise SeedError(
                    f"{exc}. Can this machine reach {request.rest_url}? Seeding runs where "
                    "`pulumi up` (or `fmeaa seed`) runs: run it from inside the VPC with adminCidr "
                    "admitting it, or use seed.mode 'manual' and `fmeaa seed` through SSM port "
                    "forwarding (README, \"Seed before serve\")") from None
            raise
        probe.ensure_token()
        licence = None
        if request.license_mode == "byol":
            licence = ensure_licensed(probe, serial or _serial(request), remaining(), poll_s)
    if reference == request.node:  # the reference node is the source: nothing to copy
        return {"node": request.node, "applied": 0, "bytesSent": 0, "licence": licence}
    with SyncEngine(inventory, credentials, settings) as engine:
        engine.default_owner = request.default_owner
        files: NodeSource | DirectorySource | UrlSource
        if server is not None:
            files = server.source
            desired = server.read()
        elif reference:
            files = NodeSource(reference)
            desired = engine.read_reference(files)
        else:
            content = load_content_dir(Path(request.source))
            files = DirectorySource(content)
            desired = snapshot_of_directory(content, DigestCache(None, enabled=False),
                                            lambda ref: resolve_secret_ref(ref, region=request.region))
        engine.connect([request.node])
        if request.node in engine.usable([request.node]):  # where moved schedules run now
            desired = honour_moves(desired, {request.node: engine.clients[request.node]},
                                   request.default_owner, None)
        plan = engine.plan(desired, [request.node], prune=False)
        if request.node not in plan.nodes:
            status = engine.status[request.node]
            raise SeedError(f"{request.node}: {status.state} ({status.error})")
        result = engine.apply(plan, files)
        actual = engine.read_nodes([request.node], desired.resource_roots)
        engine.record_ledgers(desired, [request.node])
        report = parity(desired, actual, [request.node], request.default_owner,
                        recorded=engine.recorded())
    if not result[request.node].ok or not report.in_sync:
        problems = [f"{a}: {e}" for a, e in result[request.node].failures]
        problems += [f"{r.kind} {r.key} differs" for r in report.rows if r.status == "drift"]
        raise SeedError(f"{request.node}: not in sync after seeding: " + "; ".join(problems[:10]))
    return {"node": request.node, "applied": result[request.node].applied,
            "bytesSent": result[request.node].bytes_sent, "licence": licence}
