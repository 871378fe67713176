"""`./dev preview [Pulumi.<stack>.yaml]` (components/preview.py) as a user meets it: a broken
or missing stack file is a one-line error, not a traceback; the stack's `aws:region` is the
region previewed; a misspelt namespace, a zone the network does not have and a duplicate node
name are each reported, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.preview import ROOT, main

EXAMPLE = (ROOT / "Pulumi.example.yaml").read_text()


def stack(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(text)
    return path


def run(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_stack_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(tmp_path / "Pulumi.nope.yaml", capsys)
    assert code == 1 and "Pulumi.nope.yaml" in err and "no such file" in err


def test_malformed_yaml_names_line_and_column(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(stack(tmp_path, EXAMPLE.replace("fme-aa:nodeCount: 3",
                                                       "fme-aa:nodeCount: [3")), capsys)
    assert code == 1 and "malformed YAML" in err and "line 11" in err


def test_the_stack_region_is_previewed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(stack(tmp_path, EXAMPLE.replace("aws:region: eu-west-1",
                                                         "aws:region: us-east-2")), capsys)
    assert code == 0, err
    assert '"region": "us-east-2"' in out and "eu-west-1" not in out


def test_every_problem_is_listed_at_once(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    text = (EXAMPLE
            .replace("fme-aa:clusterName: fme-aa", "fmeaa:clusterName: fme-aa")
            .replace("fme-aa:nodeCount: 3",
                     "fme-aa:nodes: [fme-1, fme-2, fme-1, {name: reporting, zone: 5}]")
            .replace("fme-aa:instanceType: m6i.xlarge", "fme-aa:instanceType: BAD"))
    code, _, err = run(stack(tmp_path, text), capsys)
    assert code == 1
    assert "fmeaa:clusterName" in err and "fme-aa:clusterName" in err  # misspelt namespace
    assert "duplicate node names: fme-1" in err
    assert "reporting" in err and "zone 5" in err and "2 availability zones" in err
    assert "fme-aa:instanceType" in err
    assert "Traceback" not in err


def test_a_zone_beyond_an_existing_vpcs_subnets(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE.replace("fme-aa:nodeCount: 3", "fme-aa:nodes: [{name: fme-1, zone: 2}]")
    code, _, err = run(stack(tmp_path, text.replace("azCount: 2", "azCount: 3")), capsys)
    assert code == 0, err
    code, _, err = run(stack(tmp_path, text), capsys)
    assert code == 1 and "zone 2" in err and "zones 0–1" in err


def test_a_key_given_twice_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE.replace("fme-aa:nodeCount: 3", "fme-aa:nodeCount: 3\n  fme-aa:nodeCount: 4")
    code, _, err = run(stack(tmp_path, text), capsys)
    assert code == 1 and "fme-aa:nodeCount" in err and "twice" in err
