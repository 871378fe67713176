"""Tags put on every AWS resource: cluster and node identity (read back by `fmeaa` discovery)."""

from __future__ import annotations

from collections.abc import Mapping

CLUSTER_TAG = "fme-aa:cluster"
NODE_TAG = "fme-aa:node"
ROLE_TAG = "fme-aa:role"
NODE_ROLE = "fme-node"
WEB_PORT_TAG = "fme-aa:web-port"  # discovery builds the REST URL from it


def resource_tags(
    cluster_name: str, base: Mapping[str, str], name: str, node: str | None = None
) -> dict[str, str]:
    """User tags, then our identity tags (which win: discovery depends on them)."""
    tags = {**base, "Name": name, CLUSTER_TAG: cluster_name, "managed-by": "fme-aa"}
    if node is not None:
        tags[NODE_TAG] = node
    return tags
