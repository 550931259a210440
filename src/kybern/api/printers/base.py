"""The building blocks every printer shares: column definitions, printers, and the small
formatting helpers of Kubernetes' ``pkg/printers/internalversion`` (ages, label sets,
selectors, container lists).

A printer turns one object (a plain dict in any served version) into the cells of one table
row, for a given "now" (seconds since the epoch), so it is a pure function and testable with
a fixed clock. Cells are ``str``, ``int`` or ``bool``, as the Go printers emit them. Like the
API server (which always generates tables with ``Wide: true``), a printer always returns the
cells of every column, priority-1 ones included; kubectl hides those without ``-o wide``.

Column descriptions come from the v1.32 field documentation (the OpenAPI schemas), the same
text Kubernetes takes from its types' ``SwaggerDoc()``.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kybern.api import errors, labels, quantity, schema
from kybern.api.printers import duration

Obj = dict[str, Any]
Cell = str | int | bool
RowFunc = Callable[[Obj, float], list[Cell]]

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
CONTAINERS_DOC = "Names of each container in the template."
IMAGES_DOC = "Images referenced by each container in the template."


@dataclass(frozen=True, slots=True)
class Column:
    """One TableColumnDefinition. ``doc`` is either literal text or a (definition, field path)
    pair whose schema description is used."""

    name: str
    type: str = "string"
    format: str = ""
    doc: str | tuple[str, str] = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description(),
            "priority": self.priority,
        }

    def description(self) -> str:
        if isinstance(self.doc, str):
            return self.doc
        return field_doc(*self.doc)


@dataclass(frozen=True, slots=True)
class Printer:
    """Column definitions, the row function, and (pods only) the row conditions."""

    columns: tuple[Column, ...]
    row: RowFunc
    conditions: Callable[[Obj], list[dict[str, str]]] | None = None

    def column_definitions(self) -> list[dict[str, Any]]:
        return _definitions(self.columns)


@functools.cache
def _definitions_cached(columns: tuple[Column, ...]) -> tuple[dict[str, Any], ...]:
    return tuple(column.definition() for column in columns)


def _definitions(columns: tuple[Column, ...]) -> list[dict[str, Any]]:
    return [dict(d) for d in _definitions_cached(columns)]


@functools.cache
def field_doc(definition: str, path: str) -> str:
    """The schema description of ``path`` in ``definition`` ('' when unknown)."""
    try:
        found = schema.field_schema(definition, path)
    except KeyError:
        return ""
    return str(found.get("description", "")) if found else ""


# -- columns used by almost every printer ---------------------------------------------------

NAME = Column("Name", format="name", doc=(META, "name"))
AGE = Column("Age", doc=(META, "creationTimestamp"))
CONTAINERS = Column("Containers", doc=CONTAINERS_DOC, priority=1)
IMAGES = Column("Images", doc=IMAGES_DOC, priority=1)


# -- reading objects ------------------------------------------------------------------------


def get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, None as soon as something is missing or not a map."""
    current: Any = obj
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def name(obj: Obj) -> str:
    return text(get(obj, "metadata", "name"))


# -- time -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def parse_time(value: str) -> float | None:
    """An RFC 3339 timestamp (Time or MicroTime) as epoch seconds; None when unparseable."""
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def timestamp(value: Any) -> float | None:
    return parse_time(value) if isinstance(value, str) and value else None


def since(value: Any, now: float) -> str:
    """translateTimestampSince: the age of a timestamp, ``<unknown>`` when it is unset."""
    moment = timestamp(value)
    return "<unknown>" if moment is None else duration.human_duration(now - moment)


def since_epoch(moment: float, now: float) -> str:
    return duration.human_duration(now - moment)


def age(obj: Obj, now: float) -> str:
    return since(get(obj, "metadata", "creationTimestamp"), now)


# -- formatting -----------------------------------------------------------------------------


def format_labels(value: Any) -> str:
    """labels.FormatLabels: ``k=v,k2=v2`` sorted by key, ``<none>`` when empty."""
    pairs = as_map(value)
    if not pairs:
        return "<none>"
    return ",".join(f"{k}={pairs[k]}" for k in sorted(pairs))


def selector_string(value: Any) -> str:
    """LabelSelectorAsSelector(...).String(): '' for nil and empty selectors."""
    if value is not None and not isinstance(value, Mapping):
        raise errors.BadRequest("invalid label selector")
    return str(labels.from_label_selector(value))


def format_selector(value: Any) -> str:
    """metav1.FormatLabelSelector: ``<none>`` when it selects everything or nothing."""
    try:
        shown = selector_string(value)
    except errors.BadRequest:
        return "<error>"
    return shown or "<none>"


def containers_cells(containers: Any) -> tuple[str, str]:
    """layoutContainerCells: comma-joined container names and images."""
    items = [c for c in as_list(containers) if isinstance(c, Mapping)]
    return (
        ",".join(text(c.get("name")) for c in items),
        ",".join(text(c.get("image")) for c in items),
    )


def quantity_string(value: Any) -> str:
    """Quantity.String(): the canonical form; ``0`` for an unset quantity."""
    if value is None or value == "":
        return "0"
    try:
        return quantity.canonical(value)
    except quantity.QuantityError:
        return str(value)


def with_more(shown: Iterable[str], more: bool, count: int, limit: int) -> str:
    """listWithMoreString: ``a,b,c + 2 more...``, ``<unset>`` when empty."""
    joined = ",".join(shown)
    if more:
        return f"{joined} + {count - limit} more..."
    return joined or "<unset>"


def bool_pointer(value: Any) -> str:
    """printBoolPtr: ``True``/``False``, ``<unset>`` for nil."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return "<unset>"


def int_or_string(value: Any) -> str:
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
