"""The security-relevant settings of the cluster's resources, decided in one pure module.

The components (`fme_node.py`, `load_balancer.py`) take these settings from here, and
`tests/test_security_policy.py` checks the resulting resources against the AWS Foundational
Security Best Practices controls named below. They are functions, not constants, so that
mutation testing (`./dev mutate security`) can change each one and prove the policy test notices.
"""

from __future__ import annotations

import json
from typing import Any

from config.stack import DatabaseConfig

HTTPS_PORT = 443


def instance_metadata_options() -> dict[str, Any]:
    """EC2.8: IMDSv2 only (a session token for every metadata call), one network hop."""
    return {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}


def encrypted_at_rest() -> bool:
    """EC2.3 (root and share volumes), EFS.1 (EFS share), RDS.3 (database storage)."""
    return True


def database_protection(database: DatabaseConfig) -> dict[str, Any]:
    """RDS.3 encrypted storage, RDS.2 never public, RDS.11 automatic backups, RDS.8 deletion
    protection (the last two as the stack configures them)."""
    return {"storage_encrypted": encrypted_at_rest(), "publicly_accessible": False,
            "backup_retention_period": database.backup_retention_days,
            "deletion_protection": database.deletion_protection}


def efs_file_system_policy(file_system_arn: str, role_arn: str) -> str:
    """The share's file-system policy: no access without TLS, for anyone; mount, write and root
    access for this node's own role only."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DenyWithoutTls", "Effect": "Deny", "Principal": {"AWS": "*"},
             "Action": "*", "Resource": file_system_arn,
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "OnlyThisNode", "Effect": "Allow", "Principal": {"AWS": role_arn},
             "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite",
                        "elasticfilesystem:ClientRootAccess"],
             "Resource": file_system_arn},
        ],
    })


def drops_invalid_headers() -> bool:
    """ELB.4: the ALB drops HTTP headers that are not valid (request smuggling)."""
    return True


def http_to_https_redirect() -> dict[str, str]:
    """ELB.1: with a certificate, the HTTP listener only redirects to HTTPS (permanently)."""
    return {"protocol": "HTTPS", "port": str(HTTPS_PORT), "status_code": "HTTP_301"}
