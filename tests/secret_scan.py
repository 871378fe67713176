"""Secret scanner for the whole test suite (a pytest plugin, loaded by conftest).

Everything the suite produces through fme-aa — CLI output in every mode (`tests.sync_helpers.
fmeaa`), every log record (root logger at DEBUG, httpx/httpcore included), the text of every
exception fme-aa's own classes raise, and every Pulumi resource's inputs and outputs under
mocks — is collected per test and scanned for the test secrets. A hit fails that test, naming
where the secret appeared but never printing it.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
from collections.abc import Iterator

import pytest

# The secrets tests hand to fme-aa (passwords, serials, connection credentials).
SECRETS = ("s3cret-Test-Pa55word-do-not-leak", "wrong-password-123", "ABCD-EFGH-JKLM",
           "conn-secret-value", "node2-secret", "pw-xyz-secret", "pg-first-value",
           "pg-rotated-value")
TRANSCRIPT: list[tuple[str, str]] = []  # (where, text) produced during the current test


def record(where: str, text: str) -> None:
    TRANSCRIPT.append((where, text))


def find_leaks(entries: list[tuple[str, str]], secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """Where each secret appears (never the secret itself)."""
    return sorted({f"{where} (secret #{secrets.index(s) + 1})"
                   for where, text in entries for s in secrets if s in text})


class _Collector(logging.Handler):
    def emit(self, record_: logging.LogRecord) -> None:
        try:
            text = record_.getMessage()
        except Exception:  # a malformed record is not our concern here
            text = str(record_.msg)
        if record_.exc_info:
            text += logging.Formatter().formatException(record_.exc_info)
        record(f"log {record_.name}", text)


def _watch_exceptions() -> None:
    """Record the message of every exception class defined by fme-aa's own modules."""
    for name, module in list(sys.modules.items()):
        if not (name.startswith(("fmeaa.", "config.", "components.")) and module):
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, BaseException) and cls.__module__ == name
                    and "__init__" not in getattr(cls, "_scanned", ())):
                original = cls.__init__

                def init(self: BaseException, *args: object, _original=original, **kw: object) -> None:
                    _original(self, *args, **kw)
                    record(f"exception {type(self).__name__}", str(self))
                cls.__init__ = init  # type: ignore[method-assign]
                cls._scanned = ("__init__",)  # type: ignore[attr-defined]


def _watch_pulumi() -> None:
    from components.preview import RecordingMocks

    original = RecordingMocks.new_resource
    if getattr(original, "_scanned", False):
        return

    def new_resource(self: RecordingMocks, args: object) -> tuple[str, dict]:
        rid, out = original(self, args)
        inputs = {k: v for k, v in args.inputs.items() if k != "__provider"}  # type: ignore[attr-defined]
        record(f"pulumi {args.typ} {args.name}", json.dumps([inputs, out], default=str))  # type: ignore[attr-defined]
        return rid, out
    new_resource._scanned = True  # type: ignore[attr-defined]
    RecordingMocks.new_resource = new_resource  # type: ignore[method-assign]


def pytest_collection_finish(session: pytest.Session) -> None:

    _watch_exceptions()
    _watch_pulumi()


@pytest.fixture(autouse=True)
def no_secret_leaks() -> Iterator[None]:
    TRANSCRIPT.clear()
    collector = _Collector(level=logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(collector)
        root.setLevel(previous)
    leaks = find_leaks(TRANSCRIPT)
    TRANSCRIPT.clear()
    if leaks:
        pytest.fail("a test secret appeared in: " + "; ".join(leaks), pytrace=False)
