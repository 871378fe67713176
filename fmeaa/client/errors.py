"""Errors of the FME REST client. Each carries node, method, path and HTTP status — never the
token or a password (the request's headers are never part of the message)."""

from __future__ import annotations


class FmeApiError(Exception):
    """A REST call failed. `status` is None when no HTTP response arrived."""

    def __init__(self, node: str, method: str, path: str, status: int | None, message: str) -> None:
        self.node, self.method, self.path, self.status = node, method, path, status
        self.detail = message
        where = f"{node}: {method} {path}"
        super().__init__(f"{where} -> {status}: {message}" if status else f"{where}: {message}")

    @property
    def reason(self) -> str:
        """What failed without the node's name, for texts that name the node already."""
        return f"{self.method} {self.path} -> {self.status}: {self.detail}" if self.status \
            else self.detail


class AuthenticationError(FmeApiError):
    """401: bad credentials, or a token that is missing, invalid or expired."""


class PermissionDeniedError(FmeApiError):
    """403: the account lacks the permission."""


class NotFoundError(FmeApiError):
    """404: the repository, item, schedule, topic… does not exist."""


class ConflictError(FmeApiError):
    """409: it already exists (or is still in use)."""


class InvalidRequestError(FmeApiError):
    """400/415/422: the server rejected the request's content."""


class ServerError(FmeApiError):
    """5xx: the server failed; usually transient and worth a bounded retry."""


class NodeUnreachableError(FmeApiError):
    """No connection (refused, DNS, TLS): the node is down or not reachable from here."""


class NodeTimeoutError(FmeApiError):
    """The node accepted the connection but did not answer in time."""


class TransferInterruptedError(FmeApiError):
    """The connection broke mid-request (e.g. during an upload): nothing may be assumed stored."""


class UnsupportedOperationError(FmeApiError):
    """The node's FME version has no endpoint for this operation (e.g. connections on FME Server
    2022, which has no REST V4). The message says which version would have one."""


class EndpointMissingError(FmeApiError):
    """The node answered 404/405 with no error message: the endpoint itself does not exist there
    (not a missing object). The message names the path, the node's version and what to do."""


class ThrottledError(FmeApiError):
    """429: the node refused the request without processing it, more often in a row than the
    client waits out by itself (`Transport.throttle_retries`); safe to send again later."""


TRANSIENT = (ServerError, NodeTimeoutError, TransferInterruptedError, NodeUnreachableError,
             ThrottledError)

_BY_STATUS: dict[int, type[FmeApiError]] = {
    400: InvalidRequestError, 401: AuthenticationError, 403: PermissionDeniedError,
    404: NotFoundError, 409: ConflictError, 415: InvalidRequestError, 422: InvalidRequestError,
    429: ThrottledError,
}


def error_for_status(node: str, method: str, path: str, status: int, message: str) -> FmeApiError:
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else FmeApiError)
    return cls(node, method, path, status, message)
