"""Cluster DNS as a component: the shared informers' caches served on UDP and TCP.

``run`` asks the shared informer factory for Services, EndpointSlices and Pods (the same
caches the controllers and proxy read), waits for them to sync (CoreDNS waits up to 5 s
before serving unsynced data; here the listeners open only once the caches are complete), and
serves until cancelled. Upstreams default to the host's ``/etc/resolv.conf``, minus the
server's own addresses.

Production listens on the DNS service's ClusterIP (``10.43.0.10:53``) or the node IP; tests
listen on ``127.0.0.1`` with port 0 and learn the port from ``ready``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kybern import client as kclient
from kybern.client import informer as informer_
from kybern.dns import forward, records, server

log = logging.getLogger(__name__)

Address = tuple[str, int]
RESOLV_CONF = Path("/etc/resolv.conf")
WATCHED = (("v1", "Service"), ("discovery.k8s.io/v1", "EndpointSlice"), ("v1", "Pod"))


async def host_upstreams(path: Path = RESOLV_CONF) -> list[Address]:
    try:
        text = await asyncio.to_thread(path.read_text)
    except OSError as exc:
        log.warning("cluster DNS: cannot read %s (%s): no upstream resolvers", path, exc)
        return []
    return forward.parse_resolv_conf(text)


def view_of(informers: kclient.SharedInformerFactory) -> records.View:
    """A records view over the shared caches; its SOA serial follows every change."""
    services, slices, pods = (informers.informer_for(v, k) for v, k in WATCHED)
    view = records.View(services.store, slices.store, pods.store)

    def touch(*_: Any) -> None:
        view.changed(time.time())

    for inf in (services, slices, pods):
        inf.add_handler(informer_.FuncHandler(add=touch, update=touch, delete=touch))
    return view


async def run(
    client: kclient.Client,
    informers: kclient.SharedInformerFactory,
    *,
    listen: list[Address],
    zone: str = "cluster.local",
    upstreams: list[Address] | None = None,
    pods: str = records.INSECURE,
    ready: Callable[[list[Address]], None] | None = None,
) -> None:
    """Serve cluster DNS until cancelled. ``ready`` gets the bound addresses (port 0 picks
    one) once the caches synced and the listeners are open."""
    del client  # the informers carry the client; kept for the components' common signature
    view = view_of(informers)
    resolver = records.Resolver(view, zone=zone, pods=pods)
    informers.start()
    await asyncio.gather(*(informers.informer_for(v, k).wait_for_sync() for v, k in WATCHED))
    chosen = await host_upstreams() if upstreams is None else upstreams
    dns = server.DNSServer(server.Handler(resolver, forward.Forwarder([], zone=zone)))
    bound = await dns.start(listen)
    dns.handler.forwarder.upstreams = forward.usable_upstreams(chosen, bound)
    log.info(
        "cluster DNS for %s on %s, upstreams %s",
        zone,
        ", ".join(f"{h}:{p}" for h, p in bound),
        ", ".join(f"{h}:{p}" for h, p in dns.handler.forwarder.upstreams) or "none",
    )
    try:
        if ready is not None:
            ready(bound)
        await asyncio.Event().wait()
    finally:
        await dns.stop()
