"""Load and validate the stack configuration from Pulumi config, before any resource exists."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as pulumi_runtime_config
from pydantic import ValidationError

from config.stack import SeedMode, StackConfig


class StackConfigError(pulumi.RunError):
    """Invalid stack config. `pulumi up` shows the message without a Python traceback."""


def _all_config() -> dict[str, Any]:
    merged: dict[str, Any] = dict(pulumi_runtime_config.get_config_env())
    merged.update(pulumi_runtime_config.CONFIG.get())
    return merged


def _squashed(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def misspelt_namespace_problems(keys: Iterable[str], namespace: str) -> list[str]:
    """Keys whose namespace looks like the project's but is not (`fmeaa:clusterName`): Pulumi
    passes them on, and the program would silently never read them."""
    problems = []
    for key in sorted(keys):
        prefix, _, name = key.partition(":")
        if prefix != namespace and (_squashed(prefix) == _squashed(namespace) or difflib
                                    .SequenceMatcher(None, prefix, namespace).ratio() >= 0.8):
            problems.append(f"{key}: namespace {prefix!r} is not this project's; did you mean "
                            f"{namespace}:{name}?")
    return problems


def _raw_namespace(namespace: str, merged: Mapping[str, Any]) -> dict[str, Any]:
    """Every `<namespace>:<key>` value Pulumi passed in, JSON objects decoded.

    Scalars stay strings (as Pulumi passes them); pydantic's lax mode turns "3" into 3.
    """
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


def format_problems(problems: Sequence[str]) -> str:
    return "\n".join([f"invalid stack configuration ({len(problems)} problem(s)):",
                      *(f"  - {p}" for p in problems)])


def validation_problems(namespace: str, error: ValidationError) -> list[str]:
    """One line per problem: the full config key, what is wrong, and the value given."""
    lines = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-"))
        key = f"{namespace}:{location}" if location else namespace
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling against Pulumi.example.yaml)"
        given = item.get("input")
        shown = "" if item["type"] in ("missing",) or isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"{key}: {message}{shown}")
    return lines


def parse_stack_config(raw: Mapping[str, Any], namespace: str = "fme-aa",
                       problems: Sequence[str] = ()) -> StackConfig:
    """The validated config; `problems` found elsewhere (e.g. misspelt keys) are reported in
    the same error as the model's, so one run lists everything."""
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise StackConfigError(format_problems([*problems, *validation_problems(namespace, exc)])
                               ) from None
    if problems:
        raise StackConfigError(format_problems(problems))
    return config


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
    if source.startswith("url:"):  # a server outside the cluster: read when seeding
        return
    from fmeaa.sync.manifest import ContentError, load_content_dir

    try:
        load_content_dir(project_dir / source, nodes=[n.name for n in config.node_specs])
    except ContentError as exc:
        raise StackConfigError(f"{namespace}:seed.source: {exc}") from None


def load_stack_config(namespace: str | None = None, project_dir: Path | None = None) -> StackConfig:
    """Read `<project>:*` config and validate it; raises StackConfigError with every problem."""
    namespace = namespace or pulumi.get_project()
    merged = _all_config()
    config = parse_stack_config(_raw_namespace(namespace, merged), namespace,
                                misspelt_namespace_problems(merged, namespace))
    check_seed_source(config, project_dir or Path.cwd(), namespace)
    return config
