"""Typed model of the Pulumi stack configuration.

Every setting the Pulumi program reads is declared here, validated by pydantic before any
resource is declared. Keys are camelCase in `Pulumi.<stack>.yaml` (Pulumi's convention) and
snake_case in Python.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from config.fme_versions import (
    FmeLayout,
    Platform,
    Version,
    check_known,
    layout,
    parse_version,
    show_version,
)

# Node names become parts of AWS names (RDS identifiers, target names, tags): keep them DNS-ish.
NODE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,23}$"
_NODE_NUMBER = re.compile(r"(\d+)$")


class _Model(BaseModel):
    """Base for every config section: camelCase keys, unknown keys rejected (typos fail loudly)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid CIDR block ({exc})") from None
    return value


AMI_ID_PATTERN = r"^ami-[0-9a-f]{8,17}$"
INSTANCE_TYPE_PATTERN = r"^[a-z0-9]+\.[a-z0-9]+$"
INSTANCE_ID_PATTERN = r"^i-[0-9a-f]{8,17}$"


class NodeSpec(_Model):
    """One FME node. `zone` pins it to the N-th availability zone (0-based) of the node subnets.

    `ami` / `instanceType` are this node's own values instead of the cluster-wide ones. Like the
    cluster-wide values they reach an existing instance only when the node is the stack's
    `rollout` node (README, "Changing instance types"). `replaces` names the node this one takes
    over from during a surge upgrade (`fmeaa upgrade` writes it; informational for Pulumi).
    """

    name: str = Field(pattern=NODE_NAME_PATTERN)
    zone: int | None = Field(default=None, ge=0)
    ami: str | None = Field(default=None, pattern=AMI_ID_PATTERN)
    instance_type: str | None = Field(default=None, pattern=INSTANCE_TYPE_PATTERN)
    replaces: str | None = Field(default=None, pattern=NODE_NAME_PATTERN)

    def zone_index(self, zone_count: int) -> int:
        """Stable AZ placement derived from the name only, so removing a node never moves another.

        `fme-3` → zone (3-1) % n (round-robin for numbered names); other names hash with CRC32.
        """
        if self.zone is not None:
            return self.zone % zone_count
        match = _NODE_NUMBER.search(self.name)
        if match:
            return (int(match.group(1)) - 1) % zone_count
        return zlib.crc32(self.name.encode()) % zone_count


class AmiLookup(_Model):
    name_pattern: str = Field(min_length=1, description="EC2 image name filter, wildcards allowed")
    owners: list[str] = Field(min_length=1)


class AmiConfig(_Model):
    """The FME Server/Flow image every node runs. Exactly one of `id`, `lookup` or
    `fromInstance` (an image made of your running FME server: README, "From one FME server to
    Active-Active")."""

    id: str | None = Field(default=None, pattern=AMI_ID_PATTERN)
    lookup: AmiLookup | None = None
    from_instance: str | None = Field(default=None, pattern=INSTANCE_ID_PATTERN)
    # fromInstance only: EC2 reboots the server for a consistent image unless this is true.
    snapshot_without_reboot: bool = False
    # Copy the source image into this account/region, encrypted, so the cluster does not depend
    # on a public or Marketplace image staying available. An image made `fromInstance` is always
    # copied encrypted (its snapshots are only as encrypted as the server's volumes).
    copy_to_account: bool = False
    copy_kms_key_id: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AmiConfig:
        given = [key for key, value in (("id", self.id), ("lookup", self.lookup),
                                        ("fromInstance", self.from_instance)) if value is not None]
        problems = []
        if len(given) != 1:
            problems.append("set exactly one of 'id' (ami-…), 'lookup' {namePattern, owners} or "
                            "'fromInstance' (i-…: your running FME server, imaged by the stack)"
                            + (f"; got {' and '.join(given)}" if given else ""))
        if self.snapshot_without_reboot and self.from_instance is None:
            problems.append("snapshotWithoutReboot only applies to 'fromInstance' (the server "
                            "the image is made of)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def copied(self) -> bool:
        """Whether the nodes run an encrypted copy made by the stack."""
        return self.copy_to_account or self.from_instance is not None


class NewVpc(_Model):
    cidr: str = "10.40.0.0/16"
    az_count: int = Field(default=2, ge=2, le=6)
    # One NAT gateway is cheaper; one per AZ survives an AZ outage.
    nat_gateways: Literal["one", "per_az"] = "one"

    @field_validator("cidr")
    @classmethod
    def _room_for_subnets(cls, value: str) -> str:
        _check_cidr(value)
        if ipaddress.ip_network(value).prefixlen > 24:
            raise ValueError(f"{value!r} is too small: use a /24 or larger (e.g. /16)")
        return value


class ExistingVpc(_Model):
    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]+$")
    public_subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]] = Field(
        min_length=2
    )
    private_subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]] = Field(
        min_length=2
    )


class NetworkConfig(_Model):
    """Either `new` (a VPC built by the stack) or `existing` (ids of a VPC you manage)."""

    new: NewVpc | None = None
    existing: ExistingVpc | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkConfig:
        if self.new is not None and self.existing is not None:
            raise ValueError("set only one of 'new' or 'existing'")
        return self

    @property
    def zone_count(self) -> int:
        """How many AZs the node subnets span: a node's `zone` must be below it."""
        if self.existing is not None:
            return len(self.existing.private_subnet_ids)
        return (self.new or NewVpc()).az_count

    @property
    def new_vpc(self) -> NewVpc | None:
        """The VPC to build, or None when an existing VPC is used (the default builds one)."""
        if self.existing is not None:
            return None
        return self.new or NewVpc()


class ShareKind(StrEnum):
    ebs = "ebs"
    efs = "efs"


class ShareConfig(_Model):
    """Each node's own FME System Share (never shared between nodes: job logs would collide)."""

    kind: ShareKind = ShareKind.ebs
    size_gib: int = Field(default=100, ge=1, le=16384, description="EBS only")
    volume_type: Literal["gp3", "gp2", "io2"] = "gp3"
    iops: int | None = Field(default=None, ge=3000, le=64000, description="gp3/io2 only")
    throughput_mibps: int | None = Field(default=None, ge=125, le=1000, description="gp3 only")
    efs_throughput_mode: Literal["elastic", "bursting"] = "elastic"
    kms_key_id: str | None = None

    @model_validator(mode="after")
    def _ebs_options(self) -> ShareConfig:
        if self.throughput_mibps is not None and self.volume_type != "gp3":
            raise ValueError("throughputMibps applies only to volumeType gp3")
        if self.iops is not None and self.volume_type == "gp2":
            raise ValueError("iops cannot be set for volumeType gp2")
        return self


# Keys `fme` no longer takes, with what replaced each (a clear error beats "unknown setting").
_FME_REPLACED = {
    "generation": 'replaced by fme.platform (windows | linux) and fme.version (the FME release '
                  'your image has installed, e.g. "2025.2")',
    "rest_base_path": "now follows fme.version (REST v4 from 2023.0, v3 before)",
    "database_config_file": "now follows fme.platform and fme.version (README: FME layout per "
                          "platform and release)",
    "schema_script": "FME's own SQL scripts are now run from the install directory (fme.installDir)",
    "psql_path": "psql now comes from the FME install (Windows) or the PATH (Linux)",
    "services": "service names now follow fme.platform and fme.version",
    "local_database_service": "the bundled database service now follows fme.platform and fme.version",
    "service_user": "the Linux service account now follows fme.version",
}
_DATABASE_REPLACED = {
    "db_name": "the FME database is created by FME's own SQL scripts and named by fme.version "
              "(fmeflow from 2024.0, fmeserver before)",
    "app_username": "the role FME connects as is created by FME's own SQL scripts and named by "
                   "fme.version (fmeflow from 2024.0, fmeserver before)",
}


# AWS Foundational Security Best Practices RDS.11 ("RDS instances should have automatic backups
# enabled"): FAILED below its backupRetentionMinimum, 7 days by default (Security Hub user guide,
# https://docs.aws.amazon.com/securityhub/latest/userguide/rds-controls.html#rds-11). The stack is
# checked against that control (tests/test_security_policy.py), so a shorter retention is refused.
MIN_BACKUP_RETENTION_DAYS = 7


class DatabaseConfig(_Model):
    """Each node's own RDS PostgreSQL instance."""

    engine_version: str = Field(default="16", pattern=r"^\d{2}(\.\d+)?$")
    instance_class: str = Field(default="db.t4g.small", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    allocated_storage_gib: int = Field(default=20, ge=20, le=65536)
    max_allocated_storage_gib: int | None = Field(default=100, ge=20, le=65536)
    multi_az: bool = False
    backup_retention_days: int = Field(default=MIN_BACKUP_RETENTION_DAYS, le=35)
    deletion_protection: bool = True
    master_username: str = Field(default="fmeadmin", pattern=r"^[a-z][a-z0-9_]{0,15}$")

    # Replaced keys, accepted only to be refused with what replaced them.
    db_name: object = Field(default=None, exclude=True)
    app_username: object = Field(default=None, exclude=True)

    @field_validator(*_DATABASE_REPLACED, mode="before")
    @classmethod
    def _replaced(cls, value: object, info: ValidationInfo) -> object:
        raise ValueError(_DATABASE_REPLACED[str(info.field_name)])

    @field_validator("backup_retention_days")
    @classmethod
    def _rds_11(cls, days: int) -> int:
        if days < MIN_BACKUP_RETENTION_DAYS:
            raise ValueError(
                f"{days} day(s) is below the {MIN_BACKUP_RETENTION_DAYS} days AWS Foundational "
                "Security Best Practices control RDS.11 requires for automatic RDS backups (the "
                f"stack is checked against it); set {MIN_BACKUP_RETENTION_DAYS} to 35")
        return days

    @property
    def major_version(self) -> str:
        return self.engine_version.split(".")[0]

    @model_validator(mode="after")
    def _storage_ceiling(self) -> DatabaseConfig:
        ceiling = self.max_allocated_storage_gib
        if ceiling is not None and ceiling < self.allocated_storage_gib:
            raise ValueError("maxAllocatedStorageGib must be >= allocatedStorageGib")
        return self


class LoadBalancerConfig(_Model):
    # Without a certificate the ALB serves plain HTTP and the program prints a warning.
    certificate_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:acm:")
    allowed_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1)
    # FME's web UI and websocket clients hold connections open; 60 s (the AWS default) cuts them.
    idle_timeout_seconds: int = Field(default=300, ge=1, le=4000)
    ssl_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    websocket: bool = True
    deletion_protection: bool = False

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return [_check_cidr(v) for v in values]


_WINDOWS_PATH = r"^[A-Za-z]:\\"


class FmeConfig(_Model):
    """Which FME image the nodes run. Every default comes from the table in
    `config/fme_versions.py` for this platform and release; the few settings below override it
    where an UNCONFIRMED value must be corrected for your image."""

    platform: Platform = Platform.windows
    version: str | None = Field(default=None, validate_default=True)
    install_dir: str | None = None
    system_share_path: str | None = None
    initial_share_dir: str | None = None
    web_port: int | None = Field(default=None, ge=1, le=65535)
    health_check_port: int | None = Field(default=None, ge=1, le=65535)
    health_check_path: str | None = Field(default=None, pattern=r"^/")
    websocket_port: int | None = Field(default=None, ge=1, le=65535)
    share_owner_uid: int = Field(default=1363, ge=0)  # the FME chart's uid; EFS access point only

    # Replaced keys, accepted only to be refused with what replaced them.
    generation: object = Field(default=None, exclude=True)
    rest_base_path: object = Field(default=None, exclude=True)
    database_config_file: object = Field(default=None, exclude=True)
    schema_script: object = Field(default=None, exclude=True)
    psql_path: object = Field(default=None, exclude=True)
    services: object = Field(default=None, exclude=True)
    local_database_service: object = Field(default=None, exclude=True)
    service_user: object = Field(default=None, exclude=True)

    @field_validator(*_FME_REPLACED, mode="before")
    @classmethod
    def _replaced(cls, value: object, info: ValidationInfo) -> object:
        raise ValueError(_FME_REPLACED[str(info.field_name)])

    @field_validator("version", mode="before")
    @classmethod
    def _release(cls, value: object) -> str:
        if value is None:  # reported like a missing key (no "got None")
            raise PydanticCustomError(
                "missing", 'set fme.version to the FME release your image has installed (its '
                '<installDir>/VersionInfo.txt), e.g. "2025.2"')
        if isinstance(value, float):  # YAML 2025.2 unquoted
            value = repr(value)
        release = parse_version(str(value))
        check_known(release)
        return show_version(release)

    @model_validator(mode="after")
    def _paths_fit_platform(self) -> FmeConfig:
        problems = []
        for key in ("install_dir", "system_share_path", "initial_share_dir"):
            path = getattr(self, key)
            if path is None:
                continue
            windows_path = re.match(_WINDOWS_PATH, path) is not None
            if self.platform is Platform.windows and not windows_path:
                problems.append(f"{to_camel(key)} {path!r} must be a Windows path (X:\\…)")
            if self.platform is Platform.linux and not path.startswith("/"):
                problems.append(f"{to_camel(key)} {path!r} must be an absolute Linux path")
        share = self.system_share_path
        if self.platform is Platform.windows and share and share[:1].upper() == "C":
            problems.append(f"systemSharePath {share!r} is on the system drive: the node's share "
                            "volume is formatted and needs its own drive letter (e.g. "
                            "Z:\\fmeflowdata)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def release(self) -> Version:
        assert self.version is not None  # the validator refuses None
        return parse_version(self.version)

    def resolved(self) -> ResolvedFme:
        table = layout(self.platform, self.release)
        return ResolvedFme(
            layout=table,
            install_dir=self.install_dir or table.install_dir,
            system_share_path=self.system_share_path or table.system_share_path,
            initial_share_dir=self.initial_share_dir or table.initial_share_dir,
            web_port=self.web_port or table.web_port,
            health_check_port=self.health_check_port or table.health_check_port,
            health_check_path=self.health_check_path or table.health_check_path,
            websocket_port=self.websocket_port or table.websocket_port,
            share_owner_uid=self.share_owner_uid,
        )


class ResolvedFme(BaseModel):
    """FmeConfig with every default filled in from the table: what the components consume."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    layout: FmeLayout
    install_dir: str
    system_share_path: str
    initial_share_dir: str
    web_port: int
    health_check_port: int | None
    health_check_path: str
    websocket_port: int
    share_owner_uid: int

    @property
    def platform(self) -> Platform:
        return self.layout.platform

    @property
    def version(self) -> str:
        return show_version(self.layout.version)

    @property
    def generation(self) -> str:
        return self.layout.generation

    @property
    def rest_base_path(self) -> str:
        return self.layout.rest_base_path


class SeedMode(StrEnum):
    PULUMI = "pulumi"  # `pulumi up` syncs each new node, then registers it with the ALB
    MANUAL = "manual"  # Pulumi never registers nodes; `fmeaa seed NODE` syncs, then registers


class SeedConfig(_Model):
    """Seed-before-serve: a node joins the load balancer only once it holds the content."""

    mode: SeedMode = SeedMode.PULUMI
    source: str = Field(default="content", description="Content directory (relative to the "
                        "Pulumi project), node:NAME (a reference node) or url:https://SERVER "
                        "(an FME server outside the cluster, read only: the one migrated from).")
    # The FME admin credentials live in Secrets Manager; only the secret's id is config.
    credentials_secret_id: str | None = None
    # With a url: source, that server's own credentials (Secrets Manager), never the nodes'.
    source_credentials_secret_id: str | None = None
    timeout_seconds: int = Field(default=1800, ge=60, le=7200)
    # The node REST URLs are http://<private ip>:<web port> inside the VPC.
    allow_http: bool = True

    @model_validator(mode="after")
    def _credentials(self) -> SeedConfig:
        problems = []
        if self.mode is SeedMode.PULUMI and not self.credentials_secret_id:
            problems.append("seed.mode 'pulumi' needs seed.credentialsSecretId (an AWS Secrets "
                            "Manager secret with the FME admin username and password), or use "
                            "seed.mode 'manual'")
        if self.source.startswith("node:") and not re.match(NODE_NAME_PATTERN,
                                                            self.source.removeprefix("node:")):
            problems.append(f"seed.source {self.source!r}: node:NAME needs a node name")
        url = self.source.removeprefix("url:") if self.source.startswith("url:") else None
        if url is not None and not re.match(r"^https?://[^/@\s]+(/\S*)?$", url):
            shown = "url:…" if "@" in url else repr(self.source)  # user:password@ is not echoed
            problems.append(f"seed.source {shown}: url: takes the server's address, e.g. "
                            "url:https://fme.example.com (no credentials in it)")
        if url is not None and self.mode is SeedMode.PULUMI \
                and not self.source_credentials_secret_id:
            problems.append("seed.source url:… with seed.mode 'pulumi' needs "
                            "seed.sourceCredentialsSecretId (a Secrets Manager secret with that "
                            "server's own {\"username\", \"password\"})")
        if self.source_credentials_secret_id and url is None:
            problems.append("seed.sourceCredentialsSecretId is only used with a url: seed.source")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class LicenseMode(StrEnum):
    MARKETPLACE = "marketplace"  # pay-as-you-go AMI: licensed by AWS Marketplace, nothing to do
    BYOL = "byol"  # bring your own licence: each clone requests its licence when seeded


class LicenseConfig(_Model):
    mode: LicenseMode = LicenseMode.MARKETPLACE
    # Secrets Manager secret holding {"serialNumber": ..., "email"?, "company"?}.
    serial_secret_id: str | None = None

    @model_validator(mode="after")
    def _serial(self) -> LicenseConfig:
        if self.mode is LicenseMode.BYOL and not self.serial_secret_id:
            raise ValueError("license.mode 'byol' needs license.serialSecretId (a Secrets Manager "
                             "secret holding the FME serial number)")
        return self


class StackConfig(_Model):
    """The whole stack: validated once, before the first resource is declared."""

    cluster_name: str = Field(default="fme-aa", pattern=r"^[a-z][a-z0-9-]{1,19}$")
    # Before `nodes`: the nodes' zones are checked against it.
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    node_count: int | None = Field(default=None, ge=1, le=50)
    nodes: list[NodeSpec | str] | None = None
    ami: AmiConfig
    instance_type: str = Field(default="m6i.xlarge", pattern=INSTANCE_TYPE_PATTERN)
    root_volume_gib: int = Field(default=100, ge=30, le=16384)
    # The one node whose instance takes the stack's current image, instance type, root volume
    # and bootstrap in this `pulumi up`; every other node keeps what it runs (pinned in Pulumi's
    # state by `ignore_changes`). See README, "Changing instance types".
    rollout: str | None = Field(default=None, pattern=NODE_NAME_PATTERN)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    share: ShareConfig = Field(default_factory=ShareConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig)
    # Validated even when absent, so a missing fme.version is reported with the rest.
    fme: FmeConfig = Field(default_factory=dict, validate_default=True)  # type: ignore[arg-type]
    seed: SeedConfig = Field(default_factory=lambda: SeedConfig(mode=SeedMode.MANUAL))
    license: LicenseConfig = Field(default_factory=LicenseConfig)
    # Where operators (and the fmeaa sync) reach each node's REST port directly, bypassing the ALB.
    admin_cidr: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("admin_cidr")
    @classmethod
    def _admin(cls, value: str | None) -> str | None:
        return None if value is None else _check_cidr(value)

    @field_validator("tags")
    @classmethod
    def _tag_limits(cls, tags: dict[str, str]) -> dict[str, str]:
        for key, value in tags.items():
            if not key or len(key) > 128 or key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r} must be 1-128 chars and not start with 'aws:'")
            if len(value) > 256:
                raise ValueError(f"tag {key!r} value is longer than 256 chars")
        return tags

    @model_validator(mode="after")
    def _nodes(self) -> StackConfig:
        if (self.node_count is None) == (self.nodes is None):
            raise ValueError("set exactly one of 'nodeCount' (a number) or 'nodes' (a list of names)")
        if self.nodes is not None and not self.nodes:
            raise ValueError("'nodes' must name at least one node")
        problems = self._rollout_problems([s.name for s in self.node_specs])
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _fme_fits_share_and_database(self) -> StackConfig:
        problems = []
        if self.fme.platform is Platform.windows and self.share.kind is ShareKind.efs:
            problems.append("share.kind 'efs' cannot serve fme.platform 'windows': EFS is NFS, "
                            "which FME's Windows services cannot use as their System Share; set "
                            "share.kind to 'ebs' (or run Linux nodes)")
        fme_role = layout(self.fme.platform, self.fme.release).db_user
        if self.database.master_username == fme_role:
            problems.append(f"database.masterUsername {fme_role!r} is the role FME's own scripts "
                            f"create for FME {self.fme.version}: choose another admin name")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _rollout_problems(self, names: list[str]) -> list[str]:
        problems = []
        if self.rollout is not None and self.rollout not in names:
            problems.append(f"rollout: {self.rollout!r} is not one of the stack's nodes "
                            f"({', '.join(names)})")
        replaced = [n.replaces for n in self.node_specs if n.replaces]
        for spec in self.node_specs:
            if spec.replaces == spec.name:
                problems.append(f"nodes[{spec.name}].replaces: a node cannot replace itself")
            if spec.ami and self.ami.copy_to_account:
                problems.append(f"nodes[{spec.name}].ami: not supported with ami.copyToAccount "
                                "(only ami.id is copied); remove one of them")
        twice = sorted({r for r in replaced if replaced.count(r) > 1})
        if twice:
            problems.append(f"nodes: more than one node replaces {', '.join(twice)}")
        return problems

    @property
    def node_specs(self) -> list[NodeSpec]:
        """Nodes in declared order. `nodeCount: 3` means fme-1, fme-2, fme-3."""
        if self.nodes is None:
            return [NodeSpec(name=f"fme-{i}") for i in range(1, (self.node_count or 0) + 1)]
        return [NodeSpec(name=n) if isinstance(n, str) else n for n in self.nodes]

    @field_validator("nodes")
    @classmethod
    def _node_list(cls, value: list[NodeSpec | str] | None,
                   info: ValidationInfo) -> list[NodeSpec | str] | None:
        """Names, duplicates and zones, all reported together (and beside other fields' errors:
        this checks the field alone, plus the network when that is valid)."""
        if value is None:
            return None
        specs = [NodeSpec.model_construct(name=n) if isinstance(n, str) else n for n in value]
        problems = [f"node name {s.name!r} must match {NODE_NAME_PATTERN} (lowercase letter "
                    "first, then lowercase letters, digits or '-', ≤24 chars)"
                    for s in specs if not re.match(NODE_NAME_PATTERN, s.name)]
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"duplicate node names: {', '.join(dupes)}")
        network = info.data.get("network")
        if network is not None:
            count = network.zone_count
            problems += [f"{s.name}: zone {s.zone} does not exist: the node subnets span "
                         f"{count} availability zones (zones 0–{count - 1}); pick one of "
                         "those, or add zones (network.new.azCount or more privateSubnetIds)"
                         for s in specs if s.zone is not None and s.zone >= count]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @property
    def https(self) -> bool:
        return self.load_balancer.certificate_arn is not None
