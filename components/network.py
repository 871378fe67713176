"""Network: a new VPC across ≥2 AZs (public subnets for the ALB, private for nodes and DBs) or
an existing one; plus the cluster-wide ALB security group and DB subnet group."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from config.stack import ExistingVpc, NewVpc
from fmeaa.cluster.tags import resource_tags


@dataclass
class NetworkArgs:
    cluster_name: str
    new_vpc: NewVpc | None = None
    existing_vpc: ExistingVpc | None = None
    tags: dict[str, str] = field(default_factory=dict)


def carve_subnets(vpc_cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """Split the VPC CIDR into 16 equal blocks: public subnets first, private ones from block 8.

    Fixed positions (not "next free") keep every subnet's CIDR stable when az_count changes.
    """
    blocks = list(ipaddress.ip_network(vpc_cidr).subnets(prefixlen_diff=4))
    public = [str(blocks[i]) for i in range(az_count)]
    private = [str(blocks[8 + i]) for i in range(az_count)]
    return public, private


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    private_subnet_azs: list[pulumi.Output[str]]
    alb_security_group_id: pulumi.Output[str]
    db_subnet_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fme-aa:index:Network", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        if args.existing_vpc is not None:
            self._use_existing(args.existing_vpc, child)
        else:
            self._build_vpc(name, args.new_vpc or NewVpc(), child)

        self.alb_security_group_id = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            vpc_id=self.vpc_id,
            description=f"{args.cluster_name} ALB: client listeners in, node ports out (rules below)",
            tags=self._tags(f"{args.cluster_name}-alb"),
            opts=child,
        ).id
        self.db_subnet_group_name = aws.rds.SubnetGroup(
            f"{name}-db-subnets",
            subnet_ids=self.private_subnet_ids,
            description=f"{args.cluster_name}: private subnets for the nodes' databases",
            tags=self._tags(f"{args.cluster_name}-db-subnets"),
            opts=child,
        ).name
        self.register_outputs({
            "vpc_id": self.vpc_id,
            "public_subnet_ids": self.public_subnet_ids,
            "private_subnet_ids": self.private_subnet_ids,
            "alb_security_group_id": self.alb_security_group_id,
        })

    def _tags(self, name: str) -> dict[str, str]:
        return resource_tags(self._args.cluster_name, self._args.tags, name)

    def _use_existing(self, existing: ExistingVpc, child: pulumi.ResourceOptions) -> None:
        self.vpc_id = pulumi.Output.from_input(existing.vpc_id)
        self.public_subnet_ids = [pulumi.Output.from_input(s) for s in existing.public_subnet_ids]
        self.private_subnet_ids = [pulumi.Output.from_input(s) for s in existing.private_subnet_ids]
        self.private_subnet_azs = [
            aws.ec2.get_subnet_output(id=s, opts=pulumi.InvokeOutputOptions(parent=self))
            .availability_zone
            for s in existing.private_subnet_ids
        ]

    def _build_vpc(self, name: str, spec: NewVpc, child: pulumi.ResourceOptions) -> None:
        cluster = self._args.cluster_name
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        ).names
        az = [zones.apply(lambda names, i=i: names[i]) for i in range(spec.az_count)]
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=spec.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # EFS mount-target DNS names need both
            tags=self._tags(f"{cluster}-vpc"),
            opts=child,
        )
        self.vpc_id = vpc.id
        # The default security group of a new VPC admits all traffic between its members: empty it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags=self._tags(f"{cluster}-default-locked"),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=self._tags(f"{cluster}-igw"), opts=child
        )
        public_cidrs, private_cidrs = carve_subnets(spec.cidr, spec.az_count)
        public = [
            aws.ec2.Subnet(
                f"{name}-public-{i}", vpc_id=vpc.id, cidr_block=cidr, availability_zone=az[i],
                map_public_ip_on_launch=False, tags=self._tags(f"{cluster}-public-{i}"),
                opts=child,
            )
            for i, cidr in enumerate(public_cidrs)
        ]
        private = [
            aws.ec2.Subnet(
                f"{name}-private-{i}", vpc_id=vpc.id, cidr_block=cidr, availability_zone=az[i],
                map_public_ip_on_launch=False, tags=self._tags(f"{cluster}-private-{i}"),
                opts=child,
            )
            for i, cidr in enumerate(private_cidrs)
        ]
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags=self._tags(f"{cluster}-public"), opts=child,
        )
        for i, subnet in enumerate(public):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{i}", subnet_id=subnet.id, route_table_id=public_rt.id,
                opts=child,
            )
        # Nodes reach AWS APIs (Secrets Manager, SSM), package mirrors and FME licensing via NAT.
        nat_count = spec.az_count if spec.nat_gateways == "per_az" else 1
        nats = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(f"{name}-nat-eip-{i}", domain="vpc",
                              tags=self._tags(f"{cluster}-nat-{i}"), opts=child)
            nats.append(aws.ec2.NatGateway(
                f"{name}-nat-{i}", allocation_id=eip.id, subnet_id=public[i].id,
                tags=self._tags(f"{cluster}-nat-{i}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            ))
        for i, subnet in enumerate(private):
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}", vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(
                    cidr_block="0.0.0.0/0", nat_gateway_id=nats[i % nat_count].id)],
                tags=self._tags(f"{cluster}-private-{i}"), opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-rta-{i}", subnet_id=subnet.id, route_table_id=rt.id, opts=child
            )
        self.public_subnet_ids = [s.id for s in public]
        self.private_subnet_ids = [s.id for s in private]
        self.private_subnet_azs = [s.availability_zone for s in private]
