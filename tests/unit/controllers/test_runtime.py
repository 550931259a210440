"""The Runner: outcomes of reconcile -> queue bookkeeping; handlers -> keys."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from kybern import client as kclient
from kybern.controllers import runtime
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)


class Scripted:
    """A controller whose reconcile answers from a script and records the keys it saw."""

    name = "scripted"
    workers = 2

    def __init__(self, outcome: runtime.Result | Exception) -> None:
        self.outcome = outcome
        self.seen: list[str] = []
        self.changed = asyncio.Event()

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "ConfigMap", runtime.own_key),
            runtime.Watch("v1", "Pod", runtime.controller_owner_keys("ConfigMap")),
        ]

    async def reconcile(self, key: str) -> runtime.Result:
        self.seen.append(key)
        self.changed.set()
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def make(outcome: runtime.Result | Exception) -> tuple[Scripted, runtime.Runner, kclient.FakeClock]:
    clock = kclient.FakeClock()
    cluster = fakeclient.FakeCluster(clock)
    controller = Scripted(outcome)
    return controller, runtime.Runner(controller, cluster.informers, clock=clock), clock


class TestOutcomes:
    async def test_success_forgets_the_key(self) -> None:
        _controller, runner, _ = make(runtime.Result())
        runner.queue.add_rate_limited("default/a")
        await runner.process("default/a")
        assert runner.outcomes["success"] == 1
        assert runner.queue.num_requeues("default/a") == 0

    async def test_an_exception_is_captured_and_retried_with_backoff(self) -> None:
        _controller, runner, _ = make(RuntimeError("boom"))
        await runner.process("default/a")
        await runner.process("default/a")
        assert runner.outcomes["error"] == 2
        assert runner.queue.num_requeues("default/a") == 2

    async def test_a_terminal_error_is_not_retried(self) -> None:
        _controller, runner, clock = make(runtime.TerminalError("bad spec"))
        await runner.process("default/a")
        await clock.run_for(10)
        assert runner.outcomes["terminal"] == 1
        assert len(runner.queue) == 0

    async def test_requeue_after_comes_back_after_the_delay(self) -> None:
        _controller, runner, clock = make(runtime.Result(requeue_after=5))
        await runner.process("default/a")
        await clock.run_for(4)
        assert len(runner.queue) == 0
        await clock.run_for(2)
        assert len(runner.queue) == 1
        await runner.queue.shutdown()


class TestHandlers:
    async def test_events_become_keys_including_owner_and_tombstones(self) -> None:
        _controller, runner, _ = make(runtime.Result())
        runner.register()
        informers = runner.informers
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "p",
                "namespace": "ns",
                "ownerReferences": [{"kind": "ConfigMap", "name": "owner", "controller": True}],
            },
        }
        pods = informers.informer_for("v1", "Pod")
        informers.informer_for("v1", "ConfigMap")._apply_event("ADDED", cm)
        pods._apply_event("ADDED", pod)
        assert len(runner.queue) == 2
        assert {await runner.queue.get(), await runner.queue.get()} == {"ns/a", "ns/owner"}

    async def test_workers_run_reconciles_until_cancelled(self) -> None:
        controller, runner, _ = make(runtime.Result())
        task = asyncio.create_task(runner.run())
        runner.queue.add("ns/a")
        runner.queue.add("ns/b")
        async with asyncio.timeout(5):
            while len(controller.seen) < 2:
                controller.changed.clear()
                await controller.changed.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(controller.seen) == ["ns/a", "ns/b"]
