"""The application layer: one function per user-level operation, each taking typed inputs and
returning a typed result document (`fmeaa.app.results`). Every front end — the `fmeaa` CLI,
the Pulumi dynamic provider (`seed_node`), the rehearsal, a Python caller — goes through here,
so none of them orchestrates the sync engine or the cluster itself.

    from fmeaa import app
    result = app.sync(app.ContentRequest("content/", app.ClusterRef(inventory=Path("nodes.json"))))
"""

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

__all__ = [
    "ClusterRef", "ContentRequest", "ExportRequest", "HistoryPolicy", "PublishRequest",
    "RollbackRequest", "Rollout", "SeedRequest", "Timing", "UpgradeRequest", "drain", "export",
    "history", "nodes", "plan", "publish", "rehearse", "rehearse_migration", "rollback", "rolling",
    "rollout", "scale_in_check", "seed", "seed_node", "sync", "undrain", "unlock", "upgrade",
    "verify",
]
