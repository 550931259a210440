"""Field selectors (``?fieldSelector=``), parsed and matched as Kubernetes does.

Syntax (``k8s.io/apimachinery/pkg/fields``): comma-joined terms ``field=value``,
``field==value`` or ``field!=value``; in values ``\\,`` ``\\=`` and ``\\\\`` escape
``,`` ``=`` and ``\\``. No whitespace trimming.

Each kind supports a fixed set of fields (Kubernetes' per-kind field label conversion
functions plus ``ToSelectableFields``). Kinds without their own set support only
``metadata.name`` and ``metadata.namespace``. An unsupported field raises
:class:`errors.BadRequest` with Kubernetes' wording, which differs per kind family:

- kinds with a conversion function: ``field label not supported: spec.foo``
- other kinds:
  ``"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"``

Matching compares strings exactly like Kubernetes' ``fields.Set``: absent fields read as
their Go zero value (``""``, ``"false"``, ``"0"``). Compile once per request with
:meth:`FieldSelector.compile` and call the returned predicate per object: it reads only
the few paths the selector names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kybern.api import errors

Obj = dict[str, Any]
Getter = Callable[[Obj], str]
Matcher = Callable[[Obj], bool]

# --- syntax -------------------------------------------------------------------------------


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(value: str) -> str:
    """Kubernetes' UnescapeValue, with its error messages."""
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise errors.BadRequest(
                    f"invalid field selector: invalid escape sequence: \\{char}"
                )
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            # Go formats the rune with %v: its code point.
            raise errors.BadRequest(
                f"invalid field selector: unescaped character in value: {ord(char)}"
            )
        else:
            out.append(char)
    if escaped:
        raise errors.BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    terms, start, escaped = [], 0, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for index in range(len(term)):
        for operator in ("!=", "==", "="):
            if term.startswith(operator, index):
                return term[:index], operator, term[index + len(operator) :]
    return None


@dataclass(frozen=True, slots=True)
class Term:
    field: str
    value: str
    negate: bool = False

    def __str__(self) -> str:
        return f"{self.field}{'!=' if self.negate else '='}{escape_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """An AND of terms. Empty matches everything."""

    terms: tuple[Term, ...] = ()

    def empty(self) -> bool:
        return not self.terms

    def requires_exact_match(self, field: str) -> str | None:
        """The value an ``=`` term requires for ``field`` (for index lookups), if any."""
        for term in self.terms:
            if term.field == field and not term.negate:
                return term.value
        return None

    def compile(self, group: str, kind: str) -> Matcher:
        """A predicate over objects of this kind; raises BadRequest on unsupported fields."""
        checks = tuple((getter(group, kind, t.field), t.value, t.negate) for t in self.terms)
        if not checks:
            return _match_all
        if len(checks) == 1:
            get, want, negate = checks[0]
            if negate:
                return lambda obj: get(obj) != want
            return lambda obj: get(obj) == want
        return lambda obj: all((get(obj) != want) == negate for get, want, negate in checks)

    def matches(self, group: str, kind: str, obj: Obj) -> bool:
        return _compiled(self, group, kind)(obj)

    def __str__(self) -> str:
        return ",".join(str(term) for term in self.terms)


def _match_all(obj: Obj) -> bool:
    return True


@lru_cache(maxsize=512)
def _compiled(selector: FieldSelector, group: str, kind: str) -> Matcher:
    return selector.compile(group, kind)


_EVERYTHING = FieldSelector()


def everything() -> FieldSelector:
    return _EVERYTHING


def parse(text: str) -> FieldSelector:
    """Parse a ``fieldSelector=`` string; raises :class:`errors.BadRequest` when invalid."""
    terms = []
    for part in sorted(_split_terms(text)) if text else []:
        if part == "":
            continue
        split = _split_term(part)
        if split is None:
            raise errors.BadRequest(f"invalid selector: '{text}'; can't understand '{part}'")
        field, operator, raw = split
        terms.append(Term(field, unescape_value(raw), negate=operator == "!="))
    return FieldSelector(tuple(terms))


# --- per-kind fields ------------------------------------------------------------------------


def _path(*keys: str, zero: str = "") -> Getter:
    def get(obj: Obj) -> str:
        current: Any = obj
        for key in keys:
            if not isinstance(current, dict):
                return zero
            current = current.get(key)
        return _as_field_string(current, zero)

    return get


def _as_field_string(value: Any, zero: str) -> str:
    if value is None:
        return zero
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _first_pod_ip(obj: Obj) -> str:
    status = obj.get("status")
    ips = status.get("podIPs") if isinstance(status, dict) else None
    if isinstance(ips, list) and ips and isinstance(ips[0], dict):
        return _as_field_string(ips[0].get("ip"), "")
    return _path("status", "podIP")(obj)


def _event_source(obj: Obj) -> str:
    source = _path("source", "component")(obj) or _path("deprecatedSource", "component")(obj)
    return source or _event_reporting(obj)


def _event_reporting(obj: Obj) -> str:
    return _path("reportingComponent")(obj) or _path("reportingController")(obj)


def _either(first: Getter, second: Getter) -> Getter:
    return lambda obj: first(obj) or second(obj)


def _constant(value: str) -> Getter:
    return lambda obj: value


_NAME = _path("metadata", "name")
_NAMESPACE = _path("metadata", "namespace")
_META: dict[str, Getter] = {"metadata.name": _NAME, "metadata.namespace": _NAMESPACE}

_EVENT_OBJECT = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
# Core Events and events.k8s.io Events share storage in Kubernetes; read either shape.
_CORE_EVENT: dict[str, Getter] = {
    **_META,
    **{
        f"involvedObject.{f}": _either(_path("involvedObject", f), _path("regarding", f))
        for f in _EVENT_OBJECT
    },
    "reason": _path("reason"),
    "reportingComponent": _event_reporting,
    "source": _event_source,
    "type": _path("type"),
}


@dataclass(frozen=True, slots=True)
class KindFields:
    """The selectable fields of one kind and how an unsupported one is reported."""

    getters: Mapping[str, Getter]
    aliases: Mapping[str, str] | None = None  # client label -> field in getters
    reject: Callable[[str], str] = lambda label: f"field label not supported: {label}"


def _default_reject(label: str) -> str:
    return f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'


_DEFAULT = KindFields(_META, reject=_default_reject)

_KINDS: dict[tuple[str, str], KindFields] = {
    ("", "Pod"): KindFields(
        {
            **_META,
            "spec.nodeName": _path("spec", "nodeName"),
            "spec.restartPolicy": _path("spec", "restartPolicy"),
            "spec.schedulerName": _path("spec", "schedulerName"),
            "spec.serviceAccountName": _path("spec", "serviceAccountName"),
            "spec.hostNetwork": _path("spec", "hostNetwork", zero="false"),
            "status.phase": _path("status", "phase"),
            "status.podIP": _first_pod_ip,
            # Accepted but, as in Kubernetes, not in the pod's field set: reads as "".
            "status.podIPs": _constant(""),
            "status.nominatedNodeName": _path("status", "nominatedNodeName"),
        },
        aliases={"spec.host": "spec.nodeName"},
    ),
    ("", "Node"): KindFields(
        {"metadata.name": _NAME, "spec.unschedulable": _path("spec", "unschedulable", zero="false")}
    ),
    ("", "Namespace"): KindFields(
        {"metadata.name": _NAME, "status.phase": _path("status", "phase")}
    ),
    ("", "ReplicationController"): KindFields(
        {**_META, "status.replicas": _path("status", "replicas", zero="0")}
    ),
    ("", "Event"): KindFields(_CORE_EVENT),
    ("", "Secret"): KindFields({**_META, "type": _path("type")}),
    ("", "Service"): KindFields(
        {**_META, "spec.clusterIP": _path("spec", "clusterIP"), "spec.type": _path("spec", "type")}
    ),
    ("apps", "ReplicaSet"): KindFields(
        {**_META, "status.replicas": _path("status", "replicas", zero="0")}
    ),
    ("batch", "Job"): KindFields(
        {**_META, "status.successful": _path("status", "succeeded", zero="0")},
        reject=lambda label: f'field label "{label}" not supported for batchv1.Job',
    ),
    ("certificates.k8s.io", "CertificateSigningRequest"): KindFields(
        {"metadata.name": _NAME, "spec.signerName": _path("spec", "signerName")}
    ),
    ("events.k8s.io", "Event"): KindFields(
        {
            **_META,
            **{f"regarding.{f}": _CORE_EVENT[f"involvedObject.{f}"] for f in _EVENT_OBJECT},
            "reason": _path("reason"),
            "reportingController": _event_reporting,
            "type": _path("type"),
        }
    ),
}


def register_selectable_fields(group: str, kind: str, paths: Mapping[str, str]) -> None:
    """Add selectable fields to a kind, e.g. a CRD's ``selectableFields``.

    ``paths`` maps field names to JSON paths: ``{"spec.color": ".spec.color"}``.
    """
    base = _KINDS.get((group, kind), _DEFAULT)
    extra = {name: _path(*json_path.strip(".").split(".")) for name, json_path in paths.items()}
    _KINDS[(group, kind)] = KindFields({**base.getters, **extra}, base.aliases, base.reject)
    _compiled.cache_clear()


def supported_fields(group: str, kind: str) -> tuple[str, ...]:
    """The field names a selector may use for this kind (aliases excluded)."""
    return tuple(_KINDS.get((group, kind), _DEFAULT).getters)


def getter(group: str, kind: str, field: str) -> Getter:
    """How to read ``field`` from an object of this kind; BadRequest if unsupported."""
    spec = _KINDS.get((group, kind), _DEFAULT)
    name = spec.aliases.get(field, field) if spec.aliases else field
    found = spec.getters.get(name)
    if found is None:
        raise errors.BadRequest(spec.reject(field))
    return found


def field_set(group: str, kind: str, obj: Obj) -> dict[str, str]:
    """All selectable fields of an object (Kubernetes' GetAttrs field set)."""
    spec = _KINDS.get((group, kind), _DEFAULT)
    return {name: get(obj) for name, get in spec.getters.items()}
