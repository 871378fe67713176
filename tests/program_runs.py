"""The Pulumi program under mocks, each distinct run evaluated once per pytest session.

A run costs about half a second of CPU (Pulumi's SDK builds an Output and a task per input of
some hundred resources), and the suite asks for the same stack many times (the example stack
with three nodes alone, 14 times): a quarter of the suite's CPU went to repeating them. The
program's result depends only on what this key holds — its config, region and warning capture —
and on the code it runs; so the key also holds the identity of every function and value in
fme-aa's own modules, and a test that monkeypatches one of them (a template, a component) gets
a run of its own. Each caller gets its own deep copy. Runs with the caller's own mocks (which
record calls the caller asserts on) are never shared.

The cache starts empty in every pytest session (`forget`, from conftest's `pytest_configure`):
mutmut forks each mutant's run from a process that already ran the tests, and a mutant must
never be tested against a run made by the unmutated code.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from components import preview
from components.preview import ProgramRun, RecordingMocks

_RUNS: dict[tuple[str, int], ProgramRun] = {}
_OWN_PACKAGES = ("components", "config", "fmeaa")


def forget() -> None:
    _RUNS.clear()


def _code_fingerprint() -> int:
    """Changes when any top-level name of fme-aa's own loaded modules is rebound."""
    names = []
    for name, module in list(sys.modules.items()):
        if module is not None and name.partition(".")[0] in _OWN_PACKAGES:
            names.append((name, tuple((k, id(v)) for k, v in vars(module).items())))
    return hash(tuple(sorted(names)))


def run_program(config: dict[str, Any], capture_warnings: bool = True,
                mocks: RecordingMocks | None = None, region: str = preview.DEFAULT_REGION,
                other_config: dict[str, Any] | None = None) -> ProgramRun:
    """`components.preview.run_program`, once per distinct run (see the module docstring)."""
    if mocks is not None:
        return preview.run_program(config, capture_warnings, mocks, region, other_config)
    asked = json.dumps([config, capture_warnings, region, other_config], sort_keys=True,
                       default=str)
    run = _RUNS.get((asked, _code_fingerprint()))
    if run is None:
        run = preview.run_program(config, capture_warnings, None, region, other_config)
        # Kept under the code as it is after the run: a first run imports the components.
        _RUNS[(asked, _code_fingerprint())] = run
    return copy.deepcopy(run)
