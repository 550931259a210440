"""The node's own objects: register the Node, renew its Lease, post its status.

As kubelet v1.32 does: the Node is created with capacity/allocatable measured on this machine
(:mod:`kybern.kubelet.machine`) and the well-known labels; an existing Node of the same name
is taken over (labels patched). The Lease in ``kube-node-lease`` is renewed every
``lease_period`` seconds and the node status (conditions with MemoryPressure, DiskPressure and
PIDPressure measured, Ready) posted every ``status_period`` seconds or when a condition
changes. Failures are logged and retried on the next tick: an unreachable API server never
stops the node's pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kybern import client as kclient
from kybern.client import clock as clock_
from kybern.client import errors
from kybern.kubelet import machine, nodestatus

Obj = dict[str, Any]
log = logging.getLogger(__name__)
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# type -> (reason, message) when the pressure is there (kubelet's setters)
PRESSURE = {
    "MemoryPressure": ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    "DiskPressure": ("KubeletHasDiskPressure", "kubelet has disk pressure"),
    "PIDPressure": ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
}


@dataclass
class NodeConfig:
    name: str
    ip: str
    data_dir: Path
    runtime_version: str = "process://0.1.0"
    port: int = 10250
    pod_cidr: str = ""
    control_plane: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    lease_period: float = 10.0
    status_period: float = 10.0


class Heartbeat:
    def __init__(
        self, client: kclient.Client, config: NodeConfig, *, clock: clock_.Clock = clock_.REAL
    ) -> None:
        self.client = client
        self.config = config
        self.clock = clock
        self.uid = ""
        self.lease_renewals = 0
        self.status_updates = 0
        self._last_pressure: machine.Pressure | None = None
        self.capacity = machine.capacity(config.data_dir)
        labels = dict(config.labels)
        if config.control_plane:
            labels[CONTROL_PLANE_LABEL] = "true"
        self.spec = nodestatus.NodeSpec(
            name=config.name,
            internal_ip=config.ip,
            pod_cidr=config.pod_cidr,
            cpu=str(self.capacity.cpu),
            arch=machine.arch(),
            labels=labels,
            os_image=machine.os_image(),
            runtime_version=config.runtime_version,
            kernel_version=machine.kernel_version(),
        )

    # -- objects -----------------------------------------------------------------------

    def status(self, previous: Obj | None) -> Obj:
        body = nodestatus.status(self.spec, self.clock.now(), previous=previous)
        body["capacity"] = self.capacity.capacity()
        body["allocatable"] = self.capacity.allocatable()
        body["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self.config.port}}
        pressure = machine.pressure(self.config.data_dir)
        self._last_pressure = pressure
        flags = {
            "MemoryPressure": pressure.memory,
            "DiskPressure": pressure.disk,
            "PIDPressure": pressure.pid,
        }
        for cond in body["conditions"]:
            if flags.get(cond["type"]):
                reason, message = PRESSURE[cond["type"]]
                old = {c.get("type"): c for c in (previous or {}).get("conditions") or []}
                same = (old.get(cond["type"]) or {}).get("status") == "True"
                cond.update(status="True", reason=reason, message=message)
                if not same:
                    cond["lastTransitionTime"] = cond["lastHeartbeatTime"]
        return body

    async def register(self) -> Obj:
        """Create the Node (or take over an existing one), post status, create the Lease."""
        body = nodestatus.node(self.spec, self.clock.now())
        body["status"] = self.status(None)
        try:
            node = await self.client.create(body)
        except errors.AlreadyExists:
            patch = {"metadata": {"labels": body["metadata"]["labels"]}}
            node = await self.client.patch("v1", "Node", self.config.name, patch)
        self.uid = str((node.get("metadata") or {}).get("uid") or "")
        await self.post_status(node.get("status"))
        await self.renew_lease(create=True)
        return node

    async def post_status(self, previous: Obj | None) -> None:
        await self.client.patch(
            "v1", "Node", self.config.name, {"status": self.status(previous)}, subresource="status"
        )
        self.status_updates += 1

    async def renew_lease(self, *, create: bool = False) -> None:
        now = self.clock.now()
        lease = nodestatus.lease(self.config.name, now, node_uid=self.uid)
        if create:
            with contextlib.suppress(errors.AlreadyExists):
                await self.client.create(lease)
                self.lease_renewals += 1
                return
        patch = {
            "spec": {"holderIdentity": self.config.name, "renewTime": nodestatus.micro_time(now)}
        }
        try:
            await self.client.patch(
                "coordination.k8s.io/v1",
                "Lease",
                self.config.name,
                patch,
                namespace=nodestatus.LEASE_NAMESPACE,
            )
        except errors.NotFound:
            await self.client.create(lease)
        self.lease_renewals += 1

    # -- loops -------------------------------------------------------------------------

    async def register_until_done(self) -> None:
        """Register, retrying while the API server cannot be reached."""
        delay = 0.5
        while True:
            try:
                await self.register()
                return
            except (errors.ClientError, OSError) as exc:
                log.warning("node %s: registration failed (%s); retrying", self.config.name, exc)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def run(self) -> None:
        """Lease and status until cancelled (call :meth:`register` first)."""
        await asyncio.gather(self._leases(), self._statuses())

    async def _leases(self) -> None:
        while True:
            await self.clock.sleep(self.config.lease_period)
            try:
                await self.renew_lease()
            except (errors.ClientError, OSError) as exc:
                log.warning("node %s: lease renewal failed: %s", self.config.name, exc)

    async def _statuses(self) -> None:
        last = self.clock.monotonic()
        while True:
            await self.clock.sleep(1.0)
            due = self.clock.monotonic() - last >= self.config.status_period
            if not due and machine.pressure(self.config.data_dir) == self._last_pressure:
                continue
            try:
                node = await self.client.get("v1", "Node", self.config.name)
                await self.post_status(node.get("status"))
                last = self.clock.monotonic()
            except errors.NotFound:
                log.warning("node %s was deleted; registering it again", self.config.name)
                with contextlib.suppress(errors.ClientError, OSError):
                    await self.register()
            except (errors.ClientError, OSError) as exc:
                log.warning("node %s: status update failed: %s", self.config.name, exc)
