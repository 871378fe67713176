"""The `fmeaa` commands (typer), one module per family; `fmeaa.cli` loads each when used.

Start-up time of every command (README, "Speed"): two libraries do work at import that fmeaa
never needs. httpx imports its own command line (click, rich and pygments) when it is first
imported, unless that fails — so it is made to fail (httpx then defines a stub `httpx.main`
that fmeaa never calls). pydantic looks for plugins among the entry points of every installed
distribution when it builds its first model; fmeaa uses no plugin, and the documented
`PYDANTIC_DISABLE_PLUGINS` skips the search (unless the operator set it otherwise).
"""

import os
import sys

if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
