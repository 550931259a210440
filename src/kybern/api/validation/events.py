"""Rules for Events, core/v1 and events.k8s.io/v1 (one stored object, two shapes).

As in Kubernetes, an events.k8s.io/v1 write is checked in core/v1 terms (it is converted
first, so field paths name core/v1 fields such as ``involvedObject.namespace``) and gets the
strict rules; a core/v1 write only gets the legacy rules, for backwards compatibility.
"""

from __future__ import annotations

import datetime

from kybern.api import conversion
from kybern.api.validation import common, names

REPORTING_INSTANCE_MAX = 128
ACTION_MAX = 128
REASON_MAX = 128
NOTE_MAX = 1024
EVENT_TYPES = ("Normal", "Warning")
_STRICT_IMMUTABLE = (
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "related",
    "type",
    "eventTime",
    "action",
    "reportingComponent",
    "reportingInstance",
)


def _namespace(event: common.Obj) -> str:
    return str(common.as_dict(event.get("metadata")).get("namespace") or "")


def legacy_rules(event: common.Obj, *, strict: bool) -> common.Causes:
    namespace = _namespace(event)
    involved_ns = common.as_dict(event.get("involvedObject")).get("namespace") or ""
    field = "involvedObject.namespace"
    out: common.Causes = []
    if not event.get("eventTime"):
        allowed = {involved_ns} if involved_ns else {"", "default"}
        if namespace not in allowed:
            out.append(common.invalid(field, involved_ns, "does not match event.namespace"))
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            out.append(common.invalid(field, involved_ns, "does not match event.namespace"))
        out += _reported(event, "reportingController" if strict else "reportingComponent")
    return out + common.messages("namespace", namespace, names.is_dns1123_subdomain(namespace))


def _reported(event: common.Obj, controller_field: str) -> common.Causes:
    controller = event.get("reportingComponent") or ""
    out = [] if controller else [common.required(controller_field)]
    if controller:
        out += common.messages(controller_field, controller, names.is_qualified_name(controller))
    for field, limit in (
        ("reportingInstance", REPORTING_INSTANCE_MAX),
        ("action", ACTION_MAX),
        ("reason", REASON_MAX),
    ):
        value = event.get(field) or ""
        if not value:
            out.append(common.required(field))
        elif len(value) > limit:
            out.append(common.invalid(field, "", f"can have at most {limit} characters"))
    if len(event.get("message") or "") > NOTE_MAX:
        out.append(common.invalid("message", "", f"can have at most {NOTE_MAX} characters"))
    return out


def strict_rules(event: common.Obj) -> common.Causes:
    out = legacy_rules(event, strict=True)
    if not event.get("eventTime"):
        out.append(common.required("eventTime"))
    if event.get("type") not in EVENT_TYPES:
        out.append(common.invalid("type", "", f"has invalid value: {event.get('type') or ''}"))
    for field in ("firstTimestamp", "lastTimestamp", "count"):
        if event.get(field):
            out.append(common.invalid(field, "", "needs to be unset"))
    source = common.as_dict(event.get("source"))
    if source.get("component") or source.get("host"):
        out.append(common.invalid("source", "", "needs to be unset"))
    return out


def core_create(obj: common.Obj) -> common.Causes:
    return legacy_rules(obj, strict=False)


def events_create(obj: common.Obj) -> common.Causes:
    return strict_rules(conversion.convert(obj, conversion.EVENT_CORE))


def events_update(new: common.Obj, old: common.Obj) -> common.Causes:
    new_core = conversion.convert(new, conversion.EVENT_CORE)
    old_core = conversion.convert(old, conversion.EVENT_CORE)
    out: common.Causes = []
    for field in _STRICT_IMMUTABLE:
        new_value, old_value = new_core.get(field), old_core.get(field)
        if field in _TIMESTAMPS and _same_instant(new_value, old_value):
            continue
        out += common.immutable(new_value, old_value, field)
    return out


_TIMESTAMPS = ("eventTime", "firstTimestamp", "lastTimestamp")


def _same_instant(a: object, b: object) -> bool:
    """Clients re-serialise times ("...Z" comes back as "...+00:00", the 32.x Python client
    drops the microseconds' trailing zeros): Kubernetes compares the decoded times."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    try:
        return datetime.datetime.fromisoformat(a) == datetime.datetime.fromisoformat(b)
    except ValueError:
        return False


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.core.v1.Event": common.KindRules(create=core_create),
    "io.k8s.api.events.v1.Event": common.KindRules(create=events_create, update=events_update),
}
