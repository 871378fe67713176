"""The Pulumi stack an upgrade drives: read and write its config, run `pulumi up`, read its
outputs (the node inventory). `PulumiStack` uses Pulumi's Automation API (which runs the Pulumi
CLI); tests pass a stand-in that evaluates the program under mocks against emulated nodes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Protocol

NAMESPACE = "fme-aa"  # the project name in Pulumi.yaml: every setting is fme-aa:<key>


class StackError(RuntimeError):
    """The Pulumi stack could not be read or updated."""


class StackRunner(Protocol):
    name: str

    def config(self) -> dict[str, Any]:
        """The stack's `fme-aa:*` settings, prefix removed, structured values decoded."""

    def set_config(self, key: str, value: Any) -> None:
        """Set `fme-aa:<key>` (structured values as JSON); None removes the key."""

    def up(self) -> dict[str, Any]:
        """Run `pulumi up` and return the stack outputs (the node inventory)."""


def decode(value: Any) -> Any:
    """Pulumi hands structured config over as JSON text (the program's loader does the same)."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


class PulumiStack:
    """A stack of this Pulumi project, through the Automation API (needs the Pulumi CLI and a
    `pulumi login`, like `pulumi up` itself). Pulumi's own output goes to stderr."""

    def __init__(self, name: str, project_dir: Path) -> None:
        try:
            from pulumi import automation
        except ImportError as exc:  # pragma: no cover - pulumi is a dependency
            raise StackError(f"Pulumi's Automation API is unavailable: {exc}") from None
        self.name = name
        self._auto = automation
        try:
            self._stack = automation.select_stack(stack_name=name, work_dir=str(project_dir))
        except FileNotFoundError:  # the Automation API runs the CLI
            raise StackError(f"cannot open Pulumi stack {name!r} in {project_dir}: the Pulumi "
                             "CLI (`pulumi`) is not on PATH; `fmeaa upgrade` runs `pulumi up` "
                             "through it: install it (https://www.pulumi.com/docs/install/) "
                             "and `pulumi login`") from None
        except Exception as exc:  # not logged in, no such stack
            raise StackError(f"cannot open Pulumi stack {name!r} in {project_dir}: {exc}") from None

    def config(self) -> dict[str, Any]:
        prefix = f"{NAMESPACE}:"
        return {key.removeprefix(prefix): decode(value.value)
                for key, value in self._stack.get_all_config().items()
                if key.startswith(prefix) and not value.secret}

    def set_config(self, key: str, value: Any) -> None:
        """Structured values are written leaf by leaf (`pulumi config set --path`), so the stack
        file keeps them as YAML the way an operator wrote them."""
        full = f"{NAMESPACE}:{key}"
        if full in self._stack.get_all_config():
            self._stack.remove_config(full)
        if value is None:
            return
        if not isinstance(value, dict | list):
            self._stack.set_config(full, self._auto.ConfigValue(value=_text(value)))
            return
        for path, leaf in leaves(full, value):
            self._stack.set_config(path, self._auto.ConfigValue(value=_text(leaf)), path=True)

    def up(self) -> dict[str, Any]:
        try:
            self._stack.up(on_output=lambda line: print(line, file=sys.stderr))
            return {key: out.value for key, out in self._stack.outputs().items()}
        except Exception as exc:
            raise StackError(f"pulumi up on stack {self.name!r} failed: {exc}") from None


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def leaves(path: str, value: Any) -> list[tuple[str, Any]]:
    """`fme-aa:nodes`, [{"name": "a", "zone": 1}] → [("fme-aa:nodes[0].name", "a"), …]."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in leaves(f"{path}.{k}", v)]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in leaves(f"{path}[{i}]", v)]
    return [(path, value)]


def write_config(runner: StackRunner, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Apply the difference between two configs, key by key."""
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            runner.set_config(key, after.get(key))
