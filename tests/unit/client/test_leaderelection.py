"""Leader election against an in-memory Lease client, with a fake clock."""

from __future__ import annotations

import asyncio
import copy
import datetime
import re
from typing import Any

import pytest

from kybern.client import clock, errors, leaderelection

pytestmark = pytest.mark.timeout(10)
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class FakeLeases:
    """get/create/update of Leases with resourceVersions and conflicts, like the server."""

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.rv = 0
        self.down = False
        self.writes = 0

    def _status(self, code: int, reason: str) -> errors.ApiError:
        return errors.from_status(code, {"kind": "Status", "code": code, "reason": reason})

    def _check(self) -> None:
        if self.down:
            raise errors.TransportError("connection refused")

    async def get(
        self, api_version: str, kind: str, name: str, *, namespace: str = ""
    ) -> dict[str, Any]:
        self._check()
        lease = self.leases.get((namespace, name))
        if lease is None:
            raise self._status(404, "NotFound")
        return copy.deepcopy(lease)

    async def create(
        self, obj: dict[str, Any], *, namespace: str = "", dry_run: bool = False
    ) -> dict[str, Any]:
        self._check()
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in self.leases:
            raise self._status(409, "AlreadyExists")
        return self._store(key, obj)

    async def update(
        self, obj: dict[str, Any], *, subresource: str = "", dry_run: bool = False
    ) -> dict[str, Any]:
        self._check()
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        current = self.leases[key]
        if obj["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise self._status(409, "Conflict")
        return self._store(key, obj)

    def _store(self, key: tuple[str, str], obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        self.writes += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.rv)
        self.leases[key] = stored
        return copy.deepcopy(stored)

    def spec(self) -> dict[str, Any]:
        return dict(self.leases[("kube-system", "lock")]["spec"])


class Candidate:
    def __init__(
        self, leases: FakeLeases, fake: clock.FakeClock, identity: str, **config: Any
    ) -> None:
        self.events: list[str] = []
        self.elector = leaderelection.LeaderElector(
            leases,
            leaderelection.Config(name="lock", identity=identity, **config),
            on_started_leading=self._lead,
            on_stopped_leading=lambda: self.events.append("stopped"),
            on_new_leader=lambda who: self.events.append(f"leader:{who}"),
            clock=fake,
        )
        self.task = asyncio.ensure_future(self.elector.run())

    async def _lead(self) -> None:
        self.events.append("started")
        await asyncio.Event().wait()  # lead until cancelled

    async def cancel(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


async def test_first_candidate_creates_the_lease_and_leads() -> None:
    leases, fake = FakeLeases(), clock.FakeClock()
    a = Candidate(leases, fake, "a")
    await fake.run_for(0.1)
    assert a.elector.is_leader
    assert a.events == ["leader:a", "started"]
    spec = leases.spec()
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.match(spec["acquireTime"])
    assert spec["acquireTime"] == spec["renewTime"]
    await a.cancel()


async def test_the_leader_renews_every_retry_period_keeping_acquire_time() -> None:
    leases, fake = FakeLeases(), clock.FakeClock()
    a = Candidate(leases, fake, "a")
    await fake.run_for(0.1)
    acquired = leases.spec()["acquireTime"]
    writes = leases.writes
    await fake.run_for(10)
    spec = leases.spec()
    assert spec["acquireTime"] == acquired
    assert spec["renewTime"] > acquired
    assert leases.writes - writes == 5  # every 2 s
    await a.cancel()


async def test_a_crashed_leader_is_replaced_after_the_lease_duration() -> None:
    leases, fake = FakeLeases(), clock.FakeClock()
    a = Candidate(leases, fake, "a", release_on_cancel=False)
    await fake.run_for(0.1)
    b = Candidate(leases, fake, "b")
    await fake.run_for(30)
    assert not b.elector.is_leader  # a keeps renewing
    await a.cancel()  # a dies without releasing
    last_renew = leases.spec()["renewTime"]
    await fake.run_for(10)
    assert not b.elector.is_leader  # at least 15 s after the last renewal b saw
    await fake.run_for(20)
    assert b.elector.is_leader
    spec = leases.spec()
    waited = datetime.datetime.fromisoformat(spec["acquireTime"]) - datetime.datetime.fromisoformat(
        last_renew
    )
    assert (
        15 <= waited.total_seconds() <= 15 + 2 * 4.4
    )  # seen up to one retry late, retried up to one late
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    assert b.events == ["leader:a", "leader:b", "started"]
    await b.cancel()


async def test_a_released_lease_is_taken_over_at_the_next_retry() -> None:
    leases, fake = FakeLeases(), clock.FakeClock()
    a = Candidate(leases, fake, "a")
    await fake.run_for(0.1)
    b = Candidate(leases, fake, "b")
    await fake.run_for(5)
    await a.cancel()
    assert a.events[-1] == "stopped"
    assert leases.spec()["holderIdentity"] == ""
    assert leases.spec()["leaseDurationSeconds"] == 1
    await fake.run_for(2 * 2.2)
    assert b.elector.is_leader
    assert leases.spec()["leaseTransitions"] == 0  # taken from nobody: no transition
    await b.cancel()


async def test_a_leader_that_cannot_renew_stops_after_the_renew_deadline() -> None:
    leases, fake = FakeLeases(), clock.FakeClock()
    a = Candidate(leases, fake, "a")
    await fake.run_for(0.1)
    leases.down = True
    await fake.run_for(8)
    assert a.elector.is_leader
    await fake.run_for(3)
    assert not a.elector.is_leader
    assert a.task.done()
    assert a.task.exception() is None
    assert a.events == ["leader:a", "started", "stopped"]


async def test_only_one_of_many_candidates_leads() -> None:
    leases, fake = FakeLeases(), clock.FakeClock()
    candidates = [Candidate(leases, fake, f"c{i}") for i in range(5)]
    await fake.run_for(20)
    leaders = [c for c in candidates if c.elector.is_leader]
    assert len(leaders) == 1
    assert leases.spec()["holderIdentity"] == leaders[0].elector.config.identity
    for c in candidates:
        await c.cancel()


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="identity"):
        leaderelection.Config(name="x", identity="")
    with pytest.raises(ValueError, match="lease_duration"):
        leaderelection.Config(name="x", identity="a", lease_duration=5, renew_deadline=10)
