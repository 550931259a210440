"""Printers of core/v1 kinds (namespaces, nodes, config, quotas, templates), events, and the
registry's default NAME / CREATED AT table."""

from __future__ import annotations

from kybern.api import kinds, printers
from tests.unit.api.test_printers_helpers import NOW, ago, cells, headers, obj


def test_namespace() -> None:
    assert headers("", "Namespace") == ["NAME", "STATUS", "AGE"]
    item = obj("v1", "Namespace", "default", 86400 * 400, status={"phase": "Active"})
    assert cells("", "Namespace", item) == ["default", "Active", "400d"]


def test_node() -> None:
    assert headers("", "Node") == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert headers("", "Node", wide=True)[5:] == [
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    labels = {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"}
    item = obj(
        "v1",
        "Node",
        "n1",
        3600 * 5,
        metadata={"labels": labels},
        spec={"unschedulable": True},
        status={
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "addresses": [
                {"type": "InternalIP", "address": "192.168.1.10"},
                {"type": "Hostname", "address": "n1"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0",
                "containerRuntimeVersion": "kybern://0.1",
            },
        },
    )
    assert cells("", "Node", item) == [
        "n1",
        "Ready,SchedulingDisabled",
        "control-plane,master",
        "5h",
        "v1.32.0",
        "192.168.1.10",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0",
        "kybern://0.1",
    ]
    bare = obj("v1", "Node", "n2", 60)
    assert cells("", "Node", bare) == [
        "n2",
        "Unknown",
        "<none>",
        "60s",
        "",
        "<none>",
        "<none>",
        "<unknown>",
        "<unknown>",
        "<unknown>",
    ]
    not_ready = obj(
        "v1", "Node", "n3", 60, status={"conditions": [{"type": "Ready", "status": "Unknown"}]}
    )
    assert cells("", "Node", not_ready)[1] == "NotReady"


def test_config_map_secret_service_account() -> None:
    assert headers("", "ConfigMap") == ["NAME", "DATA", "AGE"]
    cm = obj("v1", "ConfigMap", "cfg", 10, data={"a": "1", "b": "2"}, binaryData={"c": "AA=="})
    assert cells("", "ConfigMap", cm) == ["cfg", 3, "10s"]
    assert headers("", "Secret") == ["NAME", "TYPE", "DATA", "AGE"]
    secret = obj(
        "v1", "Secret", "tls", 10, type="kubernetes.io/tls", data={"tls.crt": "", "tls.key": ""}
    )
    assert cells("", "Secret", secret) == ["tls", "kubernetes.io/tls", 2, "10s"]
    assert headers("", "ServiceAccount") == ["NAME", "SECRETS", "AGE"]
    sa = obj("v1", "ServiceAccount", "default", 10)
    assert cells("", "ServiceAccount", sa) == ["default", 0, "10s"]


def test_resource_quota() -> None:
    assert headers("", "ResourceQuota") == ["NAME", "REQUEST", "LIMIT", "AGE"]
    status = {
        "hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi", "limits.cpu": "2000m"},
        "used": {"pods": "3", "requests.cpu": "500m", "limits.memory": "1024Mi"},
    }
    item = obj("v1", "ResourceQuota", "q", 10, status=status)
    assert cells("", "ResourceQuota", item) == [
        "q",
        "pods: 3/10, requests.cpu: 500m/1",
        "limits.cpu: 0/2, limits.memory: 1Gi/2Gi",
        "10s",
    ]


def test_pod_template() -> None:
    assert headers("", "PodTemplate") == ["NAME", "CONTAINERS", "IMAGES", "POD LABELS"]
    template = {
        "metadata": {"labels": {"b": "2", "a": "1"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    item = obj("v1", "PodTemplate", "t", 10, template=template)
    assert cells("", "PodTemplate", item) == ["t", "c", "i", "a=1,b=2"]


def test_core_event() -> None:
    assert headers("", "Event") == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert headers("", "Event", wide=True) == [
        "LAST SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "SUBOBJECT",
        "SOURCE",
        "MESSAGE",
        "FIRST SEEN",
        "COUNT",
        "NAME",
    ]
    item = obj(
        "v1",
        "Event",
        "web.17a",
        600,
        involvedObject={"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        reason="Pulled",
        message="Container image pulled \n",
        type="Normal",
        source={"component": "kubelet", "host": "node-1"},
        firstTimestamp=ago(600),
        lastTimestamp=ago(30),
        count=4,
    )
    assert cells("", "Event", item) == [
        "30s",
        "Normal",
        "Pulled",
        "pod/web",
        "spec.containers{app}",
        "kubelet, node-1",
        "Container image pulled",
        "10m",
        4,
        "web.17a",
    ]


def test_new_api_event_with_series_and_events_k8s_io_version() -> None:
    core = obj(
        "v1",
        "Event",
        "e",
        60,
        involvedObject={"kind": "Node"},
        eventTime="2024-05-01T11:58:00.000000Z",
        series={"count": 7, "lastObservedTime": "2024-05-01T11:59:50.000000Z"},
        reportingComponent="scheduler",
        reportingInstance="sched-1",
        type="Warning",
        reason="Failed",
    )
    row = cells("", "Event", core)
    assert row[:6] == ["10s", "Warning", "Failed", "node", "", "scheduler, sched-1"]
    assert row[7:9] == ["2m", 7]
    events_v1 = obj(
        "events.k8s.io/v1",
        "Event",
        "e2",
        60,
        regarding={"kind": "Pod", "name": "web"},
        note="hello",
        eventTime="2024-05-01T11:59:00.000000Z",
        reportingController="kubelet",
        type="Normal",
        reason="Started",
    )
    assert cells("events.k8s.io", "Event", events_v1)[:9] == [
        "60s",
        "Normal",
        "Started",
        "pod/web",
        "",
        "kubelet",
        "hello",
        "60s",
        1,
    ]


def test_default_table_for_kinds_without_printer() -> None:
    for group, kind in (
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("", "LimitRange"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ):
        assert printers.printer_for(group, kind) is printers.DEFAULT
        assert headers(group, kind) == ["NAME", "CREATED AT"]
    item = obj(
        "v1", "LimitRange", "limits", 0, metadata={"creationTimestamp": "2024-03-02T01:02:03Z"}
    )
    assert cells("", "LimitRange", item) == ["limits", "2024-03-02T01:02:03Z"]
    definitions = printers.DEFAULT.column_definitions()
    assert definitions[1] == {
        "name": "Created At",
        "type": "date",
        "format": "",
        "description": definitions[1]["description"],
        "priority": 0,
    }
    assert definitions[1]["description"].startswith("CreationTimestamp is a timestamp")


def test_every_served_kind_prints_a_row_of_its_width() -> None:
    for info in kinds.all_resources():
        printer = printers.printer_for(info.group, info.kind)
        item = obj(info.api_version, info.kind, "x", 5)
        row = printer.row(item, NOW)
        assert len(row) == len(printer.columns), info.kind
        assert all(isinstance(cell, str | int | bool) for cell in row), info.kind
        for definition in printer.column_definitions():
            assert definition["type"] in ("string", "integer", "boolean", "date")
            assert definition["priority"] in (0, 1)


def test_served_kinds_with_their_own_printer() -> None:
    without = {
        info.kind
        for info in kinds.all_resources()
        if printers.printer_for(info.group, info.kind) is printers.DEFAULT
    }
    assert without == {"LimitRange", "Role", "ClusterRole", "CustomResourceDefinition"}
