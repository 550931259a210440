"""Reads and versions through the official client: one object seen through two API versions
(autoscaling v1/v2 HPAs, core and events.k8s.io Events) in gets, lists and watches; list
resourceVersion semantics (0, NotOlderThan, Exact); watches across namespaces and of
cluster-scoped kinds; update details (unconditional PUT, uid mismatch, create-on-update,
status ignored on create)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import kubernetes
import pytest

from tests.compat.helpers import MERGE, Obj, api_error, status_of
from tests.support import cluster

pytestmark = pytest.mark.compat


def test_hpa_through_v1_and_v2(api_client: kubernetes.client.ApiClient, ns: str) -> None:
    v1 = kubernetes.client.AutoscalingV1Api(api_client)
    v2 = kubernetes.client.AutoscalingV2Api(api_client)
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    v2.create_namespaced_horizontal_pod_autoscaler(
        ns,
        {
            "metadata": {"name": "h"},
            "spec": {
                "scaleTargetRef": target,
                "maxReplicas": 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
    )
    old = v1.read_namespaced_horizontal_pod_autoscaler("h", ns)
    assert old.spec.target_cpu_utilization_percentage == 70
    assert (old.spec.min_replicas, old.spec.max_replicas) == (1, 5)
    assert [h.metadata.name for h in v1.list_namespaced_horizontal_pod_autoscaler(ns).items] == [
        "h"
    ]

    old.spec.target_cpu_utilization_percentage = 40
    v1.replace_namespaced_horizontal_pod_autoscaler("h", ns, old)
    new = v2.read_namespaced_horizontal_pod_autoscaler("h", ns)
    [metric] = new.spec.metrics
    assert (metric.type, metric.resource.name) == ("Resource", "cpu")
    assert metric.resource.target.average_utilization == 40


def test_events_through_core_and_events_api(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    # Read as raw JSON: a legacy Event has no eventTime, which events.k8s.io/v1 serialises as
    # null (Kubernetes does the same), and the 37.x client's EventsV1Event refuses a null.
    start = core.list_namespaced_event(ns).metadata.resource_version
    core.create_namespaced_event(
        ns,
        {
            "metadata": {"name": "ev"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
            "reason": "Pulled",
            "message": "image pulled",
            "type": "Normal",
            "count": 3,
        },
    )
    path = f"/apis/events.k8s.io/v1/namespaces/{ns}/events"
    seen = raw.get(f"{path}/ev").json
    assert (seen["apiVersion"], seen["kind"]) == ("events.k8s.io/v1", "Event")
    assert (seen["reason"], seen["note"], seen["type"]) == ("Pulled", "image pulled", "Normal")
    assert (seen["regarding"]["kind"], seen["regarding"]["name"]) == ("Pod", "p")
    assert seen["deprecatedCount"] == 3
    assert "message" not in seen
    assert "involvedObject" not in seen

    [event] = _first(raw.stream(path, query={"resourceVersion": start, "timeoutSeconds": 5}))
    assert event["object"]["apiVersion"] == "events.k8s.io/v1"
    assert event["object"]["note"] == "image pulled"
    listed = raw.get(path).json
    assert (listed["kind"], [i["note"] for i in listed["items"]]) == ("EventList", ["image pulled"])

    # written through events.k8s.io, read through core/v1
    events = kubernetes.client.EventsV1Api(core.api_client)
    events.create_namespaced_event(
        ns,
        {
            "metadata": {"name": "new"},
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "example.com/ctl",
            "reportingInstance": "ctl-1",
            "action": "Act",
            "reason": "Done",
            "type": "Warning",
            "regarding": {"kind": "Pod", "name": "p", "namespace": ns},
            "note": "a note",
        },
    )
    legacy = core.read_namespaced_event("new", ns)
    assert (legacy.message, legacy.reason, legacy.type) == ("a note", "Done", "Warning")
    assert legacy.reporting_component == "example.com/ctl"
    assert legacy.involved_object.name == "p"


def _first(events: Iterator[Obj]) -> list[Obj]:
    for event in events:
        return [event]
    return []


def test_list_resource_version_semantics(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}, "data": {"v": "old"}})
    then = core.list_namespaced_config_map(ns).metadata.resource_version
    core.patch_namespaced_config_map("a", ns, {"data": {"v": "new"}}, _content_type=MERGE)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "b"}})

    path = f"/api/v1/namespaces/{ns}/configmaps"
    exact = raw.get(path, resourceVersion=then, resourceVersionMatch="Exact").json
    assert exact["metadata"]["resourceVersion"] == then
    assert [(i["metadata"]["name"], i["data"]["v"]) for i in exact["items"]] == [("a", "old")]

    newer = raw.get(path, resourceVersion=then, resourceVersionMatch="NotOlderThan").json
    assert int(newer["metadata"]["resourceVersion"]) > int(then)
    assert [i["metadata"]["name"] for i in newer["items"]] == ["a", "b"]

    any_version = core.list_namespaced_config_map(ns, resource_version="0")
    assert [c.metadata.name for c in any_version.items] == ["a", "b"]

    future = raw.get(path, resourceVersion=str(10**12), resourceVersionMatch="Exact")
    assert future.status in (410, 504), future.body
    assert future.json["kind"] == "Status"


def test_watch_across_namespaces(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    other = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": other}})
    start = core.list_config_map_for_all_namespaces().metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "here", "labels": {"w": ns}}})
    core.create_namespaced_config_map(other, {"metadata": {"name": "there", "labels": {"w": ns}}})
    events = []
    for event in raw.stream(
        "/api/v1/configmaps",
        query={"resourceVersion": start, "labelSelector": f"w={ns}", "timeoutSeconds": 10},
    ):
        events.append((event["type"], event["object"]["metadata"]["namespace"]))
        if len(events) == 2:
            break
    assert events == [("ADDED", ns), ("ADDED", other)]


def test_watch_cluster_scoped_kind(core: kubernetes.client.CoreV1Api) -> None:
    start = core.list_node().metadata.resource_version
    name = f"node-{uuid.uuid4().hex[:8]}"
    core.create_node({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
    node = core.read_node(name)
    node.status = kubernetes.client.V1NodeStatus(
        conditions=[
            kubernetes.client.V1NodeCondition(type="Ready", status="True", reason="KubeletReady")
        ]
    )
    core.replace_node_status(name, node)
    core.delete_node(name)
    watch = kubernetes.watch.Watch()
    seen = []
    for event in watch.stream(
        core.list_node,
        resource_version=start,
        field_selector=f"metadata.name={name}",
        timeout_seconds=5,
    ):
        seen.append(event["type"])
        if len(seen) == 3:
            watch.stop()
    assert seen == ["ADDED", "MODIFIED", "DELETED"]


def test_unconditional_update(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "u"}, "data": {"v": "1"}})
    core.patch_namespaced_config_map("u", ns, {"data": {"v": "2"}}, _content_type=MERGE)
    # no resourceVersion: last writer wins, as Kubernetes allows for most kinds
    written = core.replace_namespaced_config_map(
        "u", ns, {"metadata": {"name": "u"}, "data": {"v": "3"}}
    )
    assert written.data == {"v": "3"}


def test_update_with_another_uid_is_refused(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    made = core.create_namespaced_config_map(ns, {"metadata": {"name": "uid"}})
    made.metadata.uid = str(uuid.uuid4())
    exc = api_error(core.replace_namespaced_config_map, "uid", ns, made)
    body = status_of(exc)
    assert (exc.status, body["reason"]) == (409, "Conflict")
    assert f"Precondition failed: UID in precondition: {made.metadata.uid}" in body["message"]


def test_create_on_update(api_client: kubernetes.client.ApiClient, ns: str) -> None:
    leases = kubernetes.client.CoordinationV1Api(api_client)
    lease = {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "me"}}
    made = leases.replace_namespaced_lease("leader", ns, lease)
    assert made.spec.holder_identity == "me"
    core = kubernetes.client.CoreV1Api(api_client)
    exc = api_error(
        core.replace_namespaced_config_map, "absent", ns, {"metadata": {"name": "absent"}}
    )
    assert exc.status == 404


def test_status_is_ignored_on_create(api_client: kubernetes.client.ApiClient, ns: str) -> None:
    apps = kubernetes.client.AppsV1Api(api_client)
    made = apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "s"},
            "spec": {
                "selector": {"matchLabels": {"app": "s"}},
                "template": {
                    "metadata": {"labels": {"app": "s"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
            "status": {"replicas": 5, "readyReplicas": 5},
        },
    )
    assert made.status.replicas is None
    assert made.status.ready_replicas is None
    assert made.spec.replicas == 1  # defaulted
    assert made.spec.strategy.type == "RollingUpdate"
