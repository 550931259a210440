"""A fixed clock and object builders shared by the printer tests (no tests of its own)."""

from __future__ import annotations

import datetime
from typing import Any

from kybern.api import printers

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC).timestamp()


def ago(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(NOW - seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def obj(api_version: str, kind: str, name: str, age: float = 300, **fields: Any) -> dict[str, Any]:
    meta = {"name": name, "creationTimestamp": ago(age), **fields.pop("metadata", {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}


def cells(group: str, kind: str, item: dict[str, Any]) -> list[Any]:
    return printers.printer_for(group, kind).row(item, NOW)


def headers(group: str, kind: str, *, wide: bool = False) -> list[str]:
    columns = printers.printer_for(group, kind).columns
    return [c.name.upper() for c in columns if wide or c.priority == 0]
