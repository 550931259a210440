"""The node agent (kubelet): registers the node, then runs the pods bound to it.

Wiring, as kubelet's main loop: a pod informer restricted to ``spec.nodeName=<node>`` feeds
:class:`kybern.kubelet.podworkers.PodWorkers` (one worker per pod); each run of a pod's
worker (:meth:`Agent.handle`) either syncs it (:class:`kybern.kubelet.kuberuntime.PodSync`),
writes the status computed by :mod:`kybern.kubelet.status` through ``pods/status`` when it
changed, or terminates it: graceful kill, final status, then ``DELETE`` with
``gracePeriodSeconds=0`` as kubelet's status manager does. A PLEG loop relists the runtime
every second and wakes the worker of any pod whose containers changed state.

Under a burst (100 pods at once) the syncs take :mod:`kybern.kubelet.syncslots` in arrival
order, and each pod's status is written by its own worker as soon as its sync is done, never
behind another pod's start. A watch event that only brings back the status this agent wrote
wakes nothing (kubelet's RECONCILE: no second sync per pod for its own write).

Rules kept here: a pod is only killed because the API says so (deletion, or gone from a
successful list): an unreachable API server leaves every pod running on its last known spec,
and status writes are retried. On start the runtime's sandboxes and containers, found by
their ``io.kubernetes.*`` labels, are adopted as they are (nothing restarts, restartCount
stays); sandboxes of pods the API no longer has are removed once the informer has synced.

The agent also answers the kubelet server's :class:`kybern.kubelet.podlookup.PodLookup`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kybern import client as kclient
from kybern.client import clock as clock_
from kybern.client import errors
from kybern.kubelet import containerconfig as cc
from kybern.kubelet import (
    events,
    health,
    heartbeat,
    kuberuntime,
    mirrors,
    pleg,
    podinputs,
    podlookup,
    podworkers,
    staticpods,
    status,
    syncslots,
)
from kybern.kubelet.volumes import manager as volumes_manager
from kybern.runtime import cri

Obj = dict[str, Any]
log = logging.getLogger(__name__)
STATUS_RETRY = 2.0
HOUSEKEEPING = 10.0


@dataclass
class Config:
    node_name: str
    data_dir: Path
    node_ip: str = "127.0.0.1"
    runtime_name: str = "process"
    control_plane: bool = False
    port: int = 10250
    pod_cidr: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    lease_period: float = 10.0
    status_period: float = 10.0
    pleg_period: float = 1.0
    cluster_dns: list[str] = field(default_factory=list)  # the cluster DNS Service IPs
    cluster_domain: str = "cluster.local"
    resolv_conf: Path | None = Path("/etc/resolv.conf")  # the host's, for dnsPolicy Default
    pod_manifest_path: Path | None = None  # static pods


class Agent:
    def __init__(
        self,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        runtime: cri.Runtime,
        config: Config,
        *,
        clock: clock_.Clock | None = None,
    ) -> None:
        self.client = client
        self.informers = informers
        self.runtime = runtime
        self.config = config
        self.clock = clock or informers.clock
        self.recorder = events.Recorder(client, config.node_name, clock=self.clock)
        self.heartbeat = heartbeat.Heartbeat(
            client,
            heartbeat.NodeConfig(
                name=config.node_name,
                ip=config.node_ip,
                data_dir=config.data_dir,
                runtime_version=f"{runtime.name}://0.1.0",
                port=config.port,
                pod_cidr=config.pod_cidr,
                control_plane=config.control_plane,
                labels=config.labels,
                lease_period=config.lease_period,
                status_period=config.status_period,
            ),
            clock=self.clock,
        )
        self.inputs = podinputs.PodInputs(
            client,
            informers,
            podinputs.NodeFacts(
                name=config.node_name,
                ip=config.node_ip,
                allocatable=self.heartbeat.capacity.allocatable(),
                cluster_dns=config.cluster_dns,
                cluster_domain=config.cluster_domain,
                resolv_conf=config.resolv_conf,
            ),
            record=self.recorder.record,
        )
        node = kuberuntime.Node(
            name=config.node_name,
            ip=config.node_ip,
            runtime_name=runtime.name,
            log_root=config.data_dir / "logs" / "pods",
            pods_root=config.data_dir / "pods",
            pod_cidr=config.pod_cidr,
        )
        self.sync = kuberuntime.PodSync(
            runtime,
            node,
            clock=self.clock,
            record=self.recorder.record,
            env=self.inputs.env,
            volumes=self.inputs.volumes(config.data_dir, self.clock),
            dns=self.inputs.dns,
            hooks=health.LifecycleHooks(
                runtime, pod_ip=self._pod_ip, record=self.recorder.record, clock=self.clock
            ),
        )
        self.pods = kclient.Informer(
            client,
            "v1",
            "Pod",
            field_selector=f"spec.nodeName={config.node_name}",
            clock=self.clock,
        )
        self.workers = podworkers.PodWorkers(self.handle, clock=self.clock)
        self.slots = syncslots.SyncSlots()
        self.static: dict[str, Obj] = {}  # uid -> static pod (from manifest files)
        self.mirrors = mirrors.Mirrors(client, self.pods)
        self.static_source = (
            staticpods.StaticPods(
                config.pod_manifest_path, node_name=config.node_name, clock=self.clock
            )
            if config.pod_manifest_path is not None
            else None
        )
        self.health = health.Health(
            runtime,
            self.sync,
            wake=self.workers.update,
            record=self.recorder.record,
            pods=lambda uid: self.known.get(uid),
            clock=self.clock,
        )
        self.known: dict[str, Obj] = {}  # uid -> last pod seen from the API
        self.gone: set[str] = set()  # uids the API no longer has
        self.observed: dict[str, status.Observed] = {}
        self._sent: dict[str, Obj] = {}  # uid -> last status written
        self.pleg = pleg.Pleg(runtime, self._wake, clock=self.clock, period=config.pleg_period)
        self._killing: dict[str, tuple[float, float]] = {}  # uid -> (since, grace) of a kill
        self._tasks: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; the pods keep running after (the runtime keeps them)."""
        await self.runtime.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.heartbeat.register_until_done()
            self.pods.add_handler(
                kclient.FuncHandler(
                    add=self._on_pod, update=self._on_pod_update, delete=self._on_delete
                )
            )
            for kind in ("ConfigMap", "Secret"):
                self.informers.informer_for("v1", kind).add_handler(
                    kclient.FuncHandler(update=self._source_handler(kind))
                )
            self.informers.start()
            self.pods.start()
            await asyncio.gather(self.pods.wait_for_sync(), self.inputs.objects.wait_for_sync())
            self.mirrors.node_uid = self.heartbeat.uid
            if self.static_source is not None:
                self._on_static_diff(await self.static_source.poll())
                tasks.append(
                    asyncio.create_task(
                        self.static_source.run(self._on_static_diff), name="kubelet-static-pods"
                    )
                )
            tasks += [
                asyncio.create_task(self.heartbeat.run(), name="kubelet-heartbeat"),
                asyncio.create_task(self.pleg.run(), name="kubelet-pleg"),
                asyncio.create_task(self._housekeeping(), name="kubelet-housekeeping"),
            ]
            self.ready.set()
            log.info(
                "node %s: kubelet ready (runtime %s)", self.config.node_name, self.runtime.name
            )
            await asyncio.gather(*tasks)
        finally:
            for task in [*tasks, *self._tasks]:
                task.cancel()
            await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
            await self.workers.stop()
            await self.health.close()
            await self.pods.stop()
            await self.recorder.close()
            await self.runtime.close()

    # -- informer events ---------------------------------------------------------------

    def _on_pod(self, pod: Obj) -> None:
        if mirrors.mirror_of(pod):  # a static pod's mirror: the file is what runs
            self._wake_static(pod)
            return
        uid = str(cc.meta(pod).get("uid", ""))
        self.known[uid] = pod
        self.gone.discard(uid)
        if cc.meta(pod).get("deletionTimestamp"):
            self._hurry(uid, cc.grace_period(pod))
        self.workers.update(uid)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        """kubelet's RECONCILE: a change of the status alone that says what this agent wrote
        (its own write coming back) needs no sync; anything else does."""
        uid = str(cc.meta(new).get("uid", ""))
        if (
            uid in self.known
            and not mirrors.mirror_of(new)
            and not (new.get("spec") or {}).get("readinessGates")  # others' conditions count
            and new.get("status") == self._sent.get(uid)
            and _same_but_status(old, new)
        ):
            self.known[uid] = new
            return
        self._on_pod(new)

    def _on_delete(self, item: Obj | kclient.DeletedFinalStateUnknown) -> None:
        pod = kclient.object_of(item)
        if mirrors.mirror_of(pod):
            self._wake_static(pod)
            return
        uid = str(cc.meta(pod).get("uid", ""))
        self.known.setdefault(uid, pod)
        self.gone.add(uid)
        self._hurry(uid, 0)
        self.workers.update(uid)

    def _source_handler(self, kind: str) -> Callable[[Obj, Obj], None]:
        return lambda _old, new: self._on_source(kind, new)

    def _on_source(self, kind: str, obj: Obj) -> None:
        """A ConfigMap or Secret changed: the pods whose volumes read it sync now, so their
        files update in place (kubelet gets there within its 1-minute sync period; following
        the watch is sooner)."""
        meta = cc.meta(obj)
        key = (kind, str(meta.get("namespace", "")), str(meta.get("name", "")))
        for uid, pod in list(self.known.items()):
            if uid not in self.gone and key in volumes_manager.referenced_objects(pod):
                self.workers.update(uid)

    def _hurry(self, uid: str, grace: float) -> None:
        """A second deletion with a shorter grace period (or the pod gone from the API) while
        the pod is being stopped: SIGKILL at the earlier deadline, as kubelet does."""
        killing = self._killing.get(uid)
        if killing is None or grace >= killing[1]:
            return
        started = killing[0]
        self._killing[uid] = (started, grace)
        task = asyncio.create_task(self._kill_at(uid, started + grace))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _kill_at(self, uid: str, deadline: float) -> None:
        await self.clock.sleep(deadline - self.clock.monotonic())
        if uid not in self._killing:
            return
        for container in (await self.sync.runtime_pod(uid)).running():
            with contextlib.suppress(cri.RuntimeError_):
                await self.runtime.stop_container(container.id, 0)

    def _wake(self, uid: str) -> None:
        if uid in self.known:
            self.workers.update(uid)

    def _wake_static(self, mirror: Obj) -> None:
        uid = mirrors.mirror_of(mirror)
        if uid in self.static:
            self.workers.update(uid)

    def _on_static_diff(self, diff: staticpods.Diff) -> None:
        for pod in [*diff.added, *diff.updated]:
            uid = str(cc.meta(pod).get("uid", ""))
            self.static[uid] = pod
            self.known[uid] = pod
            self.gone.discard(uid)
            self.workers.update(uid)
        for pod in diff.removed:
            uid = str(cc.meta(pod).get("uid", ""))
            self.known.setdefault(uid, pod)
            self.gone.add(uid)
            self.workers.update(uid)

    # -- one pod -----------------------------------------------------------------------

    async def handle(self, uid: str) -> float | podworkers.Done | None:
        pod = self.known.get(uid)
        if pod is None:
            return podworkers.DONE
        if uid in self.gone:
            await self.sync.kill(pod, remove=True)
            if self.static.pop(uid, None) is not None:
                await self.mirrors.remove(pod)
            self._forget(uid)
            return podworkers.DONE
        if uid in self.static:
            await self._ensure_mirror(pod)
        if cc.meta(pod).get("deletionTimestamp"):
            return await self._terminate(pod)
        last = self._sent.get(uid) or pod.get("status") or {}
        if last.get("phase") in status.TERMINAL:  # what we wrote, even if not seen back yet
            self.health.forget(uid)
            await self.sync.kill(pod, grace=0)
            return None
        async with self.slots.hold():  # the status write below waits for no other pod
            result = await self.sync.sync(pod)
        self.observed[uid] = result.observed
        self.health.observe(pod, result.observed)
        new = self._status(pod, result.observed)
        if new["phase"] in status.TERMINAL:
            await self.sync.kill(pod, grace=0)  # nothing restarts: stop the sandbox
        if not await self._write_status(pod, new):
            return min(result.requeue_after, STATUS_RETRY)
        return result.requeue_after

    async def _ensure_mirror(self, pod: Obj) -> None:
        """A static pod runs whether or not its mirror can be written (API server down)."""
        try:
            if await self.mirrors.ensure(pod):
                self._sent.pop(str(cc.meta(pod).get("uid", "")), None)  # new mirror: no status
        except (errors.ClientError, OSError) as exc:
            log.warning("static pod %s: mirror pod not updated: %s", cc.full_name(pod), exc)

    async def _terminate(self, pod: Obj) -> float | None:
        uid = str(cc.meta(pod).get("uid", ""))
        self.health.forget(uid)
        self._killing[uid] = (self.clock.monotonic(), cc.grace_period(pod))
        try:
            await self.sync.kill(pod)
        finally:
            self._killing.pop(uid, None)
        current = await self.sync.runtime_pod(uid)
        observed = status.Observed(
            sandbox=current.sandbox, containers=current.containers, terminal=True
        )
        self.observed[uid] = observed
        await self._write_status(pod, self._status(pod, observed))
        meta = cc.meta(pod)
        try:
            await self.client.delete(
                "v1",
                "Pod",
                str(meta.get("name", "")),
                namespace=str(meta.get("namespace", "")),
                grace_period_seconds=0,
                preconditions={"uid": uid},
            )
        except (errors.NotFound, errors.Conflict):
            pass  # already gone, or another incarnation: the informer tells
        except (errors.ClientError, OSError) as exc:
            log.warning("pod %s: final delete failed (%s); retrying", cc.full_name(pod), exc)
            return STATUS_RETRY
        return None

    def _status(self, pod: Obj, observed: status.Observed) -> Obj:
        return status.pod_status(
            pod,
            observed,
            runtime=self.runtime.name,
            host_ip=self.config.node_ip,
            now=self.clock.now(),
        )

    async def _write_status(self, pod: Obj, new: Obj) -> bool:
        """Patch pods/status when it changed; False when the write failed (retry later)."""
        uid = str(cc.meta(pod).get("uid", ""))
        # What this agent last wrote is newer than the cached pod's status until the write
        # comes back (and then they are equal): comparing with the cache alone could skip a
        # write that undoes ours before its echo arrives (after a restart: not ready, written;
        # ready again at once, equal to the stale cached status) and leave it unready.
        last = self._sent.get(uid)
        if new == (pod.get("status") or {} if last is None else last):
            return True
        meta = cc.meta(pod)
        # a mirror pod has the API server's UID, not the static pod's: no precondition
        body = {"status": new} if uid in self.static else {"metadata": {"uid": uid}, "status": new}
        try:
            await self.client.patch(
                "v1",
                "Pod",
                str(meta.get("name", "")),
                body,
                namespace=str(meta.get("namespace", "")),
                subresource="status",
            )
        except errors.NotFound:
            return True
        except (errors.ClientError, OSError) as exc:
            log.warning("pod %s: status update failed: %s", cc.full_name(pod), exc)
            return False
        self._sent[uid] = new
        return True

    def _forget(self, uid: str) -> None:
        self.health.forget(uid)
        self.known.pop(uid, None)
        self.gone.discard(uid)
        self.observed.pop(uid, None)
        self._sent.pop(uid, None)

    def _pod_ip(self, pod: Obj) -> str:
        observed = self.observed.get(str(cc.meta(pod).get("uid", "")))
        sandbox = observed.sandbox if observed else None
        return (sandbox.ip if sandbox else "") or self.config.node_ip

    # -- orphans -----------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        """Remove sandboxes of pods the API does not have (after a restart of the agent)."""
        while True:
            try:
                await self._remove_orphans()
            except (cri.RuntimeError_, errors.ClientError, OSError) as exc:
                log.warning("housekeeping failed: %s", exc)
            await self.clock.sleep(HOUSEKEEPING)

    async def _remove_orphans(self) -> None:
        for pod in self.pods.store.list():
            uid = mirrors.mirror_of(pod)
            if uid and uid not in self.static:
                log.info("deleting mirror pod %s of a static pod gone", cc.full_name(pod))
                await self.mirrors.remove({"metadata": {**cc.meta(pod), "uid": uid}})
        for sandbox in await self.runtime.list_pod_sandboxes():
            uid = sandbox.metadata.uid
            if uid in self.known or self.workers.busy(uid):
                continue
            log.info("removing sandbox %s of unknown pod %s", sandbox.id, uid)
            stub = {
                "metadata": {
                    "uid": uid,
                    "name": sandbox.metadata.name,
                    "namespace": sandbox.metadata.namespace,
                },
                "spec": {"terminationGracePeriodSeconds": _grace(sandbox)},
            }
            await self.sync.kill(stub, remove=True)

    # -- PodLookup ---------------------------------------------------------------------

    def _pod(self, namespace: str, name: str, uid: str = "") -> Obj | None:
        pod = self.pods.store.get_by_name(name, namespace)
        if pod is not None and mirrors.mirror_of(pod) in self.static:
            # a mirror: what runs is the static pod, under its own uid
            static_uid = mirrors.mirror_of(pod)
            if uid == cc.meta(pod).get("uid"):
                uid = static_uid
            pod = self.static[static_uid]
        if pod is None:
            pod = next(
                (
                    p
                    for p in self.known.values()
                    if cc.meta(p).get("name") == name and cc.meta(p).get("namespace") == namespace
                ),
                None,
            )
        if pod is not None and uid and cc.meta(pod).get("uid") != uid:
            return None
        return pod

    def container(
        self, namespace: str, pod: str, container: str, *, uid: str = ""
    ) -> podlookup.ContainerRef | None:
        found = self._pod(namespace, pod, uid)
        if found is None:
            return None
        spec = found.get("spec") or {}
        mains = spec.get("containers") or []
        if not container:
            if len(mains) != 1:
                return None
            container = str(mains[0].get("name", ""))
        specs = {
            c.get("name"): c
            for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []
        }
        if container not in specs:
            return None
        observed = self.observed.get(str(cc.meta(found).get("uid", "")))
        history = status.by_name(observed.containers if observed else []).get(container) or []
        if not history:
            return None
        latest = history[0]
        previous = history[1] if len(history) > 1 else None
        return podlookup.ContainerRef(
            container_id=latest.id,
            sandbox_id=latest.sandbox_id,
            log_path=Path(latest.log_path),
            previous_log_path=Path(previous.log_path) if previous and previous.log_path else None,
            running=latest.state is cri.ContainerState.RUNNING,
            tty=bool(specs[container].get("tty")),
            stdin=bool(specs[container].get("stdin")),
        )

    def container_names(self, namespace: str, pod: str) -> list[str]:
        found = self._pod(namespace, pod)
        spec = (found or {}).get("spec") or {}
        return [str(c.get("name", "")) for c in spec.get("containers") or []]

    def sandbox(self, namespace: str, pod: str, *, uid: str = "") -> str | None:
        found = self._pod(namespace, pod, uid)
        if found is None:
            return None
        observed = self.observed.get(str(cc.meta(found).get("uid", "")))
        if observed is None or observed.sandbox is None:
            return None
        return observed.sandbox.id


IGNORED_META = ("resourceVersion", "managedFields")


def _same_but_status(old: Obj, new: Obj) -> bool:
    """Whether two versions of a pod differ only in status (and the bookkeeping of a write)."""
    if old.get("spec") != new.get("spec"):
        return False
    meta_old, meta_new = cc.meta(old), cc.meta(new)
    keys = (meta_old.keys() | meta_new.keys()).difference(IGNORED_META)
    return all(meta_old.get(k) == meta_new.get(k) for k in keys)


def _grace(sandbox: cri.PodSandboxStatus) -> int:
    with contextlib.suppress(ValueError):
        return int(sandbox.annotations.get(cc.GRACE_PERIOD, "0"))
    return 0


def lookup(agent: Agent) -> podlookup.PodLookup:
    """The agent as the kubelet server sees it (mypy checks the protocol here)."""
    return agent
