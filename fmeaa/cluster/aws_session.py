"""The one way fme-aa opens a boto3 session: botocore's parsed service models shared per process.

botocore parses a service's JSON model (EC2's is megabytes) once per *session*, 0.2–0.5 s each.
A command run opens few sessions, but a process that runs several operations — the rehearsal,
the Pulumi dynamic provider seeding node after node, an `upgrade` that drains, seeds and
registers — would parse the same models again for every one. The models are read-only data, so
one loader (botocore's own, configured as botocore configures it, `AWS_DATA_PATH` included)
serves every session; credentials, region and endpoints stay per session."""

from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.Lock()
_LOADER: Any = None


def aws_session(region_name: str | None = None) -> Any:
    """A new `boto3.session.Session` whose service models come from the process-wide loader."""
    import boto3
    import botocore.session

    global _LOADER
    core = botocore.session.get_session()
    with _LOCK:
        if _LOADER is None:
            _LOADER = core.get_component("data_loader")
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core, region_name=region_name)
