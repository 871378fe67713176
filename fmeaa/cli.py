"""The `fmeaa` command line (typer). Thin: each command lives in `fmeaa/commands/`.

Exit codes (every command):
  0  success; for `plan`/`verify`: every node in sync
  1  error: invalid input (refused before any node is touched), a node failed or could not be
     reached, or — for `verify` — drift
  2  `plan --detailed-exitcode` only: changes are pending; also typer's usage errors
  3, 4, 5  `plan`/`verify --fail-on CAUSES`: drift (3), pending (4) or extra (5) found — the most
     serious of the chosen causes
With `--json`, an error is also a document on stdout (`fmeaa.commands.common.error_document`).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module
from typing import Any

import typer
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

from fmeaa.commands.common import JsonErrorsGroup

# Each command: its module under fmeaa.commands and the function (or sub-Typer) there. Commands
# are built when first asked for, so `fmeaa sync` imports the sync command's code only — not
# the AWS, upgrade, rehearsal and emulator code of the other commands (start-up time: README,
# "Speed"); `fmeaa --help` builds them all.
COMMANDS: dict[str, tuple[str, str]] = {
    "nodes": ("nodes", "nodes"),
    "plan": ("content", "plan"),
    "sync": ("content", "sync"),
    "verify": ("content", "verify"),
    "export": ("export", "export"),
    "history": ("history", "history_command"),
    "rollback": ("history", "rollback_command"),
    "seed": ("lifecycle", "seed_command"),
    "drain": ("lifecycle", "drain_command"),
    "undrain": ("lifecycle", "undrain_command"),
    "scale-in-check": ("lifecycle", "scale_in_check"),
    "rolling": ("lifecycle", "rolling"),
    "unlock": ("lock", "unlock_command"),
    "upgrade": ("upgrade", "upgrade"),
    "publish": ("publish", "publish"),
    "sandbox": ("sandbox", "sandbox"),
    "demo": ("demo", "demo"),
    "schedules": ("schedules", "schedules_app"),  # a group: typer lists groups last
}
WITH_CAUSES_EPILOG = ("plan", "verify")


class LazyCommands(MutableMapping[str, Any]):
    """The group's commands by name, each built (its module imported) on first access."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = _build(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._built]))

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._built))


class FmeaaGroup(JsonErrorsGroup):
    """The `fmeaa` group, its commands loaded lazily (`LazyCommands`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands()


app = typer.Typer(
    name="fmeaa",
    cls=FmeaaGroup,
    help="Keep N independent FME Server / FME Flow nodes (Active-Active) identical: every "
         "update goes to each node directly, never through the load balancer.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    epilog="Exit codes: 0 success / in sync · 1 error, failed or unreachable node, not in sync "
           "(verify) · 2 changes pending (plan --detailed-exitcode) or a usage error · "
           "with plan/verify --fail-on: 3 drift (a node changed since fmeaa wrote it), "
           "4 pending (the source changed since the last sync), 5 extra (on a node, never "
           "written by fmeaa).",
)


def _build(name: str) -> Any:
    """One command of `COMMANDS` as typer would have built it from `app.command(name)`."""
    module_name, attribute = COMMANDS[name]
    module = import_module(f"fmeaa.commands.{module_name}")
    target = getattr(module, attribute)
    if isinstance(target, typer.Typer):
        return get_group_from_info(TyperInfo(target),
                                   pretty_exceptions_short=app.pretty_exceptions_short,
                                   suggest_commands=app.suggest_commands,
                                   rich_markup_mode=app.rich_markup_mode)
    epilog = module.CAUSES_EPILOG if name in WITH_CAUSES_EPILOG else None
    return get_command_from_info(CommandInfo(name=name, callback=target, epilog=epilog),
                                 pretty_exceptions_short=app.pretty_exceptions_short,
                                 rich_markup_mode=app.rich_markup_mode)


@app.callback()
def main() -> None:
    """fme-aa: sync published FME content to every node directly, never through the LB.

    Exit codes: 0 ok / in sync · 1 error, failed node or not in sync · 2 changes pending
    (plan --detailed-exitcode) or usage error · plan/verify --fail-on: 3 drift, 4 pending,
    5 extra.
    """
