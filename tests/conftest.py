import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from fmeaa.client import FmeClient, connect  # noqa: E402
from fmeaa.emulator import Sandbox  # noqa: E402
from tests import program_runs  # noqa: E402

pytest_plugins = ["tests.aws_server", "tests.secret_scan", "pytester"]  # moto server; secret scanner

TEST_PASSWORD = "s3cret-Test-Pa55word-do-not-leak"


def pytest_sessionstart(session: pytest.Session) -> None:
    """pytest's own log capture (shown in failure reports) keeps WARNING and above. Not through
    `log_level`, which would also lower the root logger to WARNING in every test phase and hide
    DEBUG records from the secret scanner; each record pytest keeps costs a lock per thread."""
    program_runs.forget()  # a new session never reuses another's Pulumi runs (see the module)
    plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    for name in ("caplog_handler", "report_handler"):
        handler = getattr(plugin, name, None)
        if handler is not None:
            handler.setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
def own_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own fmeaa cache directory and temporary directory (a test may still set
    its own): never the user's ~/.cache/fmeaa, and never another test's or another xdist
    worker's digests or sync lock."""
    monkeypatch.setenv("FMEAA_CACHE_DIR", str(tmp_path / ".fmeaa-cache"))
    (tmp_path / ".tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ".tmp"))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """Three emulated FME nodes on 127.0.0.1, torn down after the test."""
    with Sandbox(3, root=tmp_path / "nodes", password=TEST_PASSWORD) as box:
        yield box


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[FmeClient]:
    node = sandbox.nodes[0]
    c = connect(node.name, node.url, username="admin", password=TEST_PASSWORD, timeout=5)
    c.login()
    yield c
    c.close()
