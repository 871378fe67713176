"""REST client for FME Server and FME Flow nodes: each node spoken to in its own API (V3/V4)."""

from fmeaa.client.errors import (
    TRANSIENT,
    AuthenticationError,
    ConflictError,
    EndpointMissingError,
    FmeApiError,
    InvalidRequestError,
    NodeTimeoutError,
    NodeUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    TransferInterruptedError,
    UnsupportedOperationError,
)
from fmeaa.client.rest import FmeClient, connect

__all__ = [
    "TRANSIENT",
    "AuthenticationError",
    "ConflictError",
    "EndpointMissingError",
    "FmeApiError",
    "FmeClient",
    "InvalidRequestError",
    "NodeTimeoutError",
    "NodeUnreachableError",
    "NotFoundError",
    "PermissionDeniedError",
    "ServerError",
    "TransferInterruptedError",
    "UnsupportedOperationError",
    "connect",
]
