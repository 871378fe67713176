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

pytest_plugins = ["tests.aws_server", "tests.secret_scan", "pytester"]  # moto server; secret scanner

TEST_PASSWORD = "s3cret-Test-Pa55word-do-not-leak"


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
