"""Causes travel as metav1.StatusCause: the field has its own key, the message does not repeat it."""

from __future__ import annotations

from kybern.api import errors


def test_cause_wire_form_drops_the_field_prefix() -> None:
    cause = errors.invalid("spec.replicas", -1, "must be greater than or equal to 0")
    assert cause.message == "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    assert cause.to_dict() == {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: -1: must be greater than or equal to 0",
        "field": "spec.replicas",
    }


def test_cause_without_field_keeps_its_message() -> None:
    assert errors.Cause("FieldValueInvalid", "bad", "").to_dict()["message"] == "bad"
