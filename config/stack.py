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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

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
    """The FME Server/Flow image every node runs. Exactly one of `id` or `lookup`."""

    id: str | None = Field(default=None, pattern=AMI_ID_PATTERN)
    lookup: AmiLookup | None = None
    # Copy the source image into this account/region, encrypted, so the cluster does not depend
    # on a public or Marketplace image staying available.
    copy_to_account: bool = False
    copy_kms_key_id: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AmiConfig:
        if (self.id is None) == (self.lookup is None):
            raise ValueError("set exactly one of 'id' (ami-…) or 'lookup' {namePattern, owners}")
        return self


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


class DatabaseConfig(_Model):
    """Each node's own RDS PostgreSQL instance."""

    engine_version: str = Field(default="16", pattern=r"^\d{2}(\.\d+)?$")
    instance_class: str = Field(default="db.t4g.small", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    allocated_storage_gib: int = Field(default=20, ge=20, le=65536)
    max_allocated_storage_gib: int | None = Field(default=100, ge=20, le=65536)
    multi_az: bool = False
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    deletion_protection: bool = True
    db_name: str = Field(default="fmeserver", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    master_username: str = Field(default="fmeadmin", pattern=r"^[a-z][a-z0-9_]{0,15}$")
    # The unprivileged role FME itself connects as; created by the node's bootstrap.
    app_username: str = Field(default="fmeserver", pattern=r"^[a-z][a-z0-9_]{0,62}$")

    @property
    def major_version(self) -> str:
        return self.engine_version.split(".")[0]

    @model_validator(mode="after")
    def _storage_ceiling(self) -> DatabaseConfig:
        ceiling = self.max_allocated_storage_gib
        if ceiling is not None and ceiling < self.allocated_storage_gib:
            raise ValueError("maxAllocatedStorageGib must be >= allocatedStorageGib")
        if self.master_username == self.app_username:
            raise ValueError("masterUsername and appUsername must differ")
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


class FmeGeneration(StrEnum):
    server = "server"  # FME Server ≤2022, REST v3
    flow = "flow"  # FME Flow 2023+, REST v4


# Defaults per generation. Ports and health checks are from Safe's own AWS template (flow) and
# fmeflow-cli (server); Linux paths and service names are UNCONFIRMED — every one is a setting.
_GENERATION_DEFAULTS: dict[FmeGeneration, dict[str, object]] = {
    FmeGeneration.server: {
        "web_port": 80,
        "health_check_port": None,
        "health_check_path": "/fmerest/v3/healthcheck",
        "rest_base_path": "/fmerest/v3",
        "install_dir": "/opt/fmeserver",
        "system_share_path": "/data/fmeserverdata",
        "services": ["fmeserver-core", "fmeserver-engines", "fmeserver-appserver"],
        "local_database_service": "fmeserver-database",
        "service_user": "fmeserver",
    },
    FmeGeneration.flow: {
        "web_port": 8080,
        "health_check_port": 80,
        "health_check_path": "/fmeapiv4/healthcheck/liveness",
        "rest_base_path": "/fmeapiv4",
        "install_dir": "/opt/fmeflow",
        "system_share_path": "/data/fmeflowdata",
        "services": ["fmeflow-core", "fmeflow-engines", "fmeflow-appserver"],
        "local_database_service": "fmeflow-database",
        "service_user": "fmeflow",
    },
}


class FmeConfig(_Model):
    """How the FME install inside the AMI is laid out. Unset fields take the generation default."""

    generation: FmeGeneration = FmeGeneration.flow
    web_port: int | None = Field(default=None, ge=1, le=65535)
    health_check_port: int | None = Field(default=None, ge=1, le=65535)
    health_check_path: str | None = Field(default=None, pattern=r"^/")
    rest_base_path: str | None = Field(default=None, pattern=r"^/")
    websocket_port: int = Field(default=7078, ge=1, le=65535)
    install_dir: str | None = Field(default=None, pattern=r"^/")
    system_share_path: str | None = Field(default=None, pattern=r"^/")
    database_config_file: str | None = Field(default=None, pattern=r"^/")
    schema_script: str | None = Field(default=None, pattern=r"^/")
    psql_path: str = "psql"
    services: list[str] | None = None
    local_database_service: str | None = None
    service_user: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_-]*$")
    share_owner_uid: int = Field(default=1363, ge=0)  # the FME chart's uid; EFS access point only

    def resolved(self) -> ResolvedFme:
        defaults = _GENERATION_DEFAULTS[self.generation]
        pick = {k: (getattr(self, k) if getattr(self, k) is not None else v)
                for k, v in defaults.items()}
        install_dir = str(pick["install_dir"])
        return ResolvedFme(
            generation=self.generation,
            web_port=int(pick["web_port"]),  # type: ignore[arg-type]
            health_check_port=pick["health_check_port"],  # type: ignore[arg-type]
            health_check_path=str(pick["health_check_path"]),
            rest_base_path=str(pick["rest_base_path"]),
            websocket_port=self.websocket_port,
            install_dir=install_dir,
            system_share_path=str(pick["system_share_path"]),
            database_config_file=self.database_config_file
            or f"{install_dir}/Server/fmeDatabaseConfig.txt",
            schema_script=self.schema_script
            or f"{install_dir}/Server/database/postgresql/postgresql_createSchema.sql",
            psql_path=self.psql_path,
            services=list(pick["services"]),  # type: ignore[call-overload]
            local_database_service=pick["local_database_service"],  # type: ignore[arg-type]
            service_user=str(pick["service_user"]),
            share_owner_uid=self.share_owner_uid,
        )


class ResolvedFme(BaseModel):
    """FmeConfig with every default filled in: what components and the bootstrap consume."""

    model_config = ConfigDict(frozen=True)

    generation: FmeGeneration
    web_port: int
    health_check_port: int | None
    health_check_path: str
    rest_base_path: str
    websocket_port: int
    install_dir: str
    system_share_path: str
    database_config_file: str
    schema_script: str
    psql_path: str
    services: list[str]
    local_database_service: str | None
    service_user: str
    share_owner_uid: int


class SeedMode(StrEnum):
    PULUMI = "pulumi"  # `pulumi up` syncs each new node, then registers it with the ALB
    MANUAL = "manual"  # Pulumi never registers nodes; `fmeaa seed NODE` syncs, then registers


class SeedConfig(_Model):
    """Seed-before-serve: a node joins the load balancer only once it holds the content."""

    mode: SeedMode = SeedMode.PULUMI
    source: str = Field(default="content", description="Content directory (relative to the "
                        "Pulumi project) or node:NAME (a reference node).")
    # The FME admin credentials live in Secrets Manager; only the secret's id is config.
    credentials_secret_id: str | None = None
    timeout_seconds: int = Field(default=1800, ge=60, le=7200)
    # The node REST URLs are http://<private ip>:<web port> inside the VPC.
    allow_http: bool = True

    @model_validator(mode="after")
    def _credentials(self) -> SeedConfig:
        if self.mode is SeedMode.PULUMI and not self.credentials_secret_id:
            raise ValueError("seed.mode 'pulumi' needs seed.credentialsSecretId (an AWS Secrets "
                             "Manager secret with the FME admin username and password), or use "
                             "seed.mode 'manual'")
        if self.source.startswith("node:") and not re.match(NODE_NAME_PATTERN,
                                                            self.source.removeprefix("node:")):
            raise ValueError(f"seed.source {self.source!r}: node:NAME needs a node name")
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
    fme: FmeConfig = Field(default_factory=FmeConfig)
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
        names = [n.name for n in self.node_specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate node names: {', '.join(dupes)}")
        if self.nodes is not None and not self.nodes:
            raise ValueError("'nodes' must name at least one node")
        problems = self._rollout_problems(names)
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

    @field_validator("nodes", mode="before")
    @classmethod
    def _node_names(cls, value: object) -> object:
        if isinstance(value, list):
            for item in value:
                if isinstance(item, str) and not re.match(NODE_NAME_PATTERN, item):
                    raise ValueError(
                        f"node name {item!r} must match {NODE_NAME_PATTERN} "
                        "(lowercase letter first, then lowercase letters, digits or '-', ≤24 chars)"
                    )
        return value

    @property
    def https(self) -> bool:
        return self.load_balancer.certificate_arn is not None
