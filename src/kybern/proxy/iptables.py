"""The iptables backend: kybern's own chains written with ``iptables-restore --noflush``.

Chains, after kube-proxy's iptables mode (names at most 28 characters, hashed):

- nat ``KYBERN-SERVICES`` (jumped to from PREROUTING and OUTPUT): one rule per VIP/port to
  ``KYBERN-SVC-*`` (ClusterIPs) or ``KYBERN-EXT-*`` (LoadBalancer and external IPs); the last
  rule sends local destinations to ``KYBERN-NODEPORTS``.
- ``KYBERN-SVC-*`` / ``KYBERN-EXT-*``: masquerade marking, ClientIP affinity with the
  ``recent`` match (one list per endpoint, ``--rcheck --seconds T --reap``), then one rule per
  endpoint with ``statistic --mode random --probability 1/(n-i)`` (the last unconditional), so
  each endpoint gets 1/n of new connections.
- ``KYBERN-SEP-*``: hairpin marking, the ``recent --set`` and the DNAT.
- ``KYBERN-POSTROUTING`` (inserted first in POSTROUTING, before the CNI's chains whose
  ``ACCEPT`` would otherwise skip it) masquerades marked packets.
- filter ``KYBERN-NO-ENDPOINTS`` (from INPUT, FORWARD, OUTPUT) rejects services without
  endpoints.

A partial sync rewrites the dispatch chains (``KYBERN-SERVICES``, ``KYBERN-NODEPORTS``,
``KYBERN-NO-ENDPOINTS``: one rule per port, as kube-proxy does) and only the SVC/EXT/SEP chains
of changed service ports; chains no longer used are flushed and deleted. Built-in chains only
get the jump rules, added once if missing; nothing else is touched.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kybern.proxy import backend, rules

PREFIX = "KYBERN-"
SERVICES, NODEPORTS, POSTROUTING = "KYBERN-SERVICES", "KYBERN-NODEPORTS", "KYBERN-POSTROUTING"
MARK_MASQ, NO_ENDPOINTS = "KYBERN-MARK-MASQ", "KYBERN-NO-ENDPOINTS"
MASQ_MARK = "0x4000"
LOCAL = "-m addrtype --dst-type LOCAL"

# The reject only matters for a connection's first packet: established traffic skips the
# chain with one conntrack match (kube-proxy guards its filter chains the same way).
NEW_ONLY = "-m conntrack --ctstate NEW "

# (table, built-in chain, matches, kybern chain)
JUMPS = (
    ("nat", "PREROUTING", "", SERVICES),
    ("nat", "OUTPUT", "", SERVICES),
    ("nat", "POSTROUTING", "", POSTROUTING),
    ("filter", "INPUT", NEW_ONLY, NO_ENDPOINTS),
    ("filter", "FORWARD", NEW_ONLY, NO_ENDPOINTS),
    ("filter", "OUTPUT", NEW_ONLY, NO_ENDPOINTS),
)


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:16].decode()


def svc_chain(sp: rules.ServicePort) -> str:
    return f"KYBERN-SVC-{_hash(sp.key)}"


def ext_chain(sp: rules.ServicePort) -> str:
    return f"KYBERN-EXT-{_hash(sp.key)}"


def sep_chain(sp: rules.ServicePort, ep: rules.Endpoint) -> str:
    return f"KYBERN-SEP-{_hash(sp.key + '@' + ep.address)}"


@dataclass(frozen=True, slots=True)
class Objects:
    """One service port's chains and its rules in the shared dispatch chains."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # nat chain -> rules
    services: list[str] = field(default_factory=list)  # KYBERN-SERVICES rules
    nodeports: list[str] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)  # filter KYBERN-NO-ENDPOINTS rules


def objects(sp: rules.ServicePort, ruleset: rules.RuleSet) -> Objects:
    out = Objects()
    proto = sp.protocol.lower()
    comment = f'-m comment --comment "{sp.key}"'
    for ep in sorted(set(sp.endpoints) | set(sp.external_endpoints)):
        out.chains[sep_chain(sp, ep)] = _sep_rules(sp, ep, proto, comment)
    match = f"-p {proto} -m {proto}"
    if sp.endpoints:
        masq = [f"! -s {ruleset.cluster_cidr} -j {MARK_MASQ}"] if ruleset.cluster_cidr else []
        out.chains[svc_chain(sp)] = (*masq, *_choose(sp, sp.endpoints))
    for vip in sp.cluster_ips:
        rule = f"-d {vip}/32 {match} --dport {sp.port} {comment}"
        _dispatch(out, rule, svc_chain(sp), bool(sp.endpoints), proto)
    if not sp.has_external:
        return out
    if sp.external_endpoints:
        only_local = "-m addrtype --src-type LOCAL " if sp.external_local else ""
        out.chains[ext_chain(sp)] = (
            f"{only_local}-j {MARK_MASQ}",
            *_choose(sp, sp.external_endpoints),
        )
    has_ext = bool(sp.external_endpoints)
    for ip in (*sp.load_balancer_ips, *sp.external_ips):
        rule = f"-d {ip}/32 {match} --dport {sp.port} {comment}"
        _dispatch(out, rule, ext_chain(sp), has_ext, proto)
    if sp.node_port:
        rule = f"{match} --dport {sp.node_port} {comment}"
        if has_ext:
            out.nodeports.append(f"{rule} -j {ext_chain(sp)}")
        else:
            out.rejects.extend(
                f"{m.removesuffix(' -j ' + NODEPORTS)} {rule} {_reject(proto)}"
                for m in _to_nodeports(ruleset)
            )
    return out


def _dispatch(out: Objects, rule: str, chain: str, has_endpoints: bool, proto: str) -> None:
    if has_endpoints:
        out.services.append(f"{rule} -j {chain}")
    else:
        out.rejects.append(f"{rule} {_reject(proto)}")


def _reject(proto: str) -> str:
    """A TCP reset for TCP: the ICMP error of a plain REJECT is not sent for a pod's packet
    routed through a bridge with br_netfilter on (measured: the client timed out)."""
    return "-j REJECT --reject-with tcp-reset" if proto == "tcp" else "-j REJECT"


def _sep_rules(
    sp: rules.ServicePort, ep: rules.Endpoint, proto: str, comment: str
) -> tuple[str, ...]:
    name = sep_chain(sp, ep)
    recent = f"-m recent --name {name} --set " if sp.affinity_timeout else ""
    return (
        f"-s {ep.ip}/32 {comment} -j {MARK_MASQ}",
        f"-p {proto} {comment} {recent}-m {proto} -j DNAT --to-destination {ep.ip}:{ep.port}",
    )


def _choose(sp: rules.ServicePort, eps: Sequence[rules.Endpoint]) -> list[str]:
    seps = [sep_chain(sp, ep) for ep in eps]
    lines = []
    if sp.affinity_timeout:
        lines += [
            f"-m recent --name {s} --rcheck --seconds {sp.affinity_timeout} --reap -j {s}"
            for s in seps
        ]
    n = len(seps)
    for i, sep in enumerate(seps):
        if i < n - 1:
            # 1/(n-i) of what is left: every endpoint ends up with 1/n overall.
            lines.append(f"-m statistic --mode random --probability {1 / (n - i):.10f} -j {sep}")
        else:
            lines.append(f"-j {sep}")
    return lines


class Renderer:
    """Text for ``iptables-restore --noflush``."""

    def __init__(self) -> None:
        self.existing: set[str] = set()  # KYBERN-* chains found before a full sync

    def full(self, ruleset: rules.RuleSet) -> str:
        merged = _merged(ruleset, ruleset.services.values())
        keep = {*merged.chains, *_fixed_nat(), SERVICES, NODEPORTS}
        stale = sorted(self.existing - keep)
        return self._render(ruleset, merged, {**_fixed_nat(), **merged.chains}, stale)

    def partial(self, old: rules.RuleSet, new: rules.RuleSet, change: rules.Diff) -> str:
        before = _merged(old, (*change.removed, *(o for o, _ in change.changed)))
        after_changed = _merged(new, (*change.added, *(n for _, n in change.changed)))
        write = {n: b for n, b in after_changed.chains.items() if before.chains.get(n) != b}
        stale = sorted(set(before.chains) - set(after_changed.chains))
        # The dispatch chains list every port: rebuilt from the new rule set.
        merged = _merged(new, new.services.values(), chains=False)
        return self._render(new, merged, write, stale)

    def _render(
        self,
        ruleset: rules.RuleSet,
        merged: Objects,
        write: dict[str, tuple[str, ...]],
        stale: list[str],
    ) -> str:
        dispatch = {
            SERVICES: (*merged.services, *_to_nodeports(ruleset)),
            NODEPORTS: tuple(merged.nodeports),
        }
        chains = {**dispatch, **write}
        out = ["*nat"]
        out += [f":{name} - [0:0]" for name in (*chains, *stale)]
        out += [f"-A {name} {line}" for name, body in chains.items() for line in body]
        out += [f"-X {name}" for name in stale]
        out += ["COMMIT", "*filter", f":{NO_ENDPOINTS} - [0:0]"]
        out += [f"-A {NO_ENDPOINTS} {line}" for line in merged.rejects]
        out.append("COMMIT")
        return "\n".join(out) + "\n"


def _to_nodeports(ruleset: rules.RuleSet) -> list[str]:
    """NodePorts answer on the node IPs when known, else on every local address."""
    if ruleset.node_ips:
        return [f"-d {ip}/32 -j {NODEPORTS}" for ip in ruleset.node_ips]
    return [f"{LOCAL} -j {NODEPORTS}"]


def _fixed_nat() -> dict[str, tuple[str, ...]]:
    return {
        MARK_MASQ: (f"-j MARK --or-mark {MASQ_MARK}",),
        POSTROUTING: (
            f"-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
            f"-j MARK --xor-mark {MASQ_MARK}",
            "-j MASQUERADE --random-fully",
        ),
    }


def _merged(
    ruleset: rules.RuleSet, ports: Iterable[rules.ServicePort], *, chains: bool = True
) -> Objects:
    out = Objects()
    for sp in ports:
        objs = objects(sp, ruleset)
        if chains:
            out.chains.update(objs.chains)
        out.services.extend(objs.services)
        out.nodeports.extend(objs.nodeports)
        out.rejects.extend(objs.rejects)
    return out


def jump_script(*, remove: bool = False) -> str:
    """Shell commands adding (once, first in the chain) or removing the jumps from the
    built-in chains."""
    lines = []
    for table, builtin, matches, chain in JUMPS:
        rule = f"{matches}-m comment --comment kybern -j {chain}"
        check = f"iptables -w -t {table} -C {builtin} {rule}"
        if remove:
            lines.append(
                f"while {check} 2>/dev/null; do iptables -w -t {table} -D {builtin} {rule}; done"
            )
        else:
            lines.append(f"{check} 2>/dev/null || iptables -w -t {table} -I {builtin} 1 {rule}")
    return "\n".join(lines) + "\n"


# Only the proxy's own chains: the pod network uses KYBERN-POST-*/KYBERN-FWD-* (network/).
_CHAIN_RE = re.compile(
    r"^:(KYBERN-(?:SERVICES|NODEPORTS|POSTROUTING|MARK-MASQ|NO-ENDPOINTS"
    r"|(?:SVC|EXT|SEP)-[A-Z2-7]{16})) ",
    re.MULTILINE,
)


def kybern_chains(saved: str) -> set[str]:
    """The proxy's chains in ``iptables-save`` output (never another kybern part's)."""
    return set(_CHAIN_RE.findall(saved))


class IptablesBackend(backend.TransactionalBackend):
    name = "iptables"

    def __init__(
        self,
        *,
        netns: str | None = None,
        runner: backend.Runner | None = None,
        reader: backend.Reader | None = None,
    ) -> None:
        self.netns = netns
        argv = backend.in_netns(netns, ["iptables-restore", "--noflush", "-w", "5"])
        self.iptables = Renderer()
        self.reader = reader or backend.read_command
        super().__init__(self.iptables, argv, runner=runner or backend.run_command)

    async def prepare_full(self) -> None:
        """Before a full sync: create the chains and jumps, and learn which KYBERN chains
        exist (leftovers of an earlier run are then deleted)."""
        create = "*nat\n" + "".join(f":{c} - [0:0]\n" for c in (SERVICES, POSTROUTING)) + "COMMIT\n"
        create += f"*filter\n:{NO_ENDPOINTS} - [0:0]\nCOMMIT\n"
        await self.runner(self.argv, create)
        await self.runner(backend.in_netns(self.netns, ["sh", "-e"]), jump_script())
        self.iptables.existing = await self._existing()

    async def _existing(self) -> set[str]:
        argv = backend.in_netns(self.netns, ["iptables-save", "-t", "nat"])
        return kybern_chains(await self.reader(argv))

    async def cleanup(self) -> None:
        self.applied = None
        await self.runner(backend.in_netns(self.netns, ["sh"]), jump_script(remove=True))
        chains = await self._existing()
        if not chains:
            return
        text = "*nat\n" + "".join(f":{c} - [0:0]\n" for c in sorted(chains))
        text += "".join(f"-X {c}\n" for c in sorted(chains)) + "COMMIT\n"
        text += f"*filter\n:{NO_ENDPOINTS} - [0:0]\n-X {NO_ENDPOINTS}\nCOMMIT\n"
        await self.runner(self.argv, text)
