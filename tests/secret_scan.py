"""Secret scanner for the whole test suite (a pytest plugin, loaded by conftest).

Everything the suite produces through fme-aa — CLI output in every mode (`tests.sync_helpers.
fmeaa`), the output of every subprocess run through `run_scanned`, every log record (root logger
at DEBUG, httpx/httpcore included), the text of every exception fme-aa's own classes raise, and
every Pulumi resource's inputs and outputs under mocks — is collected per test and scanned for
the test secrets and for every session token the emulated nodes issued during the test. A
secret also counts when it appears encoded: URL-encoded, or inside base64 (an HTTP Basic
`Authorization` header is base64 of `user:password`). A hit fails that test, naming where the
secret appeared but never printing it.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import logging
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

# The secrets tests hand to fme-aa (passwords, serials, connection credentials).
SECRETS = ("s3cret-Test-Pa55word-do-not-leak", "wrong-password-123", "ABCD-EFGH-JKLM",
           "conn-secret-value", "node2-secret", "pw-xyz-secret", "pg-first-value",
           "pg-rotated-value", "old-Server-Pa55word-do-not-leak", "warehouse-Pa55-do-not-leak",
           "on-the-old-one", "hunter2")
TRANSCRIPT: list[tuple[str, str]] = []  # (where, text) produced during the current test
SESSION_TOKENS: list[str] = []  # tokens the emulated nodes issued during the current test

# Runs of base64 (standard or URL-safe alphabet) long enough to hide an 8-character secret.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")


def record(where: str, text: str) -> None:
    TRANSCRIPT.append((where, text))


def _decoded_forms(text: str) -> Iterator[str]:
    """The text itself, URL-decoded, and every base64 run in it decoded (at each of the four
    alignments, so a secret in the middle of `user:password` is found too)."""
    yield text
    yield urllib.parse.unquote_plus(text)
    for run in _BASE64_RUN.findall(text):
        body = run.rstrip("=")
        for start in range(4):
            chunk = body[start:]
            if len(chunk) % 4 == 1:  # no base64 ends there: one character too many
                chunk = chunk[:-1]
            chunk += "=" * (-len(chunk) % 4)
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    yield decode(chunk).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    continue


def find_leaks(entries: list[tuple[str, str]], secrets: Sequence[str] = SECRETS) -> list[str]:
    """Where each secret appears, plainly or encoded (never the secret itself)."""
    leaks = set()
    found: dict[str, list[int]] = {}  # a text logged many times is decoded and searched once
    for where, text in entries:
        if text not in found:
            # One search per secret over all forms at once; NUL never occurs in a secret, so no
            # match can span two forms.
            forms = "\0".join(_decoded_forms(text))
            found[text] = [n for n, secret in enumerate(secrets, start=1) if secret in forms]
        leaks.update(f"{where} (secret #{number})" for number in found[text])
    return sorted(leaks)


def run_scanned(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`subprocess.run` with its stdout and stderr captured (as text) and scanned."""
    kwargs.setdefault("capture_output", True)
    result = subprocess.run(list(argv), text=True, check=False, **kwargs)
    record(f"subprocess {argv[0]} stdout", result.stdout or "")
    record(f"subprocess {argv[0]} stderr", result.stderr or "")
    return result


class _Collector(logging.Handler):
    def emit(self, record_: logging.LogRecord) -> None:
        try:
            text = record_.getMessage()
        except Exception:  # a malformed record is not our concern here
            text = str(record_.msg)
        if record_.exc_info:
            text += logging.Formatter().formatException(record_.exc_info)
        record(f"log {record_.name}", text)


WATCHED_PACKAGES = ("fmeaa.", "config.", "components.")


def _watch_exceptions() -> None:
    """Record the message of every exception class defined by fme-aa's own modules."""
    for name, module in list(sys.modules.items()):
        if name.startswith(WATCHED_PACKAGES) and module:
            watch_exception_classes(module)


def watch_exception_classes(module: Any) -> None:
    """Every exception class `module` itself defines records its text when created (once)."""
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if (issubclass(cls, BaseException) and cls.__module__ == module.__name__
                and "__init__" not in getattr(cls, "_scanned", ())):
            original = cls.__init__

            def init(self: BaseException, *args: object, _original=original, **kw: object) -> None:
                _original(self, *args, **kw)
                record(f"exception {type(self).__name__}", str(self))
            cls.__init__ = init  # type: ignore[method-assign]
            cls._scanned = ("__init__",)  # type: ignore[attr-defined]


def _watch_pulumi() -> None:
    from components.preview import RecordingMocks

    watch_pulumi_mocks(RecordingMocks)


def watch_pulumi_mocks(mocks: type) -> None:
    """Every resource the mocks create records its inputs (but the provider) and outputs."""
    original = mocks.new_resource
    if getattr(original, "_scanned", False):
        return

    def new_resource(self: Any, args: Any) -> tuple[str, dict]:
        rid, out = original(self, args)
        inputs = {k: v for k, v in args.inputs.items() if k != "__provider"}
        record(f"pulumi {args.typ} {args.name}", json.dumps([inputs, out], default=str))
        return rid, out
    new_resource._scanned = True  # type: ignore[attr-defined]
    mocks.new_resource = new_resource  # type: ignore[attr-defined]


def _watch_session_tokens() -> None:
    from fmeaa.emulator.state import NodeState

    watch_token_issuer(NodeState)


def watch_token_issuer(state: type) -> None:
    """Every token an emulated node issues becomes a secret for the rest of the test."""
    original = state.issue_token
    if getattr(original, "_scanned", False):
        return

    def issue_token(self: Any, seconds: int) -> tuple[str, float]:
        token, expiry = original(self, seconds)
        SESSION_TOKENS.append(token)
        return token, expiry
    issue_token._scanned = True  # type: ignore[attr-defined]
    state.issue_token = issue_token  # type: ignore[attr-defined]


def pytest_collection_finish(session: pytest.Session) -> None:
    _watch_exceptions()
    _watch_pulumi()
    _watch_session_tokens()


@pytest.fixture(autouse=True)
def no_secret_leaks() -> Iterator[None]:
    TRANSCRIPT.clear()
    SESSION_TOKENS.clear()
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
    leaks = find_leaks(TRANSCRIPT, (*SECRETS, *SESSION_TOKENS))
    TRANSCRIPT.clear()
    SESSION_TOKENS.clear()
    if leaks:
        pytest.fail("a test secret appeared in: " + "; ".join(leaks), pytrace=False)
