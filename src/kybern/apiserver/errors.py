"""Every error the API server answers with, as a Kubernetes ``Status`` object.

Lower layers raise their own named errors (kybern.storage.errors, kybern.api.errors); this
module is the one place that maps them to HTTP codes and Status reasons, so a handler never
builds an error response by hand and bad input never turns into a 500.
"""

from __future__ import annotations

from typing import Any

from kybern.api import errors as api_errors
from kybern.storage import errors as storage_errors


class StatusError(Exception):
    """An error that is answered with a Status object (metav1.Status)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(resource: str, name: str, group: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        details=_details(resource, name, group),
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        details=_details(resource, name, group),
    )


def conflict(resource: str, name: str, group: str = "", detail: str = "") -> StatusError:
    detail = (
        detail
        or "the object has been modified; please apply your changes to the latest version and try again"
    )
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}',
        details=_details(resource, name, group),
    )


def invalid(kind: str, name: str, causes: list[api_errors.Cause], group: str = "") -> StatusError:
    joined = "; ".join(c.message for c in causes)
    if len(causes) > 1:
        joined = "[" + ", ".join(c.message for c in causes) + "]"
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": [c.to_dict() for c in causes]}
    if group:
        details["group"] = group
    return StatusError(
        422, "Invalid", f'{_qualified(kind, group)} "{name}" is invalid: {joined}', details=details
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def forbidden(resource: str, name: str, group: str, detail: str) -> StatusError:
    target = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    return StatusError(
        403,
        "Forbidden",
        f"{target} is forbidden: {detail}",
        details=_details(resource, name, group),
    )


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got "{content_type}")',
    )


def not_acceptable(accept: str) -> StatusError:
    return StatusError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: application/json, application/yaml (got {accept})",
    )


def too_large(limit: int) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def path_not_found(path: str) -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def from_exception(
    exc: BaseException, *, resource: str = "", name: str = "", group: str = "", kind: str = ""
) -> StatusError:
    """Map a lower layer's error to the Status Kubernetes would answer."""
    if isinstance(exc, StatusError):
        return exc
    if isinstance(exc, api_errors.Invalid):
        return invalid(exc.kind or kind, exc.name or name, exc.causes, group)
    if isinstance(exc, api_errors.BadRequest):
        return bad_request(str(exc))
    if isinstance(exc, api_errors.APIError) and isinstance(getattr(exc, "code", None), int):
        message = getattr(exc, "status_message", "") or str(exc)
        return StatusError(exc.code, getattr(exc, "reason", "BadRequest"), message)  # type: ignore[attr-defined]
    if isinstance(exc, storage_errors.KeyExists):
        return already_exists(resource, name, group)
    if isinstance(exc, storage_errors.NotFound):
        return not_found(resource, name, group)
    if isinstance(exc, storage_errors.Conflict):
        return conflict(resource, name, group)
    if isinstance(exc, storage_errors.Compacted):
        return gone(f"too old resource version: {exc.requested} ({exc.compacted})")
    if isinstance(exc, TimeoutError):
        return StatusError(504, "Timeout", "the request timed out waiting for the storage")
    if isinstance(exc, storage_errors.FutureRevision):
        return StatusError(
            504,
            "Timeout",
            f"Too large resource version: {exc.requested}, current: {exc.current}",
            details={
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            },
        )
    return internal(str(exc) or type(exc).__name__)
