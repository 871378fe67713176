"""The application layer: one function per user-level operation, each taking typed inputs and
returning a typed result document (`fmeaa.app.results`). Every front end — the `fmeaa` CLI,
the Pulumi dynamic provider (`seed_node`), the rehearsal, a Python caller — goes through here,
so none of them orchestrates the sync engine or the cluster itself.

    from fmeaa import app
    result = app.sync(app.ContentRequest("content/", app.ClusterRef(inventory=Path("nodes.json"))))

Each name is imported from its module when first used, so a caller (a CLI command) loads only
the operations it runs (start-up time: README, "Speed").
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

# name → the module of fmeaa.app that defines it
_WHERE = {
    "ContentRequest": "content", "PublishRequest": "content", "plan": "content",
    "publish": "content", "sync": "content", "verify": "content",
    "ExportRequest": "export", "export": "export",
    "HistoryPolicy": "history", "RollbackRequest": "history", "history": "history",
    "rollback": "history",
    "Timing": "lifecycle", "drain": "lifecycle", "rolling": "lifecycle",
    "scale_in_check": "lifecycle", "seed": "lifecycle", "undrain": "lifecycle",
    "unlock": "locking",
    "nodes": "nodes",
    "rehearse": "rehearsal", "rehearse_migration": "rehearsal",
    "Rollout": "rollout", "rollout": "rollout",
    "SeedRequest": "seed", "seed_node": "seed",
    "ClusterRef": "targets",
    "UpgradeRequest": "upgrade", "upgrade": "upgrade",
}
__all__ = [
    "ClusterRef", "ContentRequest", "ExportRequest", "HistoryPolicy", "PublishRequest",
    "RollbackRequest", "Rollout", "SeedRequest", "Timing", "UpgradeRequest", "drain", "export",
    "history", "nodes", "plan", "publish", "rehearse", "rehearse_migration", "rollback", "rolling",
    "rollout", "scale_in_check", "seed", "seed_node", "sync", "undrain", "unlock", "upgrade",
    "verify",
]

if TYPE_CHECKING:
    from fmeaa.app.content import ContentRequest, PublishRequest, plan, publish, sync, verify
    from fmeaa.app.export import ExportRequest, export
    from fmeaa.app.history import HistoryPolicy, RollbackRequest, history, rollback
    from fmeaa.app.lifecycle import Timing, drain, rolling, scale_in_check, seed, undrain
    from fmeaa.app.locking import unlock
    from fmeaa.app.nodes import nodes
    from fmeaa.app.rehearsal import rehearse, rehearse_migration
    from fmeaa.app.rollout import Rollout, rollout
    from fmeaa.app.seed import SeedRequest, seed_node
    from fmeaa.app.targets import ClusterRef
    from fmeaa.app.upgrade import UpgradeRequest, upgrade


class _Operations(ModuleType):
    """This package as a module whose operations win over its submodules of the same name
    (`app.history` is the operation, not `fmeaa.app.history`): importing a submodule sets the
    package attribute of its name, which would otherwise hide the operation."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and name in _WHERE:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Operations


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value  # once: later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
