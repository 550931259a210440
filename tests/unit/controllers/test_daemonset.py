"""DaemonSet on the fake API: placement, pinning, tolerations, rolling updates, status."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import daemonset, history
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
KEY = "ns/agent"
Obj = dict[str, Any]


def ds(image: str = "agent:1", **spec: Any) -> Obj:
    template_spec = {"containers": [{"name": "c", "image": image}], **spec.pop("pod", {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "ns", "uid": "ds-uid", "generation": 3},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": template_spec},
            **spec,
        },
    }


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or []},
    }


def revision(owner: Obj) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": history.revision_name(owner, 0),
            "namespace": "ns",
            "uid": f"rev-{owner['spec']['template']['spec']['containers'][0]['image']}",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": "agent",
                    "uid": "ds-uid",
                    "controller": True,
                }
            ],
        },
        "data": history.revision_data(owner),
        "revision": 1,
    }


def daemon_pod(owner: Obj, node_name: str, *, ready: bool = True, phase: str = "Running") -> Obj:
    hash_ = history.hash_of(owner, revision(owner))
    pod = daemonset.new_pod(
        {**owner, "apiVersion": "apps/v1", "kind": "DaemonSet"},
        owner["spec"]["template"],
        hash_,
        node_name,
    )
    pod["metadata"]["name"] = f"agent-{node_name}"
    pod["metadata"]["uid"] = f"uid-agent-{node_name}"
    pod["spec"]["nodeName"] = node_name
    status: Obj = {"phase": phase}
    if ready:
        status["conditions"] = [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]
    pod["status"] = status
    return pod


def make(*objs: Obj) -> tuple[fakeclient.FakeCluster, daemonset.DaemonSetController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = daemonset.DaemonSetController(client=cluster.client, informers=cluster.informers)
    return cluster, controller


def writes(cluster: fakeclient.FakeCluster, resource: str, verb: str = "") -> list[Any]:
    return [a for a in cluster.writes() if a.resource == resource and (not verb or a.verb == verb)]


def pinned(body: Obj) -> str:
    return daemonset.node_of(body)


class TestPlacement:
    async def test_one_pod_per_node_pinned_by_match_fields(self) -> None:
        cluster, controller = make(ds(), node("n1"), node("n2"))
        await controller.reconcile(KEY)
        creates = writes(cluster, "pods", "create")
        assert sorted(pinned(a.body) for a in creates) == ["n1", "n2"]
        body = creates[0].body
        terms = body["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms == [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [pinned(body)]}]}
        ]
        assert "nodeName" not in body["spec"]  # the scheduler binds it
        assert body["metadata"]["generateName"] == "agent-"
        assert body["metadata"]["ownerReferences"][0]["uid"] == "ds-uid"
        assert body["metadata"]["labels"]["controller-revision-hash"]

    async def test_daemon_pods_get_the_default_tolerations(self) -> None:
        extra = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
        cluster, controller = make(ds(pod={"tolerations": [extra]}), node("n1"))
        await controller.reconcile(KEY)
        tolerations = writes(cluster, "pods", "create")[0].body["spec"]["tolerations"]
        assert tolerations[0] == extra
        assert {(t["key"], t["effect"]) for t in tolerations[1:]} == {
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
        }

    async def test_node_selector_affinity_and_taints_pick_the_nodes(self) -> None:
        affinity = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        }
        owner = ds(pod={"nodeSelector": {"disk": "ssd"}, "affinity": affinity})
        gpu = {"key": "gpu", "value": "yes", "effect": "NoSchedule"}
        cordon = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
        cluster, controller = make(
            owner,
            node("ok", {"disk": "ssd", "zone": "a"}),
            node("cordoned", {"disk": "ssd", "zone": "a"}, [cordon]),
            node("hdd", {"disk": "hdd", "zone": "a"}),
            node("zone-b", {"disk": "ssd", "zone": "b"}),
            node("tainted", {"disk": "ssd", "zone": "a"}, [gpu]),
        )
        await controller.reconcile(KEY)
        creates = writes(cluster, "pods", "create")
        assert sorted(pinned(a.body) for a in creates) == ["cordoned", "ok"]
        status = writes(cluster, "daemonsets", "update")[-1].body["status"]
        assert status["desiredNumberScheduled"] == 2

    async def test_no_execute_taint_evicts_but_no_schedule_keeps_the_pod(self) -> None:
        owner = ds()
        keep = {"key": "k", "effect": "NoSchedule"}
        evict = {"key": "k", "effect": "NoExecute"}
        cluster, controller = make(
            owner,
            revision(owner),
            node("soft", taints=[keep]),
            node("hard", taints=[evict]),
            daemon_pod(owner, "soft"),
            daemon_pod(owner, "hard"),
        )
        await controller.reconcile(KEY)
        assert [a.name for a in writes(cluster, "pods", "delete")] == ["agent-hard"]
        assert writes(cluster, "pods", "create") == []

    async def test_pods_of_vanished_nodes_failed_pods_and_duplicates_go(self) -> None:
        owner = ds()
        dup = daemon_pod(owner, "n1")
        dup["metadata"]["name"] = "agent-dup"
        dup["metadata"]["uid"] = "uid-dup"
        dup["metadata"]["creationTimestamp"] = "2026-02-01T00:00:00Z"
        cluster, controller = make(
            owner,
            revision(owner),
            node("n1"),
            node("n2"),
            daemon_pod(owner, "n1"),
            dup,
            daemon_pod(owner, "n2", phase="Failed"),
            daemon_pod(owner, "gone"),
        )
        await controller.reconcile(KEY)
        deleted = sorted(a.name for a in writes(cluster, "pods", "delete"))
        assert deleted == ["agent-dup", "agent-gone", "agent-n2"]


class TestRollingUpdate:
    async def test_replaces_at_most_max_unavailable_pods(self) -> None:
        old, new = ds("agent:1"), ds("agent:2")
        pods = [daemon_pod(old, n) for n in ("n1", "n2", "n3")]
        cluster, controller = make(
            new, revision(old), *[node(n) for n in ("n1", "n2", "n3")], *pods
        )
        await controller.reconcile(KEY)
        assert len(writes(cluster, "pods", "delete")) == 1
        status = writes(cluster, "daemonsets", "update")[-1].body["status"]
        assert status["updatedNumberScheduled"] == 0
        assert status["numberAvailable"] == 3

    async def test_unavailable_old_pods_go_first_and_use_the_budget(self) -> None:
        old, new = ds("agent:1"), ds("agent:2")
        pods = [daemon_pod(old, "n1", ready=False), daemon_pod(old, "n2"), daemon_pod(old, "n3")]
        cluster, controller = make(
            new, revision(old), *[node(n) for n in ("n1", "n2", "n3")], *pods
        )
        await controller.reconcile(KEY)
        assert [a.name for a in writes(cluster, "pods", "delete")] == ["agent-n1"]

    async def test_on_delete_leaves_old_pods(self) -> None:
        old = ds("agent:1", updateStrategy={"type": "OnDelete"})
        new = ds("agent:2", updateStrategy={"type": "OnDelete"})
        cluster, controller = make(new, revision(old), node("n1"), daemon_pod(old, "n1"))
        await controller.reconcile(KEY)
        assert writes(cluster, "pods", "delete") == []

    def test_max_unavailable_percentages_round_up(self) -> None:
        owner = ds(
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}
        )
        assert daemonset.max_unavailable(owner, 15) == 2
        assert daemonset.max_unavailable(owner, 0) == 0


class TestStatus:
    async def test_counts(self) -> None:
        owner = ds()
        cluster, controller = make(
            owner,
            revision(owner),
            node("n1"),
            node("n2"),
            node("n3"),
            daemon_pod(owner, "n1"),
            daemon_pod(owner, "n2", ready=False),
        )
        await controller.reconcile(KEY)
        status = writes(cluster, "daemonsets", "update")[-1].body["status"]
        assert status == {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 2,
            "numberMisscheduled": 0,
            "numberReady": 1,
            "updatedNumberScheduled": 2,
            "numberAvailable": 1,
            "numberUnavailable": 2,
            "observedGeneration": 3,
        }


class TestHistory:
    async def test_old_revisions_beyond_the_limit_go_unless_a_pod_runs_them(self) -> None:
        owner = ds("agent:new", revisionHistoryLimit=2)
        old = [ds(f"agent:{i}") for i in range(5)]
        revisions = []
        for i, o in enumerate(old):
            rev = revision(o)
            rev["revision"] = i + 1
            revisions.append(rev)
        current = revision(owner)
        current["revision"] = 6
        # a pod on n1 still runs the oldest revision: it stays whatever its age
        cluster, controller = make(owner, *revisions, current, node("n1"), daemon_pod(old[0], "n1"))
        await controller.reconcile(KEY)
        deleted = {a.name for a in writes(cluster, "controllerrevisions", "delete")}
        # 4 old revisions without pods, limit 2: the two oldest of them go
        assert deleted == {revisions[1]["metadata"]["name"], revisions[2]["metadata"]["name"]}
