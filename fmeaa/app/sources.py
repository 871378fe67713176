"""A server outside the cluster as the content source: `--source url:https://old-server`, the
FME server being migrated from (README, "From one FME server to Active-Active").

Opening it is part of validation, before any node is contacted: its URL is checked by the
nodes' rules, its credentials are its own (never the nodes'), it is logged in to through a
client that refuses every write (`fmeaa.client.read_only`), and the credentials of every
connection it holds are resolved — all refused at once if any is missing.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fmeaa.client import AuthenticationError
from fmeaa.client.read_only import ReadOnlyClient, connect_read_only
from fmeaa.cluster.credentials import (
    SOURCE_PASSWORD_ENV,
    Credentials,
    CredentialsError,
    source_credentials,
)
from fmeaa.cluster.inventory import Inventory, check_source_url
from fmeaa.sync.content_source import UrlSource, resolve_connection_credentials
from fmeaa.sync.digest_cache import DigestCache
from fmeaa.sync.engine import EngineSettings
from fmeaa.sync.snapshot import Snapshot

URL_PREFIX = "url:"


def is_url_source(source: str) -> bool:
    return source.startswith(URL_PREFIX)


@dataclass(frozen=True)
class SourceServer:
    """How to reach a `url:` source: its URL and where its credentials are."""

    url: str
    secret_id: str | None = None  # Secrets Manager; else $FMEAA_SOURCE_PASSWORD / _TOKEN
    region: str | None = None
    allow_http: bool = False


class OpenSource:
    """A logged-in `url:` source: reads its content (files spooled once for every target) and
    hands each file to the appliers. Close it when done."""

    def __init__(self, source: UrlSource, client: ReadOnlyClient, cache: DigestCache) -> None:
        self.source = source
        self.client = client
        self.cache = cache
        self._spool = tempfile.TemporaryDirectory(prefix="fmeaa-source-")

    @property
    def label(self) -> str:
        return self.source.label

    def read(self, schedule_policy: str = "one") -> Snapshot:
        snapshot = self.source.read(self.client, self.cache, Path(self._spool.name),
                                    schedule_policy)
        self.cache.save()
        return snapshot

    def close(self) -> None:
        self.client.close()
        self._spool.cleanup()


def connect_source(text: str, server: SourceServer, inventory: Inventory | None,
                   settings: EngineSettings, credentials: Credentials | None = None
                   ) -> ReadOnlyClient:
    """Check the server `url:…` names and log in to it through a read-only client (no node is
    contacted). `credentials`: given by the caller (tests, the rehearsal); else from
    `server.secret_id` or the environment."""
    url = check_source_url(text.removeprefix(URL_PREFIX), inventory, server.allow_http)
    creds = credentials or source_credentials(server.secret_id, server.region)
    client = connect_read_only(url, url, **creds.login(), prefer=settings.api,  # type: ignore[arg-type]
                               timeout=settings.timeout_s,
                               read_retries=settings.retry.attempts - 1)
    try:
        client.ensure_token()
    except AuthenticationError:
        client.close()
        where = f"secret {server.secret_id!r}" if server.secret_id else \
            "the caller" if credentials else f"${SOURCE_PASSWORD_ENV}"
        raise CredentialsError(f"the source server {url} rejected the credentials from "
                               f"{where}; nothing was read and no node was contacted") from None
    except BaseException:
        client.close()
        raise
    return client


def open_url_source(text: str, server: SourceServer, inventory: Inventory | None,
                    settings: EngineSettings, resolve_secret: Callable[[str], str],
                    credentials: Credentials | None = None) -> OpenSource:
    """`connect_source`, then validate what a sync needs: the credentials of every connection
    the server holds, resolved (or all refused) before any node is contacted."""
    client = connect_source(text, server, inventory, settings, credentials)
    try:
        resolved = resolve_connection_credentials(client.connections(), resolve_secret) \
            if client.supports("connections.list") else None
        tag = hashlib.sha1(client.base_url.encode()).hexdigest()[:10]
        cache = DigestCache(settings.cache_dir / "sources" / f"{tag}.json",
                            enabled=not settings.deep)
        return OpenSource(UrlSource(client.base_url, resolved), client, cache)
    except BaseException:
        client.close()
        raise
