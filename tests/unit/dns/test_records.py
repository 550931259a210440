"""kybern.dns.records: every kind of cluster name, from plain stores (no server, no sockets)."""

from __future__ import annotations

from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR

from kybern.client import store
from kybern.dns import records

Obj = dict[str, Any]
ZONE = "cluster.local"


def service(name: str, ns: str = "default", **spec: Any) -> Obj:
    spec.setdefault("type", "ClusterIP")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def eps(
    service_name: str, endpoints: list[Obj], ports: list[Obj], ns: str = "default", **kw: Any
) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-{kw.get('suffix', 'abc')}",
            "namespace": ns,
            "labels": {records.SERVICE_NAME_LABEL: service_name},
        },
        "addressType": kw.get("address_type", "IPv4"),
        "endpoints": endpoints,
        "ports": ports,
    }


def ep(ip: str, *, ready: bool | None = True, hostname: str | None = None) -> Obj:
    out: Obj = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
    if hostname:
        out["hostname"] = hostname
    return out


def pod(name: str, ip: str, ns: str = "default", host_network: bool = False) -> Obj:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"hostNetwork": host_network},
        "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
    }


def build(objs: list[Obj], pods: str = records.INSECURE) -> records.Resolver:
    services, slices, pod_store = store.Store(), store.Store(), store.Store()
    view = records.View(services, slices, pod_store)
    for obj in objs:
        kind = obj.get("kind")
        (services if kind == "Service" else slices if kind == "EndpointSlice" else pod_store).put(
            obj
        )
    return records.Resolver(view, zone=ZONE, pods=pods)


@pytest.fixture
def resolver() -> records.Resolver:
    return build(
        [
            service(
                "web",
                clusterIP="10.43.0.20",
                clusterIPs=["10.43.0.20"],
                ports=[
                    {"name": "http", "port": 80, "protocol": "TCP"},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                ],
            ),
            service("pending", ports=[{"name": "http", "port": 80, "protocol": "TCP"}]),
            service(
                "db", clusterIP="None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]
            ),
            eps(
                "db",
                [
                    ep("10.42.0.5", hostname="db-0"),
                    ep("10.42.0.6", hostname="db-1"),
                    ep("10.42.0.7", ready=False, hostname="db-2"),
                    ep("10.42.0.8", ready=None),
                ],
                [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            ),
            service("empty", clusterIP="None"),
            service(
                "dual",
                clusterIP="10.43.0.30",
                clusterIPs=["10.43.0.30", "fd00::30"],
                ports=[{"port": 80}],
            ),
            service("ext", type="ExternalName", externalName="example.org"),
            service("alias", type="ExternalName", externalName="web.default.svc.cluster.local"),
            service(
                "kube-dns",
                "kube-system",
                clusterIP="10.43.0.10",
                ports=[{"name": "dns", "port": 53, "protocol": "UDP"}],
            ),
            pod("db-0", "10.42.0.5"),
            pod("lonely", "10.42.0.9", ns="apps"),
            pod("hostnet", "192.168.1.2", host_network=True),
        ]
    )


def answer(r: records.Resolver, name: str, qtype: str) -> records.Answer:
    got = r.resolve(name, getattr(QTYPE, qtype))
    assert got is not None, f"{name} {qtype} was not answered"
    return got


def data(rrs: list[RR], qtype: str | None = None) -> list[str]:
    return [str(rr.rdata) for rr in rrs if qtype is None or rr.rtype == getattr(QTYPE, qtype)]


def is_nxdomain(a: records.Answer) -> bool:
    return (
        a.rcode == RCODE.NXDOMAIN
        and not a.answer
        and [rr.rtype for rr in a.authority] == [QTYPE.SOA]
    )


def is_nodata(a: records.Answer) -> bool:
    return (
        a.rcode == RCODE.NOERROR
        and not a.answer
        and [rr.rtype for rr in a.authority] == [QTYPE.SOA]
    )


class TestServices:
    def test_cluster_ip_a_record(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "web.default.svc.cluster.local.", "A")
        assert got.rcode == RCODE.NOERROR
        assert data(got.answer) == ["10.43.0.20"]
        assert got.answer[0].ttl == 5
        assert str(got.answer[0].rname) == "web.default.svc.cluster.local."

    def test_names_are_case_insensitive_and_keep_the_question_case(
        self, resolver: records.Resolver
    ) -> None:
        got = answer(resolver, "WEB.Default.SVC.Cluster.Local.", "A")
        assert data(got.answer) == ["10.43.0.20"]
        assert str(got.answer[0].rname) == "WEB.Default.SVC.Cluster.Local."

    def test_aaaa_for_dual_stack_and_nodata_for_ipv4_only(self, resolver: records.Resolver) -> None:
        assert data(answer(resolver, "dual.default.svc.cluster.local.", "AAAA").answer) == [
            "fd00::30"
        ]
        assert data(answer(resolver, "dual.default.svc.cluster.local.", "A").answer) == [
            "10.43.0.30"
        ]
        assert is_nodata(answer(resolver, "web.default.svc.cluster.local.", "AAAA"))

    def test_unallocated_cluster_ip_is_nodata(self, resolver: records.Resolver) -> None:
        assert is_nodata(answer(resolver, "pending.default.svc.cluster.local.", "A"))

    def test_unknown_names_are_nxdomain_with_soa(self, resolver: records.Resolver) -> None:
        for name in (
            "nope.default.svc.cluster.local.",
            "web.other.svc.cluster.local.",
            "a.b.c.d.web.default.svc.cluster.local.",
            "web.default.foo.cluster.local.",
        ):
            got = answer(resolver, name, "A")
            assert is_nxdomain(got), name
        soa = answer(resolver, "nope.default.svc.cluster.local.", "A").authority[0]
        assert str(soa.rname) == "cluster.local."
        assert soa.rdata.mname == "ns.dns.cluster.local."
        assert soa.rdata.rname == "hostmaster.cluster.local."
        assert soa.rdata.times[1:] == (7200, 1800, 86400, 5)

    def test_existing_names_with_other_types_are_nodata(self, resolver: records.Resolver) -> None:
        assert is_nodata(answer(resolver, "web.default.svc.cluster.local.", "TXT"))
        assert is_nodata(answer(resolver, "web.default.svc.cluster.local.", "MX"))
        assert is_nxdomain(answer(resolver, "nope.default.svc.cluster.local.", "TXT"))

    def test_intermediate_names_exist(self, resolver: records.Resolver) -> None:
        for name in (
            "cluster.local.",
            "svc.cluster.local.",
            "default.svc.cluster.local.",
            "pod.cluster.local.",
        ):
            assert is_nodata(answer(resolver, name, "A")), name


class TestHeadless:
    def test_ready_endpoints_only(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "db.default.svc.cluster.local.", "A")
        assert sorted(data(got.answer)) == ["10.42.0.5", "10.42.0.6", "10.42.0.8"]

    def test_endpoint_hostnames(self, resolver: records.Resolver) -> None:
        assert data(answer(resolver, "db-1.db.default.svc.cluster.local.", "A").answer) == [
            "10.42.0.6"
        ]
        assert data(answer(resolver, "10-42-0-8.db.default.svc.cluster.local.", "A").answer) == [
            "10.42.0.8"
        ]
        assert is_nxdomain(answer(resolver, "db-2.db.default.svc.cluster.local.", "A"))  # not ready
        assert is_nxdomain(answer(resolver, "db-9.db.default.svc.cluster.local.", "A"))

    def test_headless_without_endpoints_is_nxdomain(self, resolver: records.Resolver) -> None:
        assert is_nxdomain(answer(resolver, "empty.default.svc.cluster.local.", "A"))

    def test_fqdn_slices_are_ignored(self) -> None:
        r = build(
            [service("h", clusterIP="None"), eps("h", [ep("example.org")], [], address_type="FQDN")]
        )
        assert is_nxdomain(answer(r, "h.default.svc.cluster.local.", "A"))

    def test_ipv6_endpoints(self) -> None:
        r = build(
            [service("h", clusterIP="None"), eps("h", [ep("fd00::5")], [], address_type="IPv6")]
        )
        assert data(answer(r, "h.default.svc.cluster.local.", "AAAA").answer) == ["fd00::5"]
        assert data(answer(r, "fd00--5.h.default.svc.cluster.local.", "AAAA").answer) == ["fd00::5"]


class TestSRV:
    def test_cluster_ip_named_port(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "_http._tcp.web.default.svc.cluster.local.", "SRV")
        assert len(got.answer) == 1
        srv = got.answer[0].rdata
        assert (srv.priority, srv.weight, srv.port, str(srv.target)) == (
            0,
            100,
            80,
            "web.default.svc.cluster.local.",
        )
        assert [(str(rr.rname), str(rr.rdata)) for rr in got.additional] == [
            ("web.default.svc.cluster.local.", "10.43.0.20")
        ]

    def test_protocol_and_port_name_must_match(self, resolver: records.Resolver) -> None:
        assert (
            answer(resolver, "_dns._udp.web.default.svc.cluster.local.", "SRV").answer[0].rdata.port
            == 53
        )
        assert is_nxdomain(answer(resolver, "_dns._tcp.web.default.svc.cluster.local.", "SRV"))
        assert is_nxdomain(answer(resolver, "_nope._tcp.web.default.svc.cluster.local.", "SRV"))
        assert answer(resolver, "_HTTP._TCP.web.default.svc.cluster.local.", "SRV").answer

    def test_bare_service_lists_every_port(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "web.default.svc.cluster.local.", "SRV")
        assert sorted(rr.rdata.port for rr in got.answer) == [53, 80]
        assert {rr.rdata.weight for rr in got.answer} == {50}

    def test_headless_one_per_ready_endpoint(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "_pg._tcp.db.default.svc.cluster.local.", "SRV")
        targets = sorted(str(rr.rdata.target) for rr in got.answer)
        assert targets == [
            "10-42-0-8.db.default.svc.cluster.local.",
            "db-0.db.default.svc.cluster.local.",
            "db-1.db.default.svc.cluster.local.",
        ]
        assert {rr.rdata.port for rr in got.answer} == {5432}
        assert {rr.rdata.weight for rr in got.answer} == {33}
        assert sorted((str(rr.rname), str(rr.rdata)) for rr in got.additional)[1] == (
            "db-0.db.default.svc.cluster.local.",
            "10.42.0.5",
        )

    def test_a_record_on_srv_name_answers_the_ip(self, resolver: records.Resolver) -> None:
        assert data(answer(resolver, "_http._tcp.web.default.svc.cluster.local.", "A").answer) == [
            "10.43.0.20"
        ]


class TestPods:
    def test_insecure_answers_the_spelled_ip(self, resolver: records.Resolver) -> None:
        assert data(answer(resolver, "1-2-3-4.anywhere.pod.cluster.local.", "A").answer) == [
            "1.2.3.4"
        ]
        assert is_nodata(answer(resolver, "1-2-3-4.anywhere.pod.cluster.local.", "AAAA"))
        assert is_nxdomain(answer(resolver, "not-an-ip.default.pod.cluster.local.", "A"))
        assert is_nxdomain(answer(resolver, "x.1-2-3-4.default.pod.cluster.local.", "A"))

    def test_verified_needs_a_pod_with_that_ip_in_the_namespace(self) -> None:
        r = build([pod("a", "10.42.0.9", ns="apps")], pods=records.VERIFIED)
        assert data(answer(r, "10-42-0-9.apps.pod.cluster.local.", "A").answer) == ["10.42.0.9"]
        assert is_nxdomain(answer(r, "10-42-0-9.default.pod.cluster.local.", "A"))
        assert is_nxdomain(answer(r, "10-42-0-10.apps.pod.cluster.local.", "A"))

    def test_disabled(self) -> None:
        r = build([], pods=records.DISABLED)
        assert is_nxdomain(answer(r, "1-2-3-4.default.pod.cluster.local.", "A"))

    def test_bad_mode(self) -> None:
        with pytest.raises(ValueError, match="pods mode"):
            build([], pods="bogus")


class TestExternalName:
    def test_cname_and_chase_outside_the_zone(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "ext.default.svc.cluster.local.", "A")
        assert [(rr.rtype, str(rr.rdata)) for rr in got.answer] == [(QTYPE.CNAME, "example.org.")]
        assert got.chase == [("example.org.", QTYPE.A)]

    def test_cname_query(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "ext.default.svc.cluster.local.", "CNAME")
        assert data(got.answer) == ["example.org."]
        assert got.chase == []

    def test_in_zone_target_resolved_here(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "alias.default.svc.cluster.local.", "A")
        assert [(rr.rtype, str(rr.rname), str(rr.rdata)) for rr in got.answer] == [
            (QTYPE.CNAME, "alias.default.svc.cluster.local.", "web.default.svc.cluster.local."),
            (QTYPE.A, "web.default.svc.cluster.local.", "10.43.0.20"),
        ]
        assert got.chase == []

    def test_cname_loop_stops(self) -> None:
        r = build(
            [
                service("a", type="ExternalName", externalName="b.default.svc.cluster.local"),
                service("b", type="ExternalName", externalName="a.default.svc.cluster.local"),
            ]
        )
        got = answer(r, "a.default.svc.cluster.local.", "A")
        assert got.rcode == RCODE.NOERROR
        assert all(rr.rtype == QTYPE.CNAME for rr in got.answer)

    def test_no_endpoints_under_external_name(self, resolver: records.Resolver) -> None:
        assert is_nxdomain(answer(resolver, "x.ext.default.svc.cluster.local.", "A"))


class TestReverse:
    def test_cluster_ip(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "20.0.43.10.in-addr.arpa.", "PTR")
        assert data(got.answer) == ["web.default.svc.cluster.local."]

    def test_ipv6_cluster_ip(self, resolver: records.Resolver) -> None:
        import ipaddress

        name = ipaddress.ip_address("fd00::30").reverse_pointer + "."
        assert data(answer(resolver, name, "PTR").answer) == ["dual.default.svc.cluster.local."]

    def test_endpoint_ip_names_the_endpoint(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "5.0.42.10.in-addr.arpa.", "PTR")
        assert data(got.answer) == ["db-0.db.default.svc.cluster.local."]

    def test_other_pod_ip_names_the_pod(self, resolver: records.Resolver) -> None:
        got = answer(resolver, "9.0.42.10.in-addr.arpa.", "PTR")
        assert data(got.answer) == ["10-42-0-9.apps.pod.cluster.local."]

    def test_unknown_addresses_and_host_network_are_not_ours(
        self, resolver: records.Resolver
    ) -> None:
        assert resolver.resolve("1.1.1.1.in-addr.arpa.", QTYPE.PTR) is None
        assert resolver.resolve("2.1.168.192.in-addr.arpa.", QTYPE.PTR) is None
        assert resolver.resolve("0.42.10.in-addr.arpa.", QTYPE.PTR) is None

    def test_reverse_ip(self) -> None:
        assert records.reverse_ip("4.3.2.1.IN-ADDR.ARPA.") == "1.2.3.4"
        assert records.reverse_ip("x.3.2.1.in-addr.arpa.") is None


class TestZoneApex:
    def test_outside_the_zone_is_not_ours(self, resolver: records.Resolver) -> None:
        assert resolver.resolve("example.org.", QTYPE.A) is None
        assert resolver.resolve("local.", QTYPE.A) is None

    def test_soa_ns_and_schema_version(self, resolver: records.Resolver) -> None:
        soa = answer(resolver, "cluster.local.", "SOA")
        assert [rr.rtype for rr in soa.answer] == [QTYPE.SOA]
        ns = answer(resolver, "cluster.local.", "NS")
        assert data(ns.answer) == ["ns.dns.cluster.local."]
        assert data(ns.additional) == ["10.43.0.10"]
        assert data(answer(resolver, "ns.dns.cluster.local.", "A").answer) == ["10.43.0.10"]
        assert data(answer(resolver, "dns-version.cluster.local.", "TXT").answer) == ['"1.1.0"']

    def test_other_zone(self) -> None:
        services, slices, pods = store.Store(), store.Store(), store.Store()
        services.put(service("web", clusterIP="10.43.0.20", ports=[{"port": 80}]))
        r = records.Resolver(records.View(services, slices, pods), zone="kybern.internal.")
        assert data(answer(r, "web.default.svc.kybern.internal.", "A").answer) == ["10.43.0.20"]
        assert r.resolve("web.default.svc.cluster.local.", QTYPE.A) is None
