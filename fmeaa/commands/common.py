"""What every content command shares: target and source options, input validation before any
node is contacted, error reporting with documented exit codes, and output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fmeaa.client import FmeApiError
from fmeaa.cluster.credentials import SECRET_ID_ENV, CredentialsError, CredentialSource, resolve_secret_ref
from fmeaa.cluster.inventory import (
    Inventory,
    InventoryError,
    check_targets,
    discover_inventory,
    load_inventory,
)
from fmeaa.cluster.sync_lock import SyncLockedError
from fmeaa.sync.content_source import DirectorySource, NodeSource
from fmeaa.sync.engine import CredentialsRejectedError, EngineSettings, Observer, default_cache_dir
from fmeaa.sync.manifest import ContentError, load_content_dir
from fmeaa.sync.plan import Action

EXIT_OK, EXIT_FAILED, EXIT_CHANGES = 0, 1, 2
stdout = Console()
stderr = Console(stderr=True)

# --- shared options (typer Annotated aliases) ----------------------------------------------------
InventoryOpt = Annotated[Path | None, typer.Option(
    "--inventory", "-i", envvar="FMEAA_INVENTORY",
    help="Node inventory JSON: `pulumi stack output --json`, or written by `fmeaa sandbox`.")]
ClusterOpt = Annotated[str | None, typer.Option(
    help="Discover nodes by the EC2 tag fme-aa:cluster=NAME instead of --inventory.")]
RegionOpt = Annotated[str | None, typer.Option(envvar="AWS_REGION", help="AWS region for --cluster.")]
SecretOpt = Annotated[str | None, typer.Option(
    "--secret-id", envvar=SECRET_ID_ENV,
    help="AWS Secrets Manager secret with the FME credentials (else $FMEAA_PASSWORD).")]
SourceOpt = Annotated[str, typer.Option(
    "--source", "-s", envvar="FMEAA_SOURCE",
    help="Desired content: a content directory, or node:NAME for a reference node.")]
OnlyOpt = Annotated[list[str] | None, typer.Option(
    "--node", "-n", help="Only these nodes (repeatable). Default: every node.")]
ParallelOpt = Annotated[int, typer.Option(min=1, max=64, help="Nodes worked on at once.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
AllowHttpOpt = Annotated[bool, typer.Option(
    envvar="FMEAA_ALLOW_HTTP",
    help="Allow plain-HTTP node URLs off loopback (credentials then cross the network "
         "unencrypted; only from inside the VPC).")]
CacheDirOpt = Annotated[Path | None, typer.Option(
    help="Where remembered digests and the sync lock live (default $FMEAA_CACHE_DIR or "
         "~/.cache/fmeaa).")]
TimeoutOpt = Annotated[float, typer.Option(min=0.1, help="Seconds to wait for each REST call.")]
PolicyOpt = Annotated[str, typer.Option(
    help="With node:NAME sources, how replicated schedules run: 'one' (enabled only on the "
         "reference node) or 'all' (on every node: fires N times).")]


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Known input and environment errors → one clear message and exit 1 (no traceback).
    None of these messages carries a secret (see each error's module)."""
    try:
        yield
    except (ContentError, InventoryError, CredentialsError, CredentialsRejectedError,
            SyncLockedError) as exc:
        raise fail(str(exc)) from None
    except FmeApiError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # AWS API errors: say which call failed, without a traceback
        if type(exc).__module__.startswith("botocore"):
            raise fail(f"AWS: {exc}") from None
        raise


def resolve_inventory(inventory: Path | None, cluster: str | None, region: str | None,
                      allow_http: bool, only: list[str] | None = None) -> tuple[Inventory, Inventory]:
    """(whole inventory, targeted part), both checked."""
    if inventory is not None and cluster is not None:
        raise InventoryError("give either --inventory or --cluster, not both")
    if cluster is not None:
        if not region:
            raise InventoryError("--cluster needs --region (or $AWS_REGION)")
        whole = discover_inventory(cluster, region)
    elif inventory is not None:
        whole = load_inventory(inventory)
    else:
        raise InventoryError("no nodes given: pass --inventory nodes.json (from `pulumi stack "
                             "output --json` or `fmeaa sandbox`) or --cluster NAME --region R")
    check_targets(whole, allow_http=allow_http)
    return whole, (whole.only(only) if only else whole)


def resolve_credentials(inventory: Inventory, secret_id: str | None) -> CredentialSource:
    if secret_id:
        return CredentialSource.from_secrets_manager(secret_id, inventory.aws_region)
    return CredentialSource.from_env(nodes=[n.name for n in inventory.nodes])


def resolve_source(source: str, inventory: Inventory) -> DirectorySource | NodeSource:
    """`node:NAME` (a node of the inventory) or a content directory, validated now."""
    if source.startswith("node:"):
        name = source.removeprefix("node:")
        inventory.node(name)  # must exist
        return NodeSource(name)
    content = load_content_dir(Path(source))
    return DirectorySource(content)


def secret_resolver(region: str | None) -> Callable[[str], str]:
    return lambda reference: resolve_secret_ref(reference, region=region)


def settings(parallel: int, timeout: float, cache_dir: Path | None, deep: bool = False
             ) -> EngineSettings:
    return EngineSettings(parallel=parallel, timeout_s=timeout,
                          cache_dir=cache_dir or default_cache_dir(), deep=deep)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


class ProgressObserver(Observer):
    """A rich progress bar on stderr (hidden when stderr is not a terminal or with --json)."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=stderr,
                                 transient=True, disable=not enabled)
        self.task: Any = None

    def __enter__(self) -> ProgressObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase(self, name: str, total: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(name, total=total)

    def step(self, node: str, action: Action | None = None) -> None:
        if self.task is not None:
            self.progress.advance(self.task)


@contextmanager
def working(message: str, enabled: bool) -> Iterator[None]:
    """A spinner on stderr while a long step runs (hidden off a terminal and with --json)."""
    if not enabled:
        yield
        return
    with stderr.status(message):
        yield


@dataclass
class Targets:
    whole: Inventory
    chosen: Inventory

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.chosen.nodes]
