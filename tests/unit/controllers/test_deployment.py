"""Deployment controller on the fake API."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import deployment, deploymentutil
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
KEY = "ns/web"
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "a"}]},
}


def dep(replicas: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": TEMPLATE,
            **spec,
        },
    }


def old_rs(name: str, replicas: int, revision: int, *, image: str = "old") -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "web", "pod-template-hash": name}},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "labels": {"app": "web", "pod-template-hash": name},
            "annotations": {deploymentutil.REVISION: str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "web",
                    "uid": "d-uid",
                    "controller": True,
                }
            ],
            "creationTimestamp": f"2026-01-0{revision}T00:00:00Z",
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template,
        },
        "status": {"replicas": replicas, "availableReplicas": replicas},
    }


def make(*objs: dict[str, Any]) -> tuple[fakeclient.FakeCluster, deployment.DeploymentController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    return cluster, deployment.DeploymentController(
        client=cluster.client, informers=cluster.informers
    )


def util_reasons(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["reason"] for c in obj["status"]["conditions"]}


class TestRollout:
    async def test_a_new_deployment_gets_a_hashed_replicaset_scaled_to_size(self) -> None:
        cluster, controller = make(dep(3))
        await controller.reconcile(KEY)
        writes = [(a.verb, a.resource, a.subresource) for a in cluster.writes()]
        assert writes[:4] == [
            ("create", "replicasets", ""),
            ("patch", "deployments", ""),
            ("update", "deployments", "status"),
            ("update", "replicasets", ""),
        ]
        create = cluster.writes()[0].body
        pod_hash = deploymentutil.template_hash(TEMPLATE)
        assert create["metadata"]["name"] == f"web-{pod_hash}"
        assert create["spec"]["selector"]["matchLabels"] == {
            "app": "web",
            "pod-template-hash": pod_hash,
        }
        assert create["metadata"]["annotations"][deploymentutil.REVISION] == "1"
        created = cluster.writes()[2].body["status"]["conditions"]
        assert [(c["type"], c["reason"]) for c in created] == [
            ("Progressing", "NewReplicaSetCreated")
        ]
        assert created[0]["message"] == f'Created new replica set "web-{pod_hash}"'
        assert cluster.writes()[3].body["spec"]["replicas"] == 3
        events = [a.body["message"] for a in cluster.writes() if a.resource == "events"]
        assert events == [f"Scaled up replica set web-{pod_hash} from 0 to 3"]

    async def test_rolling_update_surges_first_then_shrinks_the_old_set(self) -> None:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        cluster, controller = make(dep(3, strategy=strategy), old_rs("web-old", 3, 1))
        await controller.reconcile(KEY)
        scales = [
            (a.name, a.body["spec"]["replicas"])
            for a in cluster.writes()
            if a.verb == "update" and a.resource == "replicasets"
        ]
        new_name = f"web-{deploymentutil.template_hash(TEMPLATE)}"
        assert scales == [(new_name, 1)]  # the old set waits for the new pod to be available
        create = next(
            a for a in cluster.writes() if a.verb == "create" and a.resource == "replicasets"
        )
        assert create.body["metadata"]["annotations"][deploymentutil.REVISION] == "2"

    async def test_recreate_scales_old_sets_down_before_creating(self) -> None:
        cluster, controller = make(dep(2, strategy={"type": "Recreate"}), old_rs("web-old", 2, 1))
        await controller.reconcile(KEY)
        rs_writes = [(a.verb, a.name) for a in cluster.writes() if a.resource == "replicasets"]
        assert rs_writes == [("update", "web-old")]


class TestHistory:
    async def test_old_sets_beyond_the_history_limit_are_deleted(self) -> None:
        new = old_rs("web-new", 0, 4, image="a")
        new["spec"]["template"] = {
            **TEMPLATE,
            "metadata": {"labels": {"app": "web", "pod-template-hash": "n"}},
        }
        new["spec"]["replicas"] = 0
        objs = [old_rs("web-r1", 0, 1), old_rs("web-r2", 0, 2), old_rs("web-r3", 0, 3), new]
        cluster, controller = make(dep(0, revisionHistoryLimit=1), *objs)
        await controller.reconcile(KEY)
        deleted = [a.name for a in cluster.writes() if a.verb == "delete"]
        assert deleted == ["web-r1", "web-r2"]


class TestStatus:
    async def test_status_and_conditions(self) -> None:
        new = old_rs("web-new", 2, 1, image="a")
        new["spec"]["template"] = {
            **TEMPLATE,
            "metadata": {"labels": {"app": "web", "pod-template-hash": "n"}},
        }
        new["status"] = {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}
        cluster, controller = make(dep(2), new)
        await controller.reconcile(KEY)
        found, update = [a for a in cluster.writes() if a.subresource == "status"]
        assert util_reasons(found.body) == {"Progressing": "FoundNewReplicaSet"}
        status = update.body["status"]
        assert {
            k: status[k]
            for k in (
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
            )
        } == {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "unavailableReplicas": 0,
        }
        conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
        assert conditions == {
            "Available": ("True", "MinimumReplicasAvailable"),
            "Progressing": ("True", "NewReplicaSetAvailable"),
        }

    async def test_an_empty_selector_is_terminal(self) -> None:
        bad = dep(1)
        bad["spec"]["selector"] = {}
        _cluster, controller = make(bad)
        with pytest.raises(Exception, match="non-empty selector"):
            await controller.reconcile(KEY)


class TestPaused:
    async def test_a_paused_deployment_does_not_roll_out_but_still_resizes(self) -> None:
        cluster, controller = make(dep(5, paused=True), old_rs("web-old", 2, 1))
        await controller.reconcile(KEY)
        rs_writes = [(a.verb, a.name) for a in cluster.writes() if a.resource == "replicasets"]
        assert rs_writes == [("update", "web-old")]  # no new ReplicaSet while paused
        scaled = next(a for a in cluster.writes() if a.resource == "replicasets")
        assert scaled.body["spec"]["replicas"] == 5
        status = [a for a in cluster.writes() if a.subresource == "status"][-1]
        progressing = next(
            c for c in status.body["status"]["conditions"] if c["type"] == "Progressing"
        )
        assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")

    async def test_resuming_says_so_in_progressing(self) -> None:
        resumed = dep(2)
        resumed["status"] = {
            "conditions": [
                deploymentutil.condition(
                    "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", "t"
                )
            ]
        }
        cluster, controller = make(resumed, old_rs("web-old", 2, 1))
        await controller.reconcile(KEY)
        first = next(a for a in cluster.writes() if a.subresource == "status")
        assert util_reasons(first.body)["Progressing"] == "DeploymentResumed"


def current_rs(name: str, replicas: int, revision: int) -> dict[str, Any]:
    """A set whose template is the Deployment's (TEMPLATE)."""
    rs = old_rs(name, replicas, revision)
    rs["spec"]["template"] = {
        **TEMPLATE,
        "metadata": {"labels": {"app": "web", "pod-template-hash": name}},
    }
    return rs


class TestRollback:
    async def test_an_old_set_with_the_template_is_reused_as_the_newest_revision(self) -> None:
        back = dep(2)
        back["metadata"]["annotations"] = {
            deploymentutil.REVISION: "2",
            "kubernetes.io/change-cause": "undo",
        }
        objs = [current_rs("web-r1", 0, 1), old_rs("web-r2", 2, 2)]
        cluster, controller = make(back, *objs)
        await controller.reconcile(KEY)
        assert not [
            a for a in cluster.writes() if a.resource == "replicasets" and a.verb == "create"
        ]
        reused = next(a for a in cluster.writes() if a.name == "web-r1")
        annotations = reused.body["metadata"]["annotations"]
        assert annotations[deploymentutil.REVISION] == "3"
        assert annotations[deploymentutil.REVISION_HISTORY] == "1"
        assert annotations["kubernetes.io/change-cause"] == "undo"
        patch = next(a for a in cluster.writes() if a.verb == "patch")
        assert patch.body == {"metadata": {"annotations": {deploymentutil.REVISION: "3"}}}

    async def test_change_cause_follows_the_deployment_onto_its_set(self) -> None:
        annotated = dep(2)
        annotated["metadata"]["annotations"] = {
            deploymentutil.REVISION: "1",
            "kubernetes.io/change-cause": "v2",
            deploymentutil.LAST_APPLIED: "{}",
        }
        cluster, controller = make(annotated, current_rs("web-r1", 2, 1))
        await controller.reconcile(KEY)
        update = next(a for a in cluster.writes() if a.name == "web-r1")
        annotations = update.body["metadata"]["annotations"]
        assert annotations["kubernetes.io/change-cause"] == "v2"
        assert deploymentutil.LAST_APPLIED not in annotations
        assert annotations[deploymentutil.REVISION] == "1"


class TestScalingEvent:
    async def test_a_resize_mid_rollout_is_shared_proportionally(self) -> None:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
        new = current_rs("web-new", 6, 2)
        old = old_rs("web-old", 7, 1)
        for rs in (new, old):
            rs["metadata"]["annotations"].update(
                {deploymentutil.DESIRED_REPLICAS: "10", deploymentutil.MAX_REPLICAS: "13"}
            )
        cluster, controller = make(dep(20, strategy=strategy), old, new)
        await controller.reconcile(KEY)
        sizes = {
            a.name: a.body["spec"]["replicas"]
            for a in cluster.writes()
            if a.verb == "update" and a.resource == "replicasets"
        }
        # 13 -> 23 pods allowed: 7 * 23 / 13 = 12.4 -> 12, 6 * 23 / 13 = 10.6 -> 11
        assert sizes == {"web-old": 12, "web-new": 11}


def pod_of(rs: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "labels": dict(rs["metadata"]["labels"]),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs["metadata"]["name"],
                    "uid": rs["metadata"]["uid"],
                    "controller": True,
                }
            ],
            "deletionTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"containers": [{"name": "c", "image": "old"}]},
        "status": {"phase": "Running"},
    }


class TestRecreateWaits:
    async def test_no_new_set_while_an_old_pod_still_terminates(self) -> None:
        old = old_rs("web-old", 0, 1)
        old["status"] = {"replicas": 0}
        cluster, controller = make(
            dep(2, strategy={"type": "Recreate"}), old, pod_of(old, "web-old-x")
        )
        await controller.reconcile(KEY)
        assert not [a for a in cluster.writes() if a.resource == "replicasets"]
        cluster2, controller2 = make(dep(2, strategy={"type": "Recreate"}), old)
        await controller2.reconcile(KEY)
        creates = [a for a in cluster2.writes() if a.resource == "replicasets"]
        assert [a.verb for a in creates] == ["create", "update"]
        assert creates[1].body["spec"]["replicas"] == 2


class TestProgressDeadline:
    async def test_no_progress_past_the_deadline_times_out(self) -> None:
        new = current_rs("web-new", 2, 1)
        new["status"] = {"replicas": 2, "availableReplicas": 0}
        stuck = dep(2, progressDeadlineSeconds=30)
        stale = deploymentutil.condition(
            "Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "web-new" is progressing.', ""
        )
        stale["lastUpdateTime"] = "2025-12-31T23:59:00Z"  # the fake clock says 2026-01-01
        stuck["status"] = {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 0,
            "conditions": [stale],
        }
        cluster, controller = make(stuck, new)
        await controller.reconcile(KEY)
        status = [a for a in cluster.writes() if a.subresource == "status"][-1].body
        progressing = deploymentutil.get_condition(status["status"], "Progressing")
        assert progressing is not None
        assert (progressing["status"], progressing["reason"]) == (
            "False",
            "ProgressDeadlineExceeded",
        )
        assert progressing["message"] == 'ReplicaSet "web-new" has timed out progressing.'

    async def test_a_rollout_within_its_deadline_is_looked_at_again_in_time(self) -> None:
        new = current_rs("web-new", 2, 1)
        new["status"] = {"replicas": 2, "availableReplicas": 0}
        _cluster, controller = make(dep(2, progressDeadlineSeconds=30), new)
        result = await controller.reconcile(KEY)
        assert result.requeue_after is not None
        assert 1.0 <= result.requeue_after <= 31.0
