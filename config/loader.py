"""Load and validate the stack configuration from Pulumi config, before any resource exists."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as pulumi_runtime_config
from pydantic import ValidationError

from config.stack import SeedMode, StackConfig


class StackConfigError(pulumi.RunError):
    """Invalid stack config. `pulumi up` shows the message without a Python traceback."""


def _raw_namespace(namespace: str) -> dict[str, Any]:
    """Every `<namespace>:<key>` value Pulumi passed in, JSON objects decoded.

    Scalars stay strings (as Pulumi passes them); pydantic's lax mode turns "3" into 3.
    """
    merged: dict[str, Any] = dict(pulumi_runtime_config.get_config_env())
    merged.update(pulumi_runtime_config.CONFIG.get())
    prefix = f"{namespace}:"
    raw: dict[str, Any] = {}
    for full_key, value in merged.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise StackConfigError(
                    f"{full_key}: not valid JSON/YAML structure ({exc.msg} at char {exc.pos})"
                ) from None
        raw[key] = value
    return raw


def format_validation_error(namespace: str, error: ValidationError) -> str:
    """One line per problem: the full config key, what is wrong, and the value given."""
    lines = [f"invalid stack configuration ({error.error_count()} problem(s)):"]
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-"))
        key = f"{namespace}:{location}" if location else namespace
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling against Pulumi.example.yaml)"
        given = item.get("input")
        shown = "" if item["type"] in ("missing",) or isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"  - {key}: {message}{shown}")
    return "\n".join(lines)


def parse_stack_config(raw: Mapping[str, Any], namespace: str = "fme-aa") -> StackConfig:
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise StackConfigError(format_validation_error(namespace, exc)) from None


def check_seed_source(config: StackConfig, project_dir: Path, namespace: str = "fme-aa") -> None:
    """Seeding's content must be valid now, before any resource is declared: a broken manifest
    found while seeding would leave a half-built node out of service."""
    if config.seed.mode is not SeedMode.PULUMI:
        return
    source = config.seed.source
    if source.startswith("node:"):
        names = [n.name for n in config.node_specs]
        if source.removeprefix("node:") not in names:
            raise StackConfigError(f"{namespace}:seed.source: {source!r} is not one of the stack's "
                                   f"nodes ({', '.join(names)})")
        return
    from fmeaa.sync.manifest import ContentError, load_content_dir

    try:
        load_content_dir(project_dir / source, nodes=[n.name for n in config.node_specs])
    except ContentError as exc:
        raise StackConfigError(f"{namespace}:seed.source: {exc}") from None


def load_stack_config(namespace: str | None = None, project_dir: Path | None = None) -> StackConfig:
    """Read `<project>:*` config and validate it; raises StackConfigError with every problem."""
    namespace = namespace or pulumi.get_project()
    config = parse_stack_config(_raw_namespace(namespace), namespace)
    check_seed_source(config, project_dir or Path.cwd(), namespace)
    return config
