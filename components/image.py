"""FmeImage: the one AMI every node runs, resolved once and pinned.

Active-Active needs identical installs. A lookup by name pattern ("most recent") would give a
node added next month a newer FME build than the others, so a looked-up id is stored in an SSM
parameter whose value Pulumi never updates (`ignore_changes`): the first resolution wins until
an operator deliberately re-pins (see README, "Upgrading FME"). Optionally the image is copied,
encrypted, into this account so the cluster survives the source image being withdrawn.

`fromInstance` images the operator's running FME server (`ec2.AmiFromInstance`, EC2's
CreateImage): made once, pinned the same way (SSM parameter + `ignore_changes`, also on the
image itself, so a later `pulumi up` never re-images a server that has changed since), kept when
the stack moves on (`retain_on_delete`: the server may be gone by then), and always copied
encrypted — CreateImage cannot change encryption, so the image's snapshots are only as encrypted
as the server's volumes (AWS, EC2 API Reference: CreateImage, CopyImage).
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


# The image made of a running server is pinned like a looked-up one: a changed `fromInstance` (or
# reboot choice) never re-images; re-pin deliberately (README, "From one FME server…").
FROM_INSTANCE_PINNED = ("sourceInstanceId", "snapshotWithoutReboot", "name", "description")


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
            resolved = self._from_instance(name, args, tags) if args.ami.from_instance \
                else self._looked_up(args)
            pin = aws.ssm.Parameter(
                f"{name}-pin",
                name=pin_parameter_name(args.cluster_name),
                type="String",
                insecure_value=resolved,  # an AMI id is not a secret (`value` would mark it one)
                description="FME AMI resolved at first deploy; all nodes use it (fme-aa pin)",
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["insecureValue"]),
            )
            source = pin.insecure_value
        self.source_image_id = source
        if args.ami.copied:
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

    def _looked_up(self, args: FmeImageArgs) -> pulumi.Output[str]:
        assert args.ami.lookup is not None  # guaranteed by AmiConfig
        return aws.ec2.get_ami_output(
            most_recent=True,
            owners=args.ami.lookup.owners,
            filters=[aws.ec2.GetAmiFilterArgs(name="name", values=[args.ami.lookup.name_pattern])],
            opts=pulumi.InvokeOutputOptions(parent=self),
        ).id

    def _from_instance(self, name: str, args: FmeImageArgs, tags: dict[str, str]
                       ) -> pulumi.Output[str]:
        """An image of the operator's running FME server. By default EC2 shuts the server down
        and restarts it for the snapshots (minutes without that server; a consistent image);
        `snapshotWithoutReboot` keeps it serving, at the price of a crash-consistent image."""
        instance = args.ami.from_instance
        assert instance is not None
        made = aws.ec2.AmiFromInstance(
            f"{name}-from-instance",
            name=f"{args.cluster_name}-fme-from-{instance}",
            description=f"{args.cluster_name}: image of the FME server {instance} (fme-aa)",
            source_instance_id=instance,
            snapshot_without_reboot=args.ami.snapshot_without_reboot,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True,
                                        ignore_changes=list(FROM_INSTANCE_PINNED)),
        )
        return made.id
