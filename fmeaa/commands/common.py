"""What every command shares: the cluster and source options (turned into the operations'
typed inputs), error reporting with documented exit codes, JSON output and progress display.

With `--json`, every error is also an error document on stdout (the message stays on stderr):
`{"ok": false, "exitCode": N, "error": {"type": "...", "message": "..."}}`, where `type` is the
error's class (`ContentError`, `InventoryError`, `CredentialsError`, `NotFoundError`…) or
`UsageError` for a command line typer refuses (exit 2).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.exceptions import UsageError  # typer (pinned) vendors click: its UsageError
from typer.core import TyperGroup

from fmeaa.cluster.credentials import SECRET_ID_ENV, SOURCE_SECRET_ID_ENV
from fmeaa.sync.engine import EngineSettings, Observer, default_cache_dir
from fmeaa.sync.manifest import SchedulePolicy

if TYPE_CHECKING:
    from fmeaa.app.history import HistoryPolicy
    from fmeaa.app.targets import ClusterRef
    from fmeaa.sync.plan import Action

EXIT_OK, EXIT_FAILED, EXIT_CHANGES = 0, 1, 2
# `plan`/`verify --fail-on …`: the most serious cause found among those chosen (README, "Drift
# with a cause").
EXIT_DRIFT, EXIT_PENDING, EXIT_EXTRA = 3, 4, 5
EXIT_FOR_CAUSE = {"drift": EXIT_DRIFT, "pending": EXIT_PENDING, "extra": EXIT_EXTRA}


class LazyConsole:
    """A rich Console, made when first used: a command that prints no table or progress (with
    `--json`) never imports rich (start-up time: README, "Speed")."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Any = None

    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console
            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console(), name)


stdout = LazyConsole()
stderr = LazyConsole(stderr=True)

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
    help="Desired content: a content directory, node:NAME for a reference node, or "
         "url:https://SERVER for an FME server outside the cluster (read, never written).")]
SourceSecretOpt = Annotated[str | None, typer.Option(
    "--source-secret-id", envvar=SOURCE_SECRET_ID_ENV,
    help="With a url: source: the AWS Secrets Manager secret with that server's credentials "
         "(else $FMEAA_SOURCE_USERNAME / $FMEAA_SOURCE_PASSWORD or $FMEAA_SOURCE_TOKEN).")]
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
NoHistoryOpt = Annotated[bool, typer.Option(
    "--no-history", help="Do not record what this run replaces on each node (it then cannot be "
                         "rolled back with `fmeaa rollback`).")]
KeepHistoryOpt = Annotated[int, typer.Option(
    "--keep-history", min=1, max=1000, help="How many recorded runs each node keeps (older "
                                            "records and the bytes only they need are deleted).")]

ConcurrencyOpt = Annotated[int, typer.Option(
    "--node-concurrency", min=1, max=64, envvar="FMEAA_NODE_CONCURRENCY",
    help="Requests in flight to each node at once (chosen from `./dev bench`: README "
         "'Speed'). A node that answers 429/503 with Retry-After is given that time, and fewer.")]
DeepOpt = Annotated[bool, typer.Option(
    help="Re-read every file's bytes and every item's services instead of trusting the "
         "node's ledger and remembered digests.")]


def parse_fail_on(value: str | None) -> tuple[str, ...]:
    """`--fail-on pending,drift,extra` → the chosen causes (a usage error names a wrong one)."""
    if value is None:
        return ()
    chosen = tuple(dict.fromkeys(c.strip() for c in value.split(",") if c.strip()))
    wrong = [c for c in chosen if c not in EXIT_FOR_CAUSE]
    if wrong or not chosen:
        raise typer.BadParameter(f"{value!r}: give one or more of pending, drift, extra, "
                                 "separated by commas", param_hint="--fail-on")
    return chosen


def cause_exit_code(found: Any, fail_on: tuple[str, ...]) -> int:
    """The exit code of the most serious cause (drift, then pending, then extra) that
    `found(cause)` reports among `fail_on`; EXIT_OK if none."""
    for cause in ("drift", "pending", "extra"):
        if cause in fail_on and found(cause):
            return EXIT_FOR_CAUSE[cause]
    return EXIT_OK


FailOnOpt = Annotated[str | None, typer.Option(
    "--fail-on", metavar="CAUSES",
    help="For CI: exit with the code of the most serious of these causes found — drift 3 (a "
         "node changed since fmeaa wrote it), pending 4 (the source changed since the last "
         "sync), extra 5 (on a node, never written by fmeaa) — else 0. Comma-separated, e.g. "
         "'drift,pending'. An unreachable node is still 1.")]
PolicyOpt = Annotated[SchedulePolicy, typer.Option(
    case_sensitive=False,
    help="With node:NAME or url: sources, how replicated schedules run: 'one' (enabled only on "
         "the reference node, or on the cluster's first node for a url: source) or 'all' (on "
         "every node: fires N times).")]


def error_document(kind: str, message: str, code: int) -> dict[str, Any]:
    return {"ok": False, "exitCode": code, "error": {"type": kind, "message": message}}


class CommandFailed(typer.Exit):
    """An error already reported on stderr; the `fmeaa` group adds the `--json` document."""

    def __init__(self, message: str, code: int, kind: str) -> None:
        super().__init__(code)
        self.message, self.kind = message, kind


def fail(message: str, code: int = EXIT_FAILED, kind: str = "Error") -> CommandFailed:
    """Report an error on stderr; raise the result to exit with `code`."""
    from rich.markup import escape

    # The message is text, not markup: `connections[warehouse]` must print as written.
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True,
                 soft_wrap=True)
    return CommandFailed(message, code, kind)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Known input and environment errors → one clear message and exit 1 (no traceback).
    None of these messages carries a secret (see each error's module)."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, _known_errors()):
            raise fail(str(exc), kind=type(exc).__name__) from None
        if type(exc).__module__.startswith("botocore"):  # which AWS call failed, no traceback
            raise fail(f"AWS: {exc}", kind="AwsError") from None
        raise


def _known_errors() -> tuple[type[Exception], ...]:
    """The errors `reported_errors` reports as a message (imported when one is raised: a
    command loads only the modules it uses)."""
    from fmeaa.app.seed import SeedError
    from fmeaa.client import FmeApiError
    from fmeaa.cluster.credentials import CredentialsError
    from fmeaa.cluster.inventory import InventoryError
    from fmeaa.cluster.node_lifecycle import LifecycleError
    from fmeaa.cluster.sync_lock import SyncLockedError
    from fmeaa.sync.engine import CredentialsRejectedError
    from fmeaa.sync.history import HistoryError
    from fmeaa.sync.manifest import ContentError
    return (ContentError, InventoryError, CredentialsError, CredentialsRejectedError,
            SyncLockedError, LifecycleError, SeedError, HistoryError, FmeApiError)


def cluster_ref(inventory: Path | None, cluster: str | None, region: str | None,
                secret_id: str | None = None, only: list[str] | None = None,
                allow_http: bool = False) -> ClusterRef:
    """The shared cluster options as the operations' typed input."""
    from fmeaa.app.targets import ClusterRef
    return ClusterRef(inventory=inventory, cluster=cluster, region=region, secret_id=secret_id,
                      only=tuple(only or ()), allow_http=allow_http)


def settings(parallel: int, timeout: float, cache_dir: Path | None, deep: bool = False,
             node_concurrency: int | None = None) -> EngineSettings:
    extra = {"node_concurrency": node_concurrency} if node_concurrency else {}
    return EngineSettings(parallel=parallel, timeout_s=timeout,
                          cache_dir=cache_dir or default_cache_dir(), deep=deep, **extra)


def history_policy(no_history: bool, keep: int) -> HistoryPolicy:
    from fmeaa.app.history import HistoryPolicy
    return HistoryPolicy(enabled=not no_history, keep=keep)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


class ProgressObserver(Observer):
    """A rich progress bar on stderr (hidden when stderr is not a terminal or with --json)."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Any = None  # none at all when disabled: rich is not even imported
        # Only on a terminal: a hidden progress bar still leaves a blank line on a redirected
        # stderr.
        if enabled and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=stderr.console(), transient=True)
        self.task: Any = None

    def __enter__(self) -> ProgressObserver:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def phase(self, name: str, total: int) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(name, total=total)

    def step(self, node: str, action: Action | None = None) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)

    def note(self, message: str) -> None:
        self.phase(message, None)  # type: ignore[arg-type]  # no total: an open-ended bar


class JsonErrorsGroup(TyperGroup):
    """The `fmeaa` group: with `--json` on the command line, every error — one a command
    reports, or a command line typer refuses (exit 2) — is also an error document on stdout."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: Any = None, **extra: Any) -> Any:
        options = args[:args.index("--")] if "--" in args else args
        json_requested = "--json" in options
        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta["fmeaa.json"] = json_requested
        return ctx

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CommandFailed as exc:
            if ctx.meta.get("fmeaa.json"):
                emit_json(error_document(exc.kind, exc.message, exc.exit_code))
            raise
        except UsageError as exc:
            if ctx.meta.get("fmeaa.json"):
                emit_json(error_document("UsageError", exc.format_message(), exc.exit_code))
            raise
