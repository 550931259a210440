"""The agent's glue to probes and lifecycle hooks: results in, restarts and readiness out.

:class:`Health` owns the :class:`kybern.kubelet.prober.ProbeManager`: after each sync it
starts probe workers for the pod's running containers (and resets them when a container was
replaced), keeps the latest readiness and startup results for the status, and turns a failed
liveness or startup probe into a restart request for the sync
(``PodSync.liveness_failed``). Every result change wakes the pod's worker.
:class:`LifecycleHooks` runs postStart/preStop handlers through
:mod:`kybern.kubelet.lifecycle` for :class:`kybern.kubelet.kuberuntime.PodSync`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kybern.client import clock as clock_
from kybern.kubelet import containerconfig as cc
from kybern.kubelet import kuberuntime, lifecycle, prober, status
from kybern.runtime import cri

Obj = dict[str, Any]


class Health:
    def __init__(
        self,
        runtime: cri.Runtime,
        sync: kuberuntime.PodSync,
        *,
        wake: Callable[[str], None],
        record: kuberuntime.Record,
        pods: Callable[[str], Obj | None],
        clock: clock_.Clock = clock_.REAL,
    ) -> None:
        self.sync = sync
        self.wake = wake
        self.record = record
        self.pods = pods
        self.manager = prober.ProbeManager(
            runtime=runtime, on_result=self._on_result, clock=clock, on_event=self._on_event
        )
        self.ready: dict[tuple[str, str], bool] = {}
        self.started: dict[tuple[str, str], bool] = {}
        self._ids: dict[str, dict[str, str]] = {}  # pod uid -> container name -> probed id
        self._resetting = False

    def observe(self, pod: Obj, observed: status.Observed) -> None:
        """Start/reset probe workers for what runs now; fill in readiness and startup."""
        uid = str(cc.meta(pod).get("uid", ""))
        running = {
            c.metadata.name: c.id
            for c in observed.containers
            if c.state is cri.ContainerState.RUNNING
        }
        known = self._ids.setdefault(uid, {})
        pod_ip = observed.sandbox.ip if observed.sandbox else ""
        self.manager.add(pod, running, pod_ip=pod_ip or self.sync.node.ip)
        for name, container_id in running.items():
            if known.get(name) != container_id:  # first seen, or restarted: probe it afresh
                self._resetting = True  # its "not started/ready" reports are no failures
                try:
                    self.manager.reset(uid, name, container_id)
                finally:
                    self._resetting = False
                known[name] = container_id
        specs = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
        for name in running:
            spec = specs.get(name) or {}
            # with a probe and no result yet: not ready / not started (kubelet's defaults)
            observed.ready[name] = self.ready.get((uid, name), "readinessProbe" not in spec)
            observed.started[name] = self.started.get((uid, name), "startupProbe" not in spec)

    def forget(self, uid: str) -> None:
        self.manager.remove(uid)
        self._ids.pop(uid, None)
        for table in (self.ready, self.started):
            for key in [k for k in table if k[0] == uid]:
                del table[key]

    async def close(self) -> None:
        await self.manager.close()

    def _on_result(self, uid: str, name: str, kind: str, result: bool) -> None:
        if kind == "readiness":
            self.ready[(uid, name)] = result
        elif kind == "startup":
            self.started[(uid, name)] = result
        if kind in ("liveness", "startup") and not result and not self._resetting:
            self.sync.liveness_failed.add((uid, name))
        self.wake(uid)

    def _on_event(self, uid: str, name: str, kind: str, message: str) -> None:
        pod = self.pods(uid)
        if pod is not None:
            self.record(pod, "Warning", "Unhealthy", message)


class LifecycleHooks:
    """postStart / preStop through kybern.kubelet.lifecycle (kuberuntime.Hooks)."""

    def __init__(
        self,
        runtime: cri.Runtime,
        *,
        pod_ip: Callable[[Obj], str],
        record: kuberuntime.Record,
        clock: clock_.Clock = clock_.REAL,
    ) -> None:
        self.runtime = runtime
        self.pod_ip = pod_ip
        self.record = record
        self.clock = clock

    async def post_start(self, pod: Obj, container: Obj, container_id: str) -> str | None:
        handler = (container.get("lifecycle") or {}).get("postStart") or {}
        return await lifecycle.run_handler(
            handler,
            pod=pod,
            container=container,
            container_id=container_id,
            runtime=self.runtime,
            pod_ip=self.pod_ip(pod),
            clock=self.clock,
        )

    async def pre_stop(self, pod: Obj, container: Obj, container_id: str, budget: float) -> None:
        handler = (container.get("lifecycle") or {}).get("preStop") or {}
        failure = await lifecycle.run_handler(
            handler,
            pod=pod,
            container=container,
            container_id=container_id,
            runtime=self.runtime,
            pod_ip=self.pod_ip(pod),
            clock=self.clock,
            time_limit=budget,
        )
        if failure is not None:
            self.record(pod, "Warning", "FailedPreStopHook", failure)
