"""REST client for FME Server (v3) and FME Flow (v4 adapter)."""

from fmeaa.client.errors import (
    TRANSIENT,
    AuthenticationError,
    ConflictError,
    FmeApiError,
    InvalidRequestError,
    NodeTimeoutError,
    NodeUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    TransferInterruptedError,
)
from fmeaa.client.rest import FmeClient, FmeClientV4, connect

__all__ = [
    "TRANSIENT",
    "AuthenticationError",
    "ConflictError",
    "FmeApiError",
    "FmeClient",
    "FmeClientV4",
    "InvalidRequestError",
    "NodeTimeoutError",
    "NodeUnreachableError",
    "NotFoundError",
    "PermissionDeniedError",
    "ServerError",
    "TransferInterruptedError",
    "connect",
]
