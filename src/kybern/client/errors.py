"""API errors as the client sees them: a Kubernetes ``Status`` answered with a failure code.

Every transport turns a failed request into an ``ApiError`` carrying the Status object, so
callers test the reason rather than parse messages: ``except errors.NotFound`` or
``errors.is_conflict(exc)``. The subclasses mirror client-go's ``apierrors.IsNotFound`` family.
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Base class of every error this package raises."""


class TransportError(ClientError):
    """The request never got an answer (connection refused, TLS failure, timeout)."""


class ConfigError(ClientError):
    """A kubeconfig file that cannot be used (missing context, unreadable credentials)."""


class ApiError(ClientError):
    """The API server answered with a failure ``Status``."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        self.code = int(status.get("code") or 0)
        self.reason = str(status.get("reason") or "")
        self.message = str(status.get("message") or "")
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @property
    def details(self) -> dict[str, Any]:
        details = self.status.get("details")
        return details if isinstance(details, dict) else {}


class BadRequest(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class MethodNotAllowed(ApiError):
    pass


class Conflict(ApiError):
    """409 with reason Conflict: a stale resourceVersion or a failed precondition."""


class AlreadyExists(ApiError):
    """409 with reason AlreadyExists."""


class Gone(ApiError):
    """410: the requested resourceVersion is older than the server's history (re-list)."""


class UnsupportedMediaType(ApiError):
    pass


class Invalid(ApiError):
    """422: validation failed; ``causes`` lists the fields."""

    @property
    def causes(self) -> list[dict[str, Any]]:
        causes = self.details.get("causes")
        return causes if isinstance(causes, list) else []


class TooManyRequests(ApiError):
    """429: e.g. an eviction that would violate a PodDisruptionBudget."""


class ServerError(ApiError):
    """5xx: an internal error or a timeout on the server side."""


_BY_REASON: dict[str, type[ApiError]] = {
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
}
_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
}


def from_status(code: int, body: Any) -> ApiError:
    """The error for a failed response; ``body`` is its decoded Status (or anything else)."""
    status: dict[str, Any]
    if isinstance(body, dict) and body.get("kind") == "Status":
        status = dict(body)
        status.setdefault("code", code)
    else:
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": "",
            "message": text.strip() or f"the server answered {code}",
        }
    status_code = int(status.get("code") or code)
    cls = _BY_REASON.get(str(status.get("reason") or "")) or _BY_CODE.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else ApiError
    return cls(status)


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, NotFound)


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, Conflict)


def is_already_exists(exc: BaseException) -> bool:
    return isinstance(exc, AlreadyExists)


def is_gone(exc: BaseException) -> bool:
    return isinstance(exc, Gone) or (isinstance(exc, ApiError) and exc.code == 410)


def is_invalid(exc: BaseException) -> bool:
    return isinstance(exc, Invalid)
