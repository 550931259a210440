"""The service data path as node components: the service proxy every node agent runs beside
its kubelet, and the cluster DNS server (with its ``kube-system/kube-dns`` Service) that
``kybern server`` runs in process, as k3s runs kube-proxy and CoreDNS.

Defaults follow the runtime: process-runtime pods share the host network, so the proxy runs in
userspace mode listening on the node IP at each service port (``host``); oci-runtime nodes as
root get the proxier's choice of nftables/iptables. DNS listens on the node IP at port 53 when
root runs containers in their own network namespaces, else at 10053 (port 53 on the node IP
is then where the userspace proxy answers for the ``kube-dns`` Service, as root).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from dataclasses import dataclass

from kybern import client as kclient
from kybern.client import errors as kclient_errors

log = logging.getLogger(__name__)

PROXY_MODES = ("nftables", "iptables", "userspace", "none")
DEFAULT_CLUSTER_DNS = "10.43.0.10"
UNPRIVILEGED_DNS_PORT = 10053


@dataclass
class DNSOptions:
    cluster_ip: str  # the kube-dns Service's ClusterIP
    address: str = ""  # where the server listens; "" = the node IP
    port: int = 0  # 0 = 53 as root with real containers, else UNPRIVILEGED_DNS_PORT
    zone: str = "cluster.local"
    runtime: str = ""


def cluster_dns_ip(service_cidr: str) -> str:
    """The tenth address of the service CIDR (10.43.0.10 for k3s' 10.43.0.0/16)."""
    network = ipaddress.ip_network(service_cidr, strict=False)
    return str(network.network_address + 10)


def _runtime(name: str) -> str:
    from kybern.runtime import registry

    return name or registry.default_name()


def dns_port(runtime: str) -> int:
    privileged = os.geteuid() == 0 and _runtime(runtime) != "process"
    return 53 if privileged else UNPRIVILEGED_DNS_PORT


async def run_proxy(
    client: kclient.Client, informers: kclient.SharedInformerFactory, agent: object, mode: str
) -> None:
    """The service proxy for the node of ``agent`` (kybern.kubelet.component.Options)."""
    from kybern.kubelet import component, machine
    from kybern.proxy import proxier

    assert isinstance(agent, component.Options)
    runtime = await asyncio.to_thread(_runtime, agent.runtime)
    if not mode:
        mode = "userspace" if runtime == "process" else ""
    node_ip = agent.node_ip or machine.node_ip()
    await proxier.run(
        client,
        informers,
        node_name=agent.node_name or machine.node_name(),
        mode=mode,
        node_ips=(node_ip,),
        cluster_cidr=agent.cluster_cidr if runtime != "process" else "",
        # process pods share the host network: the VIPs are not routable there
        userspace_bind="host" if runtime == "process" else "vip",
        userspace_host_ip=node_ip,
    )


async def run_dns(
    client: kclient.Client, informers: kclient.SharedInformerFactory, options: DNSOptions
) -> None:
    """Serve cluster DNS and keep the kube-dns Service pointing at it, until cancelled."""
    from kybern.dns import component as dns_component
    from kybern.dns import service as dns_service
    from kybern.kubelet import machine

    address = options.address or machine.node_ip()
    port = options.port or await asyncio.to_thread(dns_port, options.runtime)
    started = asyncio.Event()
    bound: list[tuple[str, int]] = []

    def ready(addresses: list[tuple[str, int]]) -> None:
        bound.extend(addresses)
        started.set()

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(
                dns_component.run(
                    client, informers, listen=[(address, port)], zone=options.zone, ready=ready
                )
            )
            await started.wait()
            log.info("cluster DNS on %s port %d (udp, tcp)", address, bound[0][1])
            keeper = dns_service.DNSService(
                client, cluster_ip=options.cluster_ip, address=address, port=bound[0][1]
            )
            group.create_task(keeper.run())
    except* OSError as failed:  # e.g. the port is taken: say so without a traceback
        log.error(
            "cluster DNS cannot serve on %s port %d: %s (pick another --dns-port, or "
            "--disable-dns)",
            address,
            port,
            "; ".join(str(exc) for exc in failed.exceptions),
        )


async def run_agent(
    agent: object, proxy_mode: str, *, server: str, token: str, kubeconfig: str, ca_file: str
) -> None:
    """``kybern agent``: the kubelet (kybern.kubelet.component.run_standalone) and, unless
    ``proxy_mode`` is "none", the node's service proxy on a connection of its own."""
    from kybern.kubelet import component

    assert isinstance(agent, component.Options)
    connection = {"server": server, "token": token, "kubeconfig": kubeconfig, "ca_file": ca_file}
    if proxy_mode == "none":
        await component.run_standalone(agent, **connection)
        return
    # the same connection settings as the kubelet's
    config = await asyncio.to_thread(component._cluster_config, server, token, kubeconfig, ca_file)
    client = kclient.Client(kclient.RESTTransport(config, user_agent="kybern-proxy"))
    informers = kclient.SharedInformerFactory(client)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(component.run_standalone(agent, **connection))
            group.create_task(run_proxy(client, informers, agent, proxy_mode))
    except* (kclient_errors.ClientError, OSError, ValueError) as failed:
        raise failed.exceptions[0] from None  # `kybern agent` reports it as without a proxy
    finally:
        await informers.stop()
        await client.close()
