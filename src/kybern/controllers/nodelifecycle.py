"""Node lifecycle: node health from heartbeats, condition taints, rate-limited NoExecute taints.

Kubernetes' node lifecycle controller (``nodelifecycle`` in kube-controller-manager), one
reconcile per Node, repeated every ``monitor_period`` (node-monitor-period, 5 s):

1. Health. A node is alive while it heartbeats: its Lease in ``kube-node-lease`` gets a newer
   ``renewTime`` or its Ready condition a new ``lastHeartbeatTime``. As Kubernetes does, the
   controller stamps each observed change with its *own* clock (``probe``), so clock skew
   between machines does not matter. No heartbeat for ``grace_period`` (50 s;
   ``startup_grace_period`` 60 s for a node that never posted a Ready condition): every
   condition goes Unknown through ``nodes/status`` (Ready's reason ``NodeStatusUnknown``,
   "Kubelet stopped posting node status."), a ``NodeNotReady`` Event is recorded and the
   node's pods are marked not Ready.
2. NoSchedule taints from conditions (TaintNodesByCondition): Ready False -> not-ready,
   Unknown -> unreachable, memory/disk/pid pressure and network-unavailable when True, plus
   ``node.kubernetes.io/unschedulable`` when ``spec.unschedulable``; removed when the cause goes.
3. NoExecute taints (the taint eviction controller then evicts): Ready False -> not-ready,
   Unknown -> unreachable, decided on the Ready condition as observed *before* this pass
   (as Kubernetes does, so a node that just went Unknown waits one monitor period). A node
   already carrying the opposite taint swaps at once; a new taint waits for its zone's token
   bucket (``eviction_rate`` 0.1 nodes/s, burst 1; nodes first in, first out). Ready again:
   both taints go at once.
4. Zones (``topology.kubernetes.io/zone`` + region labels; unlabelled nodes share one zone).
   A zone is FullDisruption when none of its nodes is Ready, PartialDisruption when more than
   2 are not Ready and they are >= 55 % (``unhealthy_zone_threshold``): its rate becomes
   ``secondary_eviction_rate`` (0.01/s) above ``large_cluster_threshold`` (50) nodes, else 0.
   When *every* zone is fully disrupted the control plane's own connectivity is the likelier
   fault: all NoExecute taints are removed and none added; when that ends every node gets a
   fresh grace period.

A node first seen gets a ``RegisteredNode`` Event, a deleted one ``RemovingNode``, as in
Kubernetes. Zone health is kept incrementally (each reconcile records its node's Ready
status), primed from the whole node cache on the first reconcile, so one reconcile is O(1)
in cluster size.
"""

from __future__ import annotations

import collections
import copy
import datetime
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kybern import client as kclient
from kybern.client import store
from kybern.controllers import events, pods, runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
LEASE_NAMESPACE = "kube-node-lease"
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"

# condition type -> {status -> taint key}: the NoSchedule taints conditions imply
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": NOT_READY, "Unknown": UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
MANAGED_NO_SCHEDULE = {k for m in CONDITION_TAINTS.values() for k in m.values()} | {UNSCHEDULABLE}
# the conditions a silent node's controller turns Unknown (NetworkUnavailable is left alone)
UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

NORMAL = "Normal"
PARTIAL = "PartialDisruption"
FULL = "FullDisruption"


def fmt_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(node: Obj, type_: str) -> Obj | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def zone_key(node: Obj) -> str:
    """Kubernetes' GetZoneKey: ``region:\\x00:zone``, or "" for a node with neither label."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    zone = next((labels[k] for k in ZONE_LABELS if k in labels), "")
    region = next((labels[k] for k in REGION_LABELS if k in labels), "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def zone_state(ready: int, not_ready: int, threshold: float) -> str:
    """Kubernetes' ComputeZoneState."""
    if ready == 0 and not_ready > 0:
        return FULL
    if not_ready > 2 and not_ready / (ready + not_ready) >= threshold:
        return PARTIAL
    return NORMAL


def condition_taints(node: Obj) -> list[Obj]:
    """The NoSchedule taints the node's conditions and ``spec.unschedulable`` call for."""
    out = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(str(cond.get("type")), {}).get(str(cond.get("status")))
        if key:
            out.append({"key": key, "effect": "NoSchedule"})
    if (node.get("spec") or {}).get("unschedulable"):
        out.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
    return out


def has_taint(taints: Iterable[Obj], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints)


class TokenBucket:
    """client-go's token bucket limiter with burst 1, on a controller clock; rate 0 never
    admits. A swapped-in limiter starts full unless the old one was empty (SwapLimiter)."""

    def __init__(self, rate: float, clock: kclient.Clock) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = 1.0 if rate > 0 else 0.0
        self.stamp = clock.monotonic()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        if self.rate > 0:
            self.tokens = min(1.0, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def try_accept(self) -> bool:
        self._refill()
        if self.rate > 0 and self.tokens >= 1.0 - 1e-9:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def wait(self, position: int = 0) -> float | None:
        """Seconds until the ``position``-th waiter (0 = next) may go; None: never."""
        if self.rate <= 0:
            return None
        self._refill()
        return max(0.0, (position + 1 - self.tokens) / self.rate)

    def swap(self, rate: float) -> None:
        if rate == self.rate:
            return
        self._refill()
        empty = self.tokens < 1.0
        self.rate = rate
        self.tokens = 0.0 if rate <= 0 or empty else 1.0


@dataclass
class Health:
    """What the controller last saw of a node's heartbeats, and when (its own clock)."""

    probe: float
    heartbeat: str | None
    renew: datetime.datetime | None = None
    uid: str = ""


class Zones:
    """Per-zone node Ready statuses, zone states and NoExecute tainting queues."""

    def __init__(self, controller: NodeLifecycleController) -> None:
        self.c = controller
        self.node_zone: dict[str, str] = {}
        self.node_ready: dict[str, bool] = {}
        self.tally: dict[str, list[int]] = {}  # zone -> [ready, not ready]
        self.states: dict[str, str] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.queues: dict[str, collections.OrderedDict[str, None]] = {}
        self.all_full = False

    def record(self, name: str, zone: str, ready: bool | None) -> None:
        """``ready`` None: the node is gone or excluded from disruption checks. Keeps the
        per-zone (ready, not ready) counts current, so zone states cost O(zones)."""
        old = self.node_zone.pop(name, None)
        if old is not None:
            self._count(old, self.node_ready.pop(name), -1)
            if old != zone:
                self.queues.get(old, collections.OrderedDict()).pop(name, None)
        if ready is not None:
            self.node_zone[name] = zone
            self.node_ready[name] = ready
            self._count(zone, ready, +1)
        if zone not in self.buckets:
            self.buckets[zone] = TokenBucket(self.c.eviction_rate, self.c.clock)
            self.queues[zone] = collections.OrderedDict()

    def _count(self, zone: str, ready: bool, delta: int) -> None:
        pair = self.tally.setdefault(zone, [0, 0])
        pair[0 if ready else 1] += delta
        if pair == [0, 0]:
            del self.tally[zone]

    def counts(self) -> dict[str, tuple[int, int]]:
        """zone -> (ready nodes, not ready nodes)."""
        return {z: (p[0], p[1]) for z, p in self.tally.items()}

    def update_states(self) -> None:
        """Kubernetes' handleDisruption: zone states, their rates, full-disruption mode."""
        counts = self.counts()
        new = {z: zone_state(r, n, self.c.unhealthy_zone_threshold) for z, (r, n) in counts.items()}
        for gone in set(self.states) - set(new):
            del self.states[gone]
        all_full = bool(new) and all(s == FULL for s in new.values())
        was_full = self.all_full
        self.all_full = all_full
        if all_full:
            if not was_full:
                log.warning("all nodes are not Ready: entering master disruption mode")
            for zone in new:
                self.buckets[zone].swap(0)
            self.states.update(new)
            return
        if was_full:
            log.info("some nodes are Ready again: exiting master disruption mode")
            self.c.disruption_ended = self.c.clock.monotonic()
        for zone, state in new.items():
            if was_full or self.states.get(zone) != state:
                self.buckets[zone].swap(self.rate_for(state, sum(counts[zone])))
                self.states[zone] = state

    def rate_for(self, state: str, size: int) -> float:
        if state == PARTIAL:
            return self.c.secondary_eviction_rate if size > self.c.large_cluster_threshold else 0
        return self.c.eviction_rate  # Normal, and a FullDisruption zone among healthy ones

    def try_taint(self, name: str, zone: str) -> float | None:
        """Queue the node for a NoExecute taint; 0.0 when it may be tainted now, else the
        seconds to wait (None: not while the zone's rate is 0)."""
        queue = self.queues[zone]
        queue.setdefault(name, None)
        position = list(queue).index(name)
        bucket = self.buckets[zone]
        if position == 0 and bucket.try_accept():
            del queue[name]
            return 0.0
        return bucket.wait(position)

    def refund(self, name: str, zone: str) -> None:
        """A taint write failed (a stale cache, typically): give the token back and put
        the node first in line again."""
        bucket = self.buckets[zone]
        if bucket.rate > 0:
            bucket.tokens = min(1.0, bucket.tokens + 1.0)
        queue = self.queues[zone]
        queue[name] = None
        queue.move_to_end(name, last=False)

    def dequeue(self, name: str) -> None:
        for queue in self.queues.values():
            queue.pop(name, None)


class NodeLifecycleController:
    name = "nodelifecycle"
    workers = 4

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
        monitor_period: float = 5.0,
        grace_period: float = 50.0,
        startup_grace_period: float = 60.0,
        eviction_rate: float = 0.1,
        secondary_eviction_rate: float = 0.01,
        large_cluster_threshold: int = 50,
        unhealthy_zone_threshold: float = 0.55,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.nodes = informers.informer_for("v1", "Node").store
        self.leases = informers.informer_for("coordination.k8s.io/v1", "Lease").store
        self.pods = informers.informer_for("v1", "Pod").store
        self.recorder = events.Recorder(client, "node-controller", clock=self.clock)
        self.monitor_period = monitor_period
        self.grace_period = grace_period
        self.startup_grace_period = startup_grace_period
        self.eviction_rate = eviction_rate
        self.secondary_eviction_rate = secondary_eviction_rate
        self.large_cluster_threshold = large_cluster_threshold
        self.unhealthy_zone_threshold = unhealthy_zone_threshold
        self.health: dict[str, Health] = {}
        self.zones = Zones(self)
        self.disruption_ended = float("-inf")
        self._primed = False

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "Node", runtime.own_key),
            runtime.Watch("coordination.k8s.io/v1", "Lease", _lease_node),
        ]

    async def reconcile(self, key: str) -> runtime.Result:
        cached = self.nodes.get(key)
        if cached is None:
            await self._forget(key)
            return runtime.Result()
        self._prime()
        node = cached  # shared with the informer: only _mark_unknown changes it, on a copy
        if key not in self.health:
            await self._node_event(key, node["metadata"].get("uid", ""), "RegisteredNode")
        observed, grace = self._observe(node)
        if self.clock.monotonic() > self.health[key].probe + grace:
            node = await self._mark_unknown(node, observed)
        current = condition(node, "Ready")
        excluded = EXCLUDE_DISRUPTION in ((node["metadata"].get("labels")) or {})
        ready = None if excluded else (current or {}).get("status") == "True"
        self.zones.record(key, zone_key(node), ready)
        self.zones.update_states()
        if observed.get("status") == "True" and (current or {}).get("status") != "True":
            await self._node_not_ready(node)
        wait = await self._sync_taints(node, str(observed.get("status")))
        if wait is None:
            return runtime.Result(requeue_after=self.monitor_period)
        return runtime.Result(requeue_after=min(self.monitor_period, max(wait, 0.001)))

    async def _forget(self, name: str) -> None:
        gone = self.health.pop(name, None)
        self.zones.record(name, "", None)
        self.zones.dequeue(name)
        self.zones.update_states()
        if gone is not None:
            await self._node_event(name, gone.uid, "RemovingNode")

    async def _node_event(self, name: str, uid: str, reason: str) -> None:
        """Kubernetes' RegisteredNode / RemovingNode Events ("... in/from Controller")."""
        preposition = "in" if reason == "RegisteredNode" else "from"
        verb = "Registered" if reason == "RegisteredNode" else "Removing"
        ref = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": uid}}
        message = f"{verb} Node {name} {preposition} Controller"
        await self.recorder.event(ref, events.NORMAL, reason, message)

    # -- health ------------------------------------------------------------------------

    def _prime(self) -> None:
        """Zone health from the whole cache once, so early reconciles see the real picture."""
        if self._primed:
            return
        self._primed = True
        for node in self.nodes.list():
            labels = node["metadata"].get("labels") or {}
            ready = (condition(node, "Ready") or {}).get("status") == "True"
            self.zones.record(
                node["metadata"]["name"],
                zone_key(node),
                None if EXCLUDE_DISRUPTION in labels else ready,
            )

    def _observe(self, node: Obj) -> tuple[Obj, float]:
        """Update the node's Health from its status and Lease; -> (the Ready condition as
        observed, the grace period it is entitled to)."""
        name = node["metadata"]["name"]
        now = self.clock.monotonic()
        ready = condition(node, "Ready")
        health = self.health.get(name)
        if ready is None:
            observed: Obj = {"type": "Ready", "status": "Unknown"}
            grace = self.startup_grace_period
            if health is None:
                health = Health(probe=self._created(node), heartbeat=None)
        else:
            observed = dict(ready)
            grace = self.grace_period
            beat = ready.get("lastHeartbeatTime")
            if health is None or health.heartbeat is None or health.heartbeat != beat:
                health = Health(probe=now, heartbeat=beat, renew=health.renew if health else None)
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
        renew = pods.parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
        if renew is not None and (health.renew is None or health.renew < renew):
            health.renew = renew
            health.probe = now
        health.probe = max(health.probe, self.disruption_ended)
        health.uid = node["metadata"].get("uid", "")
        self.health[name] = health
        return observed, grace

    def _created(self, node: Obj) -> float:
        """The node's creationTimestamp on the monotonic clock (now when unknown)."""
        created = pods.parse_time(node["metadata"].get("creationTimestamp"))
        now = self.clock.monotonic()
        if created is None:
            return now
        return now - max(0.0, (self.clock.now() - created).total_seconds())

    async def _mark_unknown(self, node: Obj, observed: Obj) -> Obj:
        """Every condition Unknown (the kubelet is silent); written only when Ready changes."""
        stamp = fmt_time(self.clock.now())
        node = copy.deepcopy(node)  # the informer's object is shared
        status = node.setdefault("status", {})
        conditions = status.setdefault("conditions", [])
        for type_ in UNKNOWN_CONDITIONS:
            cond = condition(node, type_)
            if cond is None:
                conditions.append(
                    {
                        "type": type_,
                        "status": "Unknown",
                        "reason": "NodeStatusNeverUpdated",
                        "message": "Kubelet never posted node status.",
                        "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                        "lastTransitionTime": stamp,
                    }
                )
            elif cond.get("status") != "Unknown":
                cond.update(
                    status="Unknown",
                    reason="NodeStatusUnknown",
                    message="Kubelet stopped posting node status.",
                    lastTransitionTime=stamp,
                )
        if condition(node, "Ready") == observed:
            return node
        name = node["metadata"]["name"]
        log.info("node %s: no heartbeat for the grace period; conditions now Unknown", name)
        patch = {
            "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
            "status": {"conditions": conditions},
        }
        return await self.client.patch("v1", "Node", name, patch, subresource="status")

    async def _node_not_ready(self, node: Obj) -> None:
        """The NodeNotReady Event, and the node's pods marked not Ready (MarkPodsNotReady)."""
        name = node["metadata"]["name"]
        message = f"Node {name} status is now: NodeNotReady"
        involved = {**node, "apiVersion": "v1", "kind": "Node"}
        await self.recorder.event(involved, events.NORMAL, "NodeNotReady", message)
        for pod in self.pods.by_index(store.NODE, name):
            await self._mark_pod_not_ready(pod)

    async def _mark_pod_not_ready(self, pod: Obj) -> None:
        conditions = copy.deepcopy((pod.get("status") or {}).get("conditions") or [])
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") == "False":
            return
        ready.update(status="False", lastTransitionTime=fmt_time(self.clock.now()))
        meta = pod["metadata"]
        try:
            await self.client.patch(
                "v1",
                "Pod",
                meta["name"],
                {"status": {"conditions": conditions}},
                namespace=meta.get("namespace", ""),
                subresource="status",
            )
        except kclient.NotFound:
            return
        except kclient.ClientError as exc:  # best effort, as in Kubernetes: the pod's kubelet
            log.warning("could not mark pod %s not ready: %s", meta["name"], exc)
            return
        involved = {**pod, "apiVersion": "v1", "kind": "Pod"}
        await self.recorder.event(involved, events.WARNING, "NodeNotReady", "Node is not ready")

    # -- taints ------------------------------------------------------------------------

    async def _sync_taints(self, node: Obj, observed: str) -> float | None:
        """Write the taints this controller owns; -> seconds until a queued NoExecute taint
        may go on (None when nothing waits)."""
        taints = [dict(t) for t in (node.get("spec") or {}).get("taints") or []]
        stamp = fmt_time(self.clock.now())
        kept = [
            t
            for t in taints
            if t.get("effect") != "NoSchedule" or t["key"] not in MANAGED_NO_SCHEDULE
        ]
        for wanted in condition_taints(node):
            old = next((t for t in taints if has_taint([t], wanted["key"], "NoSchedule")), None)
            kept.append(old or {**wanted, "timeAdded": stamp})
        wanted_execute, wait, took_token = self._no_execute(node, observed)
        for key in (NOT_READY, UNREACHABLE):
            present = has_taint(kept, key, "NoExecute")
            if key != wanted_execute and present:
                kept = [t for t in kept if not (t["key"] == key and t["effect"] == "NoExecute")]
            elif key == wanted_execute and not present:
                kept.append({"key": key, "effect": "NoExecute", "timeAdded": stamp})
        if _taint_set(kept) != _taint_set(taints):
            patch = {
                "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
                "spec": {"taints": kept},
            }
            try:
                await self.client.patch("v1", "Node", node["metadata"]["name"], patch)
            except Exception:
                if took_token:
                    self.zones.refund(node["metadata"]["name"], zone_key(node))
                raise
        return wait

    def _no_execute(self, node: Obj, observed: str) -> tuple[str | None, float | None, bool]:
        """-> (the NoExecute taint key the node should carry, seconds to wait for it,
        whether a token of the zone's rate was spent on it)."""
        name = node["metadata"]["name"]
        taints = (node.get("spec") or {}).get("taints") or []
        want = {"False": NOT_READY, "Unknown": UNREACHABLE}.get(observed)
        if want is None or self.zones.all_full:
            self.zones.dequeue(name)
            return None, None, False
        if has_taint(taints, want, "NoExecute"):
            return want, None, False
        other = UNREACHABLE if want == NOT_READY else NOT_READY
        if has_taint(taints, other, "NoExecute"):
            self.zones.dequeue(name)
            return want, None, False  # a swap needs no token
        wait = self.zones.try_taint(name, zone_key(node))
        if wait == 0.0:
            log.info("node %s: Ready is %s; adding the %s:NoExecute taint", name, observed, want)
            return want, None, True
        return None, wait, False


def _taint_set(taints: Iterable[Obj]) -> set[tuple[str, str, str]]:
    return {(str(t.get("key")), str(t.get("value") or ""), str(t.get("effect"))) for t in taints}


def _lease_node(lease: Obj) -> list[str]:
    meta = lease.get("metadata") or {}
    return [str(meta.get("name"))] if meta.get("namespace") == LEASE_NAMESPACE else []
