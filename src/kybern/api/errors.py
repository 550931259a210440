"""Errors raised by the pure API layer (validation, decoding, patching, selectors).

Each carries what a Kubernetes ``Status`` needs; kybern.apiserver.errors turns them into
Status objects in one place. ``Cause`` mirrors metav1.StatusCause.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cause:
    """One field error: reason is a CauseType such as FieldValueRequired, FieldValueInvalid,
    FieldValueNotSupported, FieldValueDuplicate, FieldValueTooLong, FieldValueForbidden,
    FieldValueTypeInvalid; field is a path like ``spec.containers[0].image``."""

    reason: str
    message: str
    field: str

    def to_dict(self) -> dict[str, str]:
        """The wire form (metav1.StatusCause): the message without the field path, which has
        its own key (kubectl prints "<field>: <message>" from the two)."""
        message = self.message.removeprefix(f"{self.field}: ") if self.field else self.message
        return {"reason": self.reason, "message": message, "field": self.field}


def required(field: str) -> Cause:
    return Cause("FieldValueRequired", f"{field}: Required value", field)


def invalid(field: str, value: object, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"{field}: Invalid value: {_show(value)}: {detail}", field)


def not_supported(field: str, value: object, allowed: list[str]) -> Cause:
    options = ", ".join(f'"{a}"' for a in allowed)
    return Cause(
        "FieldValueNotSupported",
        f"{field}: Unsupported value: {_show(value)}: supported values: {options}",
        field,
    )


def forbidden(field: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", f"{field}: Forbidden: {detail}", field)


def duplicate(field: str, value: object) -> Cause:
    return Cause("FieldValueDuplicate", f"{field}: Duplicate value: {_show(value)}", field)


def too_long(field: str, value: object, limit: int) -> Cause:
    return Cause(
        "FieldValueTooLong",
        f"{field}: Too long: may not be more than {limit} bytes",
        field,
    )


def type_invalid(field: str, value: object, expected: str) -> Cause:
    return Cause(
        "FieldValueTypeInvalid",
        f"{field}: Invalid value: {_show(value)}: must be of type {expected}",
        field,
    )


def _show(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


class APIError(Exception):
    """Base for errors of the API layer."""


class BadRequest(APIError):
    """Malformed input (400)."""


class Invalid(APIError):
    """Semantic validation failed (422); ``causes`` lists every field error found."""

    def __init__(self, kind: str, name: str, causes: list[Cause]) -> None:
        detail = "; ".join(c.message for c in causes) or "invalid object"
        super().__init__(
            f'{kind} "{name}" is invalid: {detail}' if name else f"{kind} is invalid: {detail}"
        )
        self.kind = kind
        self.name = name
        self.causes = causes
