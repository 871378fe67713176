"""Stack config model: defaults, stable AZ placement, and specific errors."""

from __future__ import annotations

import pytest

from config import StackConfigError, parse_stack_config
from config.stack import NodeSpec

AMI = {"id": "ami-0123456789abcdef0"}
FME = {"version": "2026.1"}


def test_node_count_names_nodes_in_order() -> None:
    config = parse_stack_config({"nodeCount": 3, "ami": AMI, "fme": FME})
    assert [n.name for n in config.node_specs] == ["fme-1", "fme-2", "fme-3"]


def test_zone_placement_depends_only_on_the_node_itself() -> None:
    assert [NodeSpec(name=f"fme-{i}").zone_index(2) for i in range(1, 6)] == [0, 1, 0, 1, 0]
    assert NodeSpec(name="reporting").zone_index(3) == NodeSpec(name="reporting").zone_index(3)
    assert NodeSpec(name="reporting", zone=4).zone_index(3) == 1


def test_fme_defaults_come_from_the_table_and_settings_override_them() -> None:
    config = parse_stack_config({"nodeCount": 1, "ami": AMI,
                                 "fme": {"version": "2022.2", "webPort": 8443}})
    fme = config.fme.resolved()
    assert fme.web_port == 8443
    assert fme.health_check_path == "/fmerest/v3/healthcheck"
    assert fme.install_dir == r"C:\Program Files\FMEServer"
    assert fme.layout.db_name == "fmeserver"


def test_pulumi_scalars_arrive_as_strings() -> None:
    assert parse_stack_config({"nodeCount": "2", "ami": AMI, "fme": FME}).node_count == 2


@pytest.mark.parametrize(("raw", "fragment"), [
    ({"nodeCount": 2}, "fme-aa:ami: Field required"),
    ({"nodeCount": 2, "nodes": ["a"], "ami": AMI, "fme": FME}, "exactly one of 'nodeCount'"),
    ({"nodes": ["Bad_Name"], "ami": AMI, "fme": FME}, "node name 'Bad_Name' must match"),
    ({"nodeCount": 2, "ami": AMI, "fme": FME, "share": {"volumeType": "gp2", "iops": 4000}},
     "iops cannot be set for volumeType gp2"),
    ({"nodeCount": 2, "ami": AMI, "fme": FME, "database": {"allocatedStorageGib": 50,
                                               "maxAllocatedStorageGib": 30}},
     "maxAllocatedStorageGib must be >= allocatedStorageGib"),
    ({"nodeCount": 2, "ami": AMI, "fme": FME, "loadBalancer": {"certificateArn": "cert-123"}},
     "fme-aa:loadBalancer.certificateArn"),
    ({"nodeCount": 2, "ami": AMI, "fme": FME, "tags": {"aws:foo": "x"}}, "must be 1-128 chars"),
])
def test_errors_name_the_key_and_what_is_allowed(raw: dict, fragment: str) -> None:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(raw)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("days", [1, 6])
def test_backup_retention_below_seven_days_is_refused_naming_the_control(days: int) -> None:
    """AWS Foundational Security Best Practices RDS.11, which the stack is checked against,
    wants automatic backups kept at least 7 days: a shorter retention is an error naming the
    key, the control and what to set, not a stack that quietly fails the control."""
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config({"nodeCount": 2, "ami": AMI, "fme": FME,
                            "database": {"backupRetentionDays": days}})
    message = str(caught.value)
    assert "fme-aa:database.backupRetentionDays" in message
    assert "RDS.11" in message and "7" in message and "35" in message


def test_backup_retention_defaults_to_seven_days_and_takes_seven_to_35() -> None:
    def days(**database: int) -> int:
        return parse_stack_config({"nodeCount": 1, "ami": AMI, "fme": FME,
                                   "database": database}).database.backup_retention_days

    assert days() == 7 and days(backupRetentionDays=7) == 7 and days(backupRetentionDays=35) == 35
    with pytest.raises(StackConfigError, match="backupRetentionDays"):
        days(backupRetentionDays=36)
