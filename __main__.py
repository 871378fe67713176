"""fme-aa Pulumi program: load and validate config, build the cluster, export the inventory."""

import pulumi

from components.cluster import Cluster
from config import load_stack_config

config = load_stack_config()  # raises with every problem listed before any resource exists
cluster = Cluster(config.cluster_name, config)

# `pulumi stack output --json > nodes.json` is the node inventory `fmeaa --inventory` reads.
inventory = cluster.inventory
for key in ("inventoryVersion", "clusterName", "region", "fmeGeneration", "loadBalancer", "nodes"):
    pulumi.export(key, inventory.apply(lambda inv, key=key: inv[key]))
pulumi.export("imageId", cluster.image_id)
