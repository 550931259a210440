"""Events, core/v1 and events.k8s.io/v1 (the latter printed after conversion to core/v1):
LAST SEEN TYPE REASON OBJECT MESSAGE, plus SUBOBJECT SOURCE FIRST SEEN COUNT NAME wide."""

from __future__ import annotations

from kybern.api import conversion
from kybern.api.printers import base
from kybern.api.printers.base import Cell, Column, Obj, Printer

_EVENT = "io.k8s.api.core.v1.Event"


def _row(obj: Obj, now: float) -> list[Cell]:
    if obj.get("apiVersion") == conversion.EVENT_EVENTS:
        obj = conversion.convert(obj, conversion.EVENT_CORE)
    first = base.get(obj, "firstTimestamp")
    first_seen = base.since(first if first else obj.get("eventTime"), now)
    last = base.get(obj, "lastTimestamp")
    last_seen = base.since(last, now) if last else first_seen
    count = base.as_int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last_seen = base.since(series.get("lastObservedTime"), now)
        count = base.as_int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = base.as_map(obj.get("involvedObject"))
    kind = base.text(involved.get("kind")).lower()
    involved_name = base.text(involved.get("name"))
    return [
        last_seen,
        base.text(obj.get("type")),
        base.text(obj.get("reason")),
        f"{kind}/{involved_name}" if involved_name else kind,
        base.text(involved.get("fieldPath")),
        _source(obj),
        base.text(obj.get("message")).strip(),
        first_seen,
        count,
        base.name(obj),
    ]


def _source(obj: Obj) -> str:
    component = base.text(base.get(obj, "source", "component")) or base.text(
        obj.get("reportingComponent")
    )
    host = base.text(base.get(obj, "source", "host")) or base.text(obj.get("reportingInstance"))
    return f"{component}, {host}" if host else component


EVENT = Printer(
    (
        Column("Last Seen", doc=(_EVENT, "lastTimestamp")),
        Column("Type", doc=(_EVENT, "type")),
        Column("Reason", doc=(_EVENT, "reason")),
        Column("Object", doc=(_EVENT, "involvedObject")),
        Column("Subobject", doc=("io.k8s.api.core.v1.ObjectReference", "fieldPath"), priority=1),
        Column("Source", doc=(_EVENT, "source"), priority=1),
        Column("Message", doc=(_EVENT, "message")),
        Column("First Seen", doc=(_EVENT, "firstTimestamp"), priority=1),
        Column("Count", doc=(_EVENT, "count"), priority=1),
        Column("Name", format="name", doc=(base.META, "name"), priority=1),
    ),
    _row,
)
