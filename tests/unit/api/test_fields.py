"""Field selectors: parsing and escaping, per-kind fields, Kubernetes' error wording."""

from __future__ import annotations

import pytest

from kybern.api import errors, fields

pytestmark = pytest.mark.timeout(30)

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {
        "nodeName": "node-a",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
    },
    "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}], "podIP": "10.0.0.5"},
}


class TestParse:
    @pytest.mark.parametrize(
        ("text", "terms"),
        [
            ("", ()),
            ("a=b", (fields.Term("a", "b"),)),
            ("a==b", (fields.Term("a", "b"),)),
            ("a!=b", (fields.Term("a", "b", negate=True),)),
            ("a=", (fields.Term("a", ""),)),
            ("b=2,a=1", (fields.Term("a", "1"), fields.Term("b", "2"))),
            ("a=x\\,y", (fields.Term("a", "x,y"),)),
            ("a=x\\=y", (fields.Term("a", "x=y"),)),
            ("a=x\\\\y", (fields.Term("a", "x\\y"),)),
            ("a=b,,c=d", (fields.Term("a", "b"), fields.Term("c", "d"))),
            (" a = b", (fields.Term(" a ", " b"),)),
        ],
    )
    def test_terms(self, text: str, terms: tuple[fields.Term, ...]) -> None:
        assert fields.parse(text).terms == terms

    def test_string_form_escapes_and_sorts(self) -> None:
        selector = fields.parse("b!=x\\,y,a=1")
        assert str(selector) == "a=1,b!=x\\,y"
        assert fields.parse(str(selector)) == selector

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
            ("a=b,foo", "invalid selector: 'a=b,foo'; can't understand 'foo'"),
            ("a=b=c", "invalid field selector: unescaped character in value: 61"),
            ("a=\\q", "invalid field selector: invalid escape sequence: \\q"),
            ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
        ],
    )
    def test_errors(self, text: str, message: str) -> None:
        with pytest.raises(errors.BadRequest) as caught:
            fields.parse(text)
        assert str(caught.value) == message

    def test_requires_exact_match(self) -> None:
        selector = fields.parse("spec.nodeName=n1,status.phase!=Failed")
        assert selector.requires_exact_match("spec.nodeName") == "n1"
        assert selector.requires_exact_match("status.phase") is None


class TestPodFields:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("metadata.name=web-1", True),
            ("metadata.namespace=kube-system", False),
            ("spec.nodeName=node-a", True),
            ("spec.host=node-a", True),
            ("spec.nodeName=", False),
            ("spec.restartPolicy=Always,status.phase=Running", True),
            ("status.phase!=Running", False),
            ("status.podIP=10.0.0.5", True),
            ("spec.hostNetwork=false", True),
            ("spec.schedulerName=default-scheduler", True),
            ("spec.serviceAccountName=default", True),
            ("status.nominatedNodeName=", True),
            ("status.podIPs=10.0.0.5", False),
        ],
    )
    def test_matching(self, text: str, expected: bool) -> None:
        assert fields.parse(text).matches("", "Pod", POD) is expected

    def test_unscheduled_pod_selected_by_empty_node_name(self) -> None:
        pending = {"metadata": {"name": "p"}, "spec": {}}
        assert fields.parse("spec.nodeName=").matches("", "Pod", pending)

    def test_compiled_matcher_filters_a_list(self) -> None:
        pods = [
            {"metadata": {"name": f"p{i}"}, "spec": {"nodeName": f"n{i % 3}"}} for i in range(30)
        ]
        match = fields.parse("spec.nodeName=n1").compile("", "Pod")
        assert [p["metadata"]["name"] for p in pods if match(p)] == [
            f"p{i}" for i in range(1, 30, 3)
        ]


class TestOtherKinds:
    def test_node_unschedulable_defaults_to_false(self) -> None:
        selector = fields.parse("spec.unschedulable=false")
        assert selector.matches("", "Node", {"metadata": {"name": "n"}, "spec": {}})
        assert not selector.matches("", "Node", {"spec": {"unschedulable": True}})

    def test_core_event_fields_used_by_kubectl_describe(self) -> None:
        event = {
            "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {
                "kind": "Pod",
                "name": "web-1",
                "uid": "u-1",
                "namespace": "default",
            },
            "reason": "Scheduled",
            "source": {"component": "default-scheduler"},
            "type": "Normal",
        }
        selector = fields.parse(
            "involvedObject.name=web-1,involvedObject.namespace=default,"
            "involvedObject.kind=Pod,involvedObject.uid=u-1"
        )
        assert selector.matches("", "Event", event)
        assert fields.parse("source=default-scheduler,type=Normal").matches("", "Event", event)
        assert not fields.parse("involvedObject.uid=other").matches("", "Event", event)

    def test_events_k8s_io_fields(self) -> None:
        event = {
            "regarding": {"kind": "Pod", "name": "web-1"},
            "reportingController": "kubelet",
            "reason": "Pulled",
            "type": "Normal",
        }
        selector = fields.parse("regarding.name=web-1,reportingController=kubelet")
        assert selector.matches("events.k8s.io", "Event", event)

    @pytest.mark.parametrize(
        ("group", "kind", "text", "obj"),
        [
            ("", "Secret", "type=kubernetes.io/tls", {"type": "kubernetes.io/tls"}),
            ("", "Namespace", "status.phase=Active", {"status": {"phase": "Active"}}),
            ("", "Service", "spec.type=ClusterIP", {"spec": {"type": "ClusterIP"}}),
            ("", "Service", "spec.clusterIP=10.0.0.1", {"spec": {"clusterIP": "10.0.0.1"}}),
            ("", "ReplicationController", "status.replicas=0", {}),
            ("apps", "ReplicaSet", "status.replicas=3", {"status": {"replicas": 3}}),
            ("batch", "Job", "status.successful=2", {"status": {"succeeded": 2}}),
            ("apps", "Deployment", "metadata.name=web", {"metadata": {"name": "web"}}),
            (
                "rbac.authorization.k8s.io",
                "ClusterRole",
                "metadata.name=x",
                {"metadata": {"name": "x"}},
            ),
            (
                "certificates.k8s.io",
                "CertificateSigningRequest",
                "spec.signerName=kubernetes.io/kubelet-serving",
                {"spec": {"signerName": "kubernetes.io/kubelet-serving"}},
            ),
        ],
    )
    def test_kind_field(self, group: str, kind: str, text: str, obj: dict[str, object]) -> None:
        assert fields.parse(text).matches(group, kind, obj)


class TestUnsupportedFields:
    @pytest.mark.parametrize(
        ("group", "kind", "field", "message"),
        [
            ("", "Pod", "status.hostIP", "field label not supported: status.hostIP"),
            (
                "",
                "Namespace",
                "metadata.namespace",
                "field label not supported: metadata.namespace",
            ),
            ("", "Node", "spec.podCIDR", "field label not supported: spec.podCIDR"),
            (
                "apps",
                "Deployment",
                "spec.replicas",
                '"spec.replicas" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"',
            ),
            ("", "ConfigMap", "data", '"data" is not a known field selector: only'),
            ("batch", "Job", "spec.x", 'field label "spec.x" not supported for batchv1.Job'),
            ("events.k8s.io", "Event", "involvedObject.name", "field label not supported"),
        ],
    )
    def test_rejected(self, group: str, kind: str, field: str, message: str) -> None:
        with pytest.raises(errors.BadRequest) as caught:
            fields.parse(f"{field}=x").compile(group, kind)
        assert str(caught.value).startswith(message)

    def test_supported_fields_listed(self) -> None:
        assert "spec.nodeName" in fields.supported_fields("", "Pod")
        assert fields.supported_fields("apps", "Deployment") == (
            "metadata.name",
            "metadata.namespace",
        )


def test_register_selectable_fields_for_custom_resources() -> None:
    fields.register_selectable_fields("example.com", "Widget", {"spec.color": ".spec.color"})
    widget = {"metadata": {"name": "w"}, "spec": {"color": "blue", "size": 3}}
    assert fields.parse("spec.color=blue").matches("example.com", "Widget", widget)
    assert fields.parse("metadata.name=w").matches("example.com", "Widget", widget)
    with pytest.raises(errors.BadRequest):
        fields.parse("spec.size=3").compile("example.com", "Widget")


def test_field_set() -> None:
    got = fields.field_set("", "Secret", {"metadata": {"name": "s"}, "type": "Opaque"})
    assert got == {"metadata.name": "s", "metadata.namespace": "", "type": "Opaque"}
