"""Credentials per node, from the environment or Secrets Manager (moto), and manifest secret
references: every source, every override, and an error that names where it looked — never a
value."""

from __future__ import annotations

import json

import boto3
import pytest

from fmeaa.cluster.credentials import (
    NO_REGION,
    Credentials,
    CredentialsError,
    CredentialSource,
    resolve_secret_ref,
    source_credentials,
)
from tests.aws_server import REGION


def test_environment_defaults_and_per_node_overrides() -> None:
    env = {"FMEAA_PASSWORD": "pw-xyz-secret", "FMEAA_PASSWORD_FME_2": "node2-secret",
           "FMEAA_USERNAME_FME_2": "ops", "FMEAA_TOKEN_NODE_3_A": "tok", "FMEAA_USERNAME": "root"}
    source = CredentialSource.from_env(env, ["fme-1", "fme-2", "node-3.a"])
    assert source.where == "the environment"
    assert source.for_node("fme-1") == Credentials("root", "pw-xyz-secret", None)
    assert source.for_node("fme-2") == Credentials("ops", "node2-secret", None)
    assert source.for_node("node-3.a") == Credentials("root", None, "tok")
    assert source.for_node("fme-1").login() == {"username": "root", "password": "pw-xyz-secret",
                                                 "token": None}
    only_tokens = CredentialSource.from_env({"FMEAA_TOKEN": "tok"}, None)
    assert only_tokens.for_node("x") == Credentials("admin", None, "tok")


def test_the_process_environment_by_default_and_node_names_of_any_case(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_PASSWORD", "pw-xyz-secret")
    monkeypatch.setenv("FMEAA_PASSWORD_NODE_B_2", "node2-secret")
    source = CredentialSource.from_env(nodes=["Node-b.2", "fme-1"])
    assert source.for_node("Node-b.2").password == "node2-secret"
    assert source.for_node("fme-1").password == "pw-xyz-secret"
    monkeypatch.setenv("PG", "pg-first-value")
    assert resolve_secret_ref("env:PG") == "pg-first-value"


def test_a_node_without_credentials_is_named_with_the_source() -> None:
    source = CredentialSource.from_env({"FMEAA_PASSWORD_FME_2": "node2-secret"}, ["fme-1", "fme-2"])
    with pytest.raises(CredentialsError) as caught:
        source.for_node("fme-1")
    assert str(caught.value) == "no credentials for node 'fme-1' in the environment"
    assert source.for_node("fme-2") == Credentials("admin", "node2-secret", None)
    empty = CredentialSource(Credentials("admin", "", ""), where="x")
    with pytest.raises(CredentialsError, match="no credentials for node 'n' in x"):
        empty.for_node("n")


def test_no_credentials_at_all_says_every_way_to_give_them() -> None:
    with pytest.raises(CredentialsError) as caught:
        CredentialSource.from_env({"FMEAA_USERNAME": "u"}, ["fme-1"])
    assert str(caught.value) == (
        "no FME credentials: set FMEAA_PASSWORD (and FMEAA_USERNAME, default 'admin') or "
        "FMEAA_TOKEN, per node FMEAA_PASSWORD_<NODE>, or name an AWS Secrets Manager secret "
        "with --secret-id / FMEAA_SECRET_ID")


def _secret(name: str, value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=name, SecretString=text)
    return name


def _no_region_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The region must come from the caller (the inventory, --region), not from the process."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)


def test_a_secrets_manager_secret_for_every_node_and_per_node(
        aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _secret("fme/admin", {"password": "pw-xyz-secret", "nodes": {
        "fme-2": {"username": "ops", "password": "node2-secret"}, "fme-3": {"token": "tok"},
        "fme-4": {"username": "nobody"}}})
    _no_region_in_the_environment(monkeypatch)
    source = CredentialSource.from_secrets_manager(secret, REGION)
    assert source.where == "secret 'fme/admin'"
    assert source.for_node("fme-1") == Credentials("admin", "pw-xyz-secret", None)
    assert source.for_node("fme-2") == Credentials("ops", "node2-secret", None)
    assert source.for_node("fme-3") == Credentials("admin", None, "tok")
    assert source.for_node("fme-4") == Credentials("admin", "pw-xyz-secret", None)  # no password
    per_node_only = CredentialSource.from_secrets_manager(
        _secret("fme/nodes", {"nodes": {"fme-2": {"password": "node2-secret"}}}), REGION)
    assert per_node_only.for_node("fme-2").password == "node2-secret"
    with pytest.raises(CredentialsError, match="no credentials for node 'fme-1' in secret 'fme/nodes'"):
        per_node_only.for_node("fme-1")


@pytest.mark.parametrize(("value", "message"), [
    ("not json", "secret 'bad' is not a JSON object with username and password"),
    ([1, 2], "secret 'bad' is not a JSON object"),
    ({"username": "u", "nodes": {"a": {"username": "u"}}},
     "secret 'bad' has no 'password' (or 'token') and no 'nodes' entries"),
    ({"nodes": None}, "secret 'bad' has no 'password' (or 'token') and no 'nodes' entries"),
])
def test_an_unusable_secret_is_refused_clearly(aws: str, value: object, message: str) -> None:
    _secret("bad", value)
    with pytest.raises(CredentialsError) as caught:
        CredentialSource.from_secrets_manager("bad", REGION)
    assert str(caught.value) == message


def test_an_unreadable_secret_names_the_reason(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CredentialsError) as caught:
        CredentialSource.from_secrets_manager("no/such", REGION)
    assert str(caught.value) == "cannot read secret 'no/such': ResourceNotFoundException"
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    with pytest.raises(CredentialsError) as caught:
        CredentialSource.from_secrets_manager("no/such", None)
    assert str(caught.value) == f"cannot read secret 'no/such': {NO_REGION}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(CredentialsError) as caught:
        CredentialSource.from_secrets_manager("x", REGION)
    assert str(caught.value) == "cannot read secret 'x': EndpointConnectionError"


def test_an_aws_error_without_a_code_is_still_named() -> None:
    from botocore.exceptions import ClientError

    class Session:
        def client(self, service: str, region_name: str | None = None) -> Session:
            return self

        def get_secret_value(self, SecretId: str) -> dict:
            raise ClientError({}, "GetSecretValue")
    with pytest.raises(CredentialsError) as caught:
        CredentialSource.from_secrets_manager("s", REGION, session=Session())
    assert str(caught.value) == "cannot read secret 's': error"


def test_secret_references_from_the_environment() -> None:
    assert resolve_secret_ref("env:PG", {"PG": "pg-first-value"}) == "pg-first-value"
    assert resolve_secret_ref("env:PG", {"PG": ""}) == ""  # set, if empty
    with pytest.raises(CredentialsError) as caught:
        resolve_secret_ref("env:PG", {})
    assert str(caught.value) == "secret reference 'env:PG': $PG is not set"


def test_secret_references_from_secrets_manager(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="db", SecretString=json.dumps({"password": "pg-first-value", "port": 5432}))["ARN"]
    _secret("plain", "conn-secret-value")
    _no_region_in_the_environment(monkeypatch)
    assert resolve_secret_ref(f"aws-sm:{arn}#password", region=REGION) == "pg-first-value"
    assert resolve_secret_ref("aws-sm:db#password", region=REGION) == "pg-first-value"
    assert resolve_secret_ref("aws-sm:db#port", region=REGION) == "5432"
    assert resolve_secret_ref("aws-sm:plain", region=REGION) == "conn-secret-value"
    assert json.loads(resolve_secret_ref("aws-sm:db", region=REGION))["port"] == 5432
    for reference in ("aws-sm:db#user", "aws-sm:plain#password"):
        with pytest.raises(CredentialsError) as caught:
            resolve_secret_ref(reference, region=REGION)
        key = reference.partition("#")[2]
        assert str(caught.value) == (f"secret reference {reference!r}: no key {key!r} in the "
                                     "secret's JSON")
    _secret("listed", [1])
    with pytest.raises(CredentialsError, match="no key 'a' in the secret's JSON"):
        resolve_secret_ref("aws-sm:listed#a", region=REGION)
    with pytest.raises(CredentialsError) as caught:
        resolve_secret_ref("aws-sm:missing#password", region=REGION)
    assert str(caught.value) == ("secret reference 'aws-sm:missing#password': cannot read it "
                                 "(ResourceNotFoundException)")
    with pytest.raises(CredentialsError) as caught:
        resolve_secret_ref("aws-sm:db#password")
    assert str(caught.value) == f"secret reference 'aws-sm:db#password': {NO_REGION}"


def test_the_source_servers_credentials_come_from_the_environment_by_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEAA_SOURCE_PASSWORD", "from-the-env")
    monkeypatch.delenv("FMEAA_SOURCE_USERNAME", raising=False)
    assert source_credentials(None, REGION) == Credentials("admin", "from-the-env", None)


def test_the_source_servers_credentials_are_its_own() -> None:
    """`--source url:…` reads its own credentials: a secret, else FMEAA_SOURCE_* (user admin
    by default) — never the nodes' FMEAA_PASSWORD."""
    assert source_credentials(None, REGION, {"FMEAA_SOURCE_PASSWORD": "old-pw"}) == \
        Credentials("admin", "old-pw", None)
    assert source_credentials(None, REGION, {"FMEAA_SOURCE_USERNAME": "ops",
                                             "FMEAA_SOURCE_TOKEN": "tok"}) == \
        Credentials("ops", None, "tok")
    with pytest.raises(CredentialsError) as caught:
        source_credentials(None, REGION, {"FMEAA_PASSWORD": "the-nodes-password"})
    assert str(caught.value) == (
        "no credentials for the source server: set FMEAA_SOURCE_PASSWORD (and "
        "FMEAA_SOURCE_USERNAME, default 'admin') or FMEAA_SOURCE_TOKEN, or name an AWS Secrets "
        "Manager secret with --source-secret-id / FMEAA_SOURCE_SECRET_ID")

    class Session:
        def __init__(self, secret: dict) -> None:
            self.secret, self.asked = secret, []

        def client(self, service: str, region_name: str | None = None) -> Session:
            self.asked.append((service, region_name))
            return self

        def get_secret_value(self, SecretId: str) -> dict:
            self.asked.append(SecretId)
            return {"SecretString": json.dumps(self.secret)}
    session = Session({"username": "old-admin", "password": "old-pw"})
    found = source_credentials("fme/old", REGION, {"FMEAA_SOURCE_PASSWORD": "ignored"},
                               session=session)
    assert found == Credentials("old-admin", "old-pw", None)
    assert session.asked == [("secretsmanager", REGION), "fme/old"]
    with pytest.raises(CredentialsError) as caught:
        source_credentials("fme/old", REGION, {}, session=Session(
            {"nodes": {"fme-1": {"username": "a", "password": "node-pw"}}}))
    assert str(caught.value) == ("secret 'fme/old' has no top-level 'password' (or 'token'): "
                                 "the source server needs its own credentials")
