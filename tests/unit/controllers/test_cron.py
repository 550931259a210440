"""The cron schedule parser and its next/prev times."""

from __future__ import annotations

import datetime

import pytest

from kybern.controllers import cron

pytestmark = pytest.mark.timeout(10)
UTC = datetime.UTC


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


class TestParse:
    def test_star_step_range_list_and_names(self) -> None:
        s = cron.parse("*/15 9-17/4 1,15 jan-mar mon-fri")
        assert s.minutes == {0, 15, 30, 45}
        assert s.hours == {9, 13, 17}
        assert s.days == {1, 15}
        assert s.months == {1, 2, 3}
        assert s.weekdays == {1, 2, 3, 4, 5}
        assert not s.days_star
        assert not s.weekdays_star

    def test_number_slash_step_runs_to_the_end(self) -> None:
        assert cron.parse("50/5 * * * *").minutes == {50, 55}

    @pytest.mark.parametrize(
        ("descriptor", "expanded"),
        [
            ("@hourly", "0 * * * *"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@weekly", "0 0 * * 0"),
            ("@monthly", "0 0 1 * *"),
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
        ],
    )
    def test_descriptors(self, descriptor: str, expanded: str) -> None:
        assert cron.parse(descriptor) == cron.parse(expanded)

    @pytest.mark.parametrize(
        "spec",
        [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "5-1 * * * *",
            "*/0 * * * *",
            "x * * * *",
            "@every 5m",
            "@fortnightly",
        ],
    )
    def test_invalid(self, spec: str) -> None:
        with pytest.raises(cron.CronError):
            cron.parse(spec)

    def test_unknown_time_zone(self) -> None:
        with pytest.raises(cron.CronError, match="unknown time zone"):
            cron.parse("* * * * *", "Mars/Olympus")


class TestNext:
    @pytest.mark.parametrize(
        ("spec", "after", "expected"),
        [
            ("* * * * *", "2026-01-01T00:00:00", "2026-01-01T00:01:00"),
            ("* * * * *", "2026-01-01T00:00:30", "2026-01-01T00:01:00"),
            ("*/15 * * * *", "2026-01-01T00:15:00", "2026-01-01T00:30:00"),
            ("@hourly", "2026-01-01T23:30:00", "2026-01-02T00:00:00"),
            ("@monthly", "2026-12-15T00:00:00", "2027-01-01T00:00:00"),
            ("0 0 29 2 *", "2026-01-01T00:00:00", "2028-02-29T00:00:00"),
            # 2026-01-01 is a Thursday: the next Monday is the 5th
            ("30 8 * * mon", "2026-01-01T00:00:00", "2026-01-05T08:30:00"),
            # both day fields restricted: either matches (the 10th, or Monday the 5th)
            ("0 0 10 * mon", "2026-01-01T00:00:00", "2026-01-05T00:00:00"),
            ("0 0 2 * mon", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),
            # day of month restricted, weekday * : both must match (the 10th)
            ("0 0 10 * *", "2026-01-01T00:00:00", "2026-01-10T00:00:00"),
        ],
    )
    def test_next(self, spec: str, after: str, expected: str) -> None:
        assert cron.parse(spec).next(at(after)) == at(expected)

    def test_never_matching_gives_none(self) -> None:
        assert cron.parse("0 0 30 2 *").next(at("2026-01-01T00:00:00")) is None

    def test_time_zone(self) -> None:
        s = cron.parse("0 9 * * *", "America/New_York")
        got = s.next(at("2026-01-01T00:00:00"))
        assert got is not None
        assert got.astimezone(UTC) == at("2026-01-01T14:00:00")  # EST is UTC-5

    def test_tz_prefix(self) -> None:
        s = cron.parse("TZ=Europe/Berlin 0 9 * * *")
        got = s.next(at("2026-07-01T00:00:00"))
        assert got is not None
        assert got.astimezone(UTC) == at("2026-07-01T07:00:00")  # CEST is UTC+2

    def test_a_wall_time_skipped_by_dst_does_not_run(self) -> None:
        # Europe/Berlin jumps 02:00 -> 03:00 on 2026-03-29
        s = cron.parse("30 2 * * *", "Europe/Berlin")
        got = s.next(at("2026-03-28T12:00:00"))
        assert got is not None
        assert got.astimezone(UTC) == at("2026-03-30T00:30:00")


class TestPrev:
    @pytest.mark.parametrize(
        ("spec", "now", "expected"),
        [
            ("* * * * *", "2026-01-01T00:00:30", "2026-01-01T00:00:00"),
            ("*/15 * * * *", "2026-01-01T00:30:00", "2026-01-01T00:30:00"),
            ("@hourly", "2026-01-02T00:59:00", "2026-01-02T00:00:00"),
            ("@monthly", "2026-01-01T00:00:00", "2026-01-01T00:00:00"),
            ("@monthly", "2026-03-15T00:00:00", "2026-03-01T00:00:00"),
            ("@yearly", "2026-03-15T00:00:00", "2026-01-01T00:00:00"),
            ("30 8 * * mon", "2026-01-11T00:00:00", "2026-01-05T08:30:00"),
        ],
    )
    def test_prev(self, spec: str, now: str, expected: str) -> None:
        assert cron.parse(spec).prev(at(now)) == at(expected)

    def test_prev_and_next_agree(self) -> None:
        s = cron.parse("7,37 */3 * * *")
        t = at("2026-05-05T05:05:00")
        for _ in range(20):
            nxt = s.next(t)
            assert nxt is not None
            assert s.prev(nxt) == nxt
            assert s.prev(nxt - datetime.timedelta(seconds=1)) == (s.prev(t) if t != nxt else t)
            t = nxt
