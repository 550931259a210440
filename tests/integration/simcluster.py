"""An in-process cluster for scheduling tests: API server, scheduler and simulated nodes.

Everything runs on the test's event loop and talks through kybern.client's in-process
transport with one shared informer factory, exactly as `kybern server` assembles it.
``wait_for`` polls a condition against the API until a deadline (never a fixed sleep).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kybern import client as kclient
from kybern.apiserver import server
from kybern.client import clock as clock_
from kybern.controllers import manager
from kybern.kubelet import simulated
from kybern.scheduler import wiring

T = TypeVar("T")
Obj = dict[str, Any]


@dataclass
class SimCluster:
    api: server.APIServer
    client: kclient.Client
    informers: kclient.SharedInformerFactory
    fleet: simulated.Fleet | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def wait_for(
        self, condition: Callable[[], Awaitable[T | None]], *, within: float = 10.0, what: str = ""
    ) -> T:
        async with asyncio.timeout(within):
            while True:
                result = await condition()
                if result:
                    return result
                await asyncio.sleep(0.01)
        raise AssertionError(what)  # pragma: no cover (timeout raises first)

    async def pod(self, name: str, namespace: str = "default") -> Obj | None:
        try:
            return await self.client.get("v1", "Pod", name, namespace=namespace)
        except kclient.NotFound:
            return None

    async def pod_phase(self, name: str, phase: str) -> Obj | None:
        got = await self.pod(name)
        return got if got and (got.get("status") or {}).get("phase") == phase else None

    async def events(self, name: str, reason: str) -> list[Obj]:
        items = (await self.client.list("v1", "Event", namespace="default"))["items"]
        return [
            e for e in items if e["involvedObject"]["name"] == name and e.get("reason") == reason
        ]


@contextlib.asynccontextmanager
async def sim_cluster(
    tmp_path: Path,
    config: simulated.Config | None,
    *,
    scheduler: bool = True,
    controllers: list[str] | None = None,
    clock: clock_.Clock = clock_.REAL,
) -> AsyncIterator[SimCluster]:
    """``controllers``: controller-manager names to run too (``["*"]`` for all), on the same
    informers and ``clock`` as the simulated nodes."""
    api = server.APIServer(server.Config(data_dir=tmp_path, port=0, tls=False))
    await api.start()
    transport = kclient.InProcessTransport(api.local_api())
    client = kclient.Client(transport)
    informers = kclient.SharedInformerFactory(kclient.Client(transport), clock=clock)
    cluster = SimCluster(api, client, informers)
    try:
        if config is not None:
            cluster.fleet = simulated.Fleet(client, informers, config, clock=clock)
            cluster.tasks.append(asyncio.create_task(cluster.fleet.run(), name="fleet"))
            async with asyncio.timeout(10):
                await cluster.fleet.ready.wait()
        if scheduler:
            cluster.tasks.append(
                asyncio.create_task(wiring.run(client, informers), name="scheduler")
            )
        if controllers:
            started = asyncio.Event()
            run = manager.run_controllers(client, informers, names=controllers, started=started)
            cluster.tasks.append(asyncio.create_task(run, name="controllers"))
            async with asyncio.timeout(10):
                await started.wait()
        yield cluster
    finally:
        for task in cluster.tasks:
            task.cancel()
        done, stuck = (
            await asyncio.wait(cluster.tasks, timeout=10) if cluster.tasks else (set(), set())
        )
        for task in done:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert not stuck, f"ignored cancellation: {[t.get_name() for t in stuck]}"
        await informers.stop()
        await api.stop()


def pod(name: str, *, cpu: str = "100m", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", **spec.pop("metadata", {})},
        "spec": {
            "containers": [
                {"name": "app", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}
            ],
            **spec,
        },
    }
