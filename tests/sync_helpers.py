"""Helpers for end-to-end tests that drive the real `fmeaa` CLI against emulated nodes."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.testing
from typer.testing import CliRunner

from fmeaa.cli import app
from fmeaa.emulator import Sandbox
from tests.conftest import ROOT
from tests.secret_scan import record

EXAMPLE = ROOT / "examples" / "content"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


# typer's CliRunner builds the click command tree from the typer app on every invoke (every
# command's signature inspected: tens of ms, a few hundred times in the suite). The tree only
# depends on the app, so it is built once.
typer.testing._get_command = functools.cache(typer.testing._get_command)  # type: ignore[assignment]


def fmeaa(*args: str | Path) -> Run:
    """Run the real CLI in-process; its stdout and stderr go to the secret scanner."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    record(f"fmeaa {args[0]} stdout", result.stdout)
    record(f"fmeaa {args[0]} stderr", result.stderr)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest)
    return dest


def node_items(box: Sandbox, name: str) -> dict[str, tuple[int, str, list[str]]]:
    """`repo/item` → (size, sha256, services), read straight from the emulator's state."""
    state = box.node(name).state
    return {f"{r.name}/{i.name}": (i.file.size, i.file.sha256, sorted(i.services))
            for r in state.repositories.values() for i in r.items.values()}


def snapshot_state(box: Sandbox) -> dict[str, Any]:
    """Everything each emulated node holds (to prove that nothing was touched)."""
    result = {}
    for node in box.nodes:
        s = node.state
        files = sorted(str(p.relative_to(s.data_dir / "resources"))
                       for p in (s.data_dir / "resources").rglob("*"))
        result[node.name] = (node_items(box, node.name), sorted(s.repositories), sorted(s.schedules),
                             sorted(s.topics), sorted(s.subscriptions), sorted(s.publications),
                             files)
    return result


def exact_state(box: Sandbox) -> dict[str, Any]:
    """Every byte and definition each node holds as content (its history, on the backup
    connection, left out): items by sha256 and services, data files by sha256, definitions."""
    state = {}
    for node in box.nodes:
        s = node.state
        data = s.data_dir / "resources" / "FME_SHAREDRESOURCE_DATA"
        state[node.name] = {
            "items": {f"{r.name}/{i.name}": (hashlib.sha256(s.blob_path(i.file).read_bytes())
                                             .hexdigest(), sorted(i.services))
                      for r in s.repositories.values() for i in r.items.values()},
            "repositories": sorted(s.repositories),
            "files": {str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in sorted(data.rglob("*")) if p.is_file()},
            "schedules": {f"{c}/{n}": {k: v for k, v in body.items() if k in (
                "cron", "enabled", "workspace", "repository", "description")}
                for (c, n), body in s.schedules.items()},
            "topics": {k: v.get("description") for k, v in s.topics.items()},
            "subscriptions": json.dumps(s.subscriptions, sort_keys=True),
        }
    return state
