"""fme-aa's boto3 sessions share botocore's parsed service models within a process (the
rehearsal, the Pulumi provider's seeds and `upgrade` open several sessions in one run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.loaders
import pytest

from fmeaa.app import job_logs
from fmeaa.cluster import credentials, inventory, target_group
from fmeaa.cluster.aws_session import aws_session


def test_a_second_session_does_not_parse_the_service_model_again(
        aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_session("eu-west-1").client("ec2")  # the process's first EC2 model, if not loaded yet
    parsed: list[str] = []
    original = botocore.loaders.JSONFileLoader.load_file

    def load_file(self: Any, file_path: str) -> Any:
        parsed.append(file_path)
        return original(self, file_path)
    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", load_file)
    first, second = aws_session("eu-west-1"), aws_session("us-east-1")
    first.client("ec2")
    second.client("ec2", region_name="us-east-1")
    assert not [p for p in parsed if "/ec2/" in p], parsed
    assert second.region_name == "us-east-1" and first.region_name == "eu-west-1"


def test_every_aws_caller_opens_its_session_here() -> None:
    """No module of fmeaa's AWS side opens a plain boto3 session (which would parse again)."""
    for module in (credentials, inventory, target_group, job_logs):
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        assert "boto3.session.Session(" not in source and "boto3.client(" not in source, module
        assert "aws_session" in source, module
