"""The Pulumi stack's typed settings (`fme-aa:*` keys): models in `stack.py`, reading and
validating them in `loader.py`. The sync CLI's content manifest is not here: it lives beside the
sync engine, in `fmeaa/sync/manifest.py`.

Names are loaded lazily so that importing the models does not pull in the Pulumi SDK.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"StackConfig": "config.stack", "StackConfigError": "config.loader",
         "load_stack_config": "config.loader", "parse_stack_config": "config.loader"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'config' has no attribute {name!r}")
