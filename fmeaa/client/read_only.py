"""A client that can only read: for the FME server a migration copies content FROM.

That server (`--source url:https://old-server`) is the production server users still rely on
until the cluster takes over, so fmeaa must never change it. Every operation of `FmeClient`
goes through one dispatch point (`_run`, by the operation's name in `api_table`); this client
refuses there every operation that is not in `READ_OPERATIONS`, before a request is sent. A
login (a token for this client) is the one POST it makes besides the reads below.
"""

from __future__ import annotations

from typing import Any

from fmeaa.client.errors import FmeApiError
from fmeaa.client.rest import FmeClient, Preference

# What reading content needs, by api_table operation. Every row of these is a GET except two
# reads FME serves as POST (no state is kept on the server: the answer is the bytes):
# V4 `resources.download` (`…/downloadzip`, a zip of the named file) and `projects.export`
# (`/projects/{id}/export/download`, the project's package). `tests/test_url_source.py` holds
# the table to this.
READ_OPERATIONS = frozenset({
    "version", "health", "repositories.list", "repositories.get", "items.list", "items.get",
    "items.download", "services.get", "schedules.list", "notifications.list",
    "resources.connections", "resources.list", "resources.download", "connections.list",
    "connections.get", "deploymentparameters.list", "projects.list", "projects.export",
    "jobs.running", "license.status", "license.request_status",
})
POST_READS = frozenset({"resources.download", "projects.export"})


class WriteRefusedError(FmeApiError):
    """A write was attempted on a read-only client: a bug in fmeaa, stopped before any request."""


class ReadOnlyClient(FmeClient):
    """An FmeClient whose every non-read operation is refused before anything is sent."""

    def _run(self, op: str, *args: Any) -> Any:
        if op not in READ_OPERATIONS:
            raise WriteRefusedError(
                self.node, "-", op, None,
                f"refused: {self.base_url} is the content source, which fmeaa only reads; "
                f"'{op}' would change it (nothing was sent)")
        return super()._run(op, *args)


def connect_read_only(name: str, base_url: str, *, username: str | None = None,
                      password: str | None = None, token: str | None = None,
                      prefer: Preference = "auto", timeout: float = 30.0,
                      read_retries: int = 0, transport: Any = None) -> ReadOnlyClient:
    """A read-only client for one server (nothing is sent until the first call)."""
    return ReadOnlyClient(name, base_url, prefer=prefer, username=username, password=password,
                          token=token, timeout=timeout, read_retries=read_retries,
                          transport=transport)
