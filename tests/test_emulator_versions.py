"""The emulator plays a given FME version: which APIs answer, and how (fmeaa.emulator.versions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fmeaa.emulator import Sandbox
from fmeaa.emulator.versions import NEWEST, VERSIONS, version_named
from tests.conftest import ROOT, TEST_PASSWORD


def _get(url: str, **kwargs: object) -> int:
    return httpx.get(url, auth=("admin", TEST_PASSWORD), **kwargs).status_code  # type: ignore[arg-type]


def test_the_newest_has_no_v3(tmp_path: Path) -> None:
    with Sandbox(1, root=tmp_path, password=TEST_PASSWORD, fme_version=NEWEST) as box:
        base = box.nodes[0].url
        assert box.nodes[0].version.name == "2026.1"
        assert _get(base + "/fmerest/v3/healthcheck") == 404
        assert _get(base + "/fmerest/v3/repositories") == 404
        assert httpx.post(base + "/fmerest/v3/tokens", json={},
                          auth=("admin", TEST_PASSWORD)).status_code == 404
        assert _get(base + "/fmeapiv4/healthcheck/liveness") == 200
        # From 2026.1 a V4 URL with a trailing slash is a 404 (support.safe.com 43846485872653).
        assert _get(base + "/fmeapiv4/healthcheck/liveness/") == 404
        version = httpx.get(base + "/fmeinfo/version", auth=("admin", TEST_PASSWORD)).json()
        assert (version["releaseYear"], version["majorVersion"]) == (2026, 1)
        assert version["buildString"].startswith("FME Flow 2026.1 - Build ")


@pytest.mark.parametrize(("name", "v3", "v4_health", "v4_tokens", "v4_licence", "slash_ok"), [
    ("2022.2", 200, 404, 404, 404, True),  # FME Server: no V4 at all
    ("2023.2", 200, 200, 404, 200, True),  # V4 health and licensing, tokens still V3
    ("2025.2", 200, 200, 201, 200, True),
    ("2026.1", 404, 200, 201, 200, False),
])
def test_each_version_serves_its_apis(tmp_path: Path, name: str, v3: int, v4_health: int,
                                      v4_tokens: int, v4_licence: int, slash_ok: bool) -> None:
    with Sandbox(1, root=tmp_path, password=TEST_PASSWORD, fme_version=name) as box:
        base = box.nodes[0].url
        assert _get(base + "/fmerest/v3/healthcheck") == v3
        assert _get(base + "/fmeapiv4/healthcheck/liveness") == v4_health
        token = httpx.post(base + "/fmeapiv4/tokens", json={"secondsToExpiry": 60},
                           auth=("admin", TEST_PASSWORD))
        assert token.status_code == v4_tokens
        assert _get(base + "/fmeapiv4/license/status") == (v4_licence if v4_licence == 404
                                                           else 401)  # no token: but it exists
        if v4_health == 200:
            assert (_get(base + "/fmeapiv4/healthcheck/liveness/") == 200) is slash_ok
        assert httpx.get(base + "/fmeinfo/version", auth=("admin", TEST_PASSWORD)
                         ).json()["buildNumber"] == VERSIONS[name].build


def test_a_mixed_cluster_and_unknown_versions(tmp_path: Path) -> None:
    with Sandbox(3, root=tmp_path, password=TEST_PASSWORD, fme_version="2026.1",
                 versions={"fme-1": "2025.2"}) as box:
        assert [n.version.name for n in box.nodes] == ["2025.2", "2026.1", "2026.1"]
        assert [_get(n.url + "/fmerest/v3/healthcheck") for n in box.nodes] == [200, 404, 404]
    with pytest.raises(ValueError, match=r"2026\.1"):
        version_named("2019.0")
    with pytest.raises(ValueError, match="unknown FME version"):
        Sandbox(1, root=tmp_path / "x", versions={"fme-1": "1999.1"})


def test_sandbox_command_rejects_an_unknown_version(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fmeaa", "sandbox", "--fme-version", "2019.0",
         "--state-dir", str(tmp_path), "--duration", "0.1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "2026.1" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "fmeaa", "sandbox", "--fme-version", "fme-7=2025.2",
         "--state-dir", str(tmp_path), "--duration", "0.1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "fme-7" in result.stderr


def test_closing_a_sandbox_takes_every_node_down(tmp_path: Path) -> None:
    """Every node is stopped on close; each one's port then refuses connections."""
    box = Sandbox(3, root=tmp_path, password=TEST_PASSWORD)
    urls = [n.url for n in box.nodes]
    assert all(httpx.get(f"{u}/fmeapiv4/healthcheck/liveness", timeout=5).status_code == 200 for u in urls)
    box.close()
    assert not any(n.running for n in box.nodes)
    for url in urls:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/fmeapiv4/healthcheck/liveness", timeout=5)
