"""How a node agent is started: inside ``kybern server`` and as ``kybern agent``.

:func:`run` builds the runtime named by ``--runtime`` (:mod:`kybern.runtime.registry`), the
:class:`kybern.kubelet.agent.Agent` on the given client and informers, and, when a client CA
is known, the kubelet's HTTPS server (:mod:`kybern.kubelet.server`, port 10250) serving logs,
exec, attach and port-forward to the API server. ``kybern server`` passes its in-process
client and the cluster CA (it runs one unless ``--disable-agent``, or ``--simulated-nodes N``
is given: a simulated cluster keeps exactly its simulated nodes); :func:`run_standalone` is ``kybern agent``: a REST client from a
kubeconfig or from ``--server`` + ``--token`` (with ``--ca-file``, else TLS unverified, as a
bootstrap convenience that logs a warning).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import os
import ssl
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kybern import client as kclient
from kybern.kubelet import agent as agent_
from kybern.kubelet import machine, network
from kybern.runtime import registry

log = logging.getLogger(__name__)


@dataclass
class Options:
    data_dir: Path
    runtime: str = ""  # "" = registry.default_name()
    node_name: str = ""  # "" = the host name
    node_ip: str = ""  # "" = the default route's address
    control_plane: bool = False
    client_ca: Path | None = None  # the cluster CA: enables the HTTPS server
    port: int = 10250
    bind_address: str = "0.0.0.0"
    labels: dict[str, str] = field(default_factory=dict)
    pod_manifest_path: Path | None = None  # static pods
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    pod_cidr: str = ""  # "" = the podCIDR the node IPAM controller assigns (oci runtime)
    cluster_cidr: str = "10.42.0.0/16"  # pod traffic leaving it is masqueraded (oci runtime)
    images_dir: Path | None = None  # the oci image store; None = <data_dir>/images


def agent_config(options: Options) -> agent_.Config:
    runtime = options.runtime or registry.default_name()
    return agent_.Config(
        node_name=options.node_name or machine.node_name(),
        data_dir=options.data_dir,
        node_ip=options.node_ip or machine.node_ip(),
        runtime_name=runtime,
        control_plane=options.control_plane,
        port=options.port,
        labels=dict(options.labels),
        pod_manifest_path=options.pod_manifest_path,
        cluster_dns=list(options.cluster_dns),
        cluster_domain=options.cluster_domain,
        pod_cidr=options.pod_cidr,
    )


async def run(
    client: kclient.Client, informers: kclient.SharedInformerFactory, options: Options
) -> None:
    """Run the node agent (and its HTTPS server) until cancelled."""
    config = agent_config(options)
    runtime = registry.create(
        config.runtime_name,
        registry.Options(
            root=options.data_dir / "runtime" / config.runtime_name,
            node_name=config.node_name,
            node_ip=config.node_ip,
            extra={"images_dir": str(options.images_dir)} if options.images_dir else {},
        ),
    )
    agent = agent_.Agent(client, informers, runtime, config)
    # imagePullSecrets are read from the agent's Secret cache
    agent.sync.puller.secrets = lambda ns, name: agent.inputs.objects.get("Secret", ns, name)
    tasks = [asyncio.create_task(agent.run(), name="kubelet")]
    pod_network = _pod_network(runtime, options, config)
    if pod_network is not None:
        tasks.append(
            asyncio.create_task(
                pod_network.run(client, runtime, agent.ready), name="kubelet-network"
            )
        )
    if options.client_ca is not None:
        tasks.append(asyncio.create_task(_serve(agent, options, config), name="kubelet-server"))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _pod_network(
    runtime: object, options: Options, config: agent_.Config
) -> network.NodeNetwork | None:
    """The oci runtime's CNI network (sandboxes wait for it); other runtimes have none."""
    from kybern.runtime import oci

    if not isinstance(runtime, oci.OciRuntime) or runtime.network is not None:
        return None
    pod_network = network.NodeNetwork(
        node_name=config.node_name,
        data_dir=options.data_dir / "network",
        cluster_cidr=options.cluster_cidr,
    )
    runtime.network = pod_network
    return pod_network


async def _serve(agent: agent_.Agent, options: Options, config: agent_.Config) -> None:
    try:
        from kybern.kubelet import certs, server
    except ImportError:  # pragma: no cover (ships with the kubelet)
        log.warning("kubelet server not available: logs/exec/port-forward are off")
        return
    assert options.client_ca is not None
    try:
        cert, key = await asyncio.to_thread(
            certs.ensure_serving_cert,
            options.data_dir / "kubelet-pki",
            hostname=config.node_name,
            addresses=[config.node_ip, "127.0.0.1"],
        )
        context = certs.server_ssl_context(cert=cert, key=key, client_ca=options.client_ca)
        await server.serve(
            runtime=agent.runtime,
            lookup=agent_.lookup(agent),
            host=options.bind_address,
            port=options.port,
            ssl_context=context,
        )
    except (OSError, ssl.SSLError) as exc:  # the pods still run; only the streaming is off
        log.error(
            "kubelet server cannot serve on %s:%d (%s): logs, exec and port-forward are off",
            options.bind_address,
            options.port,
            exc,
        )


async def run_standalone(
    options: Options, *, server: str = "", token: str = "", kubeconfig: str = "", ca_file: str = ""
) -> None:
    """``kybern agent``: join the server at ``server`` (or the kubeconfig's)."""
    watch_children_with_pidfds()
    config = await asyncio.to_thread(_cluster_config, server, token, kubeconfig, ca_file)
    if options.client_ca is None:
        options.client_ca = await asyncio.to_thread(
            _client_ca, options.data_dir, kubeconfig, ca_file
        )
    transport = kclient.RESTTransport(config, user_agent="kybern-agent")
    client = kclient.Client(transport)
    informers = kclient.SharedInformerFactory(client)
    try:
        await run(client, informers, options)
    finally:
        await informers.stop()
        await client.close()


def watch_children_with_pidfds() -> None:
    """Reap subprocesses through pidfds in this loop, not one thread per child.

    asyncio before 3.12 waits for each subprocess (every container's monitor) on a thread of
    its own, started and handed the GIL while the loop waits: about 1.5 ms of the loop per
    container start, more on a busy machine. Python 3.12 picks the pidfd watcher by itself;
    this is the same choice on 3.11, for a process that is the node agent (the watcher is
    process-wide and tied to this loop).
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # the kernel has no pidfds (before 5.3): keep the threaded watcher
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)


def _cluster_config(
    server: str, token: str, kubeconfig: str, ca_file: str
) -> kclient.ClusterConfig:
    if kubeconfig:
        config = kclient.load_kubeconfig(kubeconfig)
        if server:
            config = dataclasses.replace(config, server=server.rstrip("/"))
        if token:
            config = dataclasses.replace(config, token=token)
        return config
    if not server:
        raise ValueError("give --server (and --token) or --kubeconfig")
    if ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        return kclient.ClusterConfig(server=server.rstrip("/"), ssl_context=context, token=token)
    log.warning("no --ca-file: the API server's certificate is not verified")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return kclient.ClusterConfig(
        server=server.rstrip("/"), ssl_context=context, token=token, insecure=True
    )


def _client_ca(data_dir: Path, kubeconfig: str, ca_file: str) -> Path | None:
    """The cluster CA the kubelet server trusts client certificates from."""
    if ca_file:
        return Path(ca_file)
    if not kubeconfig:
        return None
    doc: Any = yaml.safe_load(Path(kubeconfig).read_text())
    for entry in (doc or {}).get("clusters") or []:
        cluster = entry.get("cluster") or {}
        if cluster.get("certificate-authority"):
            return Path(kubeconfig).parent / str(cluster["certificate-authority"])
        data = cluster.get("certificate-authority-data")
        if data:
            path = data_dir / "kubelet-pki" / "client-ca.crt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(base64.b64decode(data))
            return path
    return None
