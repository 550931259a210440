"""Validation of API objects: the three entry points the API server calls.

Each runs, in order: the schema walk (typecheck: wrong JSON types raise errors.BadRequest as
Kubernetes' decoder does; missing required fields become FieldValueRequired causes), the
ObjectMeta rules (metadata.py) and the kind's semantic rules (one module per API group, looked
up by the kind's schema name in ``RULES``). They return every cause found, deduplicated; an
empty list means valid. The API server calls them after defaulting; the rules assume defaults
were applied but do not fail when a defaulted field is absent.

Decisions worth knowing:

- a type mismatch is a 400 (errors.BadRequest with Go's decoder message), never a cause:
  Kubernetes fails such bodies while decoding, before validation exists;
- the schema's ``required`` fields are enforced everywhere, status included (a missing or null
  ``status.conditions[0].status`` or ``containerStatuses[0].imageID`` is FieldValueRequired):
  Kubernetes' decoder would zero-fill them, but the official Python client refuses objects
  without them, so kybern never stores one. An empty string still counts as present.
"""

from __future__ import annotations

from typing import Any

from kybern.api import errors, kinds
from kybern.api.validation import (
    apiextensions,
    apps,
    autoscaling,
    batch,
    common,
    coordination,
    core,
    core_resources,
    discovery,
    events,
    metadata,
    networking,
    policy,
    rbac,
    scheduling,
    service,
    storage,
    typecheck,
)

__all__ = ["validate_create", "validate_status_update", "validate_update"]

RULES: dict[str, common.KindRules] = {
    **core.RULES,
    **service.RULES,
    **core_resources.RULES,
    **events.RULES,
    **apps.RULES,
    **batch.RULES,
    **autoscaling.RULES,
    **networking.RULES,
    **policy.RULES,
    **rbac.RULES,
    **apiextensions.RULES,
    **storage.RULES,
    **scheduling.RULES,
    **coordination.RULES,
    **discovery.RULES,
}
_NONE = common.KindRules()


def validate_create(
    info: kinds.ResourceInfo, obj: dict[str, Any], *, unknown: list[str] | None = None
) -> list[errors.Cause]:
    """Causes that make ``obj`` invalid for creation (empty when valid).

    Raises errors.BadRequest when a field has the wrong JSON type. Fields the kind's schema
    does not have are dropped from ``obj`` in place, as Kubernetes' decoder drops them; their
    paths (``spec.bogus``) are appended to ``unknown`` when given (for fieldValidation)."""
    report = typecheck.check(info.schema, obj, kind=info.kind, version=info.version, prune=True)
    _note_unknown(report, unknown)
    rules = RULES.get(info.schema, _NONE)
    return common.dedupe([*metadata.validate(info, obj), *report.causes, *rules.create(obj)])


def validate_update(
    info: kinds.ResourceInfo,
    new: dict[str, Any],
    old: dict[str, Any],
    *,
    unknown: list[str] | None = None,
) -> list[errors.Cause]:
    """Causes that make replacing ``old`` by ``new`` invalid: every create rule on ``new``
    plus the update rules (immutable fields). Raises errors.BadRequest and reports unknown
    fields like validate_create."""
    report = typecheck.check(info.schema, new, kind=info.kind, version=info.version, prune=True)
    _note_unknown(report, unknown)
    rules = RULES.get(info.schema, _NONE)
    causes = [
        *metadata.validate(info, new),
        *metadata.validate_update(new, old),
        *report.causes,
        *rules.create(new),
        *rules.update(new, old),
    ]
    return common.dedupe(causes)


def validate_status_update(
    info: kinds.ResourceInfo,
    new: dict[str, Any],
    old: dict[str, Any],
    *,
    unknown: list[str] | None = None,
) -> list[errors.Cause]:
    """Causes that make a /status write invalid: ObjectMeta update rules, required status
    fields and the kind's status rules. Raises errors.BadRequest and reports unknown fields
    like validate_create."""
    report = typecheck.check(info.schema, new, kind=info.kind, version=info.version, prune=True)
    _note_unknown(report, unknown)
    rules = RULES.get(info.schema, _NONE)
    status_required = [c for c in report.causes if c.field.startswith("status")]
    causes = [*metadata.validate_update(new, old), *status_required, *rules.status(new, old)]
    return common.dedupe(causes)


def _note_unknown(report: typecheck.Report, unknown: list[str] | None) -> None:
    if unknown is not None and report.unknown:
        unknown.extend(report.unknown)
