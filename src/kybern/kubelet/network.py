"""The node agent's pod network for the ``oci`` runtime: CNI from the node's ``spec.podCIDR``.

kubelet with a CNI plugin does not start pods until the network is ready, and the network
needs the podCIDR that the node IPAM controller assigns once the node is registered. So the
runtime gets a :class:`NodeNetwork` at once, a stand-in whose ``setup``/``teardown`` wait until
:meth:`NodeNetwork.run` has read the podCIDR from the Node (``--pod-cidr``, when given, is
what the node registers with), called :func:`kybern.network.node.prepare` (conflist, node
rules, and the gc of what dead sandboxes left, given the runtime's live sandbox ids), and
holds the real :class:`kybern.network.cni.PodNetwork`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from kybern import client as kclient
from kybern.client import clock as clock_
from kybern.client import errors
from kybern.network import cni, invoke, iptables, node, result
from kybern.network import config as network_config
from kybern.runtime import cri

log = logging.getLogger(__name__)
POLL = 0.2  # seconds between reads of the Node while it has no podCIDR
RETRY = 5.0  # seconds between attempts to set up the node's network


class NodeNetwork:
    """A :class:`kybern.runtime.oci.PodNetwork` that waits for the node's pod network."""

    def __init__(
        self,
        *,
        node_name: str,
        data_dir: Path,
        cluster_cidr: str = network_config.DEFAULT_CLUSTER_CIDR,
        clock: clock_.Clock | None = None,
    ) -> None:
        self.node_name = node_name
        self.data_dir = data_dir  # <agent data dir>/network: conf, leases, cached results
        self.pod_cidr = ""
        self.cluster_cidr = cluster_cidr
        self.clock = clock or clock_.RealClock()
        self.network: cni.PodNetwork | None = None
        self.ready = asyncio.Event()

    async def run(
        self, client: kclient.Client, runtime: cri.Runtime, agent_ready: asyncio.Event
    ) -> None:
        """Wait for the podCIDR, prepare the node's network, then let sandboxes through.

        The gc of dead sandboxes' leftovers waits for ``agent_ready`` too: by then the runtime
        has reloaded its sandboxes, so a restarted agent never tears down a live pod's network
        (a sandbox being created meanwhile is in the runtime's list before its CNI ADD).
        """
        cidr = await self._wait_pod_cidr(client)
        await agent_ready.wait()
        cfg = network_config.NetworkConfig.from_pod_cidr(
            cidr, self.data_dir, cluster_cidr=self.cluster_cidr
        )
        while True:  # kubelet keeps reporting "network not ready" until the plugins work
            live = [s.id for s in await runtime.list_pod_sandboxes()]
            try:
                self.network = await node.prepare(cfg, conf_dir=self.data_dir / "net.d", live=live)
                break
            except (invoke.CNIError, iptables.IptablesError, OSError) as err:
                log.error("node %s: pod network not ready (retrying): %s", self.node_name, err)
                await self.clock.sleep(RETRY)
        self.pod_cidr = cidr
        self.ready.set()
        log.info("node %s: pod network ready on %s", self.node_name, cidr)

    async def _wait_pod_cidr(self, client: kclient.Client) -> str:
        logged = False
        while True:
            try:
                obj = await client.get("v1", "Node", self.node_name)
                cidr = str((obj.get("spec") or {}).get("podCIDR") or "")
                if cidr:
                    return cidr
            except (errors.ClientError, OSError) as err:  # not registered yet, or server away
                log.debug("node %s: reading podCIDR: %s", self.node_name, err)
            if not logged:
                log.info("node %s: waiting for spec.podCIDR (node-ipam)", self.node_name)
                logged = True
            await self.clock.sleep(POLL)

    async def _network(self) -> cni.PodNetwork:
        await self.ready.wait()
        assert self.network is not None
        return self.network

    async def setup(
        self,
        *,
        netns: Path,
        container_id: str,
        namespace: str,
        name: str,
        uid: str,
        port_mappings: Sequence[cni.PortMapping] = (),
    ) -> result.Attachment:
        network = await self._network()
        return await network.setup(
            netns=netns,
            container_id=container_id,
            namespace=namespace,
            name=name,
            uid=uid,
            port_mappings=port_mappings,
        )

    async def teardown(
        self,
        *,
        netns: Path | None,
        container_id: str,
        namespace: str = "",
        name: str = "",
        uid: str = "",
    ) -> None:
        network = await self._network()
        await network.teardown(
            netns=netns, container_id=container_id, namespace=namespace, name=name, uid=uid
        )
