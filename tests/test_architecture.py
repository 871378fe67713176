"""The package layout is the design: dependencies point one way (README, "For contributors").
Walks the imports of every module under fmeaa/ (AST, so lazy imports inside functions count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "fmeaa"

# Which first-party packages each fmeaa package may import (besides itself).
ALLOWED = {
    "client": set(),
    "emulator": set(),
    "cluster": {"client"},
    "sync": {"cluster", "client"},
    "app": {"sync", "cluster", "client", "emulator"},
    "commands": {"app", "sync", "cluster", "client", "emulator"},
}
TOP_LEVEL = {"cli": {"commands"}, "__main__": {"cli"}, "__init__": set()}
# What only the application layer may construct: a front end never orchestrates.
ENGINE_AND_CLIENTS = {"SyncEngine", "NodeApplier", "NodeReader", "FmeClient",
                      "connect", "TargetGroups", "seed_node"}


def imported_modules(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def test_the_walk_sees_every_package() -> None:
    assert {layer_of(p) for p in modules()} == set(ALLOWED) | set(TOP_LEVEL)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dependencies_point_one_way(path: Path) -> None:
    layer = layer_of(path)
    allowed = ALLOWED.get(layer, TOP_LEVEL.get(layer, set())) | {layer}
    wrong = []
    for module in imported_modules(path):
        top = module.split(".")[0]
        if top in ("components", "config", "tests", "benchmarks"):
            wrong.append(f"{module} (the Pulumi program or tests: fmeaa never imports them)")
        elif top == "fmeaa" and module != "fmeaa":
            target = module.split(".")[1]
            if target not in allowed:
                wrong.append(f"{module} ({layer} may import {sorted(allowed)})")
        elif module == "fmeaa" and layer not in ("commands", "app", "cli"):
            wrong.append("fmeaa (import the subpackage you need)")
    assert not wrong, f"{path.relative_to(ROOT)} imports " + "; ".join(wrong)


@pytest.mark.parametrize("path", sorted((PACKAGE / "commands").glob("*.py")),
                         ids=lambda p: p.name)
def test_commands_never_build_engines_or_clients(path: Path) -> None:
    tree = ast.parse(path.read_text())
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    used |= {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
             for a in n.names}
    assert not used & ENGINE_AND_CLIENTS, (
        f"fmeaa/commands/{path.name} uses {sorted(used & ENGINE_AND_CLIENTS)}: call an "
        "operation of fmeaa.app instead")


def test_components_take_tags_and_seeding_from_fmeaa() -> None:
    """The other direction is allowed, and used: one definition of the tag names."""
    program = {m for p in (ROOT / "components").glob("*.py") for m in imported_modules(p)}
    assert "fmeaa.cluster.tags" in program
    assert not (ROOT / "components" / "tagging.py").exists()


def test_the_walk_catches_a_wrong_import(tmp_path: Path) -> None:
    """The checker itself can fail: a module importing components is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from components.cluster import Cluster\n    import config.stack\n")
    assert imported_modules(bad) == ["components.cluster", "config.stack"]


@pytest.mark.parametrize("path", sorted((PACKAGE / "emulator").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_emulator_modules_stay_small(path: Path) -> None:
    """One resource family per route module, the HTTP core apart: none over 400 lines."""
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines: split it by concern"
