"""A small 5-field cron schedule (the subset of robfig/cron v3's ParseStandard CronJobs use).

``parse("*/15 9-17 * * mon-fri")`` -> a ``Schedule`` whose ``next(t)`` is the first matching
minute strictly after ``t`` and ``prev(t)`` the last matching minute at or before ``t``.
Fields: minute, hour, day of month, month (1-12 or jan-dec), day of week (0-6 or sun-sat);
each a list of ``*``/``?``, ``N``, ``N-M``, optionally ``/step`` (``N/step`` runs N to the
field's end). ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily``
(``@midnight``), ``@hourly``. As in cron and robfig, when both day fields are restricted a
day matches either one; when one is ``*`` both must match. Times are evaluated as wall-clock
times in the schedule's zone (``zoneinfo``, UTC by default); a wall time skipped by a DST
jump does not run, a repeated one runs once.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
)
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MINUTE = datetime.timedelta(minutes=1)
_SEARCH_YEARS = 5  # give up beyond this (e.g. "0 0 30 2 *" never matches)


class CronError(ValueError):
    """An unparsable schedule."""


@dataclass(frozen=True, slots=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool
    zone: datetime.tzinfo = datetime.UTC

    def day_matches(self, day: datetime.datetime) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def _matches(self, t: datetime.datetime) -> bool:
        return (
            t.month in self.months
            and self.day_matches(t)
            and t.hour in self.hours
            and t.minute in self.minutes
        )

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first scheduled time strictly after ``after`` (an aware datetime)."""
        t = _local(after, self.zone).replace(second=0, microsecond=0) + _MINUTE
        limit = t.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                t = _first_of_next_month(t)
            elif not self.day_matches(t):
                t = t.replace(hour=0, minute=0) + datetime.timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + datetime.timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += _MINUTE
            else:
                found = self._aware(t)
                if found is not None and found > after:
                    return found
                t += _MINUTE
        return None

    def prev(self, at: datetime.datetime) -> datetime.datetime | None:
        """The last scheduled time at or before ``at`` (an aware datetime)."""
        t = _local(at, self.zone).replace(second=0, microsecond=0)
        limit = t.year - _SEARCH_YEARS
        while t.year >= limit:
            if t.month not in self.months:
                t = t.replace(day=1, hour=0, minute=0) - _MINUTE
            elif not self.day_matches(t):
                t = t.replace(hour=0, minute=0) - _MINUTE
            elif t.hour not in self.hours:
                t = t.replace(minute=0) - _MINUTE
            elif t.minute not in self.minutes:
                t -= _MINUTE
            else:
                found = self._aware(t)
                if found is not None and found <= at:
                    return found
                t -= _MINUTE
        return None

    def _aware(self, wall: datetime.datetime) -> datetime.datetime | None:
        """The instant of a local wall time; None when DST skips it."""
        aware = wall.replace(tzinfo=self.zone, fold=0)
        back = aware.astimezone(datetime.UTC).astimezone(self.zone)
        if back.replace(tzinfo=None) != wall:
            return None
        return aware


def _local(t: datetime.datetime, zone: datetime.tzinfo) -> datetime.datetime:
    if t.tzinfo is None:
        raise ValueError("cron times must be timezone-aware")
    return t.astimezone(zone).replace(tzinfo=None)


def _first_of_next_month(t: datetime.datetime) -> datetime.datetime:
    if t.month == 12:
        return t.replace(year=t.year + 1, month=1, day=1, hour=0, minute=0)
    return t.replace(month=t.month + 1, day=1, hour=0, minute=0)


def zone_of(name: str | None) -> datetime.tzinfo:
    """A ``timeZone`` (IANA name) as a tzinfo; UTC when None or empty."""
    if not name:
        return datetime.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name}") from exc


def parse(spec: str, time_zone: str | None = None) -> Schedule:
    """Parse a schedule; ``time_zone`` (or a ``TZ=``/``CRON_TZ=`` prefix) sets its zone."""
    text = spec.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, text = text.partition(" ")
        time_zone = prefix.split("=", 1)[1]
        text = text.strip()
    if not text:
        raise CronError("empty spec string")
    if text.startswith("@"):
        expanded = DESCRIPTORS.get(text.lower())
        if expanded is None:
            raise CronError(f"unrecognized descriptor: {text}")
        text = expanded
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    sets = [_field(f, *bounds) for f, bounds in zip(fields, _BOUNDS, strict=True)]
    return Schedule(
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=sets[4],
        days_star=fields[2].startswith(("*", "?")),
        weekdays_star=fields[4].startswith(("*", "?")),
        zone=zone_of(time_zone),
    )


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        out |= _range(part, low, high, names)
    return frozenset(out)


def _range(part: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    expr, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"invalid step in {part!r}")
        step = int(step_text)
    if expr in ("*", "?"):
        start, end = low, high
    else:
        first, dash, last = expr.partition("-")
        start = _number(first, names)
        end = _number(last, names) if dash else (high if slash else start)
    if start < low or end > high:
        raise CronError(f"{part!r} is out of range [{low}, {high}]")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
    return set(range(start, end + 1, step))


def _number(text: str, names: dict[str, int]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}")
    return int(text)
