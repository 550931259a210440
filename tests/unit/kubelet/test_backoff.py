"""Restart backoff: immediate first restart, then 10 s doubling to 5 min, reset after 10 min."""

from __future__ import annotations

from kybern.kubelet import backoff


def test_doubles_to_the_cap() -> None:
    b = backoff.Backoff()
    assert b.remaining("k", 100.0, 100.0) == 0.0  # first failure: restart at once
    b.next("k", 100.0)
    waits = []
    t = 100.0
    for _ in range(8):
        waits.append(b.duration("k"))
        assert b.remaining("k", t, t) == b.duration("k")
        assert b.remaining("k", t, t + b.duration("k")) == 0.0
        t += b.duration("k")
        b.next("k", t)
    assert waits == [10, 20, 40, 80, 160, 300, 300, 300]


def test_resets_after_ten_quiet_minutes() -> None:
    b = backoff.Backoff()
    b.next("k", 0.0)
    b.next("k", 10.0)
    assert b.duration("k") == 20
    assert b.remaining("k", 700.0, 700.0) == 0.0  # ran longer than 2 x 300 s
    b.next("k", 700.0)
    assert b.duration("k") == 10


def test_forget_by_pod_prefix() -> None:
    b = backoff.Backoff()
    b.next("uid1/a", 0.0)
    b.next("uid2/a", 0.0)
    b.forget("uid1/")
    assert b.duration("uid1/a") == 0
    assert b.duration("uid2/a") == 10


def test_go_duration() -> None:
    assert [backoff.go_duration(s) for s in (10, 80, 160, 300, 3700)] == [
        "10s",
        "1m20s",
        "2m40s",
        "5m0s",
        "1h1m40s",
    ]


def test_reset_counts_from_the_last_restart() -> None:
    b = backoff.Backoff()
    b.next("k", 0.0, now=0.0)
    b.next("k", 5.0, now=15.0)  # restarted at 15 after a finish at 5
    assert b.duration("k") == 20
    assert b.remaining("k", 610.0, 610.0) > 0  # ran 595 s: still backing off
    assert b.remaining("k", 616.0, 616.0) == 0.0  # ran over 600 s: starts over
