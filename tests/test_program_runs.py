"""The suite's shared Pulumi runs (`tests/program_runs.py`): a repeated run is a copy of the
first, never the same objects; a monkeypatched component gets a run of its own; a new session
starts empty."""

from __future__ import annotations

import pytest

import components.bootstrap
from components.preview import RecordingMocks
from tests import program_runs
from tests.program_runs import run_program
from tests.test_stack_program import example

INSTANCE = "aws:ec2/instance:Instance"


def test_a_repeated_run_is_an_independent_copy() -> None:
    program_runs.forget()
    first = run_program(example(nodeCount=1))
    first.resources[0].inputs["tampered"] = True
    first.exports.clear()
    again = run_program(example(nodeCount=1))
    assert "tampered" not in again.resources[0].inputs and again.exports
    assert len(program_runs._RUNS) == 1


def test_a_monkeypatched_component_is_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """What rolling_changes does for a new release's bootstrap scripts: the cached run of the
    same config must not be served for it."""
    before = run_program(example(nodeCount=1)).of_type(INSTANCE)[0].inputs["userData"]
    body = components.bootstrap._body
    monkeypatch.setattr(components.bootstrap, "_body", lambda name: body(name) + "\n# r2\n")
    after = run_program(example(nodeCount=1)).of_type(INSTANCE)[0].inputs["userData"]
    assert after != before


def test_runs_with_the_callers_mocks_are_never_shared() -> None:
    mocks = RecordingMocks("eu-west-1")
    run_program(example(nodeCount=1), mocks=mocks)
    assert mocks.resources  # the caller's own mocks saw the resources


def test_forget_empties_the_cache() -> None:
    run_program(example(nodeCount=1))
    program_runs.forget()
    assert program_runs._RUNS == {}
