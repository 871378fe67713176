"""Archive a node's logs to S3 before the node (and its System Share) is removed.

Reads every file of the node's `FME_SHAREDRESOURCE_LOG` resource connection through FME's REST
API (the job logs live there, in FME's own folder layout) and writes each one to
`s3://BUCKET/PREFIX/<cluster>/<node>/<path>`, one file at a time through a temporary file.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from fmeaa.client import FmeClient

LOG_CONNECTION = "FME_SHAREDRESOURCE_LOG"
S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` → (bucket, prefix without slashes at either end)."""
    match = S3_URL.match(url)
    if not match:
        raise ValueError(f"--archive-logs {url!r}: expected s3://BUCKET or s3://BUCKET/PREFIX")
    return match["bucket"], (match["prefix"] or "").strip("/")


def archive_logs(client: FmeClient, url: str, cluster: str, region: str | None) -> int:
    """Copy every log file of the node to S3; returns how many files were written."""
    from fmeaa.cluster.aws_session import aws_session

    bucket, prefix = parse_s3_url(url)
    s3 = aws_session(region).client("s3", region_name=region)
    base = "/".join(p for p in (prefix, cluster, client.node) if p)
    count = 0
    with tempfile.TemporaryDirectory(prefix="fmeaa-logs-") as tmp:
        spool = Path(tmp) / "log"
        for entry in client.walk_resources(LOG_CONNECTION):
            path = str(entry["path"]).strip("/")
            client.download_resource(LOG_CONNECTION, path, spool)
            s3.upload_file(str(spool), bucket, f"{base}/{path}")
            count += 1
    return count
