"""`kybern server` assembled: the API server, then the components that run beside it in the
same process (controller manager, scheduler, simulated nodes), each talking to the API through
kybern.client's in-process transport and sharing one informer factory.

A component is an async callable `run(ctx)` that runs until cancelled; `COMPONENTS` lists them
in start order. The API server is up and its system namespaces exist before any starts; on
SIGTERM/SIGINT every component is cancelled, then the API server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kybern import client as kclient
from kybern.apiserver import server

log = logging.getLogger(__name__)

CONTROL_PLANE_USER = kclient.User(name="system:kube-controller-manager", groups=("system:masters",))


@dataclass
class Context:
    """What every component gets: the in-process client, the shared informers, options."""

    client: kclient.Client
    informers: kclient.SharedInformerFactory
    options: dict[str, object] = field(default_factory=dict)


Component = Callable[[Context], Awaitable[None]]


@dataclass
class ClusterConfig:
    api: server.Config
    components: list[tuple[str, Component]] = field(default_factory=list)
    options: dict[str, object] = field(default_factory=dict)


def default_components(options: dict[str, object]) -> list[tuple[str, Component]]:
    """The components `kybern server` runs beside the API server, in start order."""
    from kybern.controllers import manager as controller_manager
    from kybern.kubelet import simulated
    from kybern.scheduler import wiring as scheduler_wiring

    components: list[tuple[str, Component]] = [
        ("controller-manager", controller_manager.run),
        ("scheduler", lambda ctx: scheduler_wiring.run(ctx.client, ctx.informers)),
    ]
    disabled = options.get("disabled") or set()
    assert isinstance(disabled, set)
    components = [(name, comp) for name, comp in components if name not in disabled]
    sim = simulated.Config.from_options(options)
    if sim.nodes > 0:
        components.append(
            ("simulated-nodes", lambda ctx: simulated.run(ctx.client, ctx.informers, sim))
        )
    agent_options = options.get("agent")
    if agent_options is not None:  # the server's own node (kybern.kubelet.component.Options)
        from kybern.kubelet import component

        assert isinstance(agent_options, component.Options)
        components.append(
            ("agent", lambda ctx: component.run(ctx.client, ctx.informers, agent_options))
        )
    components.extend(_service_components(options))
    return components


def _service_components(options: dict[str, object]) -> list[tuple[str, Component]]:
    """The node's service proxy (beside the server's own agent) and the cluster DNS server
    (kybern.cli.services), unless turned off (proxy_mode "none", no "dns" options)."""
    from kybern.cli import services

    found: list[tuple[str, Component]] = []
    agent_options, mode = options.get("agent"), str(options.get("proxy_mode") or "")
    if agent_options is not None and mode != "none":
        found.append(
            ("proxy", lambda c: services.run_proxy(c.client, c.informers, agent_options, mode))
        )
    dns = options.get("dns")
    if isinstance(dns, services.DNSOptions):
        found.append(("dns", lambda c: services.run_dns(c.client, c.informers, dns)))
    return found


async def run(config: ClusterConfig, *, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or SIGTERM/SIGINT when none is given)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    api = server.APIServer(config.api)
    await api.start()
    if api.pki is not None:  # the root-ca-cert-publisher's kube-root-ca.crt content
        config.options.setdefault("root_ca_pem", api.pki.ca_cert.read_text())
    transport = kclient.InProcessTransport(api.local_api(), user=CONTROL_PLANE_USER)
    ctx = Context(
        client=kclient.Client(transport),
        informers=kclient.SharedInformerFactory(kclient.Client(transport)),
        options=config.options,
    )
    tasks = [
        asyncio.create_task(_guard(name, comp(ctx)), name=name) for name, comp in config.components
    ]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await ctx.informers.stop()
        await api.stop()


async def _guard(name: str, work: Awaitable[None]) -> None:
    """A component that fails is logged, never takes the API server down with it."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("component %s stopped with an error", name)
