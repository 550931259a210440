"""The rate-limited work queue: dedup, processing bookkeeping, backoff, delays, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from kybern.client import clock, workqueue

pytestmark = pytest.mark.timeout(10)


def make_queue(
    fake: clock.FakeClock | None = None, **options: object
) -> workqueue.RateLimitingQueue[str]:
    return workqueue.RateLimitingQueue("test", clock=fake or clock.FakeClock(), **options)  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class TestDedupAndProcessing:
    async def test_a_key_added_twice_is_queued_once(self) -> None:
        q = make_queue()
        q.add("a")
        q.add("b")
        q.add("a")
        assert len(q) == 2
        assert [await q.get(), await q.get()] == ["a", "b"]

    async def test_a_key_being_processed_is_not_handed_out_again_until_done(self) -> None:
        q = make_queue()
        q.add("a")
        assert await q.get() == "a"
        q.add("a")  # changed while a worker holds it
        assert len(q) == 0
        second = asyncio.ensure_future(q.get())
        await settle()
        assert not second.done()
        q.done("a")
        assert await asyncio.wait_for(second, 1) == "a"

    async def test_done_without_a_new_add_does_not_requeue(self) -> None:
        q = make_queue()
        q.add("a")
        await q.get()
        q.done("a")
        assert len(q) == 0

    async def test_waiting_getters_are_woken_in_turn(self) -> None:
        q = make_queue()
        getters = [asyncio.ensure_future(q.get()) for _ in range(3)]
        await settle()
        q.add("x")
        q.add("y")
        await settle()
        done = sorted(g.result() for g in getters if g.done())
        assert done == ["x", "y"]
        pending = [g for g in getters if not g.done()]
        assert len(pending) == 1
        await q.shutdown()
        with pytest.raises(workqueue.ShutDown):
            await asyncio.wait_for(pending[0], 1)

    async def test_a_cancelled_getter_does_not_swallow_a_key(self) -> None:
        q = make_queue()
        getter = asyncio.ensure_future(q.get())
        await settle()
        getter.cancel()
        await settle()
        q.add("a")
        assert await asyncio.wait_for(q.get(), 1) == "a"


class TestRateLimiting:
    def test_per_item_backoff_doubles_from_5ms_to_1000s(self) -> None:
        limiter = workqueue.ItemExponentialFailureRateLimiter()
        delays = [limiter.when("a") for _ in range(20)]
        assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
        assert delays[-1] == 1000.0
        assert limiter.when("b") == 0.005  # per item
        assert limiter.num_requeues("a") == 20
        limiter.forget("a")
        assert limiter.num_requeues("a") == 0
        assert limiter.when("a") == 0.005

    def test_bucket_allows_a_burst_of_100_then_10_per_second(self) -> None:
        fake = clock.FakeClock()
        bucket = workqueue.BucketRateLimiter(clock=fake)
        assert all(bucket.when(i) == 0 for i in range(100))
        assert bucket.when("next") == pytest.approx(0.1)
        assert bucket.when("after") == pytest.approx(0.2)
        fake.advance(10)
        assert bucket.when("later") == 0

    def test_default_limiter_takes_the_larger_delay(self) -> None:
        fake = clock.FakeClock()
        limiter = workqueue.default_controller_rate_limiter(fake)
        for i in range(100):
            limiter.when(f"k{i}")
        # The bucket is empty: 0.1 s beats the 5 ms first backoff.
        assert limiter.when("x") == pytest.approx(0.1)
        assert limiter.num_requeues("x") == 1

    async def test_add_rate_limited_requeues_after_the_backoff(self) -> None:
        fake = clock.FakeClock()
        q = make_queue(fake, rate_limiter=workqueue.ItemExponentialFailureRateLimiter())
        q.add("a")
        key = await q.get()
        q.add_rate_limited(key)
        q.done(key)
        await settle()
        assert len(q) == 0
        fake.advance(0.004)
        await settle()
        assert len(q) == 0
        fake.advance(0.001)
        await settle()
        assert len(q) == 1
        assert q.num_requeues("a") == 1
        q.forget("a")
        assert q.num_requeues("a") == 0
        await q.shutdown()


class TestDelays:
    async def test_add_after_waits_for_the_clock_and_the_earliest_wins(self) -> None:
        fake = clock.FakeClock()
        q = make_queue(fake)
        q.add_after("a", 10)
        q.add_after("a", 5)
        q.add_after("a", 20)
        q.add_after("b", 7)
        await settle()
        fake.advance(5)
        await settle()
        assert await asyncio.wait_for(q.get(), 1) == "a"
        assert len(q) == 0
        fake.advance(2)
        await settle()
        assert await asyncio.wait_for(q.get(), 1) == "b"
        fake.advance(100)
        await settle()
        assert len(q) == 0  # the later "a" adds were superseded
        await q.shutdown()

    async def test_non_positive_delay_adds_at_once(self) -> None:
        q = make_queue()
        q.add_after("a", 0)
        assert len(q) == 1


class TestShutdown:
    async def test_shutdown_wakes_getters_and_refuses_adds(self) -> None:
        q = make_queue()
        getter = asyncio.ensure_future(q.get())
        await settle()
        await q.shutdown()
        with pytest.raises(workqueue.ShutDown):
            await asyncio.wait_for(getter, 1)
        q.add("a")
        assert len(q) == 0

    async def test_queued_keys_are_still_handed_out_after_shutdown(self) -> None:
        q = make_queue()
        q.add("a")
        await q.shutdown()
        assert await q.get() == "a"
        with pytest.raises(workqueue.ShutDown):
            await q.get()

    async def test_drain_waits_for_keys_in_flight(self) -> None:
        q = make_queue()
        q.add("a")
        await q.get()
        drained = asyncio.ensure_future(q.shutdown(drain=True))
        await settle()
        assert not drained.done()
        q.done("a")
        await asyncio.wait_for(drained, 1)

    async def test_async_iteration_ends_at_shutdown(self) -> None:
        q = make_queue()
        for key in ("a", "b"):
            q.add(key)
        seen = []
        async for key in q:
            seen.append(key)
            q.done(key)
            if len(seen) == 2:
                await q.shutdown()
        assert seen == ["a", "b"]


class RecordingMetrics:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_add(self, name: str, depth: int) -> None:
        self.calls.append(("add", depth))

    def on_get(self, name: str, depth: int, queued_seconds: float) -> None:
        self.calls.append(("get", queued_seconds))

    def on_done(self, name: str, work_seconds: float) -> None:
        self.calls.append(("done", work_seconds))

    def on_retry(self, name: str) -> None:
        self.calls.append(("retry", None))


async def test_metrics_hooks_see_depth_latency_and_work_time() -> None:
    fake = clock.FakeClock()
    metrics = RecordingMetrics()
    q = make_queue(fake, metrics=metrics)
    q.add("a")
    fake.advance(2)
    await q.get()
    fake.advance(3)
    q.done("a")
    q.add_rate_limited("a")
    assert metrics.calls == [("add", 1), ("get", 2.0), ("done", 3.0), ("retry", None)]
    await q.shutdown()
