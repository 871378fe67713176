"""Where `one`-policy schedules run when they were moved off their owner: an override record kept
on the nodes themselves, next to the cluster lock (`FME_SHAREDRESOURCE_BACKUP/fme-aa/
schedule-owners.json`), so that every operator's `sync` honours a move and does not move the
schedule back (README, "Schedules that survive their owner").

The record maps a schedule (`category/name`) to the node that runs it now and the owner it
replaces (the manifest's `owner:`, or the default: the inventory's first node). The rule that
`plan`, `sync`, `verify` and seeding apply (`effective_owner`): an override counts while the
manifest still names the owner it replaced and its node is in the inventory — changing `owner:`
in the manifest, or removing the node, hands the schedule back to the manifest.

The record is written to every reachable node, each copy numbered (`revision`); a reader takes
the highest revision it can read, so a node that was down during a move is simply outvoted, and
the next move rewrites it. Moves run under the cluster lock, so revisions never race.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fmeaa.client import FmeApiError, FmeClient, NotFoundError
from fmeaa.cluster.cluster_lock import LOCK_CONNECTION, LOCK_DIRECTORY

OWNERS_CONNECTION = LOCK_CONNECTION
OWNERS_NAME = "schedule-owners.json"
OWNERS_PATH = f"{LOCK_DIRECTORY}/{OWNERS_NAME}"


@dataclass(frozen=True)
class OwnerOverride:
    owner: str  # the node the schedule is enabled on now
    replaces: str  # the owner the manifest gives it (explicit, or the default first node)
    by: str = ""  # user@host of the move
    at: str = ""  # ISO-8601 UTC
    reason: str = ""  # e.g. "drain fme-1"


@dataclass
class ScheduleOwners:
    revision: int = 0
    overrides: dict[str, OwnerOverride] = field(default_factory=dict)  # "category/name" → …

    def to_bytes(self) -> bytes:
        return json.dumps({"fmeaaScheduleOwners": 1, "revision": self.revision,
                           "overrides": {k: asdict(v) for k, v in sorted(self.overrides.items())}},
                          indent=1).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ScheduleOwners:
        doc = json.loads(raw)
        if doc.get("fmeaaScheduleOwners") != 1:
            raise ValueError("not a schedule-owners record")
        return cls(int(doc["revision"]), {k: OwnerOverride(**v)
                                          for k, v in (doc.get("overrides") or {}).items()})

    def moved(self, schedule: str, new_owner: str, old_owner: str, by: str, at: str,
              reason: str) -> None:
        """Record that `schedule` now runs on `new_owner` (it ran on `old_owner`). The owner an
        override replaces stays the manifest's; moving it back there drops the override."""
        replaces = self.overrides[schedule].replaces if schedule in self.overrides else old_owner
        if new_owner == replaces:
            self.overrides.pop(schedule, None)
        else:
            self.overrides[schedule] = OwnerOverride(new_owner, replaces, by, at, reason)


def effective_owner(schedule: str, manifest_owner: str, owners: ScheduleOwners,
                    nodes: Sequence[str]) -> str:
    """Where a `one` schedule runs: the override's node while the manifest still names the
    owner it replaced and that node is in the inventory; otherwise the manifest's owner."""
    override = owners.overrides.get(schedule)
    if override is not None and override.replaces == manifest_owner and override.owner in nodes:
        return override.owner
    return manifest_owner


def next_owner(order: Sequence[str], leaving: str, fit: Mapping[str, bool]) -> str | None:
    """The documented order: the nodes after `leaving` in inventory order, wrapping around, the
    first that is fit to run schedules (healthy, and in the load balancer when there is one)."""
    if leaving in order:
        start = order.index(leaving) + 1
        candidates = list(order[start:]) + list(order[:start - 1])
    else:
        candidates = list(order)
    return next((n for n in candidates if n != leaving and fit.get(n)), None)


def _parallel(clients: Mapping[str, FmeClient], work: object) -> dict[str, object]:
    if not clients:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(clients))) as pool:
        return dict(zip(clients, pool.map(work, clients.values()), strict=True))  # type: ignore[arg-type]


def read_owners(clients: Mapping[str, FmeClient]) -> tuple[ScheduleOwners, dict[str, str]]:
    """The highest revision any reachable node holds (none anywhere: an empty record), and the
    nodes whose copy could not be read, with why."""
    with tempfile.TemporaryDirectory(prefix="fmeaa-owners-") as tmp:
        def read(client: FmeClient) -> ScheduleOwners | str | None:
            dest = Path(tmp) / client.node
            try:
                client.download_resource(OWNERS_CONNECTION, OWNERS_PATH, dest)
                return ScheduleOwners.from_bytes(dest.read_bytes())
            except NotFoundError:
                return None
            except FmeApiError as exc:
                return exc.detail if exc.status is None else str(exc)
            except (ValueError, KeyError, TypeError) as exc:
                return f"{OWNERS_CONNECTION}/{OWNERS_PATH} is not a schedule-owners record ({exc})"

        found = _parallel(clients, read)
    copies = [c for c in found.values() if isinstance(c, ScheduleOwners)]
    errors = {n: c for n, c in found.items() if isinstance(c, str)}
    return max(copies, key=lambda c: c.revision, default=ScheduleOwners()), errors


def write_owners(clients: Mapping[str, FmeClient], owners: ScheduleOwners) -> dict[str, str]:
    """Write the record to every given node; node → why it could not be written."""
    with tempfile.TemporaryDirectory(prefix="fmeaa-owners-") as tmp:
        path = Path(tmp) / OWNERS_NAME
        path.write_bytes(owners.to_bytes())

        def write(client: FmeClient) -> str | None:
            try:
                client.upload_resource(OWNERS_CONNECTION, LOCK_DIRECTORY, path, name=OWNERS_NAME,
                                       overwrite=True)
                return None
            except FmeApiError as exc:
                return exc.detail if exc.status is None else str(exc)

        done = _parallel(clients, write)
    return {n: str(e) for n, e in done.items() if e}
