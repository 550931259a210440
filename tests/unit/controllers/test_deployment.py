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


class TestRollout:
    async def test_a_new_deployment_gets_a_hashed_replicaset_scaled_to_size(self) -> None:
        cluster, controller = make(dep(3))
        await controller.reconcile(KEY)
        writes = [(a.verb, a.resource, a.subresource) for a in cluster.writes()]
        assert writes[:3] == [
            ("create", "replicasets", ""),
            ("patch", "deployments", ""),
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
        assert cluster.writes()[2].body["spec"]["replicas"] == 3
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
        [update] = [a for a in cluster.writes() if a.subresource == "status"]
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
        [status] = [a for a in cluster.writes() if a.subresource == "status"]
        progressing = next(
            c for c in status.body["status"]["conditions"] if c["type"] == "Progressing"
        )
        assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")
