"""The node's CNI configuration, derived from its ``spec.podCIDR``.

The agent writes one conflist (the ``bridge`` plugin with ``host-local`` IPAM, then
``portmap`` for hostPorts) and a separate ``loopback`` config, the layout DESIGN.md §7 measured
working with Debian's plugins: bridge ``kybern0`` is the pods' gateway at the subnet's first
address, host-local hands out the rest of the node's podCIDR and keeps its leases under the
agent's data dir. The bridge plugin's own masquerading (``ipMasq``) is off: it adds two
iptables chains per pod and masquerades pod-to-pod traffic between nodes too; one node-wide
rule (``kybern.network.hostrules``) masquerades only traffic leaving the cluster CIDR.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CNI_VERSION = "1.0.0"
NETWORK_NAME = "kybern"
BRIDGE = "kybern0"
CONFLIST_FILE = "10-kybern.conflist"
LOOPBACK_FILE = "99-loopback.conf"
DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
PLUGIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """What the conflist is made from (one node's view of the pod network)."""

    pod_cidr: ipaddress.IPv4Network
    data_dir: Path  # host-local leases live in ``data_dir/ipam``
    cluster_cidr: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network(DEFAULT_CLUSTER_CIDR)
    )
    name: str = NETWORK_NAME
    bridge: str = BRIDGE
    mtu: int = 0  # 0: the plugin's default (the bridge's)
    cni_version: str = CNI_VERSION

    @classmethod
    def from_pod_cidr(cls, pod_cidr: str, data_dir: Path, **kwargs: Any) -> NetworkConfig:
        """From a node's ``spec.podCIDR`` string (ValueError if it is not an IPv4 CIDR)."""
        network = ipaddress.ip_network(pod_cidr, strict=False)
        if not isinstance(network, ipaddress.IPv4Network) or network.num_addresses < 4:
            raise ValueError(f"podCIDR {pod_cidr!r} is not an IPv4 network with room for pods")
        if isinstance(kwargs.get("cluster_cidr"), str):
            kwargs["cluster_cidr"] = ipaddress.IPv4Network(kwargs["cluster_cidr"], strict=False)
        return cls(pod_cidr=network, data_dir=data_dir, **kwargs)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.pod_cidr.network_address + 1

    @property
    def ipam_dir(self) -> Path:
        return self.data_dir / "ipam"

    @property
    def results_dir(self) -> Path:
        """Cached ADD results (the prevResult of DEL and CHECK), like libcni's cache."""
        return self.data_dir / "results"


def bridge_plugin(cfg: NetworkConfig) -> Obj:
    plugin: Obj = {
        "type": "bridge",
        "bridge": cfg.bridge,
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,  # a pod reaching itself through a Service VIP (DESIGN.md §7)
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": str(cfg.pod_cidr), "gateway": str(cfg.gateway)}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(cfg.ipam_dir),
        },
    }
    if cfg.mtu:
        plugin["mtu"] = cfg.mtu
    return plugin


def portmap_plugin() -> Obj:
    return {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}


def conflist(cfg: NetworkConfig) -> Obj:
    """The pod network's conflist (bridge + host-local, then portmap)."""
    return {
        "cniVersion": cfg.cni_version,
        "name": cfg.name,
        "plugins": [bridge_plugin(cfg), portmap_plugin()],
    }


def loopback(cfg: NetworkConfig) -> Obj:
    """The separate loopback network (``lo`` up in the pod's namespace)."""
    return {"cniVersion": cfg.cni_version, "name": "cni-loopback", "type": "loopback"}


def write(cfg: NetworkConfig, directory: Path) -> tuple[Path, Path]:
    """Write both files into ``directory`` (atomically: the plugins' readers never see half a
    file); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    main = _write_json(directory / CONFLIST_FILE, conflist(cfg))
    lo = _write_json(directory / LOOPBACK_FILE, loopback(cfg))
    return main, lo


def read(path: Path) -> Obj:
    """A conflist or a single-plugin conf from disk, as a conflist."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return as_conflist(data)


def as_conflist(data: Obj) -> Obj:
    """A single-plugin conf wrapped as a one-plugin conflist (libcni's ConfListFromConf)."""
    if "plugins" in data:
        return data
    plugin = {k: v for k, v in data.items() if k not in ("cniVersion", "name")}
    return {
        "cniVersion": data.get("cniVersion", CNI_VERSION),
        "name": data["name"],
        "plugins": [plugin],
    }


def _write_json(path: Path, data: Obj) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path
