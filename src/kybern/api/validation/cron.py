"""A 5-field cron expression check with the messages of robfig/cron v3's ParseStandard
(what Kubernetes validates CronJob schedules with): ``*/5 * * * *``, ranges, lists, steps,
month and weekday names, ``?``, and the ``@hourly``-style descriptors plus ``@every <dur>``.
"""

from __future__ import annotations

import re

# (minimum, maximum, names) per field: minute, hour, day of month, month, day of week.
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
)
DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_DURATION = re.compile(r"([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+")


def parse_error(spec: str) -> str | None:
    """None when ``spec`` is a valid schedule, else robfig/cron's error text."""
    if not spec:
        return "empty spec string"
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        spec = spec.split(" ", 1)[1] if " " in spec else ""
        if not spec:
            return "empty spec string"
    if spec.startswith("@"):
        return _descriptor_error(spec)
    fields = spec.split()
    if len(fields) != 5:
        shown = "[" + " ".join(fields) + "]"
        return f"expected exactly 5 fields, found {len(fields)}: {shown}"
    for text, (low, high, names) in zip(fields, _FIELDS, strict=True):
        for part in text.split(","):
            error = _range_error(part, low, high, names)
            if error:
                return error
    return None


def _descriptor_error(spec: str) -> str | None:
    if spec in DESCRIPTORS:
        return None
    if spec.startswith("@every "):
        duration = spec[len("@every ") :]
        if duration and duration != "0" and _DURATION.fullmatch(duration):
            return None
        return f'failed to parse duration {spec}: time: invalid duration "{duration}"'
    return f"unrecognized descriptor: {spec}"


def _range_error(expr: str, low: int, high: int, names: dict[str, int]) -> str | None:
    range_and_step = expr.split("/")
    if len(range_and_step) > 2:
        return f"too many slashes: {expr}"
    bounds = range_and_step[0].split("-")
    if len(bounds) > 2:
        return f"too many hyphens: {expr}"
    values: list[int] = []
    if bounds[0] not in ("*", "?"):
        for bound in bounds:
            value, error = _number(bound, names)
            if error:
                return error
            values.append(value)
    if len(range_and_step) == 2:
        step, error = _number(range_and_step[1], {})
        if error:
            return error
        if step <= 0:
            return f"step of range should be a positive number: {expr}"
    if not values:
        return None
    start, end = values[0], values[-1]
    if start < low:
        return f"beginning of range ({start}) below minimum ({low}): {expr}"
    if end > high:
        return f"end of range ({end}) above maximum ({high}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None


def _number(text: str, names: dict[str, int]) -> tuple[int, str | None]:
    if text.lower() in names:
        return names[text.lower()], None
    if not text.isdigit():
        if text.startswith("-") and text[1:].isdigit():
            return 0, f"negative number ({text}) not allowed: {text}"
        detail = f'strconv.Atoi: parsing "{text}": invalid syntax'
        return 0, f"failed to parse int from {text}: {detail}"
    return int(text), None
