"""Render a node's first-boot script (EC2 user data). Pure: no Pulumi, so it is tested directly.

Windows nodes get PowerShell for EC2Launch v2 (`templates/bootstrap.ps1`), Linux nodes bash for
cloud-init (`templates/bootstrap.sh`). Both bodies are static and run the same steps (`STEPS`);
this module prepends one block of quoted variables: the node's own share and database, and
every path, name and confd argument of its FME release, from the table in
`config/fme_versions.py`. No secret is ever rendered: the script reads the RDS master secret
from Secrets Manager at boot and generates the FME role's password on the host.
"""

from __future__ import annotations

import base64
import gzip
import shlex
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from config.fme_versions import Platform, confd_arguments
from config.stack import ResolvedFme

# What every node's bootstrap does, in this order, on both platforms (each body runs them
# through `step` / `Invoke-Step` with exactly these names; the tests hold them to it).
STEPS = (
    "check the installed FME release",
    "stop FME",
    "bring up this node's own share",
    "read the database master secret",
    "write values-modified.yml and run confd",
    "require TLS for FME's database connections",
    "create the FME database with FME's own scripts",
    "start FME",
    "wait for FME's liveness health check",
)
BODY_MARKER = "# --- fme-aa node bootstrap body"


class NodeBootstrap(BaseModel):
    """Everything one node's bootstrap needs: its identity, its share, its database, FME layout."""

    model_config = ConfigDict(frozen=True)

    node_name: str
    share_kind: Literal["ebs", "efs"]
    share_volume_id: str = ""
    share_file_system_id: str = ""
    share_access_point_id: str = ""
    db_host: str
    db_port: int
    db_secret_arn: str
    external_host: str  # the load balancer's DNS name (values.yml externalhostname)
    external_port: int  # its listener port users reach (443 with a certificate, else 80)
    fme: ResolvedFme

    @model_validator(mode="after")
    def _share_ids(self) -> NodeBootstrap:
        if self.share_kind == "ebs" and not self.share_volume_id:
            raise ValueError("an EBS share needs share_volume_id")
        if self.share_kind == "efs" and not (self.share_file_system_id and self.share_access_point_id):
            raise ValueError("an EFS share needs share_file_system_id and share_access_point_id")
        if self.share_kind == "efs" and self.fme.platform is Platform.windows:
            raise ValueError("Windows nodes cannot mount EFS (NFS): use an EBS share")
        return self


def _join(platform: Platform, base: str, relative: str) -> str:
    if platform is Platform.windows:
        return base.rstrip("\\") + "\\" + relative.replace("/", "\\")
    return base.rstrip("/") + "/" + relative


def _variables(spec: NodeBootstrap) -> dict[str, str | list[str]]:
    """The per-node values both bodies read (names in UPPER_SNAKE; PowerShell gets CamelCase)."""
    fme, table = spec.fme, spec.fme.layout
    platform = table.platform

    def path(relative: str) -> str:
        return _join(platform, fme.install_dir, relative)

    confd = path(table.confd_binary)
    confd_dir = confd.rsplit("\\" if platform is Platform.windows else "/", 1)[0]
    values, modified = path(table.values_file), path(table.values_modified_file)
    health_port = fme.health_check_port or fme.web_port
    variables: dict[str, str | list[str]] = {
        "NODE_NAME": spec.node_name,
        "FME_VERSION": fme.version,
        "INSTALL_DIR": fme.install_dir,
        "VERSION_FILE": path(table.version_file),
        "VALUES_FILE": values,
        "VALUES_MODIFIED_FILE": modified,
        "CONFD": confd,
        "CONFD_ARGS": confd_arguments(table.confd_syntax, confd_dir, [values, modified]),
        "VALUES_KEYS": list(table.values_keys),
        "DB_CONFIG_FILES": [path(table.database_config_file), path(table.web_app_config_file)],
        "SQL_DIR": path(table.sql_dir),
        "SHARE_VOLUME_ID": spec.share_volume_id,
        "SYSTEM_SHARE_PATH": fme.system_share_path,
        "INITIAL_SHARE_DIR": fme.initial_share_dir,
        "DB_HOST": spec.db_host,
        "DB_PORT": str(spec.db_port),
        "DB_NAME": table.db_name,
        "DB_USER": table.db_user,
        "DB_SECRET_ARN": spec.db_secret_arn,
        "EXTERNAL_HOST": spec.external_host,
        "EXTERNAL_PORT": str(spec.external_port),
        "WEB_PORT": str(fme.web_port),
        "HEALTH_URL": f"http://127.0.0.1:{health_port}{fme.health_check_path}",
    }
    if platform is Platform.windows:
        variables["FME_SERVICES"] = list(table.services)
        variables["FME_DATABASE_SERVICE"] = table.database_service or ""
        variables["PG_BIN_DIR"] = path(table.pg_bin_dir or "")
        variables["FIREWALL_PORTS"] = sorted({str(fme.web_port), str(health_port),
                                              str(fme.websocket_port)}, key=int)
    else:
        variables["SHARE_KIND"] = spec.share_kind
        variables["SHARE_FILE_SYSTEM_ID"] = spec.share_file_system_id
        variables["SHARE_ACCESS_POINT_ID"] = spec.share_access_point_id
        variables["START_SCRIPT"] = path(table.start_script or "")
        variables["STOP_SCRIPT"] = path(table.stop_script or "")
        variables["FME_SERVICE_USER"] = table.service_user or ""
    return variables


def _body(name: str) -> str:
    return resources.files("components").joinpath(f"templates/{name}").read_text()


def _ps_quote(value: str) -> str:
    """A PowerShell verbatim string: nothing inside is expanded; a quote is doubled."""
    return "'" + value.replace("'", "''") + "'"


def _ps_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.lower().split("_"))


def script_windows(spec: NodeBootstrap) -> str:
    """The node's PowerShell script (Windows PowerShell 5.1, as LocalSystem)."""
    lines = [f"# fme-aa bootstrap for node {spec.node_name} (FME {spec.fme.version} on Windows): "
             "generated by components/bootstrap.py."]
    for key, value in _variables(spec).items():
        if isinstance(value, list):
            rendered = "@(" + ", ".join(_ps_quote(v) for v in value) + ")"
        else:
            rendered = _ps_quote(value)
        lines.append(f"${_ps_name(key)} = {rendered}")
    return "\n".join(lines) + "\n" + _body("bootstrap.ps1")


def script_linux(spec: NodeBootstrap) -> str:
    """The node's bash script (as root)."""
    lines = ["#!/bin/bash",
             f"# fme-aa bootstrap for node {spec.node_name} (FME {spec.fme.version} on Linux): "
             "generated by components/bootstrap.py."]
    for key, value in _variables(spec).items():
        if isinstance(value, list):
            lines.append(f"readonly {key}=(" + " ".join(shlex.quote(v) for v in value) + ")")
        else:
            lines.append(f"readonly {key}={shlex.quote(value)}")
    return "\n".join(lines) + "\n" + _body("bootstrap.sh")


def render_script(spec: NodeBootstrap) -> str:
    """The node's complete bootstrap script, readable, in its platform's language."""
    return script_windows(spec) if spec.fme.platform is Platform.windows else script_linux(spec)


# EC2 takes at most 16 KB of user data, which the scripts outgrow. So the user data is a short
# stub holding the script gzip-compressed (deterministically: the same script gives the same
# bytes, or every `pulumi up` would update the instances); the stub writes it to the node's
# state directory and runs it from there.
PACKED_BEGIN, PACKED_END = "# packed script begins", "# packed script ends"  # PowerShell
HEREDOC = "FME_AA_PACKED_SCRIPT"  # bash
WINDOWS_SCRIPT_PATH = r"C:\ProgramData\fme-aa\bootstrap.ps1"
LINUX_SCRIPT_PATH = "/var/lib/fme-aa/bootstrap.sh"
USER_DATA_LIMIT = 16 * 1024


def _pack(script: str) -> list[str]:
    packed = base64.b64encode(gzip.compress(script.encode(), compresslevel=9, mtime=0)).decode()
    return [packed[i:i + 76] for i in range(0, len(packed), 76)]


def _stub_windows(spec: NodeBootstrap, packed: list[str]) -> str:
    """EC2Launch v2 user data: a <powershell> script, run again at every boot (<persist>) until
    the node is configured. EC2Launch v2 also takes YAML task documents; this XML form is the
    one Safe's AWS template uses (safesoftware/fme-server-iac-templates
    `AWS/terraform/modules/asg/asg_core/user_data/user_data_core.tftpl`)."""
    return "\n".join([
        "<powershell>",
        f"# fme-aa bootstrap for node {spec.node_name} (FME {spec.fme.version} on Windows), "
        "generated by components/bootstrap.py.",
        "# EC2 user data holds at most 16 KB, so the script travels gzip-compressed below: this",
        f"# stub writes it to {WINDOWS_SCRIPT_PATH} and runs it (`./dev preview --user-data`",
        "# shows it before deploying).",
        "$ErrorActionPreference = 'Stop'",
        f"$target = '{WINDOWS_SCRIPT_PATH}'",
        "New-Item -ItemType Directory -Force -Path (Split-Path -Parent $target) | Out-Null",
        "$packed = @(",
        PACKED_BEGIN,
        *(f"'{line}'" for line in packed),
        PACKED_END,
        ") -join ''",
        "$stream = New-Object System.IO.MemoryStream(, [Convert]::FromBase64String($packed))",
        "$gzip = New-Object System.IO.Compression.GZipStream($stream, "
        "[System.IO.Compression.CompressionMode]::Decompress)",
        "$text = (New-Object System.IO.StreamReader($gzip, [System.Text.Encoding]::UTF8)).ReadToEnd()",
        "[System.IO.File]::WriteAllText($target, $text, (New-Object System.Text.UTF8Encoding($false)))",
        "& powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File $target",
        "exit $LASTEXITCODE",
        "</powershell>",
        "<persist>true</persist>",
        "",
    ])


def _stub_linux(spec: NodeBootstrap, packed: list[str]) -> str:
    """cloud-init user data: runs once per instance; the unpacked script can be re-run by hand."""
    return "\n".join([
        "#!/bin/bash",
        f"# fme-aa bootstrap for node {spec.node_name} (FME {spec.fme.version} on Linux), "
        "generated by components/bootstrap.py.",
        "# EC2 user data holds at most 16 KB, so the script travels gzip-compressed below: this",
        f"# stub writes it to {LINUX_SCRIPT_PATH} and runs it (`./dev preview --user-data`",
        "# shows it before deploying).",
        "set -euo pipefail",
        "umask 077",
        f"mkdir -p {shlex.quote(LINUX_SCRIPT_PATH.rsplit('/', 1)[0])}",
        f"base64 -d <<'{HEREDOC}' | gzip -dc >{LINUX_SCRIPT_PATH}",
        *packed,
        HEREDOC,
        f"exec bash {LINUX_SCRIPT_PATH}",
        "",
    ])


def render_bootstrap(spec: NodeBootstrap) -> str:
    """The node's EC2 user data: its platform's stub around its packed script."""
    packed = _pack(render_script(spec))
    if spec.fme.platform is Platform.windows:
        return _stub_windows(spec, packed)
    return _stub_linux(spec, packed)


def unpack_user_data(user_data: str) -> str:
    """The script inside rendered user data (for the preview and the tests)."""
    if user_data.startswith("<powershell>"):
        begin, end = PACKED_BEGIN + "\n", "\n" + PACKED_END
    else:
        begin, end = f"<<'{HEREDOC}' | gzip -dc >{LINUX_SCRIPT_PATH}\n", "\n" + HEREDOC
    block = user_data.split(begin, 1)[1].split(end, 1)[0]
    packed = "".join(line.strip().strip("'") for line in block.splitlines())
    return gzip.decompress(base64.b64decode(packed)).decode()
