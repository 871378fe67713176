"""Cluster: composes the network, the pinned image, the load balancer and N FmeNodes."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.fme_node import FmeNode, FmeNodeArgs
from components.image import FmeImage, FmeImageArgs
from components.load_balancer import LoadBalancer, LoadBalancerArgs
from components.network import Network, NetworkArgs
from components.node_seed import NodeSeed, NodeSeedArgs
from config.stack import SeedMode, StackConfig
from fmeaa.app.seed import content_digest
from fmeaa.cluster.tags import resource_tags

INVENTORY_VERSION = 1


class Cluster(pulumi.ComponentResource):
    """An Active-Active FME cluster. `inventory` is the node inventory `fmeaa` reads."""

    inventory: pulumi.Output[dict]
    nodes: dict[str, FmeNode]

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None,
                 project_dir: Path | None = None):
        super().__init__("fme-aa:index:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster, tags, fme = config.cluster_name, config.tags, config.fme.resolved()

        network = Network(name, NetworkArgs(
            cluster_name=cluster, new_vpc=config.network.new_vpc,
            existing_vpc=config.network.existing, tags=tags), opts=child)
        image = FmeImage(f"{name}-image", FmeImageArgs(
            cluster_name=cluster, ami=config.ami, tags=tags), opts=child)
        # One parameter group for every node's database: TLS is mandatory for clients.
        params = aws.rds.ParameterGroup(
            f"{name}-db-params",
            family=f"postgres{config.database.major_version}",
            description=f"{cluster}: FME databases (TLS required)",
            parameters=[aws.rds.ParameterGroupParameterArgs(
                name="rds.force_ssl", value="1", apply_method="pending-reboot")],
            tags=resource_tags(cluster, tags, f"{cluster}-db-params"),
            opts=child,
        )
        lb = LoadBalancer(name, LoadBalancerArgs(
            cluster_name=cluster, vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            security_group_id=network.alb_security_group_id,
            settings=config.load_balancer, fme=fme, tags=tags), opts=child)

        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        if config.seed.mode is SeedMode.PULUMI and not config.admin_cidr:
            pulumi.log.warn("seed.mode is 'pulumi' but adminCidr is not set: seeding reaches each "
                            "node's web port from where `pulumi up` runs, so that network must be "
                            "admitted (adminCidr), or run inside the VPC")
        zone_count = len(network.private_subnet_ids)
        self.nodes = {}
        for spec in config.node_specs:
            zone = spec.zone_index(zone_count)
            node = FmeNode(spec.name, FmeNodeArgs(
                cluster_name=cluster, node_name=spec.name, vpc_id=network.vpc_id,
                subnet_id=network.private_subnet_ids[zone],
                availability_zone=network.private_subnet_azs[zone],
                private_subnet_ids=network.private_subnet_ids,
                alb_security_group_id=network.alb_security_group_id,
                image_id=spec.ami or image.image_id,
                instance_type=spec.instance_type or config.instance_type,
                root_volume_gib=config.root_volume_gib, share=config.share,
                database=config.database, db_subnet_group_name=network.db_subnet_group_name,
                db_parameter_group_name=params.name, fme=fme,
                websocket=config.load_balancer.websocket, external_host=lb.dns_name,
                external_port=443 if config.https else 80, admin_cidr=config.admin_cidr,
                tags=tags, rollout=config.rollout == spec.name), opts=child)
            self.nodes[spec.name] = node
        for node_name, node in self.nodes.items():  # after all nodes: a reference node's URL exists
            self._serve(node_name, node, config, lb, region, project_dir)

        node_entries = [
            pulumi.Output.all(
                instanceId=n.instance_id, privateIp=n.private_ip, restUrl=n.rest_url,
                dbEndpoint=n.db_endpoint, dbSecretArn=n.db_secret_arn, shareId=n.share_id,
                imageId=n.image_id, instanceType=n.instance_type,
            ).apply(lambda v, node_name=node_name: {"name": node_name, **v,
                                                    "shareKind": config.share.kind.value})
            for node_name, n in self.nodes.items()
        ]
        self.inventory = pulumi.Output.all(
            region=region, dnsName=lb.dns_name, url=lb.url,
            targetGroupArn=lb.web_target_group_arn,
            websocketTargetGroupArn=lb.websocket_target_group_arn,
            nodes=pulumi.Output.all(*node_entries),
        ).apply(lambda v: {
            "inventoryVersion": INVENTORY_VERSION,
            "clusterName": cluster,
            "region": v["region"],
            "fmeGeneration": fme.generation,
            "fmePlatform": fme.platform.value,
            "fmeVersion": fme.version,
            "loadBalancer": {
                "dnsName": v["dnsName"], "url": v["url"], "targetGroupArn": v["targetGroupArn"],
                "websocketTargetGroupArn": v["websocketTargetGroupArn"],
            },
            # For `fmeaa seed` / `rolling` (manual seeding): how clones get their licence. The
            # serial stays in Secrets Manager; only its id is here.
            "license": {"mode": config.license.mode.value,
                        "serialSecretId": config.license.serial_secret_id},
            "nodes": list(v["nodes"]),
        })
        self.image_id = image.image_id
        self.register_outputs({"inventory": self.inventory})

    def _serve(self, node_name: str, node: FmeNode, config: StackConfig, lb: LoadBalancer,
               region: pulumi.Output[str], project_dir: Path | None) -> None:
        """Register the node with the ALB — after seeding it (mode pulumi), or never (mode
        manual: `fmeaa seed NODE` registers it once it holds the content)."""
        seed = config.seed
        if seed.mode is SeedMode.MANUAL:
            return
        source = seed.source
        reference_url = None
        if source.startswith("node:"):
            reference = source.removeprefix("node:")
            if reference == node_name:  # the source itself: users publish to it
                lb.attach(node_name, node.instance_id, depends_on=[node])
                return
            reference_url = self.nodes[reference].rest_url
        elif not source.startswith("url:"):  # url: a server outside the cluster, read only
            source = str(((project_dir or Path.cwd()) / source).resolve())
        seeded = NodeSeed(f"{node_name}-seed", NodeSeedArgs(
            cluster=config.cluster_name, node=node_name, instance_id=node.instance_id,
            rest_url=node.rest_url, default_owner=config.node_specs[0].name, source=source,
            content_digest=content_digest(source), credentials_secret_id=seed.credentials_secret_id or "",
            region=region, license_mode=config.license.mode.value,
            serial_secret_id=config.license.serial_secret_id, allow_http=seed.allow_http,
            timeout_s=seed.timeout_seconds, reference_url=reference_url,
            source_credentials_secret_id=seed.source_credentials_secret_id),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node]))
        # The target id comes from the seed's output: no attachment before the seed succeeded.
        lb.attach(node_name, seeded.instance_id, depends_on=[node, seeded])
