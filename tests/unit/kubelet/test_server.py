"""The kubelet server's query parsing: Go booleans, RFC 3339 times, log options."""

from __future__ import annotations

import pytest

from kybern.kubelet import server

NOW = 1_700_000_000 * 10**9


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", True), ("1", True), ("True", True), ("0", False), ("false", False)],
)
def test_go_bool(value: str, expected: bool) -> None:
    assert server.go_bool({"follow": value}, "follow") is expected
    assert server.go_bool({}, "follow") is False


def test_go_bool_rejects_other_words() -> None:
    with pytest.raises(server.HTTPError) as caught:
        server.go_bool({"follow": "yes"}, "follow")
    assert caught.value.code == 400


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("2023-11-14T22:13:20Z", NOW),
        ("2023-11-14T22:13:20.5Z", NOW + 500_000_000),
        ("2023-11-15T00:13:20.000000001+02:00", NOW + 1),
        ("2023-11-14T21:13:20-01:00", NOW),
    ],
)
def test_parse_rfc3339(text: str, nanos: int) -> None:
    assert server.parse_rfc3339(text) == nanos


def test_log_options() -> None:
    options = server.log_options(
        {"follow": "true", "tailLines": "5", "sinceSeconds": "10", "limitBytes": "7"}, NOW
    )
    assert options.follow
    assert (options.tail_lines, options.limit_bytes) == (5, 7)
    assert options.since_ns == NOW - 10 * 10**9
    assert server.log_options({"tailLines": "-1"}, NOW).tail_lines is None


@pytest.mark.parametrize(
    "query",
    [{"sinceSeconds": "0"}, {"limitBytes": "0"}, {"sinceTime": "yesterday"}, {"tailLines": "x"}],
)
def test_bad_log_options_are_400(query: dict[str, str]) -> None:
    with pytest.raises(server.HTTPError) as caught:
        server.log_options(query, NOW)
    assert caught.value.code == 400
