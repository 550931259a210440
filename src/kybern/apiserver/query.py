"""Query parameters as Kubernetes parses them (ListOptions, DeleteOptions, dryRun, ...).

Booleans follow Kubernetes' query conversion; integers must be decimal. A malformed value is a
400 BadRequest naming the parameter, never a traceback.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from kybern.apiserver import errors


def parse_bool(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    """Kubernetes' query conversion: absent -> default; "0" or "false" (any case) -> False;
    any other value, including empty, -> True."""
    raw = query.get(name)
    if raw is None:
        return default
    return not (raw == "0" or raw.lower() == "false")


def parse_int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw, 10)
    except ValueError:
        raise errors.bad_request(f'invalid value for "{name}": "{raw}" is not an integer') from None


def parse_resource_version(raw: str | None, name: str = "resourceVersion") -> int | None:
    """'' or missing -> None (most recent); '0' -> 0 (any); else the revision."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw, 10)
    except ValueError:
        raise errors.bad_request(f'invalid {name}: "{raw}"') from None
    if value < 0:
        raise errors.bad_request(f'invalid {name}: "{raw}"')
    return value


def dry_run(query: Mapping[str, str]) -> bool:
    values = query.getall("dryRun", []) if hasattr(query, "getall") else [query.get("dryRun", "")]
    values = [v for v in values if v]
    for value in values:
        if value != "All":
            raise errors.bad_request(f'invalid dry run value "{value}": supported values: "All"')
    return bool(values)


@dataclass(frozen=True, slots=True)
class ListOptions:
    label_selector: str
    field_selector: str
    resource_version: int | None
    resource_version_match: str
    limit: int
    continue_token: str
    watch: bool
    allow_bookmarks: bool
    timeout_seconds: int | None
    send_initial_events: bool | None


def list_options(query: Mapping[str, str]) -> ListOptions:
    limit = parse_int(query, "limit") or 0
    if limit < 0:
        raise errors.bad_request(f'invalid limit: "{limit}"')
    match = query.get("resourceVersionMatch", "")
    if match not in ("", "NotOlderThan", "Exact"):
        raise errors.bad_request(
            f'resourceVersionMatch: Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"'
        )
    send_initial = query.get("sendInitialEvents")
    return ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        resource_version=parse_resource_version(query.get("resourceVersion")),
        resource_version_match=match,
        limit=limit,
        continue_token=query.get("continue", ""),
        watch=parse_bool(query, "watch"),
        allow_bookmarks=parse_bool(query, "allowWatchBookmarks"),
        timeout_seconds=parse_int(query, "timeoutSeconds"),
        send_initial_events=None
        if send_initial is None
        else parse_bool(query, "sendInitialEvents"),
    )


def encode_continue(revision: int, last_key: str) -> str:
    token = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key + "\x00"})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    """-> (revision, start_after key)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        revision = int(data["rv"])
        start = str(data["start"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.bad_request(f"invalid continue token: {token!r}") from None
    if data.get("v") != "meta.k8s.io/v1" or revision <= 0:
        raise errors.bad_request(f"invalid continue token: {token!r}")
    return revision, start.removesuffix("\x00")
