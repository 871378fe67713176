"""`fme-aa:fme` settings: platform + version replace `generation`, every problem named at once."""

from __future__ import annotations

import pytest

from components.preview import RecordingMocks, run_program
from config import StackConfigError, parse_stack_config
from tests.stack_fixtures import example

AMI = {"id": "ami-0123456789abcdef0"}


def _problems(raw: dict) -> str:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config({"nodeCount": 2, "ami": AMI, **raw})
    return str(caught.value)


def test_windows_nodes_with_an_efs_share_fail_before_any_resource_naming_both_keys() -> None:
    mocks = RecordingMocks()
    with pytest.raises(StackConfigError) as caught:
        run_program(example(share={"kind": "efs"}, fme={"platform": "windows", "version": "2026.1"}),
                    mocks=mocks)
    assert "share.kind 'efs'" in str(caught.value) and "fme.platform 'windows'" in str(caught.value)
    assert mocks.resources == []


def test_replaced_keys_each_say_what_replaced_them_all_at_once() -> None:
    message = _problems({"fme": {"generation": "flow", "services": ["x"], "psqlPath": "psql",
                                 "version": "2025.2"},
                         "database": {"dbName": "fmeserver", "appUsername": "fmeserver"}})
    assert "fme-aa:fme.generation: replaced by fme.platform (windows | linux) and fme.version" in message
    assert "fme-aa:fme.services: service names now follow fme.platform and fme.version" in message
    assert "fme-aa:fme.psqlPath:" in message
    assert "fme-aa:database.dbName: the FME database is created by FME's own SQL scripts" in message
    assert "fme-aa:database.appUsername:" in message
    assert "5 problem(s)" in message


def test_a_missing_version_says_where_to_read_it() -> None:
    message = _problems({})
    assert 'fme-aa:fme.version: set fme.version to the FME release your image has installed' in message
    assert "VersionInfo.txt" in message and "got None" not in message


@pytest.mark.parametrize(("fme", "fragment"), [
    ({"version": "2027.0"}, "fme-aa:fme.version: fme-aa knows FME releases 2022.0–2026.2"),
    ({"version": "latest"}, "fme-aa:fme.version: 'latest' is not an FME release"),
    ({"version": "2025.2", "platform": "macos"}, "fme-aa:fme.platform: Input should be 'windows' or 'linux'"),
    ({"version": "2025.2", "platform": "linux", "installDir": r"C:\FME"},
     r"installDir 'C:\\FME' must be an absolute Linux path"),
    ({"version": "2025.2", "systemSharePath": "/data/fmeflowdata"}, "must be a Windows path"),
    ({"version": "2025.2", "systemSharePath": r"C:\Data"}, "is on the system drive"),
])
def test_bad_fme_settings_name_the_key(fme: dict, fragment: str) -> None:
    assert fragment in _problems({"fme": fme})


def test_the_admin_cannot_be_the_role_fmes_scripts_create() -> None:
    message = _problems({"fme": {"version": "2025.2"}, "database": {"masterUsername": "fmeflow"}})
    assert "database.masterUsername 'fmeflow' is the role FME's own scripts create" in message


def test_an_unquoted_yaml_release_is_read_as_written() -> None:
    config = parse_stack_config({"nodeCount": 1, "ami": AMI, "fme": {"version": 2025.2}})
    assert config.fme.version == "2025.2" and config.fme.resolved().layout.version == (2025, 2)
