"""The secret scanner is live, and every CLI output mode stays clean.

`tests/secret_scan.py` scans each test's CLI output, log records, fme-aa exception texts and
Pulumi resource inputs/outputs; these tests prove it sees what it must and catches a leak."""

from __future__ import annotations

import base64
import logging
import sys
import urllib.parse
from pathlib import Path

import pytest

from components.preview import run_program
from fmeaa.client import FmeApiError
from fmeaa.emulator import Sandbox
from tests import secret_scan
from tests.conftest import ROOT, TEST_PASSWORD
from tests.stack_fixtures import example
from tests.sync_helpers import copy_example, fmeaa


def test_find_leaks_names_the_place_not_the_secret() -> None:
    leaks = secret_scan.find_leaks([("fmeaa sync stdout", f"token {TEST_PASSWORD}"),
                                    ("log httpx", "clean")])
    assert leaks == ["fmeaa sync stdout (secret #1)"]
    assert TEST_PASSWORD not in " ".join(leaks)


def test_the_scanner_sees_logs_exceptions_and_pulumi_resources() -> None:
    logging.getLogger("fmeaa.test").info("hello from a log line")
    FmeApiError("fme-1", "GET", "/x", 500, "boom")
    run_program(example(nodeCount=1))
    places = {where.split(" ")[0] for where, _ in secret_scan.TRANSCRIPT}
    assert {"log", "exception", "pulumi"} <= places
    assert any(t == "fme-1: GET /x -> 500: boom" for _, t in secret_scan.TRANSCRIPT)


def test_every_cli_output_mode_is_free_of_secrets(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / "cache"))
    content = copy_example(tmp_path / "content")
    manifest = content / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace(
        "# smtp_password: {secret: \"aws-sm:fme/smtp#password\"}",
        "smtp_password: {secret: \"env:SMTP_PASSWORD\"}"))
    monkeypatch.setenv("SMTP_PASSWORD", TEST_PASSWORD)  # a secret reference, resolved at sync
    workspace = tmp_path / "w.fmw"
    workspace.write_text("#! w\n")
    with Sandbox(2, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        inv = box.write_inventory(tmp_path / "nodes.json")
        runs = []
        for mode in ([], ["--json"]):
            runs += [fmeaa("nodes", "-i", inv, *mode),
                     fmeaa("plan", "-s", content, "-i", inv, "--show-unchanged", *mode),
                     fmeaa("sync", "-s", content, "-i", inv, *mode),
                     fmeaa("verify", "-s", content, "-i", inv, "--all", *mode),
                     fmeaa("publish", workspace, "--repo", "R", "-i", inv, *mode),
                     fmeaa("sync", "-s", "node:fme-1", "-i", inv, *mode)]
        runs.append(fmeaa("export", "--from", "fme-1", tmp_path / "export", "-i", inv))
        box.node("fme-2").faults.error_rate = 1.0
        runs.append(fmeaa("sync", "-s", content, "-i", inv, "--prune"))
        box.node("fme-2").faults.error_rate = 0
        monkeypatch.setenv("FMEAA_PASSWORD", "wrong-password-123")
        runs.append(fmeaa("sync", "-s", content, "-i", inv))
        # The subscription really carries the resolved secret on the node...
        assert box.node("fme-1").state.subscriptions["gis-team-email"]["properties"][
            "smtp_password"] == TEST_PASSWORD
    # ...and the export writes a reference, never the value.
    exported = (tmp_path / "export" / "fmeaa-content.yaml").read_text()
    assert "env:FMEAA_SECRET_GIS_TEAM_EMAIL_SMTP_PASSWORD" in exported
    assert TEST_PASSWORD not in exported
    assert [r.code for r in runs][-2:] == [1, 1]
    assert secret_scan.find_leaks(secret_scan.TRANSCRIPT) == []


def test_encoded_secrets_are_found() -> None:
    """A Basic auth header (base64 of user:password), URL-encoding and URL-safe base64."""
    basic = base64.b64encode(f"admin:{TEST_PASSWORD}".encode()).decode()
    assert TEST_PASSWORD not in basic
    for where, text in [("basic", f"Authorization: Basic {basic}"),
                        ("url", "password=" + urllib.parse.quote(TEST_PASSWORD + "&/é", safe="")),
                        ("urlsafe", base64.urlsafe_b64encode(
                            f"x{TEST_PASSWORD}yz".encode()).decode())]:
        assert secret_scan.find_leaks([(where, text)]) == [f"{where} (secret #1)"], where
    assert secret_scan.find_leaks([("clean", base64.b64encode(b"admin:other").decode())]) == []
    # A secret that encoding changes (the suite's own secrets are URL-safe as they are): found
    # only by decoding, percent- or form-encoded (a space as '+').
    odd = "pa ss/wörd+1"
    for encoded in (urllib.parse.quote(odd, safe=""), urllib.parse.quote_plus(odd)):
        assert odd not in encoded
        assert secret_scan.find_leaks([("form", f"password={encoded}")], [odd]) == \
            ["form (secret #1)"], encoded


def test_session_tokens_count_as_secrets(tmp_path: Path) -> None:
    with Sandbox(1, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        token, _ = box.nodes[0].state.issue_token(60)
    assert token in secret_scan.SESSION_TOKENS
    assert secret_scan.find_leaks([("log x", f"fmetoken token={token}")],
                                  secret_scan.SESSION_TOKENS) == ["log x (secret #1)"]


def test_subprocess_output_is_scanned() -> None:
    result = secret_scan.run_scanned([sys.executable, "-c", "import sys; print(sys.argv[1]); "
                                      "print('err-text', file=sys.stderr); sys.exit(3)",
                                      "visible-text"])
    assert (result.returncode, result.stdout, result.stderr) == (3, "visible-text\n", "err-text\n")
    assert secret_scan.TRANSCRIPT[-2:] == [("subprocess " + sys.executable + " stdout", "visible-text\n"),
                                           ("subprocess " + sys.executable + " stderr", "err-text\n")]
    secret_scan.TRANSCRIPT.clear()
    quiet = secret_scan.run_scanned([sys.executable, "-c", "pass"])
    assert (quiet.stdout, quiet.stderr) == ("", "")
    recorded = list(secret_scan.TRANSCRIPT)
    assert recorded == [("subprocess " + sys.executable + " stdout", ""),
                        ("subprocess " + sys.executable + " stderr", "")]


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc", "user:", "admin:x"])
@pytest.mark.parametrize("suffix", ["", "z", "yz"])
def test_a_secret_inside_base64_is_found_at_any_offset_and_padding(prefix: str, suffix: str) -> None:
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(f"{prefix}{TEST_PASSWORD}{suffix}".encode()).decode()
        assert secret_scan.find_leaks([("h", f"Authorization: Basic {text}")]) == ["h (secret #1)"]
        assert secret_scan.find_leaks([("h", f"x={text}==")]) == ["h (secret #1)"], text
        for glued in ("a", "ab", "abc"):  # run on from other base64 characters: misaligned
            assert secret_scan.find_leaks([("h", glued + text)]) == ["h (secret #1)"], glued + text


def test_exception_classes_of_watched_modules_record_their_text(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    made = {}
    for name in ("fmeaa.zz_scan_test", "config.zz_scan_test", "components.zz_scan_test",
                 "elsewhere.zz_scan_test"):
        module = types.ModuleType(name)
        def init(self: RuntimeError, message: str, *, code: int = 0) -> None:
            RuntimeError.__init__(self, message)
            self.code = code  # type: ignore[attr-defined]
        module.Boom = type("Boom", (RuntimeError,), {"__module__": name,  # type: ignore[attr-defined]
                                                     "__init__": init})
        module.Plain = type("Plain", (), {"__module__": name})  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, module)
        made[name] = module
    borrowed = types.ModuleType("fmeaa.zz_borrowing")
    borrowed.Boom = made["elsewhere.zz_scan_test"].Boom  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fmeaa.zz_borrowing", borrowed)
    secret_scan._watch_exceptions()
    secret_scan._watch_exceptions()  # twice: still one record per exception
    secret_scan.TRANSCRIPT.clear()
    for name, module in made.items():
        assert module.Boom(f"from {name}", code=7).code == 7  # keyword arguments reach it
        module.Plain()
    assert secret_scan.TRANSCRIPT == [("exception Boom", "from fmeaa.zz_scan_test"),
                                      ("exception Boom", "from config.zz_scan_test"),
                                      ("exception Boom", "from components.zz_scan_test")]
    secret_scan.TRANSCRIPT.clear()


def test_pulumi_resources_and_session_tokens_are_watched() -> None:
    import datetime
    from types import SimpleNamespace

    class Mocks:
        prefix = "id-"

        def new_resource(self, args: SimpleNamespace) -> tuple[str, dict]:
            return self.prefix + args.name, {"arn": "arn:x", "at": datetime.date(2026, 1, 2)}

    class Issuer:
        prefix = "token-"

        def issue_token(self, seconds: int) -> tuple[str, float]:
            return f"{self.prefix}{seconds}", 1.0

    for _ in range(2):  # watching twice wraps once
        secret_scan.watch_pulumi_mocks(Mocks)
        secret_scan.watch_token_issuer(Issuer)
    secret_scan.TRANSCRIPT.clear()
    args = SimpleNamespace(typ="aws:x:Y", name="n", inputs={"a": 1, "__provider": "p"})
    assert Mocks().new_resource(args) == ("id-n", {"arn": "arn:x", "at": datetime.date(2026, 1, 2)})
    recorded = list(secret_scan.TRANSCRIPT)
    assert recorded == [("pulumi aws:x:Y n", '[{"a": 1}, {"arn": "arn:x", "at": "2026-01-02"}]')]
    secret_scan.TRANSCRIPT.clear()
    secret_scan.SESSION_TOKENS.clear()
    assert Issuer().issue_token(7) == ("token-7", 1.0)
    tokens = list(secret_scan.SESSION_TOKENS)
    assert tokens == ["token-7"]  # once: the issuer was wrapped once
    secret_scan.SESSION_TOKENS.clear()


LEAKY_TESTS = '''
import base64
from tests.secret_scan import record

def test_plain_leak():
    record("fmeaa sync stdout", "password s3cret-Test-Pa55word-do-not-leak")

def test_basic_auth_leak():
    header = base64.b64encode(b"admin:s3cret-Test-Pa55word-do-not-leak").decode()
    record("log httpx", "Authorization: Basic " + header)

def test_clean():
    record("fmeaa sync stdout", "all good")
'''


def test_the_scanner_fails_a_leaking_test(pytester: pytest.Pytester) -> None:
    """Run a small suite with the scanner loaded: the two leaking tests fail (at teardown, where
    the scanner looks), naming the place but not the secret; the clean one passes."""
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                          "pytest_plugins = ['tests.secret_scan']\n")
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3, errors=2)  # every call passes; two teardowns fail
    out = result.stdout.str()
    assert "ERROR test_leaky.py::test_plain_leak" in out
    assert "ERROR test_leaky.py::test_basic_auth_leak" in out
    assert "test_clean" not in out
    assert "a test secret appeared in: fmeaa sync stdout (secret #1)" in out
    assert "a test secret appeared in: log httpx (secret #1)" in out
    assert TEST_PASSWORD not in out


def test_log_records_are_collected_with_their_tracebacks() -> None:
    import logging

    collector = secret_scan._Collector()
    secret_scan.TRANSCRIPT.clear()
    collector.emit(logging.LogRecord("fmeaa.x", logging.INFO, __file__, 1, "user %s", ("ada",), None))
    broken = logging.LogRecord("fmeaa.y", logging.INFO, __file__, 1, "count %d", ("many",), None)
    collector.emit(broken)  # a malformed record: its raw message is kept
    try:
        raise RuntimeError("inner detail")
    except RuntimeError:
        info = sys.exc_info()
    collector.emit(logging.LogRecord("fmeaa.z", logging.ERROR, __file__, 1, "failed", (), info))
    recorded = list(secret_scan.TRANSCRIPT)
    secret_scan.TRANSCRIPT.clear()
    assert recorded[:2] == [("log fmeaa.x", "user ada"), ("log fmeaa.y", "count %d")]
    where, text = recorded[2]
    assert where == "log fmeaa.z" and text.startswith("failed") and "Traceback" in text
    assert text.endswith("RuntimeError: inner detail")


def test_decoding_survives_bytes_that_are_not_utf8_and_the_url_safe_alphabet() -> None:
    for prefix in (b"\xfb\xef\xbe", b"\xff\xfe\xfd\xfc"):  # '+/' in one alphabet, '-_' in the other
        raw = prefix + TEST_PASSWORD.encode() + b"\xff"
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(raw).decode()
            assert secret_scan.find_leaks([("h", text)]) == ["h (secret #1)"], text


def test_base64_runs_glued_to_other_characters_on_either_side() -> None:
    """A secret at the very end of an unpadded run (its last character 'X') and a run followed
    by more base64 characters: the aligned chunk is trimmed or padded to whole quanta."""
    secret = "xy-secret-W"  # 'W' ends a quantum as 'X'
    text = base64.b64encode(b"a" + secret.encode()).decode()
    assert text.endswith("X") and "=" not in text
    assert secret_scan.find_leaks([("h", text)], [secret]) == ["h (secret #1)"]
    assert secret_scan.find_leaks([("h", "Zm9v" + text)], [secret]) == ["h (secret #1)"]
    for glued in ("a", "ab", "abc"):
        plain = base64.b64encode(f"a{TEST_PASSWORD}".encode()).decode()
        assert "=" not in plain
        assert secret_scan.find_leaks([("h", plain + glued)]) == ["h (secret #1)"], glued
