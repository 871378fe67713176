"""Stack configs used by the Pulumi program tests (the example stack file, varied)."""

from __future__ import annotations

import copy
from typing import Any

from components.preview import ROOT, load_stack_file

EXAMPLE = load_stack_file(ROOT / "Pulumi.example.yaml")
CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
LINUX = {"platform": "linux", "version": "2025.2"}  # an image you baked (EFS needs Linux)


def example(**overrides: Any) -> dict[str, Any]:
    """The example stack config with top-level keys replaced (None removes a key)."""
    config = copy.deepcopy(EXAMPLE)
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def named_nodes(*names: str) -> dict[str, Any]:
    return example(nodeCount=None, nodes=list(names))
