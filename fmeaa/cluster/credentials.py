"""Per-node FME credentials from environment variables or AWS Secrets Manager.

Values are held in objects whose repr hides them; no message here ever contains one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

USERNAME_ENV = "FMEAA_USERNAME"
PASSWORD_ENV = "FMEAA_PASSWORD"
TOKEN_ENV = "FMEAA_TOKEN"
SECRET_ID_ENV = "FMEAA_SECRET_ID"
# The server content is migrated FROM (`--source url:…`): its own credentials, never the nodes'.
SOURCE_USERNAME_ENV = "FMEAA_SOURCE_USERNAME"
SOURCE_PASSWORD_ENV = "FMEAA_SOURCE_PASSWORD"
SOURCE_TOKEN_ENV = "FMEAA_SOURCE_TOKEN"
SOURCE_SECRET_ID_ENV = "FMEAA_SOURCE_SECRET_ID"


class CredentialsError(ValueError):
    """No usable credentials (the message names where they were looked for, never a value)."""


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def login(self) -> dict[str, str | None]:
        """The keyword arguments `fmeaa.client.connect` logs in with."""
        return {"username": self.username, "password": self.password, "token": self.token}


def _node_env(name: str, node: str) -> str:
    """FMEAA_PASSWORD_FME_2 for node fme-2: a per-node override."""
    return f"{name}_{re.sub(r'[^A-Za-z0-9]', '_', node).upper()}"


class CredentialSource:
    """Credentials for each node: per-node entries first, then the cluster-wide ones."""

    def __init__(self, default: Credentials | None, per_node: Mapping[str, Credentials] | None = None,
                 *, where: str) -> None:  # where they come from: every error names it
        self._default = default
        self._per_node = dict(per_node or {})
        self.where = where

    def for_node(self, node: str) -> Credentials:
        found = self._per_node.get(node) or self._default
        if found is None or not (found.token or found.password):
            raise CredentialsError(f"no credentials for node {node!r} in {self.where}")
        return found

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 nodes: list[str] | None = None) -> CredentialSource:
        env = os.environ if env is None else env
        user = env.get(USERNAME_ENV, "admin")
        default = None
        if env.get(TOKEN_ENV) or env.get(PASSWORD_ENV):
            default = Credentials(user, env.get(PASSWORD_ENV), env.get(TOKEN_ENV))
        per_node = {}
        for node in nodes or []:
            password = env.get(_node_env(PASSWORD_ENV, node))
            token = env.get(_node_env(TOKEN_ENV, node))
            if password or token:
                per_node[node] = Credentials(env.get(_node_env(USERNAME_ENV, node), user),
                                             password, token)
        if default is None and not per_node:
            raise CredentialsError(
                f"no FME credentials: set {PASSWORD_ENV} (and {USERNAME_ENV}, default 'admin') or "
                f"{TOKEN_ENV}, per node {PASSWORD_ENV}_<NODE>, or name an AWS Secrets Manager "
                f"secret with --secret-id / {SECRET_ID_ENV}")
        return cls(default, per_node, where="the environment")

    @classmethod
    def from_secrets_manager(cls, secret_id: str, region: str | None,
                             session: Any = None) -> CredentialSource:
        """A JSON secret: {"username", "password"} for every node, and/or
        {"nodes": {"fme-1": {"username", "password"}}} per node."""
        from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

        from fmeaa.cluster.aws_session import aws_session

        session = session or aws_session()  # each client is given the region
        try:
            value = session.client("secretsmanager", region_name=region).get_secret_value(
                SecretId=secret_id)["SecretString"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise CredentialsError(f"cannot read secret {secret_id!r}: {code}") from None
        except NoRegionError:
            raise CredentialsError(f"cannot read secret {secret_id!r}: {NO_REGION}") from None
        except BotoCoreError as exc:
            raise CredentialsError(f"cannot read secret {secret_id!r}: {type(exc).__name__}") from None
        try:
            document = json.loads(value)
        except json.JSONDecodeError:
            raise CredentialsError(f"secret {secret_id!r} is not a JSON object with username "
                                   "and password") from None

        def parse(d: Any) -> Credentials | None:
            if not isinstance(d, dict) or not (d.get("password") or d.get("token")):
                return None
            return Credentials(d.get("username", "admin"), d.get("password"), d.get("token"))

        if not isinstance(document, dict):
            raise CredentialsError(f"secret {secret_id!r} is not a JSON object")
        per_node = {name: c for name, d in (document.get("nodes") or {}).items()
                    if (c := parse(d)) is not None}
        default = parse(document)
        if default is None and not per_node:
            raise CredentialsError(f"secret {secret_id!r} has no 'password' (or 'token') and no "
                                   "'nodes' entries")
        return cls(default, per_node, where=f"secret {secret_id!r}")


def source_credentials(secret_id: str | None, region: str | None,
                       env: Mapping[str, str] | None = None, session: Any = None) -> Credentials:
    """The credentials of the server a migration reads from (`--source url:…`): from the Secrets
    Manager secret `secret_id` ({"username", "password"} or {"token"}), else from
    $FMEAA_SOURCE_USERNAME (default admin) and $FMEAA_SOURCE_PASSWORD or $FMEAA_SOURCE_TOKEN.
    Never the nodes' credentials: an old server has its own, and the cluster's password must
    not be sent to it by default."""
    if secret_id:
        found = CredentialSource.from_secrets_manager(secret_id, region, session=session)._default
        if found is None:
            raise CredentialsError(f"secret {secret_id!r} has no top-level 'password' (or "
                                   "'token'): the source server needs its own credentials")
        return found
    env = os.environ if env is None else env
    if not (env.get(SOURCE_PASSWORD_ENV) or env.get(SOURCE_TOKEN_ENV)):
        raise CredentialsError(
            f"no credentials for the source server: set {SOURCE_PASSWORD_ENV} (and "
            f"{SOURCE_USERNAME_ENV}, default 'admin') or {SOURCE_TOKEN_ENV}, or name an AWS "
            f"Secrets Manager secret with --source-secret-id / {SOURCE_SECRET_ID_ENV}")
    return Credentials(env.get(SOURCE_USERNAME_ENV, "admin"), env.get(SOURCE_PASSWORD_ENV),
                       env.get(SOURCE_TOKEN_ENV))


NO_REGION = ("no AWS region: pass --region, or set $AWS_REGION or $AWS_DEFAULT_REGION "
             "(an inventory from `pulumi stack output` carries its region)")


def resolve_secret_ref(reference: str, env: Mapping[str, str] | None = None,
                       session: Any = None, region: str | None = None) -> str:
    """The value behind a manifest reference: `env:NAME` or `aws-sm:SECRET_ID[#key]`."""
    env = os.environ if env is None else env
    scheme, _, rest = reference.partition(":")
    if scheme == "env":
        if rest not in env:
            raise CredentialsError(f"secret reference {reference!r}: ${rest} is not set")
        return env[rest]
    secret_id, _, key = rest.partition("#")
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

    from fmeaa.cluster.aws_session import aws_session

    session = session or aws_session()  # each client is given the region
    try:
        value = session.client("secretsmanager", region_name=region).get_secret_value(
            SecretId=secret_id)["SecretString"]
    except NoRegionError:
        raise CredentialsError(f"secret reference {reference!r}: {NO_REGION}") from None
    except (ClientError, BotoCoreError) as exc:
        raise CredentialsError(f"secret reference {reference!r}: cannot read it "
                               f"({type(exc).__name__})") from None
    if not key:
        return value
    try:
        return str(json.loads(value)[key])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CredentialsError(f"secret reference {reference!r}: no key {key!r} in the "
                               "secret's JSON") from None
