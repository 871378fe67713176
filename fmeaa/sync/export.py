"""Write one node's content as a content directory (manifest + files).

Round-trips: exporting node A, syncing the directory to an empty node B and exporting B gives
the same directory. Property values whose names look secret are written as `env:` references,
never as values; the names of the variables to set are returned.

A node only knows whether a schedule is enabled on itself, so each schedule's policy and owner
are reconstructed from where it is enabled across the whole inventory (`ScheduleSpread`):
exporting a node that does not own a `one` schedule must not turn that schedule off everywhere.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from fmeaa.client import FmeClient
from fmeaa.sync.content_source import credential_names, secret_variable
from fmeaa.sync.digest_cache import DigestCache
from fmeaa.sync.manifest import MANIFEST_NAME, SECRET_PARAMETER, ContentError
from fmeaa.sync.node_reader import NodeReader
from fmeaa.sync.snapshot import Entry, Kind, Snapshot, split_item_key, split_resource_key

_SECRET_NAME = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)


@dataclass
class ExportResult:
    directory: Path
    files: int = 0
    bytes: int = 0
    secret_variables: list[str] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)  # exported without their credentials


@dataclass(frozen=True)
class ScheduleSpread:
    """Where one schedule (`category/name`) exists and where it is enabled, over every node."""

    key: str
    present_on: tuple[str, ...]
    enabled_on: tuple[str, ...]


def reconstruct_schedule_policy(spread: ScheduleSpread, nodes: Sequence[str]) -> dict[str, Any]:
    """The manifest fields that reproduce `spread` when synced to `nodes`: enabled on exactly
    one node → `one` owned by it; on every node → `all`; on none → disabled. Any other spread
    (enabled on some nodes only) matches no policy, so the operator decides."""
    enabled = [n for n in nodes if n in spread.enabled_on]
    if len(enabled) == 1:
        return {"enabled": True, "policy": "one", "owner": enabled[0]}
    if not enabled:
        return {"enabled": False, "policy": "all"}
    if len(enabled) == len(nodes):
        return {"enabled": True, "policy": "all"}
    raise ContentError(
        f"schedule {spread.key} is enabled on {', '.join(enabled)} of {len(nodes)} nodes: "
        "neither policy 'one' (one owner) nor 'all' gives that. Disable it on all but one node, "
        "or enable it on every node, then export again")


def _properties(owner: str, properties: dict[str, Any], result: ExportResult) -> dict[str, Any]:
    out = {}
    for name, value in sorted(properties.items()):
        if _SECRET_NAME.search(name) and not isinstance(value, dict):
            variable = secret_variable(owner, name)
            result.secret_variables.append(variable)
            out[name] = {"secret": f"env:{variable}"}
        else:
            out[name] = value
    return out


def _connection_parameters(connection: str, parameters: dict[str, Any],
                           result: ExportResult) -> dict[str, Any]:
    """A connection's parameters with every credential as an `env:` reference the operator
    must fill. Without one, a sync would replace the node's connection by one without
    credentials; with it, an unfilled reference is refused before any node is contacted."""
    out: dict[str, Any] = {k: v for k, v in parameters.items() if not SECRET_PARAMETER.search(k)}
    for name in credential_names(parameters):
        variable = secret_variable(connection, name)
        result.secret_variables.append(variable)
        out[name] = {"secret": f"env:{variable}"}
    return dict(sorted(out.items()))


def _file_name(name: str) -> str:
    """A project's name as a file name (names may hold characters no file system takes)."""
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name).strip(". ") or "project"


def _place(entry: Entry, dest: Path, fetch: Any) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if entry.local_path is not None and entry.local_path.exists():
        shutil.move(str(entry.local_path), dest)
    else:
        fetch(dest)


def export_node(client: FmeClient, directory: Path, connections: tuple[str, ...],
                spool: Path, schedules: Mapping[str, ScheduleSpread] | None,
                nodes: Sequence[str]) -> ExportResult:
    """`schedules`: each schedule's spread over `nodes` (the whole inventory), read beforehand;
    a schedule the exported node holds but no spread covers is written as it is on that node.
    None: the server is not a node of the cluster (`url:`, the one being migrated from): a
    schedule enabled there becomes `one` with the cluster's default owner, a disabled one stays
    disabled."""
    snapshot: Snapshot = NodeReader(client, DigestCache(None, enabled=False), keep_dir=spool).read(
        (c, "/") for c in connections)
    result = ExportResult(directory)
    directory.mkdir(parents=True, exist_ok=True)
    repositories: dict[str, dict[str, Any]] = {}
    for repo in snapshot.of(Kind.REPOSITORY):
        repositories[repo.key] = {"name": repo.key, "description": repo.body.get("description", ""),
                                  "items": []}
    for item in snapshot.of(Kind.ITEM):
        repo, name = split_item_key(item.key)
        relative = PurePosixPath("repositories", repo, name)
        _place(item, directory / relative,
               lambda dest, r=repo, n=name: client.download_item(r, n, dest))
        repositories[repo]["items"].append({"file": str(relative), "services": list(item.services)})
        result.files += 1
        result.bytes += item.size
    resources = []
    for connection in connections:
        base = PurePosixPath("resources", connection)
        files = [e for e in snapshot.of(Kind.RESOURCE) if split_resource_key(e.key)[0] == connection]
        for f in files:
            path = split_resource_key(f.key)[1]
            _place(f, directory / base / path.lstrip("/"),
                   lambda dest, p=path, c=connection: client.download_resource(c, p, dest))
            result.files += 1
            result.bytes += f.size
        (directory / base).mkdir(parents=True, exist_ok=True)
        resources.append({"connection": connection, "source": str(base), "target": "/"})
    manifest: dict[str, Any] = {"version": 1, "repositories": list(repositories.values())}
    manifest["topics"] = [{"name": t.key, "description": t.body.get("description", "")}
                          for t in snapshot.of(Kind.TOPIC)]
    for kind, section, protocol in ((Kind.SUBSCRIPTION, "subscriptions", "subscriberName"),
                                    (Kind.PUBLICATION, "publications", "publisherName")):
        manifest[section] = [
            {"name": e.key, "description": e.body.get("description", ""),
             protocol: e.body.get(protocol, ""), "topics": list(e.body.get("topics", [])),
             "properties": _properties(e.key, dict(e.body.get("properties") or {}), result)}
            for e in snapshot.of(kind)]
    exported_schedules = []
    for s in snapshot.of(Kind.SCHEDULE):
        b = s.body
        here = (client.node,) if b.get("enabled", True) else ()
        if schedules is None:
            policy: dict[str, Any] = {"enabled": bool(here), "policy": "one"}
        else:
            spread = schedules.get(s.key) or ScheduleSpread(s.key, (client.node,), here)
            policy = reconstruct_schedule_policy(spread, nodes)
        exported_schedules.append({
            "name": b["name"], "category": b["category"], "repository": b["repository"],
            "workspace": b["workspace"], "cron": b["cron"], "description": b.get("description", ""),
            **policy, "request": b.get("request") or {}})
    manifest["schedules"] = exported_schedules
    manifest["resources"] = resources
    if client.supports("connections.list"):
        # Nodes never return credential values: each connection is written with what the node
        # shows, and the operator adds its credentials as secret references.
        manifest["connections"] = [
            {"name": c.key, "category": c.body.get("category", ""), "type": c.body.get("type", ""),
             "parameters": _connection_parameters(c.key, dict(c.body.get("parameters") or {}),
                                                  result)}
            for c in snapshot.of(Kind.CONNECTION)]
        result.connections = [c.key for c in snapshot.of(Kind.CONNECTION)]
    if client.supports("projects.export"):
        manifest["projects"] = []
        for p in snapshot.of(Kind.PROJECT):
            relative = PurePosixPath("projects", f"{_file_name(p.key)}.fsproject")
            (directory / relative).parent.mkdir(parents=True, exist_ok=True)
            client.export_project(str(p.body["id"]), directory / relative)
            result.bytes += (directory / relative).stat().st_size
            result.files += 1
            manifest["projects"].append({"file": str(relative), "name": p.key})
    if client.supports("deploymentparameters.list"):
        manifest["deploymentParameters"] = [
            {"name": d.key, "type": d.body.get("type", "text"), "value": d.body.get("value", ""),
             **({"choiceSettings": dict(d.body["choiceSettings"])}
                if d.body.get("choiceSettings") else {})}
            for d in snapshot.of(Kind.DEPLOYMENT_PARAMETER)]
    origin = f"node {client.node}" if schedules is not None else f"server {client.base_url}"
    header = (f"# Exported by `fmeaa export` from {origin}. Secrets are references only.\n"
              "# Nodes never return credentials: set each FMEAA_SECRET_* variable before syncing,\n"
              "# or point the reference at a secret ({secret: 'aws-sm:SECRET_ID#key'}).\n")
    (directory / MANIFEST_NAME).write_text(
        header + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100))
    return result
