"""Faults an emulated node can be told to show: latency, 5xx, a dropped upload, an overloaded
node answering 429. Tests and `fmeaa sandbox --fault` change them at any time."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass
class Faults:
    """Faults injected into this node; change them at any time (tests, `sandbox`)."""

    latency_s: float = 0.0  # added before every response
    error_rate: float = 0.0  # share of non-health requests answered 503
    drop_upload_after: int | None = None  # close the connection after reading this many bytes
    # An overloaded node: 429 Too Many Requests with `Retry-After: retry_after_s` for every
    # non-public request beyond `throttle_above` in flight at once, and for the next
    # `throttle_next` ones (a deterministic form for tests).
    throttle_above: int | None = None
    throttle_next: int = 0
    retry_after_s: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def roll_error(self) -> bool:
        with self._lock:
            return self.error_rate > 0 and self._rng.random() < self.error_rate

    def throttles(self, in_flight: int) -> bool:
        """Whether this request (with `in_flight` requests being served, itself included) is
        refused with 429."""
        with self._lock:
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return True
        return self.throttle_above is not None and in_flight > self.throttle_above


class Throttled(Exception):
    """Answered 429 with Retry-After (the Faults' overloaded node)."""
