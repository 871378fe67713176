"""The `fmeaa` command line (typer). Thin: each command lives in its own module.

Exit codes: 0 success · 1 error (or drift/failure, per command) · 2 usage error.
"""

from __future__ import annotations

import typer

from fmeaa.sandbox_command import sandbox

app = typer.Typer(
    name="fmeaa",
    help="Keep N independent FME Server / FME Flow nodes (Active-Active) identical.",
    no_args_is_help=True,
)
app.command("sandbox")(sandbox)


@app.callback()
def main() -> None:
    """fme-aa: sync published FME content to every node directly, never through the LB."""
