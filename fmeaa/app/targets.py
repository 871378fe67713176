"""Which cluster an operation acts on: the inventory (a file, or EC2-tag discovery), the nodes
chosen, and where the credentials come from. Resolved and checked before any node is contacted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fmeaa.cluster.credentials import CredentialSource, resolve_secret_ref
from fmeaa.cluster.inventory import (
    Inventory,
    InventoryError,
    check_targets,
    discover_inventory,
    load_inventory,
)


@dataclass(frozen=True)
class ClusterRef:
    """How the user named the cluster (typed form of the shared CLI options)."""

    inventory: Path | None = None
    cluster: str | None = None
    region: str | None = None
    secret_id: str | None = None
    only: tuple[str, ...] = ()
    allow_http: bool = False


@dataclass
class Targets:
    """The whole (checked) inventory and the part an operation works on."""

    whole: Inventory
    chosen: Inventory
    region: str | None
    secret_id: str | None = None
    _credentials: CredentialSource | None = field(default=None, repr=False)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.chosen.nodes]

    def credentials(self) -> CredentialSource:
        """Secrets Manager with --secret-id (in --region / $AWS_REGION, else the inventory's
        region, else boto3's own default), else the environment; resolved once."""
        if self._credentials is None:
            if self.secret_id:
                self._credentials = CredentialSource.from_secrets_manager(
                    self.secret_id, self.region)
            else:
                self._credentials = CredentialSource.from_env(
                    nodes=[n.name for n in self.whole.nodes])
        return self._credentials

    def secret_resolver(self) -> Callable[[str], str]:
        return lambda reference: resolve_secret_ref(reference, region=self.region)


def resolve_targets(ref: ClusterRef) -> Targets:
    """Load or discover the inventory, refuse unsafe targets (load balancer, plain HTTP off
    loopback, duplicates) and pick the chosen nodes."""
    if ref.inventory is not None and ref.cluster is not None:
        raise InventoryError("give either --inventory or --cluster, not both")
    if ref.cluster is not None:
        if not ref.region:
            raise InventoryError("--cluster needs --region (or $AWS_REGION)")
        whole = discover_inventory(ref.cluster, ref.region)
    elif ref.inventory is not None:
        whole = load_inventory(ref.inventory)
    else:
        raise InventoryError("no nodes given: pass --inventory nodes.json (from `pulumi stack "
                             "output --json` or `fmeaa sandbox`) or --cluster NAME --region R")
    check_targets(whole, allow_http=ref.allow_http)
    chosen = whole.only(list(ref.only)) if ref.only else whole
    return Targets(whole, chosen, ref.region or whole.aws_region, ref.secret_id)
