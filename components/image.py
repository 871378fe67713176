"""FmeImage: the one AMI every node runs, resolved once and pinned.

Active-Active needs identical installs. A lookup by name pattern ("most recent") would give a
node added next month a newer FME build than the others, so a looked-up id is stored in an SSM
parameter whose value Pulumi never updates (`ignore_changes`): the first resolution wins until
an operator deliberately re-pins (see README, "Upgrading FME"). Optionally the image is copied,
encrypted, into this account so the cluster survives the source image being withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from config.stack import AmiConfig
from fmeaa.cluster.tags import resource_tags


@dataclass
class FmeImageArgs:
    cluster_name: str
    ami: AmiConfig
    tags: dict[str, str] = field(default_factory=dict)


def pin_parameter_name(cluster_name: str) -> str:
    return f"/fme-aa/{cluster_name}/source-ami-id"


class FmeImage(pulumi.ComponentResource):
    image_id: pulumi.Output[str]
    source_image_id: pulumi.Output[str]

    def __init__(self, name: str, args: FmeImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fme-aa:index:FmeImage", name, None, opts)
        tags = resource_tags(args.cluster_name, args.tags, f"{args.cluster_name}-image")
        if args.ami.id is not None:
            source: pulumi.Output[str] = pulumi.Output.from_input(args.ami.id)
        else:
            assert args.ami.lookup is not None  # guaranteed by AmiConfig
            found = aws.ec2.get_ami_output(
                most_recent=True,
                owners=args.ami.lookup.owners,
                filters=[aws.ec2.GetAmiFilterArgs(name="name", values=[args.ami.lookup.name_pattern])],
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            pin = aws.ssm.Parameter(
                f"{name}-pin",
                name=pin_parameter_name(args.cluster_name),
                type="String",
                insecure_value=found.id,  # an AMI id is not a secret (`value` would mark it one)
                description="FME AMI resolved at first deploy; all nodes use it (fme-aa pin)",
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["insecureValue"]),
            )
            source = pin.insecure_value
        self.source_image_id = source
        if args.ami.copy_to_account:
            region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
            copy = aws.ec2.AmiCopy(
                f"{name}-copy",
                name=source.apply(lambda src: f"{args.cluster_name}-fme-{src}"),
                description=f"{args.cluster_name}: encrypted copy of the FME image",
                source_ami_id=source,
                source_ami_region=region,
                encrypted=True,
                kms_key_id=args.ami.copy_kms_key_id,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.image_id = copy.id
        else:
            self.image_id = source
        self.register_outputs({"image_id": self.image_id, "source_image_id": source})
