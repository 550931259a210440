"""nftables rendering (kybern.proxy.nftables): the table's text, partial updates that touch
only what changed, and the full/partial sync logic on a recording runner. When root with
``nft`` the rendered text is also loaded into a throwaway network namespace."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from kybern.proxy import backend, nftables, rules
from tests.unit.proxy.objects import endpoint, endpoint_slice, service

NODE_PORT = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
can_load = os.geteuid() == 0 and shutil.which("nft") and shutil.which("unshare")


DB = service("db", "10.43.0.11")
DB_SLICE = endpoint_slice("db", [endpoint("10.1.0.20")])


def ruleset(eps=("10.1.0.5", "10.1.0.6"), *, extra=(), **spec) -> rules.RuleSet:
    services = [service("web", "10.43.0.10", **spec), *extra]
    slices = [endpoint_slice("web", [endpoint(ip) for ip in eps]), DB_SLICE]
    return rules.compute(
        services, slices, node_name="n1", node_ips=["192.168.1.2"], cluster_cidr="10.1.0.0/16"
    )


def load(*scripts: str) -> str:
    """Apply the scripts in order in a new network namespace; return the listed table."""
    text = "".join(f"nft -f - <<'EOF'\n{s}EOF\n" for s in scripts) + "nft list table ip kybern\n"
    done = subprocess.run(
        ["unshare", "--net", "sh", "-e"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def chain(text: str, name: str) -> list[str]:
    """The rules added to chain ``name`` by a rendered script."""
    prefix = f"add rule ip kybern {name} "
    return [line.removeprefix(prefix) for line in text.splitlines() if line.startswith(prefix)]


def rules_of(text: str, chain_prefix: str) -> list[str]:
    return [line for line in text.splitlines() if chain_prefix in line]


class TestFullRender:
    def test_replaces_only_its_own_table_atomically(self):
        text = nftables.Renderer().full(ruleset())
        assert text.startswith("add table ip kybern\ndelete table ip kybern\ntable ip kybern {")
        assert "table ip nat" not in text
        assert "table inet" not in text

    def test_vip_lookup_is_one_verdict_map(self):
        text = nftables.Renderer().full(ruleset())
        assert "ip daddr . meta l4proto . th dport vmap @service-ips" in text
        name = nftables.base_name(next(iter(ruleset().services.values())))
        assert (
            f"add element ip kybern service-ips {{ 10.43.0.10 . tcp . 80 : goto svc-{name} }}"
            in text
        )

    def test_one_chain_per_service_choosing_and_dnating(self):
        text = nftables.Renderer().full(ruleset())
        svc = f"svc-{nftables.base_name(next(iter(ruleset().services.values())))}"
        assert chain(text, svc) == [
            "ip saddr != 10.1.0.0/16 jump mark-for-masquerade",  # from off the pod network
            "ip saddr 10.1.0.5 jump mark-for-masquerade",  # hairpin
            "ip saddr 10.1.0.6 jump mark-for-masquerade",
            # 1/2 to the first, the rest to the second; no anonymous map, no endpoint chain
            "numgen random mod 2 0 meta l4proto tcp dnat to 10.1.0.5:8080",
            "meta l4proto tcp dnat to 10.1.0.6:8080",
        ]
        assert "vmap {" not in text
        assert "sep-" not in text

    def test_single_endpoint_is_a_plain_dnat(self):
        text = nftables.Renderer().full(ruleset(eps=("10.1.0.5",)))
        assert "numgen" not in text

    def test_three_endpoints_split_a_third_each(self):
        text = nftables.Renderer().full(ruleset(eps=("10.1.0.5", "10.1.0.6", "10.1.0.7")))
        assert "numgen random mod 3 0 meta l4proto tcp dnat to 10.1.0.5:8080" in text
        assert "numgen random mod 2 0 meta l4proto tcp dnat to 10.1.0.6:8080" in text

    def test_masquerade_runs_before_the_cni_postrouting(self):
        text = nftables.Renderer().full(ruleset())
        assert "type nat hook postrouting priority srcnat - 10" in text
        assert "masquerade fully-random" in text

    def test_client_ip_affinity_uses_timed_sets(self):
        text = nftables.Renderer().full(
            ruleset(
                sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
            )
        )
        name = nftables.base_name(next(iter(ruleset().services.values())))
        aff = f"aff60-{name}__10.1.0.5/8080"
        assert (
            f"add set ip kybern {aff} {{ type ipv4_addr; flags dynamic,timeout; timeout 60s; }}"
            in text
        )
        dnat = f"update @{aff} {{ ip saddr }} meta l4proto tcp dnat to 10.1.0.5:8080"
        body = chain(text, f"svc-{name}")
        assert f"ip saddr @{aff} {dnat}" in body  # a known client goes back
        assert f"numgen random mod 2 0 {dnat}" in body  # a new one is remembered

    def test_node_port_on_node_ips_with_external_chain(self):
        text = nftables.Renderer().full(ruleset(type="NodePort", ports=NODE_PORT))
        name = nftables.base_name(next(iter(ruleset().services.values())))
        assert "add element ip kybern nodeport-ips { 192.168.1.2 }" in text
        assert f"service-nodeports {{ tcp . 30080 : goto ext-{name} }}" in text
        assert "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports" in text

    def test_node_ports_on_every_local_address_without_node_ips(self):
        rs = rules.compute([service("web", type="NodePort", ports=NODE_PORT)], [])
        assert (
            "fib daddr type local meta l4proto . th dport vmap @service-nodeports"
            in nftables.Renderer().full(rs)
        )

    def test_load_balancer_ips_go_to_the_external_chain(self):
        text = nftables.Renderer().full(
            ruleset(type="LoadBalancer", lb_ips=["192.168.5.1"], ports=NODE_PORT)
        )
        assert "192.168.5.1 . tcp . 80 : goto ext-" in text

    def test_external_local_keeps_client_address(self):
        text = nftables.Renderer().full(
            ruleset(type="NodePort", externalTrafficPolicy="Local", ports=NODE_PORT)
        )
        assert "fib saddr type local jump mark-for-masquerade" in text

    def test_service_without_endpoints_is_rejected(self):
        text = nftables.Renderer().full(ruleset(eps=()))
        assert "no-endpoint-services { 10.43.0.10 . tcp . 80 : goto reject-chain }" in text
        assert "svc-" not in text
        # TCP gets a reset (an ICMP error is not sent for bridged pod traffic), then ICMP.
        chain = text.split("chain reject-chain {", 1)[1].split("}", 1)[0].split()
        assert " ".join(chain) == "meta l4proto tcp reject with tcp reset reject"
        # Only a connection's first packet is looked up.
        assert "ct state new jump no-endpoints" in text

    def test_udp(self):
        text = nftables.Renderer().full(
            ruleset(ports=[{"name": "http", "port": 80, "protocol": "UDP"}])
        )
        assert "10.43.0.10 . udp . 80" in text


class TestPartial:
    def partial(self, old: rules.RuleSet, new: rules.RuleSet) -> str:
        return nftables.Renderer().partial(old, new, rules.diff(old, new))

    def test_endpoint_change_rewrites_only_that_services_chain(self):
        other = DB
        old, new = ruleset(extra=[other]), ruleset(eps=("10.1.0.5", "10.1.0.7"), extra=[other])
        text = self.partial(old, new)
        name = nftables.base_name(old.services["default/web:http/tcp"])
        assert text.splitlines()[0] == f"flush chain ip kybern svc-{name}"
        assert chain(text, f"svc-{name}")[-1] == "meta l4proto tcp dnat to 10.1.0.7:8080"
        assert "add chain" not in text
        assert "delete chain" not in text
        assert "db" not in text
        assert "service-ips" not in text  # the VIP element still points at the same chain
        assert "delete table" not in text

    def test_new_service_adds_chains_then_element(self):
        text = self.partial(ruleset(), ruleset(extra=[DB]))
        lines = text.splitlines()
        element = next(i for i, line in enumerate(lines) if "10.43.0.11 . tcp . 80" in line)
        assert lines[element].startswith("add element ip kybern service-ips")
        assert all("db/" in line for line in lines)
        assert max(i for i, line in enumerate(lines) if line.startswith("add chain")) < element

    def test_removed_service_deletes_element_before_its_chains(self):
        text = self.partial(ruleset(extra=[DB]), ruleset())
        lines = text.splitlines()
        assert lines[0] == "delete element ip kybern service-ips { 10.43.0.11 . tcp . 80 }"
        assert lines[-1].startswith("delete chain ip kybern")
        assert not any("web/" in line for line in lines)

    def test_losing_every_endpoint_swaps_to_reject(self):
        text = self.partial(ruleset(), ruleset(eps=()))
        assert "delete element ip kybern service-ips { 10.43.0.10 . tcp . 80 }" in text
        assert (
            "add element ip kybern no-endpoint-services { 10.43.0.10 . tcp . 80 : goto reject-chain }"
            in text
        )

    def test_affinity_timeout_change_swaps_sets(self):
        def aff(t):
            return ruleset(
                sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": t}},
            )

        text = self.partial(aff(60), aff(120))
        assert "add set ip kybern aff120-" in text
        assert "delete set ip kybern aff60-" in text
        assert text.index("add set") < text.index("add rule")
        assert text.rindex("delete set") > text.rindex("flush chain")

    def test_nothing_changed_renders_nothing(self):
        assert self.partial(ruleset(), ruleset()) == ""


@pytest.mark.skipif(not can_load, reason="needs root and nft")
class TestLoads:
    def test_full_then_partials_load(self):
        r = nftables.Renderer()
        aff = {"sessionAffinity": "ClientIP", "type": "NodePort", "ports": NODE_PORT}
        a = ruleset(extra=[DB], **aff)
        b = ruleset(eps=("10.1.0.7",), **aff)
        c = ruleset(eps=())
        listed = load(
            r.full(a), r.partial(a, b, rules.diff(a, b)), r.partial(b, c, rules.diff(b, c))
        )
        assert "10.43.0.10 . tcp . 80 : goto reject-chain" in listed
        assert rules_of(listed, "chain svc-") == []
        assert rules_of(listed, "aff") == []

    def test_full_replaces_a_previous_table(self):
        r = nftables.Renderer()
        listed = load(r.full(ruleset(extra=[DB])), r.full(ruleset()))
        assert "10.43.0.11" not in listed
        assert "10.43.0.10 . tcp . 80" in listed


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.scripts: list[str] = []
        self.fail = fail

    async def __call__(self, argv, text: str) -> None:
        assert argv == ["nft", "-f", "-"]
        self.scripts.append(text)
        if self.fail:
            self.fail -= 1
            raise backend.ApplyError("nft: boom")


class TestSync:
    async def test_first_sync_full_then_partial_then_noop(self):
        rec = Recorder()
        b = nftables.NftablesBackend(runner=rec)
        assert await b.sync(ruleset()) == "full"
        assert await b.sync(ruleset(eps=("10.1.0.5",))) == "partial"
        assert await b.sync(ruleset(eps=("10.1.0.5",))) == "noop"
        assert len(rec.scripts) == 2
        assert "delete table" not in rec.scripts[1]

    async def test_failed_partial_falls_back_to_full(self):
        rec = Recorder()
        b = nftables.NftablesBackend(runner=rec)
        await b.sync(ruleset())
        rec.fail = 1
        assert await b.sync(ruleset(eps=("10.1.0.5",))) == "full"
        assert rec.scripts[-1].startswith("add table ip kybern\ndelete table")

    async def test_failed_full_leaves_state_unknown(self):
        rec = Recorder(fail=1)
        b = nftables.NftablesBackend(runner=rec)
        with pytest.raises(backend.ApplyError):
            await b.sync(ruleset())
        assert b.applied is None
        assert await b.sync(ruleset()) == "full"

    async def test_node_ip_change_resyncs_fully(self):
        rec = Recorder()
        b = nftables.NftablesBackend(runner=rec)
        await b.sync(ruleset())
        moved = rules.RuleSet(
            node_name="n1",
            node_ips=("192.168.1.3",),
            cluster_cidr="10.1.0.0/16",
            services=ruleset().services,
        )
        assert await b.sync(moved) == "full"

    async def test_cleanup_deletes_only_its_table(self):
        rec = Recorder()
        await nftables.NftablesBackend(runner=rec).cleanup()
        assert rec.scripts == ["add table ip kybern\ndelete table ip kybern\n"]
