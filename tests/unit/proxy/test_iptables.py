"""iptables rendering (kybern.proxy.iptables): kube-proxy-style chains for
``iptables-restore --noflush``, partial rewrites of changed chains only, and the backend's
sync/cleanup commands on a recording runner. When root, the text is also loaded into a
throwaway network namespace."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from kybern.proxy import backend, iptables, rules
from tests.unit.proxy.objects import endpoint, endpoint_slice, service

NODE_PORT = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
DB = service("db", "10.43.0.11")
DB_SLICE = endpoint_slice("db", [endpoint("10.1.0.20")])
can_load = os.geteuid() == 0 and shutil.which("iptables-restore") and shutil.which("unshare")


def ruleset(eps=("10.1.0.5", "10.1.0.6", "10.1.0.7"), *, extra=(), **spec) -> rules.RuleSet:
    services = [service("web", "10.43.0.10", **spec), *extra]
    slices = [endpoint_slice("web", [endpoint(ip) for ip in eps]), DB_SLICE]
    return rules.compute(
        services, slices, node_name="n1", node_ips=["192.168.1.2"], cluster_cidr="10.1.0.0/16"
    )


def web(rs: rules.RuleSet) -> rules.ServicePort:
    return rs.services["default/web:http/tcp"]


def chain_rules(text: str, chain: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"-A {chain} ")]


def load(*scripts: str) -> str:
    text = "".join(f"iptables-restore --noflush <<'EOF'\n{s}EOF\n" for s in scripts)
    text += "iptables-save\n"
    done = subprocess.run(
        ["unshare", "--net", "sh", "-e"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class TestFullRender:
    def test_chain_names_fit_iptables(self):
        sp = web(ruleset())
        for name in (
            iptables.svc_chain(sp),
            iptables.ext_chain(sp),
            iptables.sep_chain(sp, sp.endpoints[0]),
        ):
            assert len(name) <= 28

    def test_services_dispatch_to_svc_chain(self):
        rs = ruleset()
        text = iptables.Renderer().full(rs)
        svc = iptables.svc_chain(web(rs))
        assert (
            f'-A KYBERN-SERVICES -d 10.43.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web:http/tcp" -j {svc}'
            in text
        )
        assert (
            chain_rules(text, "KYBERN-SERVICES")[-1]
            == "-A KYBERN-SERVICES -d 192.168.1.2/32 -j KYBERN-NODEPORTS"
        )

    def test_statistic_probabilities_split_evenly(self):
        rs = ruleset()
        text = iptables.Renderer().full(rs)
        body = chain_rules(text, iptables.svc_chain(web(rs)))
        assert body[0].endswith("! -s 10.1.0.0/16 -j KYBERN-MARK-MASQ")
        assert "--probability 0.3333333333" in body[1]
        assert "--probability 0.5000000000" in body[2]
        assert "statistic" not in body[3]
        seps = [iptables.sep_chain(web(rs), ep) for ep in web(rs).endpoints]
        assert [line.rsplit(" ", 1)[1] for line in body[1:]] == seps

    def test_endpoint_chain_hairpin_and_dnat(self):
        rs = ruleset()
        sp = web(rs)
        body = chain_rules(iptables.Renderer().full(rs), iptables.sep_chain(sp, sp.endpoints[0]))
        assert body[0].startswith("-A KYBERN-SEP-")
        assert "-s 10.1.0.5/32" in body[0]
        assert body[0].endswith("-j KYBERN-MARK-MASQ")
        assert body[1].endswith("-m tcp -j DNAT --to-destination 10.1.0.5:8080")

    def test_affinity_with_recent(self):
        rs = ruleset(
            sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}
        )
        sp = web(rs)
        text = iptables.Renderer().full(rs)
        sep = iptables.sep_chain(sp, sp.endpoints[0])
        assert (
            f"-A {iptables.svc_chain(sp)} -m recent --name {sep} --rcheck --seconds 60 --reap -j {sep}"
            in text
        )
        assert f"-m recent --name {sep} --set" in chain_rules(text, sep)[1]

    def test_postrouting_masquerades_marked(self):
        text = iptables.Renderer().full(ruleset())
        assert chain_rules(text, "KYBERN-POSTROUTING") == [
            "-A KYBERN-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
            "-A KYBERN-POSTROUTING -j MARK --xor-mark 0x4000",
            "-A KYBERN-POSTROUTING -j MASQUERADE --random-fully",
        ]

    def test_node_port(self):
        rs = ruleset(type="NodePort", ports=NODE_PORT)
        text = iptables.Renderer().full(rs)
        ext = iptables.ext_chain(web(rs))
        assert chain_rules(text, "KYBERN-NODEPORTS") == [
            f'-A KYBERN-NODEPORTS -p tcp -m tcp --dport 30080 -m comment --comment "default/web:http/tcp" -j {ext}'
        ]
        assert chain_rules(text, ext)[0] == f"-A {ext} -j KYBERN-MARK-MASQ"

    def test_no_endpoints_rejected_in_filter(self):
        text = iptables.Renderer().full(ruleset(eps=(), type="NodePort", ports=NODE_PORT))
        rejects = chain_rules(text, "KYBERN-NO-ENDPOINTS")
        assert any(
            "-d 10.43.0.10/32" in r and r.endswith("-j REJECT --reject-with tcp-reset")
            for r in rejects
        )
        assert any("-d 192.168.1.2/32" in r and "--dport 30080" in r for r in rejects)
        assert "*filter" in text

    def test_full_deletes_leftover_chains(self):
        r = iptables.Renderer()
        r.existing = {"KYBERN-SVC-OLDOLDOLDOLDOLDO", "KYBERN-SERVICES"}
        text = r.full(ruleset())
        assert "-X KYBERN-SVC-OLDOLDOLDOLDOLDO" in text
        assert "-X KYBERN-SERVICES" not in text

    def test_touches_no_builtin_chain(self):
        text = iptables.Renderer().full(ruleset())
        assert not any(
            line.startswith(("-A PRE", "-A POST", "-A OUTPUT", "-A INPUT", ":PRE"))
            for line in text.splitlines()
        )


class TestPartial:
    def partial(self, old, new) -> str:
        return iptables.Renderer().partial(old, new, rules.diff(old, new))

    def test_endpoint_change_rewrites_only_changed_chains(self):
        old, new = (
            ruleset(extra=[DB]),
            ruleset(eps=("10.1.0.5", "10.1.0.6", "10.1.0.8"), extra=[DB]),
        )
        text = self.partial(old, new)
        sp_old, sp_new = web(old), web(new)
        declared = {line[1:].split()[0] for line in text.splitlines() if line.startswith(":")}
        gone = iptables.sep_chain(sp_old, sp_old.endpoints[2])
        added = iptables.sep_chain(sp_new, sp_new.endpoints[2])
        kept = iptables.sep_chain(sp_old, sp_old.endpoints[0])
        assert declared == {
            "KYBERN-SERVICES",
            "KYBERN-NODEPORTS",
            iptables.svc_chain(sp_new),
            added,
            gone,
            "KYBERN-NO-ENDPOINTS",
        }
        assert f"-X {gone}" in text
        assert kept not in declared
        db = iptables.svc_chain(old.services["default/db:http/tcp"])
        assert f":{db}" not in text
        assert "MASQUERADE" not in text

    def test_removed_service_chains_deleted(self):
        old = ruleset(extra=[DB])
        text = self.partial(old, ruleset())
        db = old.services["default/db:http/tcp"]
        assert f"-X {iptables.svc_chain(db)}" in text
        assert f"-X {iptables.sep_chain(db, db.endpoints[0])}" in text
        assert "10.43.0.11" not in text


@pytest.mark.skipif(not can_load, reason="needs root and iptables")
class TestLoads:
    def test_full_then_partials_load(self):
        r = iptables.Renderer()
        spec = {"sessionAffinity": "ClientIP", "type": "NodePort", "ports": NODE_PORT}
        a, b, c = ruleset(extra=[DB], **spec), ruleset(eps=("10.1.0.9",), **spec), ruleset(eps=())
        saved = load(
            r.full(a), r.partial(a, b, rules.diff(a, b)), r.partial(b, c, rules.diff(b, c))
        )
        assert "KYBERN-SEP-" not in saved
        assert "-d 10.43.0.10/32 -p tcp -m tcp --dport 80" in saved
        assert "REJECT" in saved


class Recorder:
    def __init__(self, saved: str = "") -> None:
        self.calls: list[tuple[list[str], str]] = []
        self.saved = saved

    async def run(self, argv, text: str) -> None:
        self.calls.append((list(argv), text))

    async def read(self, argv) -> str:
        assert argv == ["iptables-save", "-t", "nat"]
        return self.saved


class TestSync:
    async def test_full_sync_ensures_jumps_and_drops_leftovers(self):
        rec = Recorder(saved=":KYBERN-SVC-STALESTALESTALES - [0:0]\n:KYBERN-SERVICES - [0:0]\n")
        b = iptables.IptablesBackend(runner=rec.run, reader=rec.read)
        assert await b.sync(ruleset()) == "full"
        argvs = [argv for argv, _ in rec.calls]
        assert argvs[0] == argvs[2] == ["iptables-restore", "--noflush", "-w", "5"]
        assert argvs[1] == ["sh", "-e"]
        jumps = rec.calls[1][1]
        assert (
            "iptables -w -t nat -C POSTROUTING -m comment --comment kybern -j KYBERN-POSTROUTING 2>/dev/null || iptables -w -t nat -I POSTROUTING 1 -m comment --comment kybern -j KYBERN-POSTROUTING"
            in jumps
        )
        assert "-X KYBERN-SVC-STALESTALESTALES" in rec.calls[2][1]
        assert await b.sync(ruleset(eps=("10.1.0.5",))) == "partial"
        assert len(rec.calls) == 4

    def test_only_the_proxys_own_chains_are_recognised(self):
        saved = (
            ":KYBERN-POST-kybern0 - [0:0]\n:KYBERN-FWD-kybern0 - [0:0]\n"
            ":KYBERN-SERVICES - [0:0]\n:KYBERN-SEP-AAAAAAAAAAAAAAAA - [0:0]\n:KUBE-SERVICES - [0:0]\n"
        )
        assert iptables.kybern_chains(saved) == {"KYBERN-SERVICES", "KYBERN-SEP-AAAAAAAAAAAAAAAA"}

    async def test_cleanup_removes_jumps_and_chains(self):
        rec = Recorder(saved=":KYBERN-SERVICES - [0:0]\n:KYBERN-SVC-AAAAAAAAAAAAAAAA - [0:0]\n")
        await iptables.IptablesBackend(runner=rec.run, reader=rec.read).cleanup()
        assert "-D PREROUTING" in rec.calls[0][1]
        assert "-X KYBERN-SERVICES\n-X KYBERN-SVC-AAAAAAAAAAAAAAAA\n" in rec.calls[1][1]

    async def test_apply_error_propagates(self):
        async def failing(argv, text):
            raise backend.ApplyError("no")

        b = iptables.IptablesBackend(runner=failing, reader=Recorder().read)
        with pytest.raises(backend.ApplyError):
            await b.sync(ruleset())
