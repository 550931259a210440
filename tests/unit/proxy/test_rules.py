"""The rule set computed from Services and EndpointSlices (kybern.proxy.rules)."""

from __future__ import annotations

from kybern.proxy import rules
from tests.unit.proxy.objects import endpoint, endpoint_slice, service


def compute(services, slices, **kw):
    kw.setdefault("node_name", "n1")
    return rules.compute(services, slices, **kw)


def only(ruleset: rules.RuleSet) -> rules.ServicePort:
    assert len(ruleset.services) == 1, ruleset.services
    return next(iter(ruleset.services.values()))


def ips(eps) -> list[str]:
    return [e.ip for e in eps]


class TestEndpoints:
    def test_ready_endpoints_with_the_slice_port(self):
        sp = only(
            compute(
                [service("web")],
                [endpoint_slice("web", [endpoint("10.1.0.5"), endpoint("10.1.0.4")])],
            )
        )
        assert sp.key == "default/web:http/tcp"
        assert (sp.cluster_ips, sp.port, sp.protocol) == (("10.43.0.10",), 80, "TCP")
        assert [(e.ip, e.port) for e in sp.endpoints] == [("10.1.0.4", 8080), ("10.1.0.5", 8080)]

    def test_not_ready_endpoints_are_left_out(self):
        eps = [endpoint("10.1.0.5"), endpoint("10.1.0.6", ready=False)]
        assert ips(only(compute([service("web")], [endpoint_slice("web", eps)])).endpoints) == [
            "10.1.0.5"
        ]

    def test_unset_conditions_mean_ready(self):
        eps = [endpoint("10.1.0.5", ready=None)]
        assert ips(only(compute([service("web")], [endpoint_slice("web", eps)])).endpoints) == [
            "10.1.0.5"
        ]

    def test_terminating_serving_endpoints_are_the_fallback_when_none_is_ready(self):
        eps = [
            endpoint("10.1.0.5", ready=False, serving=True, terminating=True),
            endpoint("10.1.0.6", ready=False, serving=False, terminating=True),
            endpoint("10.1.0.7", ready=False),
        ]
        sp = only(compute([service("web")], [endpoint_slice("web", eps)]))
        assert ips(sp.endpoints) == ["10.1.0.5"]

    def test_terminating_endpoints_unused_while_one_is_ready(self):
        eps = [
            endpoint("10.1.0.5", ready=False, serving=True, terminating=True),
            endpoint("10.1.0.9"),
        ]
        assert ips(only(compute([service("web")], [endpoint_slice("web", eps)])).endpoints) == [
            "10.1.0.9"
        ]

    def test_endpoints_from_several_slices_are_merged_and_deduplicated(self):
        slices = [
            endpoint_slice("web", [endpoint("10.1.0.5"), endpoint("10.1.0.6")], name="a"),
            endpoint_slice("web", [endpoint("10.1.0.6"), endpoint("10.1.0.7")], name="b"),
        ]
        assert ips(only(compute([service("web")], slices)).endpoints) == [
            "10.1.0.5",
            "10.1.0.6",
            "10.1.0.7",
        ]

    def test_slices_of_other_services_and_namespaces_are_ignored(self):
        slices = [
            endpoint_slice("other", [endpoint("10.1.0.5")]),
            endpoint_slice("web", [endpoint("10.1.0.6")], ns="prod"),
        ]
        assert only(compute([service("web")], slices)).endpoints == ()

    def test_fqdn_and_ipv6_slices_are_ignored(self):
        slices = [
            endpoint_slice("web", [endpoint("example.com")], address_type="FQDN"),
            endpoint_slice("web", [endpoint("fd00::1")], address_type="IPv6", name="v6"),
        ]
        assert only(compute([service("web")], slices)).endpoints == ()


class TestPorts:
    def test_named_target_ports_come_resolved_per_slice_port_name(self):
        svc = service(
            "web",
            ports=[
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"},
                {"name": "metrics", "port": 9100, "protocol": "TCP", "targetPort": "prom"},
            ],
        )
        ports = [
            {"name": "http", "port": 8080, "protocol": "TCP"},
            {"name": "metrics", "port": 9091, "protocol": "TCP"},
        ]
        ruleset = compute([svc], [endpoint_slice("web", [endpoint("10.1.0.5")], ports=ports)])
        assert ruleset.services["default/web:http/tcp"].endpoints[0].port == 8080
        assert ruleset.services["default/web:metrics/tcp"].endpoints[0].port == 9091

    def test_protocol_must_match(self):
        svc = service(
            "dns",
            ports=[
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ],
        )
        ports = [
            {"name": "dns", "port": 5353, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 5353, "protocol": "TCP"},
        ]
        ruleset = compute([svc], [endpoint_slice("dns", [endpoint("10.1.0.5")], ports=ports)])
        assert set(ruleset.services) == {"default/dns:dns/udp", "default/dns:dns-tcp/tcp"}
        assert all(sp.endpoints for sp in ruleset.services.values())

    def test_unnamed_single_port(self):
        svc = service("web", ports=[{"port": 80, "protocol": "TCP"}])
        slice_ = endpoint_slice(
            "web", [endpoint("10.1.0.5")], ports=[{"name": "", "port": 8080, "protocol": "TCP"}]
        )
        sp = only(compute([svc], [slice_]))
        assert sp.key == "default/web:/tcp"
        assert ips(sp.endpoints) == ["10.1.0.5"]

    def test_protocol_defaults_to_tcp(self):
        svc = service("web", ports=[{"name": "http", "port": 80}])
        assert only(compute([svc], [])).protocol == "TCP"


class TestSkipped:
    def test_headless_service(self):
        assert (
            len(compute([service("web", "None")], [endpoint_slice("web", [endpoint("10.1.0.5")])]))
            == 0
        )

    def test_external_name_service(self):
        svc = service("ext", "", type="ExternalName", externalName="example.com")
        assert len(compute([svc], [])) == 0

    def test_service_without_cluster_ip_yet(self):
        assert len(compute([service("web", "")], [])) == 0

    def test_service_without_endpoints_is_kept_with_none(self):
        assert only(compute([service("web")], [])).endpoints == ()


class TestTrafficPolicies:
    EPS = [endpoint("10.1.0.5", node="n1"), endpoint("10.1.0.6", node="n2")]

    def test_endpoints_know_whether_they_are_local(self):
        sp = only(compute([service("web")], [endpoint_slice("web", self.EPS)]))
        assert [(e.ip, e.local) for e in sp.endpoints] == [("10.1.0.5", True), ("10.1.0.6", False)]

    def test_internal_traffic_policy_local_keeps_this_nodes_endpoints(self):
        svc = service("web", internalTrafficPolicy="Local")
        assert ips(only(compute([svc], [endpoint_slice("web", self.EPS)])).endpoints) == [
            "10.1.0.5"
        ]

    def test_internal_local_without_local_endpoints_drops_rather_than_forwarding(self):
        svc = service("web", internalTrafficPolicy="Local")
        ruleset = compute([svc], [endpoint_slice("web", self.EPS)], node_name="n3")
        assert only(ruleset).endpoints == ()

    def test_internal_local_falls_back_to_local_terminating(self):
        eps = [
            endpoint("10.1.0.5", ready=False, serving=True, terminating=True),
            endpoint("10.1.0.6", node="n2"),
        ]
        svc = service("web", internalTrafficPolicy="Local")
        assert ips(only(compute([svc], [endpoint_slice("web", eps)])).endpoints) == ["10.1.0.5"]

    def test_external_traffic_policy_local_for_node_ports_only(self):
        svc = service(
            "web",
            type="NodePort",
            externalTrafficPolicy="Local",
            ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
        )
        sp = only(compute([svc], [endpoint_slice("web", self.EPS)]))
        assert ips(sp.endpoints) == ["10.1.0.5", "10.1.0.6"]  # cluster traffic: every endpoint
        assert ips(sp.external_endpoints) == ["10.1.0.5"]
        assert sp.external_local

    def test_external_traffic_policy_cluster(self):
        svc = service(
            "web",
            type="NodePort",
            ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
        )
        sp = only(compute([svc], [endpoint_slice("web", self.EPS)]))
        assert ips(sp.external_endpoints) == ["10.1.0.5", "10.1.0.6"]
        assert not sp.external_local

    def test_external_policy_ignored_for_cluster_ip_services(self):
        sp = only(
            compute(
                [service("web", externalTrafficPolicy="Local")], [endpoint_slice("web", self.EPS)]
            )
        )
        assert not sp.external_local
        assert sp.external_endpoints == ()


class TestAffinity:
    def test_client_ip_affinity_default_timeout(self):
        sp = only(compute([service("web", sessionAffinity="ClientIP")], []))
        assert sp.affinity_timeout == 10800

    def test_client_ip_affinity_timeout(self):
        svc = service(
            "web",
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
        )
        assert only(compute([svc], [])).affinity_timeout == 60

    def test_no_affinity(self):
        assert only(compute([service("web", sessionAffinity="None")], [])).affinity_timeout == 0


class TestExternal:
    def test_node_port_and_load_balancer(self):
        svc = service(
            "web",
            type="LoadBalancer",
            lb_ips=["192.168.5.1"],
            externalIPs=["192.168.5.2"],
            ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
        )
        ruleset = compute(
            [svc],
            [endpoint_slice("web", [endpoint("10.1.0.5")])],
            node_ips=["192.168.1.2", "fd00::2"],
        )
        sp = only(ruleset)
        assert sp.node_port == 30080
        assert sp.load_balancer_ips == ("192.168.5.1",)
        assert sp.external_ips == ("192.168.5.2",)
        assert sp.has_external
        assert ips(sp.external_endpoints) == ["10.1.0.5"]
        assert ruleset.node_ips == ("192.168.1.2",)

    def test_node_port_ignored_on_cluster_ip_services(self):
        svc = service(
            "web", ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
        )
        sp = only(compute([svc], []))
        assert sp.node_port == 0
        assert not sp.has_external


class TestDiff:
    def test_unchanged_is_empty(self):
        args = ([service("web")], [endpoint_slice("web", [endpoint("10.1.0.5")])])
        assert rules.diff(compute(*args), compute(*args)).empty

    def test_added_removed_changed(self):
        old = compute(
            [service("a", "10.43.0.1"), service("b", "10.43.0.2")],
            [endpoint_slice("b", [endpoint("10.1.0.5")])],
        )
        new = compute(
            [service("b", "10.43.0.2"), service("c", "10.43.0.3")],
            [endpoint_slice("b", [endpoint("10.1.0.6")])],
        )
        d = rules.diff(old, new)
        assert [s.service for s in d.added] == ["c"]
        assert [s.service for s in d.removed] == ["a"]
        assert [(o.endpoints[0].ip, n.endpoints[0].ip) for o, n in d.changed] == [
            ("10.1.0.5", "10.1.0.6")
        ]
        assert not d.node_changed

    def test_node_ips_change(self):
        assert rules.diff(
            compute([], [], node_ips=["1.2.3.4"]), compute([], [], node_ips=["1.2.3.5"])
        ).node_changed
