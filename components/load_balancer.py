"""LoadBalancer: an internet-facing ALB over the public subnets, sticky sessions, one target per node.

The ALB only spreads *users*; fmeaa never publishes through it (each node is updated directly).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import security
from config.stack import LoadBalancerConfig, ResolvedFme
from fmeaa.cluster.tags import resource_tags

HTTP_PORT = 80
HTTPS_PORT = 443
STICKY_SECONDS = 86400  # the FME web UI keeps a server-side session on the node that issued it


@dataclass
class LoadBalancerArgs:
    cluster_name: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    settings: LoadBalancerConfig
    fme: ResolvedFme
    tags: dict[str, str] = field(default_factory=dict)


def client_ports(settings: LoadBalancerConfig, fme: ResolvedFme) -> list[int]:
    """Listener ports clients may reach: 443 with a certificate (80 only redirects), else 80."""
    ports = [HTTPS_PORT, HTTP_PORT] if settings.certificate_arn else [HTTP_PORT]
    if settings.websocket:
        ports.append(fme.websocket_port)
    return ports


class LoadBalancer(pulumi.ComponentResource):
    dns_name: pulumi.Output[str]
    url: pulumi.Output[str]
    web_target_group_arn: pulumi.Output[str]
    websocket_target_group_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("fme-aa:index:LoadBalancer", name, None, opts)
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        s, fme, cluster = args.settings, args.fme, args.cluster_name
        https = s.certificate_arn is not None
        if not https:
            pulumi.log.warn(
                "loadBalancer.certificateArn is not set: the ALB serves plain HTTP and FME "
                "passwords and tokens cross the internet unencrypted. Set an ACM certificate "
                "ARN for HTTPS with an HTTP→HTTPS redirect.", resource=self,
            )

        for port in client_ports(s, fme):
            for i, cidr in enumerate(s.allowed_cidrs):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-in-{port}-{i}", security_group_id=args.security_group_id,
                    ip_protocol="tcp", from_port=port, to_port=port, cidr_ipv4=cidr,
                    description=f"clients to the ALB listener {port}",
                    tags=self._tags(f"{cluster}-alb-in-{port}-{i}"), opts=self._child,
                )

        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[args.security_group_id],
            idle_timeout=s.idle_timeout_seconds,
            drop_invalid_header_fields=security.drops_invalid_headers(),
            enable_deletion_protection=s.deletion_protection,
            tags=self._tags(f"{cluster}-alb"),
            opts=self._child,
        )
        self.dns_name = alb.dns_name
        scheme = "https" if https else "http"
        self.url = alb.dns_name.apply(lambda dns: f"{scheme}://{dns}")

        health_port = str(fme.health_check_port) if fme.health_check_port else "traffic-port"
        web_tg = aws.lb.TargetGroup(
            f"{name}-web-tg",
            port=fme.web_port, protocol="HTTP", target_type="instance", vpc_id=args.vpc_id,
            deregistration_delay=120,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True, path=fme.health_check_path, port=health_port, protocol="HTTP",
                matcher="200", interval=15, timeout=5, healthy_threshold=2, unhealthy_threshold=3,
            ),
            stickiness=aws.lb.TargetGroupStickinessArgs(
                enabled=True, type="lb_cookie", cookie_duration=STICKY_SECONDS),
            tags=self._tags(f"{cluster}-web"),
            opts=self._child,
        )
        self.web_target_group_arn = web_tg.arn
        self._web_tg = web_tg
        self._listeners(name, alb, web_tg, HTTPS_PORT if https else HTTP_PORT)

        self._ws_tg: aws.lb.TargetGroup | None = None
        self.websocket_target_group_arn = None
        if s.websocket:
            ws_tg = aws.lb.TargetGroup(
                f"{name}-ws-tg",
                port=fme.websocket_port, protocol="HTTP", target_type="instance",
                vpc_id=args.vpc_id, deregistration_delay=120,
                # Safe's template: the websocket server answers `/` with 200-400.
                health_check=aws.lb.TargetGroupHealthCheckArgs(
                    enabled=True, path="/", port="traffic-port", protocol="HTTP",
                    matcher="200-400", interval=15, timeout=5,
                ),
                stickiness=aws.lb.TargetGroupStickinessArgs(
                    enabled=True, type="lb_cookie", cookie_duration=STICKY_SECONDS),
                tags=self._tags(f"{cluster}-ws"),
                opts=self._child,
            )
            self._ws_tg = ws_tg
            self.websocket_target_group_arn = ws_tg.arn
            self._forward(f"{name}-ws", alb, ws_tg, fme.websocket_port, https)
        self.register_outputs({
            "dns_name": self.dns_name, "url": self.url,
            "web_target_group_arn": self.web_target_group_arn,
        })

    def _tags(self, name: str) -> dict[str, str]:
        return resource_tags(self._args.cluster_name, self._args.tags, name)

    def _forward(self, logical: str, alb: aws.lb.LoadBalancer, tg: aws.lb.TargetGroup,
                 port: int, https: bool) -> aws.lb.Listener:
        s = self._args.settings
        return aws.lb.Listener(
            logical,
            load_balancer_arn=alb.arn, port=port,
            protocol="HTTPS" if https else "HTTP",
            ssl_policy=s.ssl_policy if https else None,
            certificate_arn=s.certificate_arn if https else None,
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward",
                                                              target_group_arn=tg.arn)],
            tags=self._tags(logical), opts=self._child,
        )

    def _listeners(self, name: str, alb: aws.lb.LoadBalancer, tg: aws.lb.TargetGroup,
                   port: int) -> None:
        if port == HTTPS_PORT:
            self._forward(f"{name}-https", alb, tg, HTTPS_PORT, https=True)
            aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=alb.arn, port=HTTP_PORT, protocol="HTTP",
                default_actions=[aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        **security.http_to_https_redirect()),
                )],
                tags=self._tags(f"{name}-http"), opts=self._child,
            )
        else:
            self._forward(f"{name}-http", alb, tg, HTTP_PORT, https=False)

    def attach(self, node_name: str, instance_id: pulumi.Input[str],
               depends_on: list[pulumi.Resource] | None = None) -> list[aws.lb.TargetGroupAttachment]:
        """Register one node with the target group(s); named from the node, so others stay put."""
        fme = self._args.fme
        opts = pulumi.ResourceOptions(parent=self, depends_on=depends_on or [])
        attachments = [aws.lb.TargetGroupAttachment(
            f"{node_name}-web-target", target_group_arn=self._web_tg.arn, target_id=instance_id,
            port=fme.web_port, opts=opts,
        )]
        if self._ws_tg is not None:
            attachments.append(aws.lb.TargetGroupAttachment(
                f"{node_name}-ws-target", target_group_arn=self._ws_tg.arn, target_id=instance_id,
                port=fme.websocket_port, opts=opts,
            ))
        return attachments
