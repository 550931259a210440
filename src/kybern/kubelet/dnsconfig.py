"""A pod's resolv.conf (servers, searches, options) from its dnsPolicy and dnsConfig.

Interface for the kubelet core: ``dns_config(pod, *, cluster_dns, cluster_domain,
host_resolv_conf, node_ips=(), warnings=None) -> cri.DNSConfig``. ``host_resolv_conf`` is the
kubelet's ``--resolv-conf`` (None: like Kubernetes' empty flag, the node's own resolver at
localhost); ``warnings``, when given, collects the texts of the ``DNSConfigForming`` and
``MissingClusterDNS`` Warning events.

Rules are kubelet v1.32's ``network/dns``: ClusterFirst (not on the host network) and
ClusterFirstWithHostNet use the cluster DNS servers, searches ``<ns>.svc.<domain>
svc.<domain> <domain>`` then the host's, and ``ndots:5``; Default (and ClusterFirst on the host
network, or with no cluster DNS known) uses the host's resolv.conf; None starts empty.
``dnsConfig`` then appends nameservers and searches (duplicates dropped) and merges options
(the pod's win). Limits: 3 nameservers; 32 search domains, none over 253 characters, 2048
characters in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kybern.runtime import cri

Obj = dict[str, Any]
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
MAX_DOMAIN_LENGTH = 253
DEFAULT_OPTIONS = ("ndots:5",)


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """Nameservers, searches (the last ``search`` line, without ``.``) and options."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            options = merge_options(options, [_option(o) for o in fields[1:]])
    return servers, searches, options


def _option(text: str) -> tuple[str, str]:
    name, _, value = text.partition(":")
    return name, value


def merge_options(existing: Sequence[str], extra: Sequence[tuple[str, str]]) -> list[str]:
    """Options by name, later ones overriding (``name`` or ``name:value``)."""
    merged: dict[str, str] = dict(_option(o) for o in existing)
    merged.update(extra)
    return [f"{name}:{value}" if value else name for name, value in merged.items()]


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def policy_kind(pod: Obj) -> str:
    """``cluster``, ``host`` or ``none``, as the kubelet's getPodDNSType decides."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "ClusterFirst" and not spec.get("hostNetwork"):
        return "cluster"
    return "host"


def _host_base(host_resolv_conf: Path | None, node_ips: Sequence[str]) -> cri.DNSConfig:
    if host_resolv_conf is None:
        servers = ["::1" if ":" in ip else "127.0.0.1" for ip in node_ips] or ["127.0.0.1"]
        return cri.DNSConfig(servers=tuple(servers), searches=(".",))
    try:
        text = host_resolv_conf.read_text()
    except FileNotFoundError:
        text = ""
    servers, searches, options = parse_resolv_conf(text)
    return cri.DNSConfig(tuple(servers), tuple(searches), tuple(options))


def dns_config(
    pod: Obj,
    *,
    cluster_dns: Sequence[str],
    cluster_domain: str,
    host_resolv_conf: Path | None,
    node_ips: Sequence[str] = (),
    warnings: list[str] | None = None,
) -> cri.DNSConfig:
    """The pod's DNS settings; see the module docstring."""
    notes: list[str] = [] if warnings is None else warnings
    kind = policy_kind(pod)
    host = _host_base(host_resolv_conf, node_ips)
    if kind == "none":
        config = cri.DNSConfig()
    elif kind == "cluster" and cluster_dns:
        config = cri.DNSConfig(
            servers=tuple(cluster_dns),
            searches=tuple(_cluster_searches(pod, cluster_domain, host.searches)),
            options=DEFAULT_OPTIONS,
        )
    else:
        if kind == "cluster":
            meta = pod.get("metadata") or {}
            who = f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"
            notes.append(
                f'pod: "{who}". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.'
            )
        config = host
    extra = (pod.get("spec") or {}).get("dnsConfig")
    if extra:
        config = _append(config, extra)
    return _fit_limits(config, notes)


def _cluster_searches(pod: Obj, domain: str, host_searches: Sequence[str]) -> list[str]:
    if not domain:
        return list(host_searches)
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    return _unique([f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *host_searches])


def _append(config: cri.DNSConfig, extra: Obj) -> cri.DNSConfig:
    options = [
        (str(o.get("name", "")), str(o.get("value") or "")) for o in extra.get("options") or []
    ]
    return cri.DNSConfig(
        servers=tuple(_unique([*config.servers, *(extra.get("nameservers") or [])])),
        searches=tuple(_unique([*config.searches, *(extra.get("searches") or [])])),
        options=tuple(merge_options(config.options, options)),
    )


def _fit_limits(config: cri.DNSConfig, notes: list[str]) -> cri.DNSConfig:
    servers = config.servers
    if len(servers) > MAX_NAMESERVERS:
        servers = servers[:MAX_NAMESERVERS]
        notes.append(
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: "
            + " ".join(servers)
        )
    searches, exceeded = fit_searches(list(config.searches))
    if exceeded:
        notes.append(
            "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: "
            + " ".join(searches)
        )
    return cri.DNSConfig(servers=servers, searches=tuple(searches), options=config.options)


def fit_searches(searches: list[str]) -> tuple[list[str], bool]:
    """Search domains cut to the limits, and whether anything was cut."""
    exceeded = len(searches) > MAX_SEARCH_PATHS
    searches = searches[:MAX_SEARCH_PATHS]
    kept = [s for s in searches if len(s) <= MAX_DOMAIN_LENGTH]
    exceeded = exceeded or len(kept) != len(searches)
    while kept and len(" ".join(kept)) > MAX_SEARCH_CHARS:
        kept.pop()  # drop from the end, as the kubelet does
        exceeded = True
    return kept, exceeded
