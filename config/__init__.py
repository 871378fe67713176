"""Pydantic models of the stack configuration (and, for the sync CLI, of content manifests).

Names are loaded lazily: the sync CLI needs `config.content` only, and importing the stack
loader would pull in the Pulumi SDK (~0.2 s on every `fmeaa` start).
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
