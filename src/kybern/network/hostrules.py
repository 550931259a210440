"""Node-wide iptables rules of the pod network (one set per node, not per pod).

- ``nat`` ``KYBERN-POST-<bridge>``: traffic from this node's pods to anything outside the cluster
  CIDR is masqueraded to the node's address; pod-to-pod traffic (this node or another) keeps
  its source IP, as Kubernetes' network model requires. The jump sits first in POSTROUTING:
  the masquerade must come before CNI's own POSTROUTING accepts (DESIGN.md §7).
- ``filter`` ``KYBERN-FWD-<bridge>``: forwarding to and from the pod bridge is accepted, so a host
  whose FORWARD policy is DROP (Docker sets that) still routes pods.

``ensure`` is idempotent (the agent calls it at every start); ``remove`` undoes it. The chains
are named after the bridge so that a test network never touches the node's own.
"""

from __future__ import annotations

import ipaddress

from kybern.network import iptables

COMMENT = "kybern pod network"
MULTICAST = "224.0.0.0/4"


def nat_rules(
    pod_cidr: ipaddress.IPv4Network, cluster_cidr: ipaddress.IPv4Network
) -> list[list[str]]:
    return [
        ["-s", str(pod_cidr), "-d", str(cluster_cidr), "-j", "RETURN"],
        ["-s", str(pod_cidr), "-d", str(pod_cidr), "-j", "RETURN"],
        ["-s", str(pod_cidr), "!", "-d", MULTICAST, "-j", "MASQUERADE"],
    ]


def forward_rules(bridge: str) -> list[list[str]]:
    return [["-i", bridge, "-j", "ACCEPT"], ["-o", bridge, "-j", "ACCEPT"]]


def nat_chain(bridge: str) -> str:
    return f"KYBERN-POST-{bridge}"


def forward_chain(bridge: str) -> str:
    return f"KYBERN-FWD-{bridge}"


def jump(chain: str) -> list[str]:
    return ["-m", "comment", "--comment", COMMENT, "-j", chain]


async def ensure(
    *, bridge: str, pod_cidr: ipaddress.IPv4Network, cluster_cidr: ipaddress.IPv4Network
) -> None:
    """Install (or refresh) the node's rules."""
    nat = nat_rules(pod_cidr, cluster_cidr)
    await _ensure_chain("nat", nat_chain(bridge), "POSTROUTING", nat)
    await _ensure_chain("filter", forward_chain(bridge), "FORWARD", forward_rules(bridge))


async def remove(bridge: str) -> None:
    """Remove the jumps and the chains (nothing to do if they are gone)."""
    for table, chain, parent in (
        ("nat", nat_chain(bridge), "POSTROUTING"),
        ("filter", forward_chain(bridge), "FORWARD"),
    ):
        while await iptables.exists(table, parent, jump(chain)):
            await iptables.run("-t", table, "-D", parent, *jump(chain))
        await iptables.delete_chain(table, chain)


async def _ensure_chain(table: str, chain: str, parent: str, rules: list[list[str]]) -> None:
    await iptables.ensure_chain(table, chain)
    current = [r[2:] for r in await iptables.rules(table, chain) if r[:1] == ["-A"]]
    if current != rules:  # rewrite only when it changed (podCIDR moved, first start)
        await iptables.run("-t", table, "-F", chain)
        for rule in rules:
            await iptables.run("-t", table, "-A", chain, *rule)
    if not await iptables.exists(table, parent, jump(chain)):
        await iptables.run("-t", table, "-I", parent, "1", *jump(chain))
