"""fme-aa Pulumi program: load and validate config, build the cluster, export the inventory."""

from pathlib import Path

import pulumi

from components.cluster import Cluster
from config import load_stack_config

PROJECT_DIR = Path(__file__).resolve().parent
config = load_stack_config(project_dir=PROJECT_DIR)  # every problem listed, before any resource
cluster = Cluster(config.cluster_name, config, project_dir=PROJECT_DIR)

# `pulumi stack output --json > nodes.json` is the node inventory `fmeaa --inventory` reads.
inventory = cluster.inventory
for key in ("inventoryVersion", "clusterName", "region", "fmeGeneration", "loadBalancer", "license",
            "nodes"):
    pulumi.export(key, inventory.apply(lambda inv, key=key: inv[key]))
pulumi.export("imageId", cluster.image_id)
