"""Simulated nodes: kubelets that run nothing but report everything.

``kybern server --simulated-nodes N`` (or ``kybern simulate --server URL --nodes N``) runs a
:class:`Fleet` of N nodes in one process. Each node registers a Node (kubelet's labels,
capacity, conditions, nodeInfo; InternalIP from TEST-NET-1 ``192.0.2.0/24`` or loopback
``127.1.0.0/16`` beyond 254 nodes, never a routable address; podCIDR ``10.<244+n/256>.<n%256>.0/24``),
keeps its Lease in ``kube-node-lease`` renewed every ``heartbeat`` seconds and posts node
status as often, and moves the pods bound to it through kubelet's status transitions:

- Pending -> (Init: one status per init container, each Completed in turn) -> Running, every
  container running, started and ready; hostIP, podIP, startTime; imageID ``sim://<image>``,
  containerID ``sim://<pod uid>/<container>``.
- Job-like pods (restartPolicy Never/OnFailure) finish after ``job_duration`` (annotation
  ``kybern.io/simulate-duration``, a Go duration such as ``"2s"`` or ``"500ms"``) with exit code 0
  (annotation ``kybern.io/simulate-exit-code``): 0 -> Succeeded; non-zero -> Failed for Never,
  a container restart (restartCount + 1, lastState terminated) for OnFailure.
- A pod being deleted: its containers terminate (Completed, exit 0; Error with the annotated
  code for a Job pod set to fail), the pod reaches its terminal phase and is deleted with
  gracePeriodSeconds=0 at once: the simulation does not wait out the grace period (nothing
  runs that would need it).

Pausing a node (:meth:`Fleet.pause`, or the Node annotation ``kybern.io/simulate-paused:
"true"``) stops its heartbeats, node status and pod status updates, as if the machine died;
resuming picks everything up again. One pod informer (the process' shared one, indexed by
``spec.nodeName``) serves every simulated node; pod work goes through one rate-limited queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kybern import client as kclient
from kybern.client import clock as clock_
from kybern.client import errors, store, workqueue
from kybern.kubelet import nodestatus, podstatus

Obj = dict[str, Any]
log = logging.getLogger(__name__)

PAUSED_ANNOTATION = "kybern.io/simulate-paused"
EXIT_CODE_ANNOTATION = "kybern.io/simulate-exit-code"
DURATION_ANNOTATION = "kybern.io/simulate-duration"
INSTANCE_TYPE = "simulated"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class Config:
    nodes: int = 0
    prefix: str = "sim-node-"
    cpu: str = "4"
    memory: str = "16Gi"
    pods: str = "110"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Obj] = field(default_factory=list)
    heartbeat: float = 10.0  # Lease renewal period, seconds
    # Node status is only re-posted when unchanged after kubelet's nodeStatusReportFrequency
    # (5 min); the Lease is the heartbeat the node lifecycle controller watches.
    status_interval: float = 300.0
    stagger: bool = True  # spread the nodes' first heartbeats over one period
    job_duration: float = 1.0  # how long a Job-like pod runs unless annotated
    workers: int = 16
    register_concurrency: int = 32

    @classmethod
    def from_options(cls, options: Mapping[str, object]) -> Config:
        """``simulated_nodes``, ``simulated_node_cpu`` ... as `kybern server` collects them."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for key, value in options.items():
            if key == "simulated_nodes":
                values["nodes"] = value
            elif key.startswith("simulated_node_") and key[15:] in known:
                values[key[15:]] = value
        return cls(**values)  # type: ignore[arg-type]


def parse_duration(text: str) -> float | None:
    """A Go duration (``"1m30s"``, ``"500ms"``) in seconds; None when it is not one."""
    text = text.strip()
    if text in ("0", ""):
        return 0.0 if text else None
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` -> dict (ValueError on a malformed entry)."""
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"label {item!r} is not key=value")
        out[key] = value
    return out


def parse_taints(text: str) -> list[Obj]:
    """``k=v:Effect,k:Effect`` -> taints (ValueError on a malformed entry)."""
    out = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        kv, sep, effect = item.rpartition(":")
        if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError(
                f"taint {item!r} is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute"
            )
        key, _, value = kv.partition("=")
        taint: Obj = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        out.append(taint)
    return out


def internal_ip(index: int) -> str:
    if index < 254:
        return f"192.0.2.{index + 1}"
    return f"127.1.{(index // 254) % 256}.{index % 254 + 1}"


def pod_cidr_prefix(index: int) -> str:
    return f"10.{(244 + index // 256) % 256}.{index % 256}"


class SimulatedNode:
    """One node: its registration, heartbeat state, pause flags and pod IPs."""

    def __init__(self, index: int, config: Config) -> None:
        self.index = index
        self.name = f"{config.prefix}{index}"
        prefix = pod_cidr_prefix(index)
        self.spec = nodestatus.NodeSpec(
            name=self.name,
            internal_ip=internal_ip(index),
            pod_cidr=f"{prefix}.0/24",
            cpu=config.cpu,
            memory=config.memory,
            pods=config.pods,
            labels={"node.kubernetes.io/instance-type": INSTANCE_TYPE, **config.labels},
            annotations={nodestatus.SIMULATED_ANNOTATION: "true"},
            taints=list(config.taints),
        )
        self._prefix = prefix
        self.uid = ""
        self.paused_locally = False
        self.paused_by_annotation = False
        self.lease_renewals = 0
        self.status_updates = 0
        self.lease: Obj | None = None  # the last Lease written, renewed by the next PUT
        self._ips: dict[str, str] = {}  # pod uid -> IP
        self._free = list(range(254, 1, -1))  # .2 .. .254, popped from the end

    @property
    def paused(self) -> bool:
        return self.paused_locally or self.paused_by_annotation

    def pod_ip(self, uid: str, current: str = "") -> str:
        ip = self._ips.get(uid)
        if ip is None:
            if current.startswith(self._prefix + "."):
                ip = current
                with contextlib.suppress(ValueError):
                    self._free.remove(int(current.rsplit(".", 1)[1]))
            else:
                host = self._free.pop() if self._free else 1
                ip = f"{self._prefix}.{host}"
            self._ips[uid] = ip
        return ip

    def release(self, uid: str) -> None:
        ip = self._ips.pop(uid, None)
        if ip is not None:
            self._free.append(int(ip.rsplit(".", 1)[1]))


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _job_like(pod: Obj) -> bool:
    return (pod.get("spec") or {}).get("restartPolicy") in ("Never", "OnFailure")


def _exit_code(pod: Obj) -> int:
    text = (_meta(pod).get("annotations") or {}).get(EXIT_CODE_ANNOTATION, "0")
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def _all_running(pod: Obj) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    names = {c.get("name") for c in (pod.get("spec") or {}).get("containers") or []}
    running = {s.get("name") for s in statuses if "running" in (s.get("state") or {})}
    return bool(names) and names <= running


def _inits_done(pod: Obj) -> tuple[int, bool]:
    """(how many init containers Completed, whether the next one is running)."""
    statuses = (pod.get("status") or {}).get("initContainerStatuses") or []
    done = 0
    for s in statuses:
        state = s.get("state") or {}
        if "terminated" in state:
            done += 1
        else:
            return done, "running" in state
    return done, False


class Fleet:
    """N simulated nodes sharing one client, one pod informer and one work queue."""

    def __init__(
        self,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        config: Config,
        *,
        clock: clock_.Clock = clock_.REAL,
    ) -> None:
        self.client = client
        self.informers = informers
        self.config = config
        self.clock = clock
        self.nodes = {n.name: n for n in (SimulatedNode(i, config) for i in range(config.nodes))}
        self.queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue(
            "simulated-pods", clock=clock
        )
        self.pods = informers.informer_for("v1", "Pod")
        self.node_informer = informers.informer_for("v1", "Node")
        self._started: dict[str, float] = {}  # pod uid -> monotonic start of its containers
        # pod uid -> the last stage written: a sync on a cache that has not seen our own
        # write yet must not write the same stage again (kubelet's status manager does so too)
        self._sent: dict[str, str] = {}
        self.ready = asyncio.Event()  # set once every node is registered and caches synced

    # -- control -----------------------------------------------------------------------

    def pause(self, name: str) -> None:
        self.nodes[name].paused_locally = True

    def resume(self, name: str) -> None:
        node = self.nodes[name]
        node.paused_locally = False
        if not node.paused:
            self._enqueue_node(name)

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Register every node, then heartbeat and sync pods until cancelled."""
        await self._register_all()
        self.pods.add_handler(
            kclient.FuncHandler(
                add=self._on_pod, update=lambda _o, n: self._on_pod(n), delete=self._on_pod_delete
            )
        )
        self.node_informer.add_handler(
            kclient.FuncHandler(add=self._on_node, update=lambda _o, n: self._on_node(n))
        )
        self.informers.start()
        await asyncio.gather(self.pods.wait_for_sync(), self.node_informer.wait_for_sync())
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.config.workers)]
        tasks += [asyncio.create_task(self._heartbeat(n)) for n in self.nodes.values()]
        self.ready.set()
        log.info("simulated nodes: %d registered", len(self.nodes))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.queue.shutdown()

    async def _register_all(self) -> None:
        limit = asyncio.Semaphore(self.config.register_concurrency)

        async def one(node: SimulatedNode) -> None:
            async with limit:
                await self.register(node)

        await asyncio.gather(*(one(n) for n in self.nodes.values()))

    async def register(self, node: SimulatedNode) -> None:
        """Create the Node (or adopt an existing one) with status, then its Lease."""
        now = self.clock.now()
        body = nodestatus.node(node.spec, now)
        try:
            created = await self.client.create(body)
        except errors.AlreadyExists:
            patch = {"metadata": {"labels": body["metadata"]["labels"]}}
            created = await self.client.patch("v1", "Node", node.name, patch)
        node.uid = _meta(created).get("uid") or ""
        await self._post_status(node, previous=created.get("status"))
        await self._renew_lease(node, create=True)

    # -- heartbeats --------------------------------------------------------------------

    async def _heartbeat(self, node: SimulatedNode) -> None:
        """Renew the Lease every ``heartbeat`` s and post status every ``status_interval`` s;
        with ``stagger`` the nodes start spread over one period, so N nodes make a steady
        N/period writes per second rather than a burst of N every period."""
        period = self.config.heartbeat
        if self.config.stagger and self.nodes:
            await self.clock.sleep(period * node.index / len(self.nodes))
        last_status = self.clock.monotonic()
        while True:
            await self.clock.sleep(period)
            if node.paused:
                continue
            try:
                await self._renew_lease(node)
                cached = self.node_informer.store.get(node.name)
                due = self.clock.monotonic() - last_status >= self.config.status_interval
                # as kubelet: a status that differs from the API's copy (e.g. the node
                # lifecycle controller marked it Unknown while paused) is posted at once
                if due or not _ready(cached):
                    await self._post_status(node, previous=(cached or {}).get("status"))
                    last_status = self.clock.monotonic()
            except errors.NotFound:
                log.warning("simulated node %s was deleted; registering it again", node.name)
                await self.register(node)
            except (errors.ClientError, OSError) as exc:
                log.warning("simulated node %s: heartbeat failed: %s", node.name, exc)

    async def _renew_lease(self, node: SimulatedNode, *, create: bool = False) -> None:
        now = self.clock.now()
        if create:
            with contextlib.suppress(errors.AlreadyExists):
                node.lease = await self.client.create(
                    nodestatus.lease(node.name, now, node_uid=node.uid)
                )
                node.lease_renewals += 1
                return
        spec = {"holderIdentity": node.name, "renewTime": nodestatus.micro_time(now)}
        if node.lease is not None:
            # As kubelet: PUT the last Lease written with a new renewTime (cheap for the
            # server); only when that fails (changed or gone meanwhile) patch or re-create.
            renewed = {**node.lease, "spec": {**(node.lease.get("spec") or {}), **spec}}
            try:
                node.lease = await self.client.update(renewed)
                node.lease_renewals += 1
                return
            except (errors.Conflict, errors.NotFound):
                node.lease = None
        try:
            node.lease = await self.client.patch(
                "coordination.k8s.io/v1",
                "Lease",
                node.name,
                {"spec": spec},
                namespace=nodestatus.LEASE_NAMESPACE,
            )
        except errors.NotFound:
            node.lease = await self.client.create(
                nodestatus.lease(node.name, now, node_uid=node.uid)
            )
        node.lease_renewals += 1

    async def _post_status(self, node: SimulatedNode, *, previous: Obj | None) -> None:
        status = nodestatus.status(node.spec, self.clock.now(), previous=previous)
        await self.client.patch("v1", "Node", node.name, {"status": status}, subresource="status")
        node.status_updates += 1

    def _on_node(self, obj: Obj) -> None:
        node = self.nodes.get(_meta(obj).get("name") or "")
        if node is None:
            return
        annotations = _meta(obj).get("annotations") or {}
        was = node.paused
        node.paused_by_annotation = annotations.get(PAUSED_ANNOTATION) == "true"
        if was and not node.paused:
            self._enqueue_node(node.name)

    def _enqueue_node(self, name: str) -> None:
        for key in self.pods.store.index_keys(store.NODE, name):
            self.queue.add(key)

    # -- pods --------------------------------------------------------------------------

    def _on_pod(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") in self.nodes:
            self.queue.add(store.key_of(pod))

    def _on_pod_delete(self, item: Obj | kclient.DeletedFinalStateUnknown) -> None:
        pod = kclient.object_of(item)
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        uid = _meta(pod).get("uid") or ""
        self._started.pop(uid, None)
        self._sent.pop(uid, None)
        if node is not None:
            node.release(uid)

    async def _worker(self) -> None:
        async for key in self.queue:
            try:
                await self.sync_pod(key)
                self.queue.forget(key)
            except errors.NotFound:
                self.queue.forget(key)
            except Exception as exc:
                log.warning("simulated pod %s: %s; retrying", key, exc)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    async def sync_pod(self, key: str) -> None:
        """Level-based: move the cached pod one step towards what its node would report."""
        pod = self.pods.store.get(key)
        if pod is None:
            return
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if node is None or node.paused:
            return
        phase = (pod.get("status") or {}).get("phase")
        if _meta(pod).get("deletionTimestamp"):
            await self._terminate(pod, phase)
        elif phase in ("Succeeded", "Failed"):
            return
        elif not _all_running(pod):
            await self._start(key, pod, node)
        elif _job_like(pod):
            await self._maybe_finish(key, pod)

    async def _start(self, key: str, pod: Obj, node: SimulatedNode) -> None:
        meta = _meta(pod)
        uid = meta.get("uid") or ""
        where = podstatus.Placement(
            node.spec.internal_ip, node.pod_ip(uid, (pod.get("status") or {}).get("podIP") or "")
        )
        now = nodestatus.rfc3339(self.clock.now())
        inits = (pod.get("spec") or {}).get("initContainers") or []
        done, running = _inits_done(pod)
        if inits and done < len(inits):
            step = done + 1 if running else done
            if step < len(inits):
                if self._sent.get(uid) != f"init-{step}":
                    status = podstatus.initializing(pod, where, now, done=step)
                    await self._patch_status(pod, status)
                    self._sent[uid] = f"init-{step}"
                return
        if self._sent.get(uid) == "running":
            return
        await self._patch_status(pod, podstatus.running_status(pod, where, now))
        self._sent[uid] = "running"
        self._started[uid] = self.clock.monotonic()
        if _job_like(pod):
            self.queue.add_after(key, self._duration(pod))

    async def _maybe_finish(self, key: str, pod: Obj) -> None:
        uid = _meta(pod).get("uid") or ""
        now = self.clock.monotonic()
        started = self._started.setdefault(uid, now)
        remaining = started + self._duration(pod) - now
        if remaining > 0:
            self.queue.add_after(key, remaining)
            return
        code = _exit_code(pod)
        stamp = nodestatus.rfc3339(self.clock.now())
        if code != 0 and (pod.get("spec") or {}).get("restartPolicy") == "OnFailure":
            await self._patch_status(pod, podstatus.restarted_status(pod, stamp, exit_code=code))
            self._started[uid] = now
            self.queue.add_after(key, self._duration(pod))
            return
        if self._sent.get(uid) != "finished":
            await self._patch_status(pod, podstatus.finished_status(pod, stamp, exit_code=code))
            self._sent[uid] = "finished"

    async def _terminate(self, pod: Obj, phase: str | None) -> None:
        meta = _meta(pod)
        uid = meta.get("uid") or ""
        if phase not in ("Succeeded", "Failed") and self._sent.get(uid) != "finished":
            code = _exit_code(pod) if _job_like(pod) else 0
            stamp = nodestatus.rfc3339(self.clock.now())
            await self._patch_status(pod, podstatus.finished_status(pod, stamp, exit_code=code))
            self._sent[uid] = "finished"
        await self.client.delete(
            "v1",
            "Pod",
            meta.get("name") or "",
            namespace=meta.get("namespace") or "",
            grace_period_seconds=0,
            preconditions={"uid": meta.get("uid") or ""},
        )

    def _duration(self, pod: Obj) -> float:
        text = (_meta(pod).get("annotations") or {}).get(DURATION_ANNOTATION)
        parsed = parse_duration(str(text)) if text is not None else None
        return self.config.job_duration if parsed is None else parsed

    async def _patch_status(self, pod: Obj, status: Obj) -> None:
        meta = _meta(pod)
        await self.client.patch(
            "v1",
            "Pod",
            meta.get("name") or "",
            {"status": status},
            namespace=meta.get("namespace") or "",
            subresource="status",
        )


async def run(
    client: kclient.Client,
    informers: kclient.SharedInformerFactory,
    config: Config,
    *,
    clock: clock_.Clock = clock_.REAL,
) -> None:
    """Run ``config.nodes`` simulated nodes until cancelled."""
    if config.nodes <= 0:
        return
    await Fleet(client, informers, config, clock=clock).run()


async def run_standalone(
    config: Config, *, kubeconfig: str, server: str = "", context: str | None = None
) -> None:
    """`kybern simulate`: the fleet in its own process, talking HTTPS to a server."""
    transport = await kclient.RESTTransport.from_kubeconfig(
        kubeconfig, context=context, user_agent="kybern-simulate"
    )
    if server:
        transport.config = dataclasses.replace(transport.config, server=server.rstrip("/"))
    client = kclient.Client(transport)
    informers = kclient.SharedInformerFactory(client)
    try:
        await run(client, informers, config)
    finally:
        await informers.stop()
        await client.close()


def _ready(node: Obj | None) -> bool:
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
