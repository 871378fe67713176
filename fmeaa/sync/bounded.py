"""`Executor.map` that keeps memory flat: at most `ahead` tasks are submitted and not yet
taken back. `map` submits every task at once — a future, a work item and a condition each,
about a kilobyte per file, so 10,000 workspaces would cost megabytes just in waiting tasks
(memory: README, "Speed")."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(pool: Executor, fn: Callable[[T], R], items: Iterable[T], ahead: int
                ) -> Iterator[R]:
    """`fn` over `items` on `pool`, results in order, never more than `ahead` in flight."""
    pending: deque[Future[R]] = deque()
    for item in items:
        if len(pending) >= max(1, ahead):
            yield pending.popleft().result()
        pending.append(pool.submit(fn, item))
    while pending:
        yield pending.popleft().result()
