"""The FME layout table (config/fme_versions.py): pure, so tested without mocks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from config.fme_versions import (
    FIRST_KNOWN,
    LAST_KNOWN,
    SOURCES,
    TABLE,
    ConfdSyntax,
    Platform,
    check_known,
    confd_arguments,
    layout,
    markdown_table,
    parse_version,
)

ROOT = Path(__file__).resolve().parent.parent
KNOWN = [(year, minor) for year in range(FIRST_KNOWN[0], LAST_KNOWN[0] + 1) for minor in range(3)
         if FIRST_KNOWN <= (year, minor) <= LAST_KNOWN]
# Settings that exist on one platform only.
WINDOWS_ONLY = {"services", "database_service"}
LINUX_ONLY = {"start_script", "stop_script", "service_user"}
MAY_BE_NONE = {"pg_bin_dir", "health_check_port"}


@pytest.mark.parametrize("platform", list(Platform))
@pytest.mark.parametrize("version", KNOWN)
def test_every_known_release_has_every_setting(platform: Platform, version: tuple[int, int]) -> None:
    table = layout(platform, version)
    for field in dataclasses.fields(table):
        value = getattr(table, field.name)
        if field.name in MAY_BE_NONE:
            continue
        other_platform = LINUX_ONLY if platform is Platform.windows else WINDOWS_ONLY
        if field.name in other_platform:
            assert not value, f"{field.name} set for {platform}"
        else:
            assert value, f"{field.name} missing for {platform} {version}"


def test_names_change_where_safe_changed_them() -> None:
    server, flow = layout(Platform.windows, (2023, 2)), layout(Platform.windows, (2024, 0))
    assert (server.install_dir, flow.install_dir) == (r"C:\Program Files\FMEServer",
                                                      r"C:\Program Files\FMEFlow")
    assert (server.db_name, server.db_user, flow.db_name, flow.db_user) == (
        "fmeserver", "fmeserver", "fmeflow", "fmeflow")
    assert server.web_app_config_file.endswith("fmeServerWebApplicationConfig.txt")
    assert flow.web_app_config_file.endswith("fmeFlowWebApplicationConfig.txt")
    assert server.services[0] == "FME Server Core" and flow.services[0] == "FME Flow Core"
    assert server.database_service == "FME Server Database"
    assert flow.database_service == "FME Flow Database"
    assert "webserverhostname=external_host" in server.values_keys
    assert "externalhostname=external_host" in flow.values_keys
    # Memurai replaced Redis on Windows in 2024.1 (the Linux key stays redishosts).
    assert "redishosts=private_ip" in flow.values_keys
    assert "memuraihosts=private_ip" in layout(Platform.windows, (2024, 1)).values_keys
    assert "redishosts=private_ip" in layout(Platform.linux, (2024, 1)).values_keys


def test_confd_syntax_changes_at_2026_2() -> None:
    for platform in Platform:
        assert layout(platform, (2026, 1)).confd_syntax is ConfdSyntax.legacy
        assert layout(platform, (2026, 2)).confd_syntax is ConfdSyntax.subcommand
    assert confd_arguments(ConfdSyntax.legacy, "D", ["a", "b"]) == [
        "-confdir", "D", "-backend", "file", "-file", "a", "-file", "b", "-onetime"]
    assert confd_arguments(ConfdSyntax.subcommand, "D", ["a", "b"]) == [
        "file", "--confdir", "D", "--file", "a", "--file", "b", "--onetime"]


def test_health_check_and_rest_api_follow_the_release() -> None:
    assert layout(Platform.windows, (2022, 2)).health_check_path == "/fmerest/v3/healthcheck"
    assert layout(Platform.windows, (2022, 2)).rest_base_path == "/fmerest/v3"
    assert layout(Platform.linux, (2023, 0)).health_check_path == "/fmeapiv4/healthcheck/liveness"
    assert layout(Platform.windows, (2026, 1)).health_check_port == 80
    assert layout(Platform.linux, (2026, 1)).health_check_port is None  # the traffic port


def test_every_row_names_its_source_and_every_guess_says_why() -> None:
    for row in TABLE:
        assert row.source in SOURCES, row
        assert row.confirmed or row.note, f"UNCONFIRMED {row.setting} without a reason"
    # Safe documents nothing Linux-specific for a VM's install directory: it must stay marked.
    assert not [r for r in TABLE if r.setting == "install_dir" and r.platform is Platform.linux
                and r.confirmed]


def test_the_readme_shows_the_table_as_generated() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "README's FME layout table is stale: paste markdown_table()"


@pytest.mark.parametrize(("text", "message"), [
    ("2026", "use YEAR.MINOR"), ("2025.10", "use YEAR.MINOR"), ("v2025.1", "use YEAR.MINOR"),
])
def test_malformed_releases_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_version(text)


@pytest.mark.parametrize("version", [(2021, 2), (2026, 3), (2027, 0)])
def test_releases_outside_the_table_are_refused(version: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"add its rows to config/fme_versions\.py"):
        check_known(version)
