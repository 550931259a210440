"""The nftables backend: the rule set as one ``table ip kybern`` applied with ``nft -f -``.

Layout (after kube-proxy's nftables mode):

- ``service-ips``: a verdict map ``VIP . proto . port -> goto <chain>`` for ClusterIPs,
  LoadBalancer ingress and external IPs, so a packet finds its service in one lookup however
  many services exist; ``service-nodeports`` (``proto . port``) for NodePorts on the node IPs
  (the ``nodeport-ips`` set, or every local address when no node IP is known).
- ``svc-*`` per service port: masquerade marking (traffic from off the pod network, and
  hairpin: from one of the service's own endpoints), ClientIP affinity (one dynamic set with
  a timeout per endpoint, ``ip saddr @aff-*`` checked before the random choice) and the
  random choice itself, each rule DNATing to one endpoint; ``ext-*`` the same for
  NodePort/LoadBalancer traffic with externalTrafficPolicy applied. No chain per endpoint
  and no anonymous maps: both cost at 10,000 services (see :func:`_choose`).
- ``nat-postrouting`` at priority ``srcnat - 10`` masquerades marked packets *before* the
  CNI's own POSTROUTING chains (whose ``accept`` for the pod subnet would otherwise win).
- Services without endpoints are rejected (``no-endpoint-*`` maps, filter hooks, looked up for
  a connection's first packet only), so clients fail at once instead of timing out: a TCP
  reset for TCP, because the kernel sends no ICMP error for a pod's packet routed through a
  bridge with br_netfilter on (measured); ICMP port unreachable otherwise.

A partial sync is one transaction that deletes stale map elements, (re)writes the chains of
changed service ports only, adds new elements, then deletes chains and sets no longer used.
Nothing outside ``table ip kybern`` is ever touched. IPv6 is not rendered yet.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from kybern.proxy import backend, libnft, rules

TABLE = "kybern"
FAMILY = "ip"
MASQ_MARK = "0x4000"
_T = f"{FAMILY} {TABLE}"

SKELETON = f"""\
table {_T} {{
  map service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map service-nodeports {{ type inet_proto . inet_service : verdict; }}
  map no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map no-endpoint-nodeports {{ type inet_proto . inet_service : verdict; }}
  set nodeport-ips {{ type ipv4_addr; }}
  chain mark-for-masquerade {{ meta mark set meta mark | {MASQ_MARK}; }}
  chain masquerading {{
    meta mark & {MASQ_MARK} == 0 return
    meta mark set meta mark ^ {MASQ_MARK}
    masquerade fully-random
  }}
  chain reject-chain {{
    meta l4proto tcp reject with tcp reset
    reject
  }}
  chain services {{
    {{services}}
  }}
  chain no-endpoints {{
    {{no_endpoints}}
  }}
  chain nat-prerouting {{ type nat hook prerouting priority dstnat; policy accept; jump services; }}
  chain nat-output {{ type nat hook output priority -100; policy accept; jump services; }}
  chain nat-postrouting {{
    type nat hook postrouting priority srcnat - 10; policy accept; jump masquerading;
  }}
  chain filter-input {{
    type filter hook input priority filter - 5; policy accept; ct state new jump no-endpoints;
  }}
  chain filter-forward {{
    type filter hook forward priority filter - 5; policy accept; ct state new jump no-endpoints;
  }}
  chain filter-output {{
    type filter hook output priority filter - 5; policy accept; ct state new jump no-endpoints;
  }}
}}
"""


def skeleton(node_ips: Sequence[str]) -> str:
    """The table's fixed part; the ``services`` and ``no-endpoints`` chain bodies depend on
    whether NodePorts answer on given node IPs or on every local address."""
    local = "ip daddr @nodeport-ips" if node_ips else "fib daddr type local"
    services = (
        "ip daddr . meta l4proto . th dport vmap @service-ips\n"
        f"{local} meta l4proto . th dport vmap @service-nodeports"
    )
    no_eps = (
        "ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n"
        f"{local} meta l4proto . th dport vmap @no-endpoint-nodeports"
    )
    indent = "\n    "
    return SKELETON.replace("{services}", services.replace("\n", indent)).replace(
        "{no_endpoints}", no_eps.replace("\n", indent)
    )


# -- per service port objects -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Objects:
    """The nftables objects one service port owns."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> rules
    sets: dict[str, int] = field(default_factory=dict)  # affinity set -> timeout
    elements: dict[tuple[str, str], str] = field(default_factory=dict)  # (map, key) -> verdict


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:8].decode()


def base_name(sp: rules.ServicePort) -> str:
    """``HASH-ns/svc/proto/port``: unique, readable, a valid unquoted nft identifier."""
    port = sp.port_name or str(sp.port)
    return f"{_hash(sp.key)}-{sp.namespace}/{sp.service}/{sp.protocol.lower()}/{port}"


def objects(sp: rules.ServicePort, cluster_cidr: str) -> Objects:
    out = Objects()
    base = base_name(sp)
    proto = sp.protocol.lower()
    svc_chain, ext_chain = f"svc-{base}", f"ext-{base}"
    if sp.endpoints:
        masq = [f"ip saddr != {cluster_cidr} jump mark-for-masquerade"] if cluster_cidr else []
        out.chains[svc_chain] = (
            *masq,
            *_choose(out, base, proto, sp.endpoints, sp.affinity_timeout),
        )
    for vip in sp.cluster_ips:
        _element(out, "service-ips", f"{vip} . {proto} . {sp.port}", svc_chain, sp.endpoints)
    if not sp.has_external:
        return out
    if sp.external_endpoints:
        masq = (
            ["fib saddr type local jump mark-for-masquerade"]
            if sp.external_local
            else ["jump mark-for-masquerade"]
        )
        choice = _choose(out, base, proto, sp.external_endpoints, sp.affinity_timeout)
        out.chains[ext_chain] = (*masq, *choice)
    ext_eps = sp.external_endpoints
    for ip in (*sp.load_balancer_ips, *sp.external_ips):
        _element(out, "service-ips", f"{ip} . {proto} . {sp.port}", ext_chain, ext_eps)
    if sp.node_port:
        _element(out, "service-nodeports", f"{proto} . {sp.node_port}", ext_chain, ext_eps)
    return out


def _element(out: Objects, map_: str, key: str, chain: str, eps: Sequence[object]) -> None:
    if eps:
        out.elements[(map_, key)] = f"goto {chain}"
    else:
        no_ep = "no-endpoint-services" if map_ == "service-ips" else "no-endpoint-nodeports"
        out.elements[(no_ep, key)] = "goto reject-chain"


def _affinity_set(base: str, ep: rules.Endpoint, timeout: int) -> str:
    """The timeout is part of the name: a new timeout is a new set, swapped in like a chain."""
    return f"aff{timeout}-{base}__{ep.ip}/{ep.port}"


def _choose(
    out: Objects, base: str, proto: str, eps: Sequence[rules.Endpoint], timeout: int
) -> list[str]:
    """The rules choosing an endpoint and DNATing to it, inline in the service's chain.

    One chain per service port, none per endpoint: every ``nft`` run loads the table's
    chain list, so the chain count is what a one-service update costs at 10,000 services.
    A ``dnat`` ends the chain, so rule i is reached by what rules 0..i-1 left and takes
    1/(n-i) of it: each endpoint gets 1/n (iptables' statistic scheme), without
    ``numgen ... vmap { }`` (each anonymous map is a kernel set, and creating one scans all
    of the table's sets: 10,000 services took 20 s to load instead of 1.5 s)."""
    # Hairpin: a connection from one of the endpoints is masqueraded (when another endpoint
    # is chosen this is one masquerade more than needed, the price of having no endpoint
    # chains).
    lines = [f"ip saddr {ep.ip} jump mark-for-masquerade" for ep in eps]
    dnat = [f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}" for ep in eps]
    if timeout:
        sets = [_affinity_set(base, ep, timeout) for ep in eps]
        out.sets.update(dict.fromkeys(sets, timeout))
        dnat = [f"update @{s} {{ ip saddr }} {d}" for s, d in zip(sets, dnat, strict=True)]
        lines += [f"ip saddr @{s} {d}" for s, d in zip(sets, dnat, strict=True)]
    for i, rule in enumerate(dnat[:-1]):
        lines.append(f"numgen random mod {len(dnat) - i} 0 {rule}")
    lines.append(dnat[-1])
    return lines


# -- rendering ------------------------------------------------------------------------------


class Renderer:
    """Text for ``nft -f -``: a whole table, or the changes between two rule sets."""

    def full(self, ruleset: rules.RuleSet) -> str:
        out = [f"add table {_T}", f"delete table {_T}", skeleton(ruleset.node_ips)]
        if ruleset.node_ips:
            out.append(f"add element {_T} nodeport-ips {{ {', '.join(ruleset.node_ips)} }}")
        merged = Objects()
        for sp in ruleset.services.values():
            _merge(merged, objects(sp, ruleset.cluster_cidr))
        out += _add_sets(merged.sets)
        out += [f"add chain {_T} {name}" for name in merged.chains]  # forward references
        # One "add rule" per line: a "table { chain { } }" block per chain costs the kernel
        # a table update each (measured: 10x slower at 1,000 services).
        out += [
            f"add rule {_T} {name} {line}" for name, body in merged.chains.items() for line in body
        ]
        out += _add_elements(merged.elements)
        return "\n".join(out) + "\n"

    def partial(self, old: rules.RuleSet, new: rules.RuleSet, change: rules.Diff) -> str:
        before, after = Objects(), Objects()
        for sp in (*change.removed, *(o for o, _ in change.changed)):
            _merge(before, objects(sp, old.cluster_cidr))
        for sp in (*change.added, *(n for _, n in change.changed)):
            _merge(after, objects(sp, new.cluster_cidr))
        return render_transition(before, after)


def _merge(into: Objects, objs: Objects) -> None:
    into.chains.update(objs.chains)
    into.sets.update(objs.sets)
    into.elements.update(objs.elements)


def render_transition(before: Objects, after: Objects) -> str:
    """One transaction turning ``before``'s objects into ``after``'s; unchanged ones untouched.

    Order matters inside the transaction: references go before what they point to is
    deleted, and what they point to exists before they are added."""
    stale = [k for k, v in before.elements.items() if after.elements.get(k) != v]
    out = [f"delete element {_T} {m} {{ {key} }}" for (m, key) in stale]
    out += _add_sets({k: v for k, v in after.sets.items() if k not in before.sets})
    out += [f"add chain {_T} {name}" for name in after.chains if name not in before.chains]
    for name, body in after.chains.items():
        if before.chains.get(name) == body:
            continue
        if name in before.chains:
            out.append(f"flush chain {_T} {name}")
        out += [f"add rule {_T} {name} {line}" for line in body]
    out += _add_elements({k: v for k, v in after.elements.items() if before.elements.get(k) != v})
    gone = [name for name in before.chains if name not in after.chains]
    out += [f"flush chain {_T} {name}" for name in gone]
    out += [f"delete chain {_T} {name}" for name in gone]
    out += [f"delete set {_T} {name}" for name in before.sets if name not in after.sets]
    return "\n".join(out) + ("\n" if out else "")


def _add_sets(sets: dict[str, int]) -> list[str]:
    return [
        f"add set {_T} {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {t}s; }}"
        for name, t in sets.items()
    ]


def _add_elements(elements: dict[tuple[str, str], str]) -> list[str]:
    by_map: dict[str, list[str]] = {}
    for (map_, key), verdict in elements.items():
        by_map.setdefault(map_, []).append(f"{key} : {verdict}")
    return [f"add element {_T} {m} {{ {', '.join(items)} }}" for m, items in by_map.items()]


class NftablesBackend(backend.TransactionalBackend):
    name = "nftables"

    def __init__(self, *, netns: str | None = None, runner: backend.Runner | None = None) -> None:
        """Rules are applied through libnftables in this process when it loads (much faster
        at scale, see :mod:`kybern.proxy.libnft`), else by running ``nft -f -``."""
        argv = backend.in_netns(netns, ["nft", "-f", "-"])
        self._context: libnft.Context | None = None
        if runner is None and libnft.available():
            self._context = libnft.Context(netns=netns)
            runner = self._context.runner
        super().__init__(Renderer(), argv, runner=runner or backend.run_command)

    async def cleanup(self) -> None:
        self.applied = None
        await self.runner(self.argv, f"add table {_T}\ndelete table {_T}\n")

    async def close(self) -> None:
        """Leave the rules in place (see :class:`backend.TransactionalBackend`)."""
        if self._context is not None:
            await self._context.close()
            self._context = None
