"""Node IPAM: every Node gets its own ``spec.podCIDR`` out of the cluster CIDR.

Kubernetes' node-ipam-controller with the RangeAllocator (kube-controller-manager
``--allocate-node-cidrs --cluster-cidr=... --node-cidr-mask-size=...``): the cluster CIDR
(option ``cluster_cidr``, default 10.42.0.0/16) is cut into subnets of ``node_cidr_mask_size``
bits (default /24, 256 nodes). A ``CIDRSet`` tracks which are in use; it lives only in memory
and is rebuilt from the informer cache on the first reconcile, so a restarted controller never
hands out a CIDR a node already holds.

Reconcile (keyed by node name):

- a node that has ``spec.podCIDR`` keeps it: it is marked used (a CIDR outside the cluster
  CIDR, like the simulated nodes' own ``10.244+n``, is left alone);
- a node without one gets the next free subnet (round-robin from the last one handed out, as
  Kubernetes' cidrset does, so a freed CIDR is not reused at once), written with a merge patch
  that carries the node's ``resourceVersion`` (compare-and-swap: a concurrent change means a
  conflict and a retry from the fresh cache, never two CIDRs);
- a deleted node's CIDR is released.

When the set is exhausted the node gets a ``CIDRNotAvailable`` Event ("Node X status is now:
CIDRNotAvailable", as ``RecordNodeStatusChange`` writes it) and is looked at again later; a
refused patch gets ``CIDRAssignmentFailed``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kybern import client as kclient
from kybern.controllers import events, runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_NODE_MASK = 24
EXHAUSTED_RETRY = 30.0  # seconds; a node deletion frees a CIDR without touching this node
COMPONENT = "cidrAllocator"  # the event source Kubernetes' range allocator uses


class CIDRSetFull(Exception):
    """Every subnet of the cluster CIDR is in use."""


class CIDRSet:
    """The cluster CIDR cut into equal subnets, each used or free (Kubernetes' cidrset)."""

    def __init__(self, cluster_cidr: str, node_mask: int) -> None:
        self.cluster = ipaddress.IPv4Network(cluster_cidr, strict=False)
        if not self.cluster.prefixlen <= node_mask <= 30:
            raise ValueError(
                f"node CIDR mask /{node_mask} must be between the cluster CIDR's "
                f"/{self.cluster.prefixlen} and /30"
            )
        self.node_mask = node_mask
        self.size = 1 << (node_mask - self.cluster.prefixlen)
        self.used: set[int] = set()
        self.next_candidate = 0

    def allocate_next(self) -> ipaddress.IPv4Network:
        for step in range(self.size):
            index = (self.next_candidate + step) % self.size
            if index not in self.used:
                self.used.add(index)
                self.next_candidate = (index + 1) % self.size
                return self._subnet(index)
        raise CIDRSetFull(f"no free /{self.node_mask} left in {self.cluster}")

    def occupy(self, cidr: str) -> bool:
        """Mark ``cidr`` used; False if it is not one of this set's subnets."""
        index = self._index(cidr)
        if index is None:
            return False
        self.used.add(index)
        return True

    def release(self, cidr: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self.used.discard(index)

    def _subnet(self, index: int) -> ipaddress.IPv4Network:
        base = int(self.cluster.network_address) + (index << (32 - self.node_mask))
        return ipaddress.IPv4Network((base, self.node_mask))

    def _index(self, cidr: str) -> int | None:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(self.cluster):
            return None
        if network.prefixlen != self.node_mask:
            return None
        offset = int(network.network_address) - int(self.cluster.network_address)
        return offset >> (32 - self.node_mask)


def pod_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = [str(c) for c in spec.get("podCIDRs") or []]
    return cidrs or ([str(spec["podCIDR"])] if spec.get("podCIDR") else [])


class NodeIPAMController:
    name = "node-ipam-controller"
    workers = 1  # one allocation at a time: the CIDRSet is the single source of truth
    takes_options = True

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
        options: Mapping[str, object] | None = None,
    ) -> None:
        opts = options or {}
        self.client = client
        self.nodes = informers.informer_for("v1", "Node").store
        self.cidrs = CIDRSet(
            str(opts.get("cluster_cidr") or DEFAULT_CLUSTER_CIDR),
            int(str(opts.get("node_cidr_mask_size") or DEFAULT_NODE_MASK)),
        )
        self.recorder = events.Recorder(client, COMPONENT, clock=clock or informers.clock)
        self.assigned: dict[str, list[str]] = {}  # node name -> the CIDRs we count as its
        self.primed = False

    def watches(self) -> Sequence[runtime.Watch]:
        return [runtime.Watch("v1", "Node", runtime.own_key)]

    async def reconcile(self, key: str) -> runtime.Result:
        self._prime()
        node = self.nodes.get(key)
        if node is None:
            self._release(key)
            return runtime.Result()
        existing = pod_cidrs(node)
        if existing:
            self._occupy(key, existing)
            return runtime.Result()
        return await self._allocate(node)

    def _prime(self) -> None:
        """Mark every CIDR the cache shows in use, once, before the first allocation."""
        if self.primed:
            return
        for node in self.nodes.list():
            self._occupy(str(node["metadata"]["name"]), pod_cidrs(node))
        self.primed = True

    def _occupy(self, name: str, cidrs: list[str]) -> None:
        if self.assigned.get(name) == cidrs:
            return
        self._release(name)
        self.assigned[name] = [c for c in cidrs if self.cidrs.occupy(c)]

    def _release(self, name: str) -> None:
        for cidr in self.assigned.pop(name, []):
            self.cidrs.release(cidr)

    async def _allocate(self, node: Obj) -> runtime.Result:
        name = str(node["metadata"]["name"])
        try:
            cidr = str(self.cidrs.allocate_next())
        except CIDRSetFull as exc:
            log.warning("node %s: %s", name, exc)
            await self._status_event(node, "CIDRNotAvailable")
            return runtime.Result(requeue_after=EXHAUSTED_RETRY)
        patch = {
            "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        }
        try:
            await self.client.patch("v1", "Node", name, patch)
        except kclient.NotFound:
            self.cidrs.release(cidr)  # gone meanwhile; its delete event comes next
            return runtime.Result()
        except kclient.Conflict:
            self.cidrs.release(cidr)  # the cache was stale: retried from the fresh one
            raise
        except kclient.ClientError:
            self.cidrs.release(cidr)
            await self._status_event(node, "CIDRAssignmentFailed")
            raise
        self.assigned[name] = [cidr]
        log.info("node %s: podCIDR %s", name, cidr)
        return runtime.Result()

    async def _status_event(self, node: Obj, status: str) -> None:
        name = node["metadata"]["name"]
        await self.recorder.event(
            node, events.NORMAL, status, f"Node {name} status is now: {status}"
        )
