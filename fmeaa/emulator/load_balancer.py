"""The sandbox's load balancer: AWS's ELBv2 (and EC2) API emulated by moto in server mode on
127.0.0.1, holding the cluster's web and websocket target groups with one instance per node —
so `drain`, `undrain`, `scale-in-check`, `seed` and `rolling` can be rehearsed without AWS.

moto is an optional dependency (`pip install 'fme-aa[sandbox]'`; the dev install has it). It
emulates the API, not an ALB: no traffic is balanced, and a registered target's health is moto's
(reported healthy), not the emulated node's.
"""

from __future__ import annotations

import logging
import os
from typing import Any

REGION = "us-east-1"  # any region: the target groups' ARNs name it, and fmeaa reads it from there
MOTO_MISSING = ("the sandbox's load balancer needs moto: pip install 'fme-aa[sandbox]' "
                "(or ./dev setup, whose dev install includes it)")


class EmulatedLoadBalancer:
    """One moto server; `add_node` makes an instance for a node, `register` puts it in both
    target groups (what `pulumi up` or `fmeaa seed` does on AWS)."""

    def __init__(self, cluster: str = "sandbox") -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise RuntimeError(MOTO_MISSING) from exc
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # seconds saved at start
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.instance_ids: dict[str, str] = {}
        self._ec2 = self._client("ec2")
        self._elbv2 = self._client("elbv2")
        vpc = self._ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self._subnets = [self._ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"]["SubnetId"] for i, zone in ((1, "a"), (2, "b"))]
        self.web_arn, self.ws_arn = (self._elbv2.create_target_group(
            Name=f"{cluster}-{kind}", Protocol="HTTP", Port=port, VpcId=vpc,
            TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
            for kind, port in (("web", 8080), ("ws", 7078)))

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session().client(
            service, region_name=REGION, endpoint_url=self.endpoint_url,
            aws_access_key_id="sandbox", aws_secret_access_key="sandbox")

    def add_node(self, name: str, register: bool = True) -> str:
        instance = self._ec2.run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=self._subnets[0],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "Name", "Value": name}]}])["Instances"][0]["InstanceId"]
        self.instance_ids[name] = instance
        if register:
            for arn in (self.web_arn, self.ws_arn):
                self._elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance}])
        return instance

    def inventory_fields(self) -> dict[str, Any]:
        """The inventory's `loadBalancer` entries that point fmeaa at this emulation."""
        return {"targetGroupArn": self.web_arn, "websocketTargetGroupArn": self.ws_arn,
                "endpointUrl": self.endpoint_url}

    def close(self) -> None:
        self._server.stop()
