"""The node agent's entry to pod networking: everything it does once, at start.

``await prepare(cfg, conf_dir=..., live=...)`` writes the CNI files for the node's podCIDR,
installs the node-wide rules, asks the plugins their CNI versions, releases what dead
sandboxes still hold (``live``: the sandbox ids the runtime still has; ``all_namespaces``: see
``cleanup.gc``), and returns the ``PodNetwork`` the runtime attaches sandboxes with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from kybern.network import cleanup, cni, config, hostrules, netns

log = logging.getLogger(__name__)


async def prepare(
    cfg: config.NetworkConfig,
    *,
    conf_dir: Path,
    live: Iterable[str] = (),
    netns_dir: Path = netns.NETNS_DIR,
    all_namespaces: bool = False,
    plugin_dirs: Sequence[Path] = config.PLUGIN_DIRS,
) -> cni.PodNetwork:
    """Make the node ready for pods (idempotent; the agent calls it at every start)."""
    await asyncio.to_thread(config.write, cfg, conf_dir)
    await hostrules.ensure(bridge=cfg.bridge, pod_cidr=cfg.pod_cidr, cluster_cidr=cfg.cluster_cidr)
    network = cni.PodNetwork.from_config(cfg, plugin_dirs=plugin_dirs)
    await network.negotiate()
    report = await cleanup.gc(
        network, cfg, live, netns_dir=netns_dir, all_namespaces=all_namespaces
    )
    if report.deleted or report.leases or report.portmap_chains or report.namespaces:
        log.info("pod network cleanup: %s", report)
    return network
