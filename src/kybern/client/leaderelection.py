"""Leader election on a ``coordination.k8s.io/v1`` Lease (client-go's ``leaderelection``).

Candidates race to write their identity into one Lease with compare-and-swap. The holder
renews it every ``retry_period``; if it cannot renew for ``renew_deadline`` it stops leading.
Others take over once they have watched the Lease stay unchanged for ``lease_duration``
(measured on their own clock from when they last saw it change, so clock skew between
machines does not matter). On a clean shutdown the leader releases the Lease (empty holder,
duration 1 s) so a successor takes over at once.

Defaults are kube-controller-manager's: lease 15 s, renew deadline 10 s, retry period 2 s.
``acquireTime`` and ``renewTime`` are MicroTime (``2006-01-02T15:04:05.000000Z``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kybern.client import clock as clock_
from kybern.client import errors

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"
JITTER = 1.2  # client-go's JitterFactor: waits are retry_period * [1, 2.2)


class LeaseClient(Protocol):
    """The part of ``resources.Client`` leader election uses."""

    async def get(
        self, api_version: str, kind: str, name: str, *, namespace: str = ""
    ) -> dict[str, Any]: ...

    async def create(
        self, obj: dict[str, Any], *, namespace: str = "", dry_run: bool = False
    ) -> dict[str, Any]: ...

    async def update(
        self, obj: dict[str, Any], *, subresource: str = "", dry_run: bool = False
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    identity: str
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("leader election needs a non-empty identity")
        if not self.lease_duration > self.renew_deadline > JITTER * self.retry_period:
            raise ValueError(
                "need lease_duration > renew_deadline > 1.2 * retry_period "
                f"(got {self.lease_duration}, {self.renew_deadline}, {self.retry_period})"
            )


def micro_time(moment: datetime.datetime) -> str:
    """Kubernetes' MicroTime: RFC 3339 with microseconds, in UTC."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaign for one Lease; run ``on_started_leading`` while holding it."""

    def __init__(
        self,
        client: LeaseClient,
        config: Config,
        *,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], None] | None = None,
        on_new_leader: Callable[[str], None] | None = None,
        clock: clock_.Clock = clock_.REAL,
    ) -> None:
        self.client = client
        self.config = config
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.clock = clock
        self.observed: dict[str, Any] = {}  # the Lease's spec as last read
        self.observed_at = 0.0  # our clock when the observed spec last changed
        self.observed_lease: dict[str, Any] | None = None
        self.reported_leader = ""
        self._leading = False

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str:
        """The holder as last observed ('' when none)."""
        return str(self.observed.get("holderIdentity") or "")

    async def run(self) -> None:
        """Acquire, lead until the Lease cannot be renewed, then return. Cancellation
        stops leading and (by default) releases the Lease."""
        try:
            await self._acquire()
            self._leading = True
            work = asyncio.ensure_future(self.on_started_leading())
            try:
                await self._renew_until_lost(work)
            finally:
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
        finally:
            was_leading = self._leading
            self._leading = False
            if was_leading:
                if self.config.release_on_cancel:
                    await asyncio.shield(self._release())
                if self.on_stopped_leading is not None:
                    self.on_stopped_leading()

    async def _acquire(self) -> None:
        while not await self.try_acquire_or_renew():
            await self.clock.sleep(self._jittered())

    async def _renew_until_lost(self, work: asyncio.Future[None]) -> None:
        last_renew = self.clock.monotonic()
        while not work.done():
            await self._sleep_or_done(self.config.retry_period, work)
            if work.done():
                return
            if await self.try_acquire_or_renew():
                last_renew = self.clock.monotonic()
            elif self.clock.monotonic() - last_renew >= self.config.renew_deadline:
                log.warning(
                    "%s: failed to renew lease %s/%s within %ss; stopping leading",
                    self.config.identity,
                    self.config.namespace,
                    self.config.name,
                    self.config.renew_deadline,
                )
                return
            elif self.leader and self.leader != self.config.identity:
                return  # someone else holds it now: we lost it

    async def _sleep_or_done(self, seconds: float, work: asyncio.Future[None]) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({sleeper, work}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()

    def _jittered(self) -> float:
        return self.config.retry_period * (1 + random.random() * JITTER)

    # -- one attempt -------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One round: create the Lease, renew ours, or take over an expired one."""
        now_wall = micro_time(self.clock.now())
        try:
            lease = await self.client.get(
                LEASE_API, "Lease", self.config.name, namespace=self.config.namespace
            )
        except errors.NotFound:
            return await self._create(now_wall)
        except errors.ClientError as exc:
            log.warning("%s: cannot read lease: %s", self.config.identity, exc)
            return False
        spec = lease.get("spec") or {}
        self._observe(lease, spec)
        holder = spec.get("holderIdentity") or ""
        mine = holder == self.config.identity
        if holder and not mine and not self._expired(spec):
            return False
        new_spec = dict(spec)
        new_spec.update(
            holderIdentity=self.config.identity,
            leaseDurationSeconds=int(self.config.lease_duration),
            renewTime=now_wall,
        )
        if not mine:
            new_spec["acquireTime"] = now_wall
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (
                1 if holder else 0
            )
        updated = dict(lease, spec=new_spec)
        try:
            stored = await self.client.update(updated)
        except errors.ClientError as exc:  # a conflict: someone else wrote first
            log.debug("%s: lease update failed: %s", self.config.identity, exc)
            return False
        self._observe(stored, stored.get("spec") or {})
        return True

    async def _create(self, now_wall: str) -> bool:
        lease = {
            "apiVersion": LEASE_API,
            "kind": "Lease",
            "metadata": {"name": self.config.name, "namespace": self.config.namespace},
            "spec": {
                "holderIdentity": self.config.identity,
                "leaseDurationSeconds": int(self.config.lease_duration),
                "acquireTime": now_wall,
                "renewTime": now_wall,
                "leaseTransitions": 0,
            },
        }
        try:
            stored = await self.client.create(lease)
        except errors.ClientError as exc:
            log.debug("%s: lease create failed: %s", self.config.identity, exc)
            return False
        self._observe(stored, stored.get("spec") or {})
        return True

    def _observe(self, lease: dict[str, Any], spec: dict[str, Any]) -> None:
        if spec != self.observed:
            self.observed = dict(spec)
            self.observed_at = self.clock.monotonic()
        self.observed_lease = lease
        holder = str(spec.get("holderIdentity") or "")
        if holder and holder != self.reported_leader:
            self.reported_leader = holder
            if self.on_new_leader is not None:
                self.on_new_leader(holder)

    def _expired(self, spec: dict[str, Any]) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        return self.observed_at + duration <= self.clock.monotonic()

    async def _release(self) -> None:
        """Give the Lease up (if still ours) so a successor need not wait for it to expire."""
        lease = self.observed_lease
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
            return
        now_wall = micro_time(self.clock.now())
        spec = dict(lease.get("spec") or {})
        spec.update(
            holderIdentity="", leaseDurationSeconds=1, renewTime=now_wall, acquireTime=now_wall
        )
        try:
            await self.client.update(dict(lease, spec=spec))
        except errors.ClientError as exc:
            log.info("%s: could not release the lease: %s", self.config.identity, exc)
