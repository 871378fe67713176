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

import typer

from fmeaa.commands.common import JsonErrorsGroup
from fmeaa.commands.content import CAUSES_EPILOG, plan, sync, verify
from fmeaa.commands.demo import demo
from fmeaa.commands.export import export
from fmeaa.commands.history import history_command, rollback_command
from fmeaa.commands.lifecycle import drain_command, rolling, scale_in_check, seed_command, undrain_command
from fmeaa.commands.lock import unlock_command
from fmeaa.commands.nodes import nodes
from fmeaa.commands.publish import publish
from fmeaa.commands.sandbox import sandbox
from fmeaa.commands.schedules import schedules_app
from fmeaa.commands.upgrade import upgrade

app = typer.Typer(
    name="fmeaa",
    cls=JsonErrorsGroup,
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
app.command("nodes")(nodes)
app.command("plan", epilog=CAUSES_EPILOG)(plan)
app.command("sync")(sync)
app.command("verify", epilog=CAUSES_EPILOG)(verify)
app.command("export")(export)
app.command("history")(history_command)
app.command("rollback")(rollback_command)
app.command("seed")(seed_command)
app.command("drain")(drain_command)
app.command("undrain")(undrain_command)
app.command("scale-in-check")(scale_in_check)
app.command("rolling")(rolling)
app.command("unlock")(unlock_command)
app.add_typer(schedules_app)
app.command("upgrade")(upgrade)
app.command("publish")(publish)
app.command("sandbox")(sandbox)
app.command("demo")(demo)


@app.callback()
def main() -> None:
    """fme-aa: sync published FME content to every node directly, never through the LB.

    Exit codes: 0 ok / in sync · 1 error, failed node or not in sync · 2 changes pending
    (plan --detailed-exitcode) or usage error · plan/verify --fail-on: 3 drift, 4 pending,
    5 extra.
    """
