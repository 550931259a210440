"""Status answers become the right ApiError subclass."""

from __future__ import annotations

import pytest

from kybern.client import errors

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (404, "NotFound", errors.NotFound),
        (409, "AlreadyExists", errors.AlreadyExists),
        (409, "Conflict", errors.Conflict),
        (410, "Expired", errors.Gone),
        (410, "Gone", errors.Gone),
        (422, "Invalid", errors.Invalid),
        (400, "BadRequest", errors.BadRequest),
        (401, "Unauthorized", errors.Unauthorized),
        (403, "Forbidden", errors.Forbidden),
        (415, "UnsupportedMediaType", errors.UnsupportedMediaType),
        (429, "TooManyRequests", errors.TooManyRequests),
        (500, "InternalError", errors.ServerError),
        (504, "Timeout", errors.ServerError),
        (418, "Teapot", errors.ApiError),
    ],
)
def test_status_maps_to_its_class(code: int, reason: str, cls: type[errors.ApiError]) -> None:
    exc = errors.from_status(
        code, {"kind": "Status", "code": code, "reason": reason, "message": "m"}
    )
    assert type(exc) is cls
    assert (exc.code, exc.reason, exc.message) == (code, reason, "m")


def test_invalid_exposes_causes_and_predicates_agree() -> None:
    causes = [{"field": "metadata.name", "reason": "FieldValueInvalid"}]
    exc = errors.from_status(
        422, {"kind": "Status", "code": 422, "reason": "Invalid", "details": {"causes": causes}}
    )
    assert isinstance(exc, errors.Invalid)
    assert exc.causes == causes
    assert errors.is_invalid(exc)
    assert not errors.is_conflict(exc)
    assert errors.is_gone(errors.from_status(410, {"kind": "Status", "reason": "Expired"}))


def test_a_non_status_body_still_gives_an_error() -> None:
    exc = errors.from_status(502, b"bad gateway")
    assert isinstance(exc, errors.ServerError)
    assert exc.message == "bad gateway"
    assert exc.status["code"] == 502
