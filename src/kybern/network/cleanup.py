"""Cleaning up what the CNI plugins leave behind when pods disappear without a proper DEL.

The agent calls ``gc(network, cfg, live)`` at start with the sandbox ids its runtime still
has. For every other sandbox it knows of (a cached ADD result, a host-local lease, a portmap
rule, a pinned namespace) it first tries a real CNI DEL, then removes what is still there:

- host-local leases (``<ipam dir>/<network>/<ip>`` files naming the container id): otherwise
  the address is never handed out again;
- portmap's per-pod chains (``CNI-DN-*``) and their jump rules in ``CNI-HOSTPORT-DNAT``
  (matched by the ``dnat name: "<network>" id: "<id>"`` comment portmap writes): otherwise the
  hostPort keeps pointing at a dead IP. portmap's shared chains stay, as portmap leaves them;
- the pinned network namespaces (``kybern-<id>``) of those sandboxes: unpinning frees the
  namespace and the kernel removes the veth pair with it, so no stale veth stays on the bridge.
  With ``all_namespaces`` every ``kybern-*`` namespace not in ``live`` goes, including ones no
  CNI state names (a crash between creating the namespace and ADD); only for an agent that is
  alone on its host, since the directory is shared.

``uninstall(cfg)`` removes the node-wide pieces: the bridge, kybern's iptables chains, and
the IPAM and result directories.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kybern.network import cni, config, hostrules, iptables, netns

log = logging.getLogger(__name__)

HOSTPORT_DNAT = "CNI-HOSTPORT-DNAT"
LEASE_SKIP = ("lock", "last_reserved_ip")
_VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # never a path (ids come from files)
_DNAT_COMMENT = re.compile(r'dnat name: "(?P<net>[^"]*)" id: "(?P<id>[^"]*)"')


@dataclass
class Report:
    """What one ``gc`` pass removed (for logs and tests)."""

    deleted: list[str] = field(default_factory=list)  # ids given a CNI DEL
    leases: list[str] = field(default_factory=list)  # IPs released by hand
    portmap_chains: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)


def leases(ipam_dir: Path, network: str) -> dict[str, str]:
    """host-local's leases of ``network``: IP -> container id."""
    directory = ipam_dir / network
    out: dict[str, str] = {}
    try:
        files = list(directory.iterdir())
    except FileNotFoundError:
        return out
    for path in files:
        if path.name.startswith(LEASE_SKIP) or path.name.startswith("."):
            continue
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        out[path.name] = lines[0].strip() if lines else ""
    return out


def portmap_owners(rules: Iterable[list[str]], network: str) -> dict[str, list[str]]:
    """Container id -> the per-pod chains portmap jumps to from CNI-HOSTPORT-DNAT."""
    out: dict[str, list[str]] = {}
    for rule in rules:
        if rule[:2] != ["-A", HOSTPORT_DNAT] or "-j" not in rule:
            continue
        match = _DNAT_COMMENT.search(" ".join(rule))
        if match and match["net"] == network:
            target = rule[rule.index("-j") + 1]
            out.setdefault(match["id"], []).append(target)
    return out


def namespace_ids(directory: Path) -> list[str]:
    return [name[len(netns.PREFIX) :] for name in netns.names(directory)]


async def gc(
    network: cni.PodNetwork,
    cfg: config.NetworkConfig,
    live: Iterable[str],
    *,
    netns_dir: Path = netns.NETNS_DIR,
    all_namespaces: bool = False,
) -> Report:
    """Release everything held for sandboxes not in ``live``."""
    alive = set(live)
    report = Report()
    lease_map = await asyncio.to_thread(leases, cfg.ipam_dir, cfg.name)
    nat = await iptables.rules("nat")
    owners = portmap_owners(nat, cfg.name)
    known = set(network.cached_ids()) | set(lease_map.values()) | set(owners)
    if all_namespaces:
        known |= set(namespace_ids(netns_dir))
    for container_id in sorted(i for i in known - alive if _VALID_ID.fullmatch(i)):
        path = netns.path_for(container_id, netns_dir)
        try:
            await network.teardown(netns=path, container_id=container_id)
            report.deleted.append(container_id)
        except (cni.CNIError, OSError, ValueError) as exc:
            log.warning("CNI DEL of stale sandbox %s failed: %s", container_id, exc)
        await netns.delete(path)
    await _sweep(cfg, alive, report, netns_dir if all_namespaces else None)
    return report


async def _sweep(
    cfg: config.NetworkConfig, alive: set[str], report: Report, netns_dir: Path | None
) -> None:
    """Remove by hand what a DEL did not."""
    for ip, owner in (await asyncio.to_thread(leases, cfg.ipam_dir, cfg.name)).items():
        if owner not in alive:
            await asyncio.to_thread((cfg.ipam_dir / cfg.name / ip).unlink, missing_ok=True)
            report.leases.append(ip)
    nat = await iptables.rules("nat")
    for container_id, chains in portmap_owners(nat, cfg.name).items():
        if container_id not in alive:
            await _drop_portmap(nat, chains)
            report.portmap_chains.extend(chains)
    if netns_dir is None:
        return
    for container_id in namespace_ids(netns_dir):
        if container_id not in alive:
            await netns.delete(netns.path_for(container_id, netns_dir))
            report.namespaces.append(container_id)


async def _drop_portmap(nat: list[list[str]], chains: list[str]) -> None:
    for rule in nat:
        if rule[:2] == ["-A", HOSTPORT_DNAT] and rule[-1] in chains:
            await iptables.run("-t", "nat", "-D", *rule[1:], check=False)
    for chain in chains:
        await iptables.delete_chain("nat", chain)


async def uninstall(cfg: config.NetworkConfig) -> None:
    """Remove the bridge, kybern's iptables rules and the IPAM/result state."""
    proc = await asyncio.create_subprocess_exec(
        "ip", "link", "delete", cfg.bridge, "type", "bridge",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await proc.wait()  # a bridge that is already gone is fine
    await hostrules.remove(cfg.bridge)
    for directory in (cfg.ipam_dir, cfg.results_dir):
        await asyncio.to_thread(shutil.rmtree, directory, True)
