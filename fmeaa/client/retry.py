"""Retrying a call after transient failures, with exponential back-off.

A plain loop rather than a library: a sync retries every one of its thousands of requests this
way, and building a retry controller per call costs more CPU than the loop (start-up and CPU:
README, "Speed")."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from fmeaa.client.errors import TRANSIENT

T = TypeVar("T")


def retrying(call: Callable[[], T], *, attempts: int, initial_s: float, max_s: float,
             retry_on: tuple[type[BaseException], ...] = TRANSIENT,
             sleep: Callable[[float], None] | None = None) -> T:
    """`call()`, tried at most `attempts` times while it fails with `retry_on`; between tries
    it waits `initial_s`, then twice as long each time, never more than `max_s`. The last
    failure is raised as it is. `sleep`: `time.sleep`, looked up at each wait."""
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return call()
        except retry_on:
            if attempt >= attempts:
                raise
            (sleep or time.sleep)(min(max_s, initial_s * 2 ** (attempt - 1)))
    raise AssertionError("unreachable")
