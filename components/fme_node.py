"""FmeNode: one complete FME installation with its own System Share and its own database.

Every child's logical name starts with the node's name, so adding `fme-4` adds only fme-4's
resources and removing it removes only those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import security
from components.bootstrap import NodeBootstrap, render_bootstrap
from config.fme_versions import Platform
from config.stack import DatabaseConfig, ResolvedFme, ShareConfig, ShareKind
from fmeaa.cluster.tags import NODE_ROLE, ROLE_TAG, WEB_PORT_TAG, resource_tags

POSTGRES_PORT = 5432
NFS_PORT = 2049
HTTPS_PORT = 443
# The device name EC2 attaches the share volume under: AWS recommends /dev/sd[f-p] for Linux
# and xvd[f-z] for Windows ("Device names for volumes on Amazon EC2 instances").
EBS_DEVICE_NAME = {Platform.linux: "/dev/sdf", Platform.windows: "xvdf"}

# The instance fields a cluster-wide setting drives: image, instance type, root volume and the
# bootstrap (user data). Pulumi's state is each node's pin: these are `ignore_changes` on every
# node except the stack's `rollout` node, so a changed `ami.id`, `instanceType`, `rootVolumeGib`
# or bootstrap reaches new nodes at once and existing ones one `pulumi up` at a time.
ROLLED_FIELDS = ["ami", "instanceType", "rootBlockDevice", "userData", "userDataBase64",
                 "userDataReplaceOnChange"]
# What needs a new instance rather than a stop/start: another image, or another bootstrap (user
# data runs at first boot only, so a changed script must boot a new instance to run at all).
REPLACE_ON = ["ami", "userData", "userDataBase64"]


@dataclass
class FmeNodeArgs:
    cluster_name: str
    node_name: str
    vpc_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    availability_zone: pulumi.Input[str]
    private_subnet_ids: list[pulumi.Input[str]]
    alb_security_group_id: pulumi.Input[str]
    image_id: pulumi.Input[str]
    instance_type: str
    root_volume_gib: int
    share: ShareConfig
    database: DatabaseConfig
    db_subnet_group_name: pulumi.Input[str]
    db_parameter_group_name: pulumi.Input[str]
    fme: ResolvedFme
    websocket: bool
    external_host: pulumi.Input[str]  # the ALB's DNS name: FME's externalhostname
    external_port: int  # the ALB listener users reach (443 with a certificate, else 80)
    admin_cidr: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # The stack's `rollout` node: its instance follows image_id/instance_type/root volume/user
    # data in this `pulumi up`; every other node's instance keeps what its state holds.
    rollout: bool = False


def instance_options(parent: pulumi.Resource, rollout: bool) -> pulumi.ResourceOptions:
    """A node's instance is replaced delete-before-create: its share volume and its database
    must never serve two instances (an EBS volume attaches to one instance; two FME Cores on one
    database fight over jobs), so the old one is stopped, detached and gone before the new boots.
    """
    return pulumi.ResourceOptions(
        parent=parent, ignore_changes=None if rollout else list(ROLLED_FIELDS),
        replace_on_changes=list(REPLACE_ON), delete_before_replace=True)


def node_alb_ports(fme: ResolvedFme, websocket: bool) -> list[int]:
    """Ports the ALB (and only the ALB) reaches on a node: web, health check, websocket."""
    ports = [fme.web_port]
    if fme.health_check_port and fme.health_check_port not in ports:
        ports.append(fme.health_check_port)
    if websocket and fme.websocket_port not in ports:
        ports.append(fme.websocket_port)
    return ports


class FmeNode(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    image_id: pulumi.Output[str]
    instance_type: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    rest_url: pulumi.Output[str]
    db_endpoint: pulumi.Output[str]
    db_secret_arn: pulumi.Output[str]
    share_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: FmeNodeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fme-aa:index:FmeNode", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)

        node_sg, db_sg, efs_sg = self._security_groups()
        self.security_group_id = node_sg.id
        db = self._database(db_sg)
        self.db_endpoint = db.endpoint
        self.db_secret_arn = db.master_user_secrets.apply(lambda secrets: secrets[0].secret_arn)
        role, profile = self._identity()

        share_spec: dict[str, pulumi.Input[str]]
        if args.share.kind == ShareKind.ebs:
            volume = self._ebs_share()
            self.share_id = volume.id
            share_spec = {"share_volume_id": volume.id}
        else:
            assert efs_sg is not None
            fs, access_point = self._efs_share(efs_sg, role)
            self.share_id = fs.id
            share_spec = {"share_file_system_id": fs.id, "share_access_point_id": access_point.id}
        self._grant_own_resources(role, share_spec)

        user_data = pulumi.Output.all(
            db_host=db.address, db_port=db.port, db_secret_arn=self.db_secret_arn,
            external_host=args.external_host, **share_spec,
        ).apply(lambda v: render_bootstrap(NodeBootstrap(
            node_name=name, share_kind=args.share.kind.value, external_port=args.external_port,
            fme=args.fme, **v,
        )))
        instance = aws.ec2.Instance(
            name,
            ami=args.image_id,
            instance_type=args.instance_type,
            subnet_id=args.subnet_id,
            vpc_security_group_ids=[node_sg.id],
            iam_instance_profile=profile.name,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(**security.instance_metadata_options()),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=security.encrypted_at_rest(), volume_type="gp3",
                volume_size=args.root_volume_gib, delete_on_termination=True,
            ),
            monitoring=True,
            user_data=user_data,
            user_data_replace_on_change=True,
            tags={**self._tags(name), ROLE_TAG: NODE_ROLE, WEB_PORT_TAG: str(args.fme.web_port)},
            volume_tags=self._tags(f"{name}-root"),
            opts=instance_options(self, args.rollout),
        )
        if args.share.kind == ShareKind.ebs:
            # Replaced delete-before-create too: the volume is detached from the old instance
            # (stopped first) before it is attached to the new one.
            aws.ec2.VolumeAttachment(
                f"{name}-share-attachment",
                device_name=EBS_DEVICE_NAME[args.fme.platform],
                instance_id=instance.id,
                volume_id=self.share_id,
                stop_instance_before_detaching=True,  # FME must not lose its share mid-write
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True,
                                            replace_on_changes=["instanceId"]),
            )
        self.instance_id = instance.id
        self.image_id = instance.ami
        self.instance_type = instance.instance_type
        self.private_ip = instance.private_ip
        self.rest_url = instance.private_ip.apply(lambda ip: f"http://{ip}:{args.fme.web_port}")
        self.register_outputs({
            "instance_id": self.instance_id, "private_ip": self.private_ip,
            "rest_url": self.rest_url, "db_endpoint": self.db_endpoint,
            "db_secret_arn": self.db_secret_arn, "share_id": self.share_id,
        })

    # --- naming and tags ------------------------------------------------------------------------
    def _tags(self, name: str) -> dict[str, str]:
        return resource_tags(self._args.cluster_name, self._args.tags, name, node=self._name)

    # --- security groups: each port admits exactly one peer -------------------------------------
    def _security_groups(
        self,
    ) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup, aws.ec2.SecurityGroup | None]:
        a, n = self._args, self._name

        def group(suffix: str, purpose: str) -> aws.ec2.SecurityGroup:
            # No inline rules: the provider removes AWS's default allow-all egress, and every
            # rule below is its own resource so it can be reviewed (and tested) one by one.
            return aws.ec2.SecurityGroup(
                f"{n}-{suffix}", vpc_id=a.vpc_id, description=f"{n}: {purpose}",
                tags=self._tags(f"{n}-{suffix}"), opts=self._child,
            )

        node_sg = group("sg", "FME node (web from the ALB only)")
        db_sg = group("db-sg", "this node's database (5432 from this node only)")
        efs_sg = group("efs-sg", "this node's share (2049 from this node only)") \
            if a.share.kind == ShareKind.efs else None

        def ingress(rule: str, sg: aws.ec2.SecurityGroup, port: int, desc: str,
                    peer_sg: pulumi.Input[str] | None = None, cidr: str | None = None) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{n}-{rule}", security_group_id=sg.id, ip_protocol="tcp", from_port=port,
                to_port=port, referenced_security_group_id=peer_sg, cidr_ipv4=cidr,
                description=desc, tags=self._tags(f"{n}-{rule}"), opts=self._child,
            )

        def egress(rule: str, sg_id: pulumi.Input[str], port: int, desc: str,
                   peer_sg: pulumi.Input[str] | None = None, cidr: str | None = None) -> None:
            aws.vpc.SecurityGroupEgressRule(
                f"{n}-{rule}", security_group_id=sg_id, ip_protocol="tcp", from_port=port,
                to_port=port, referenced_security_group_id=peer_sg, cidr_ipv4=cidr,
                description=desc, tags=self._tags(f"{n}-{rule}"), opts=self._child,
            )

        for port in node_alb_ports(a.fme, a.websocket):
            ingress(f"in-alb-{port}", node_sg, port, f"ALB to {n}:{port}",
                    peer_sg=a.alb_security_group_id)
            egress(f"alb-out-{port}", a.alb_security_group_id, port, f"ALB to {n}:{port}",
                   peer_sg=node_sg.id)
        if a.admin_cidr:
            ingress(f"in-admin-{a.fme.web_port}", node_sg, a.fme.web_port,
                    f"operators/fmeaa sync to {n} REST directly", cidr=a.admin_cidr)
        ingress("db-in-node", db_sg, POSTGRES_PORT, f"{n} to its own database", peer_sg=node_sg.id)
        egress("out-db", node_sg.id, POSTGRES_PORT, f"{n} to its own database", peer_sg=db_sg.id)
        if efs_sg is not None:
            ingress("efs-in-node", efs_sg, NFS_PORT, f"{n} to its own share", peer_sg=node_sg.id)
            egress("out-efs", node_sg.id, NFS_PORT, f"{n} to its own share", peer_sg=efs_sg.id)
        # AWS APIs (Secrets Manager, SSM), package mirrors and FME licensing are HTTPS endpoints
        # with no fixed addresses; this is the only rule with 0.0.0.0/0 on a node.
        egress("out-https", node_sg.id, HTTPS_PORT, f"{n} to AWS APIs and FME licensing (TLS)",
               cidr="0.0.0.0/0")
        return node_sg, db_sg, efs_sg

    # --- database -------------------------------------------------------------------------------
    def _database(self, db_sg: aws.ec2.SecurityGroup) -> aws.rds.Instance:
        a, n, d = self._args, self._name, self._args.database
        identifier = f"{a.cluster_name}-{n}"
        return aws.rds.Instance(
            f"{n}-db",
            identifier=identifier,
            engine="postgres",
            engine_version=d.engine_version,
            instance_class=d.instance_class,
            allocated_storage=d.allocated_storage_gib,
            max_allocated_storage=d.max_allocated_storage_gib,
            storage_type="gp3",
            # No database here: FME's own createDB.sql creates it (as Safe's AWS template does).
            username=d.master_username,
            manage_master_user_password=True,  # RDS keeps the password in Secrets Manager
            db_subnet_group_name=a.db_subnet_group_name,
            parameter_group_name=a.db_parameter_group_name,
            vpc_security_group_ids=[db_sg.id],
            multi_az=d.multi_az,
            copy_tags_to_snapshot=True,
            **security.database_protection(d),
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{identifier}-final",
            auto_minor_version_upgrade=True,
            enabled_cloudwatch_logs_exports=["postgresql"],
            iam_database_authentication_enabled=False,
            tags=self._tags(f"{n}-db"),
            opts=self._child,
        )

    # --- share ----------------------------------------------------------------------------------
    def _ebs_share(self) -> aws.ebs.Volume:
        a, n, s = self._args, self._name, self._args.share
        return aws.ebs.Volume(
            f"{n}-share",
            availability_zone=a.availability_zone,
            size=s.size_gib,
            type=s.volume_type,
            iops=s.iops,
            throughput=s.throughput_mibps,
            encrypted=security.encrypted_at_rest(),
            kms_key_id=s.kms_key_id,
            final_snapshot=True,  # removing a node keeps a snapshot of its share
            tags=self._tags(f"{n}-share"),
            opts=self._child,
        )

    def _efs_share(
        self, efs_sg: aws.ec2.SecurityGroup, role: aws.iam.Role
    ) -> tuple[aws.efs.FileSystem, aws.efs.AccessPoint]:
        a, n, s = self._args, self._name, self._args.share
        fs = aws.efs.FileSystem(
            f"{n}-share",
            creation_token=f"{a.cluster_name}-{n}-share",
            encrypted=security.encrypted_at_rest(),
            kms_key_id=s.kms_key_id,
            throughput_mode=s.efs_throughput_mode,
            performance_mode="generalPurpose",
            tags=self._tags(f"{n}-share"),
            opts=self._child,
        )
        aws.efs.BackupPolicy(
            f"{n}-share-backup", file_system_id=fs.id,
            backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(status="ENABLED"), opts=self._child,
        )
        # Encryption in transit is enforced by the file system, not just by the mount options.
        aws.efs.FileSystemPolicy(
            f"{n}-share-policy",
            file_system_id=fs.id,
            policy=pulumi.Output.all(fs.arn, role.arn).apply(
                lambda v: security.efs_file_system_policy(v[0], v[1])),
            opts=self._child,
        )
        for i, subnet_id in enumerate(a.private_subnet_ids):
            aws.efs.MountTarget(
                f"{n}-share-mt-{i}", file_system_id=fs.id, subnet_id=subnet_id,
                security_groups=[efs_sg.id], opts=self._child,
            )
        uid = a.fme.share_owner_uid
        access_point = aws.efs.AccessPoint(
            f"{n}-share-ap",
            file_system_id=fs.id,
            root_directory=aws.efs.AccessPointRootDirectoryArgs(
                path="/fme-system-share",
                creation_info=aws.efs.AccessPointRootDirectoryCreationInfoArgs(
                    owner_uid=uid, owner_gid=uid, permissions="0750"),
            ),
            tags=self._tags(f"{n}-share-ap"),
            opts=self._child,
        )
        return fs, access_point

    # --- identity: SSM plus read access to this node's own secret and share -----------------
    def _identity(self) -> tuple[aws.iam.Role, aws.iam.InstanceProfile]:
        n = self._name
        role = aws.iam.Role(
            f"{n}-role",
            assume_role_policy=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"Service": "ec2.amazonaws.com"}}],
            }),
            description=f"{n}: FME node (SSM, its own DB secret and share only)",
            tags=self._tags(f"{n}-role"),
            opts=self._child,
        )
        aws.iam.RolePolicyAttachment(
            f"{n}-ssm", role=role.name,
            policy_arn=aws.iam.ManagedPolicy.AMAZON_SSM_MANAGED_INSTANCE_CORE, opts=self._child,
        )
        profile = aws.iam.InstanceProfile(
            f"{n}-profile", role=role.name, tags=self._tags(f"{n}-profile"), opts=self._child
        )
        return role, profile

    def _grant_own_resources(
        self, role: aws.iam.Role, share_spec: dict[str, pulumi.Input[str]]
    ) -> None:
        """Inline policy naming exactly this node's secret (and file system), nothing else."""
        fs_id = share_spec.get("share_file_system_id")
        fs_arn = (
            pulumi.Output.all(fs_id, aws.get_caller_identity_output(
                opts=pulumi.InvokeOutputOptions(parent=self)).account_id,
                aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region,
                aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition,
            ).apply(lambda v: f"arn:{v[3]}:elasticfilesystem:{v[2]}:{v[1]}:file-system/{v[0]}")
            if fs_id is not None else None
        )

        def document(values: list[str]) -> str:
            statements = [{
                "Sid": "ReadOwnDatabaseSecret", "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": values[0],
            }]
            if len(values) > 1:
                statements.append({
                    "Sid": "MountOwnShare", "Effect": "Allow",
                    "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite",
                               "elasticfilesystem:ClientRootAccess"],
                    "Resource": values[1],
                })
            return json.dumps({"Version": "2012-10-17", "Statement": statements})

        inputs = [self.db_secret_arn] + ([fs_arn] if fs_arn is not None else [])
        aws.iam.RolePolicy(
            f"{self._name}-own-resources", role=role.id,
            policy=pulumi.Output.all(*inputs).apply(document), opts=self._child,
        )
