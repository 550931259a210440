"""The service proxy component (kube-proxy's place in every node agent).

:func:`run` watches Services and EndpointSlices (and this node's Node object for its
addresses when none are given) through the process' shared informers. Any change marks the
state dirty; the sync loop waits at least ``min_sync_period`` between syncs (kube-proxy's
minSyncPeriod: a burst of endpoint changes becomes one sync), computes the rule set
(:func:`kybern.proxy.rules.compute`) and applies it through the backend, which only touches
what changed. Every ``sync_period`` it re-applies even without events (a no-op when nothing
changed), and it retries a failed sync after ``min_sync_period``.

Modes: ``nftables`` (default where ``nft`` works), ``iptables`` (where ``iptables-restore``
works), ``userspace`` (everywhere else, e.g. rootless and process-runtime clusters; see
:mod:`kybern.proxy.userspace` for where it listens). Starting in one kernel mode removes the
other kernel mode's leftovers. A restart re-syncs fully and atomically replaces kybern's own
table/chains: established connections keep their conntrack NAT entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from kybern import client as kclient
from kybern.client import informer as informer_
from kybern.proxy import backend, iptables, nftables, rules, userspace

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MODES = ("nftables", "iptables", "userspace")
MIN_SYNC_PERIOD = 0.1
SYNC_PERIOD = 30.0
NODE_ADDRESS_TYPES = ("InternalIP", "ExternalIP")
SLICE_INDEX = "kybern.proxy/service"


def _slice_index(obj: Obj) -> list[str]:
    key = rules.service_key(obj)
    return [key] if key else []


def detect_mode() -> str:
    """The best mode this process can use (probing the tools needs CAP_NET_ADMIN)."""
    probes = (
        ("nftables", ["nft", "list", "tables"]),
        ("iptables", ["iptables-save", "-t", "nat"]),
    )
    for mode, argv in probes:
        if shutil.which(argv[0]) is None:
            continue
        probe = subprocess.run(argv, capture_output=True, check=False, timeout=10)
        if probe.returncode == 0:
            return mode
    return "userspace"


def make_backend(mode: str, **userspace_options: Any) -> backend.Backend:
    if mode == "nftables":
        return nftables.NftablesBackend()
    if mode == "iptables":
        return iptables.IptablesBackend()
    if mode == "userspace":
        return userspace.UserspaceBackend(**userspace_options)
    raise ValueError(f"unknown proxy mode {mode!r}: one of {', '.join(MODES)}")


@dataclass
class Metrics:
    syncs: int = 0
    failures: int = 0
    last_result: str = ""
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=1000))  # seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.durations)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Proxier:
    """Keeps one backend in step with the Services and EndpointSlices in the caches."""

    def __init__(
        self,
        informers: kclient.SharedInformerFactory,
        proxy_backend: backend.Backend,
        *,
        node_name: str,
        node_ips: tuple[str, ...] | None = None,
        cluster_cidr: str = "",
        min_sync_period: float = MIN_SYNC_PERIOD,
        sync_period: float = SYNC_PERIOD,
    ) -> None:
        self.backend = proxy_backend
        self.node_name = node_name
        self.node_ips = node_ips
        self.cluster_cidr = cluster_cidr
        self.min_sync_period = min_sync_period
        self.sync_period = sync_period
        self.metrics = Metrics()
        self.ruleset = rules.RuleSet()
        self._dirty = asyncio.Event()
        self._dirty_services: set[str] = set()
        self._ports: dict[str, tuple[str, ...]] = {}  # service key -> its ServicePort keys
        self.services = informers.informer_for("v1", "Service")
        self.slices = informers.informer_for("discovery.k8s.io/v1", "EndpointSlice")
        self.slices.add_indexer(SLICE_INDEX, _slice_index)
        self.nodes = informers.informer_for("v1", "Node") if node_ips is None else None
        handler = informer_.FuncHandler(
            add=self._changed,
            update=self._updated,
            delete=lambda obj: self._changed(informer_.object_of(obj)),
        )
        self.services.add_handler(handler)
        self.slices.add_handler(handler)
        if self.nodes is not None:
            self.nodes.add_handler(
                informer_.FuncHandler(
                    add=lambda _o: self.mark_dirty(), update=lambda _o, _n: self.mark_dirty()
                )
            )

    def _changed(self, obj: Obj) -> None:
        key = rules.service_key(obj)
        if key:
            self._dirty_services.add(key)
            self._dirty.set()

    def _updated(self, old: Obj, new: Obj) -> None:
        self._changed(old)  # an EndpointSlice may have moved to another service
        self._changed(new)

    def mark_dirty(self) -> None:
        self._dirty.set()

    def compute(self) -> rules.RuleSet:
        """The rule set, recomputing only the services changed since the last call."""
        dirty, self._dirty_services = self._dirty_services, set()
        if not self._ports and not self.ruleset.services:
            dirty = {rules.service_key(svc) for svc in self.services.store.list()}
        ports = dict(self.ruleset.services)
        for key in dirty:
            for old in self._ports.pop(key, ()):
                ports.pop(old, None)
            svc = self.services.store.get(key)
            if svc is None:
                continue
            fresh = rules.service_ports(
                svc, self.slices.store.by_index(SLICE_INDEX, key), node_name=self.node_name
            )
            ports.update((sp.key, sp) for sp in fresh)
            self._ports[key] = tuple(sp.key for sp in fresh)
        return rules.RuleSet(
            node_name=self.node_name,
            node_ips=tuple(sorted(set(rules.ipv4s(self._node_ips())))),
            cluster_cidr=self.cluster_cidr,
            services=ports,
        )

    def _node_ips(self) -> tuple[str, ...]:
        if self.node_ips is not None or self.nodes is None:
            return self.node_ips or ()
        node = self.nodes.store.get_by_name(self.node_name) or {}
        addresses = (node.get("status") or {}).get("addresses") or []
        return tuple(a["address"] for a in addresses if a.get("type") in NODE_ADDRESS_TYPES)

    async def sync_once(self) -> str:
        started = time.perf_counter()
        # Kept even if applying fails: the backend then retries it (fully) next time.
        self.ruleset = ruleset = self.compute()
        try:
            result = await self.backend.sync(ruleset)
        except (backend.ApplyError, OSError) as exc:
            self.metrics.failures += 1
            log.error("proxy sync (%s) failed: %s", self.backend.name, exc)
            raise
        took = time.perf_counter() - started
        self.metrics.syncs += 1
        self.metrics.last_result = result
        self.metrics.durations.append(took)
        if result != "noop":
            log.debug(
                "proxy %s sync of %d service ports: %.1f ms", result, len(ruleset), took * 1e3
            )
        return result

    async def run(self) -> None:
        """Sync whenever dirty, at most every ``min_sync_period``, at least every
        ``sync_period``; until cancelled."""
        await asyncio.gather(*(i.wait_for_sync() for i in self._informers()))
        while True:
            self._dirty.clear()
            started = time.monotonic()
            try:
                await self.sync_once()
            except (backend.ApplyError, OSError):
                self._dirty.set()  # retry after the min period
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sync_period):
                    await self._dirty.wait()
            await asyncio.sleep(max(0.0, self.min_sync_period - (time.monotonic() - started)))

    def _informers(self) -> list[informer_.Informer]:
        return [i for i in (self.services, self.slices, self.nodes) if i is not None]


async def run(
    client: kclient.Client,
    informers: kclient.SharedInformerFactory,
    *,
    node_name: str,
    mode: str = "",
    node_ips: tuple[str, ...] | None = None,
    cluster_cidr: str = "",
    userspace_bind: str = "host",
    userspace_host_ip: str = "127.0.0.1",
    min_sync_period: float = MIN_SYNC_PERIOD,
) -> None:
    """The proxy component: ``mode`` "" picks :func:`detect_mode`. ``node_ips`` None reads
    the Node's InternalIP/ExternalIP addresses. Runs until cancelled; the kernel rules stay
    in place on exit (a restarted proxy takes over without dropping connections)."""
    del client  # everything comes from the informers; kept for the component signature
    mode = mode or await asyncio.to_thread(detect_mode)
    options = {"bind": userspace_bind, "host_ip": userspace_host_ip}
    chosen = make_backend(mode, **(options if mode == "userspace" else {}))
    await _clean_other_modes(mode)
    proxier = Proxier(
        informers,
        chosen,
        node_name=node_name,
        node_ips=node_ips,
        cluster_cidr=cluster_cidr,
        min_sync_period=min_sync_period,
    )
    informers.start()
    log.info("service proxy on node %s in %s mode", node_name, mode)
    try:
        await proxier.run()
    finally:
        await chosen.close()


async def _clean_other_modes(mode: str) -> None:
    """Leftovers of the other kernel mode would still DNAT: remove them (best effort). The
    userspace mode leaves kernel rules alone (it usually runs without the rights anyway)."""
    if mode == "userspace":
        return
    others: list[backend.Backend] = []
    if mode != "nftables" and shutil.which("nft"):
        others.append(nftables.NftablesBackend())
    if mode != "iptables" and shutil.which("iptables-restore"):
        others.append(iptables.IptablesBackend())
    for other in others:
        try:
            await other.cleanup()
        except (backend.ApplyError, OSError) as exc:
            log.debug("cleanup of %s rules: %s", other.name, exc)
        finally:
            await other.close()
