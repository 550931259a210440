"""StatefulSet on the fake API: ordinals, ordering, claims, revisions, updates, status."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern.controllers import history, statefulset
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
KEY = "ns/web"
Obj = dict[str, Any]


def sts(replicas: int = 3, image: str = "nginx:1", **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "sts-uid", "generation": 4},
        "spec": {
            "replicas": replicas,
            "serviceName": "nginx",
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
            **spec,
        },
    }


def revision(owner: Obj, number: int = 1) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": history.revision_name(owner, 0),
            "namespace": "ns",
            "uid": f"rev-{number}",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": "web",
                    "uid": "sts-uid",
                    "controller": True,
                }
            ],
        },
        "data": history.revision_data(owner),
        "revision": number,
    }


def member(owner: Obj, ordinal: int, *, ready: bool = True, phase: str = "Running") -> Obj:
    pod = statefulset.new_pod(
        {**owner, "metadata": {**owner["metadata"]}},
        owner["spec"]["template"],
        history.revision_name(owner, 0),
        ordinal,
    )
    pod["metadata"]["uid"] = f"uid-web-{ordinal}"
    pod["metadata"]["ownerReferences"][0]["uid"] = "sts-uid"
    status: Obj = {"phase": phase}
    if ready:
        status["conditions"] = [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]
    pod["status"] = status
    return pod


def make(*objs: Obj) -> tuple[fakeclient.FakeCluster, statefulset.StatefulSetController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = statefulset.StatefulSetController(
        client=cluster.client, informers=cluster.informers
    )
    return cluster, controller


def writes(cluster: fakeclient.FakeCluster, resource: str, verb: str = "") -> list[Any]:
    return [a for a in cluster.writes() if a.resource == resource and (not verb or a.verb == verb)]


def with_owner(owner: Obj) -> Obj:
    return {**owner, "apiVersion": "apps/v1", "kind": "StatefulSet"}


class TestHelpers:
    def test_ordinal_of_accepts_only_member_names(self) -> None:
        assert statefulset.ordinal_of("web", "web-0") == 0
        assert statefulset.ordinal_of("web", "web-12") == 12
        assert statefulset.ordinal_of("web", "web-01") is None
        assert statefulset.ordinal_of("web", "web-x") is None
        assert statefulset.ordinal_of("web", "webby-1") is None

    def test_revision_data_round_trips_the_template(self) -> None:
        owner = sts()
        rev = revision(owner)
        assert history.template_of(rev) == owner["spec"]["template"]
        assert rev["data"]["spec"]["template"]["$patch"] == "replace"


class TestScaleUp:
    async def test_ordered_ready_creates_only_the_first_pod_with_its_identity(self) -> None:
        owner = sts(3, volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}])
        cluster, controller = make(owner)
        await controller.reconcile(KEY)
        creates = writes(cluster, "pods", "create")
        assert [a.body["metadata"]["name"] for a in creates] == ["web-0"]
        body = creates[0].body
        rev_name = history.revision_name(owner, 0)
        assert body["metadata"]["labels"] == {
            "app": "web",
            "statefulset.kubernetes.io/pod-name": "web-0",
            "apps.kubernetes.io/pod-index": "0",
            "controller-revision-hash": rev_name,
        }
        assert body["spec"]["hostname"] == "web-0"
        assert body["spec"]["subdomain"] == "nginx"
        assert body["spec"]["volumes"] == [
            {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}
        ]
        assert body["metadata"]["ownerReferences"][0]["uid"] == "sts-uid"
        claims = writes(cluster, "persistentvolumeclaims", "create")
        assert [a.body["metadata"]["name"] for a in claims] == ["data-web-0"]
        assert "ownerReferences" not in claims[0].body["metadata"]  # Retain by default
        revs = writes(cluster, "controllerrevisions", "create")
        assert [a.body["metadata"]["name"] for a in revs] == [rev_name]
        assert revs[0].body["revision"] == 1
        reasons = [a.body["message"] for a in writes(cluster, "events", "create")]
        assert "create Pod web-0 in StatefulSet web successful" in reasons

    async def test_waits_for_the_lower_ordinal_to_be_running_and_ready(self) -> None:
        owner = sts(3)
        cluster, controller = make(owner, revision(owner), member(owner, 0, ready=False))
        await controller.reconcile(KEY)
        assert writes(cluster, "pods") == []

    async def test_creates_the_next_ordinal_once_the_lower_are_ready(self) -> None:
        owner = sts(3)
        cluster, controller = make(owner, revision(owner), member(owner, 0))
        await controller.reconcile(KEY)
        creates = writes(cluster, "pods", "create")
        assert [a.body["metadata"]["name"] for a in creates] == ["web-1"]

    async def test_parallel_creates_every_missing_ordinal(self) -> None:
        owner = sts(3, podManagementPolicy="Parallel")
        cluster, controller = make(owner, revision(owner), member(owner, 1, ready=False))
        await controller.reconcile(KEY)
        creates = writes(cluster, "pods", "create")
        assert sorted(a.body["metadata"]["name"] for a in creates) == ["web-0", "web-2"]

    async def test_a_failed_pod_is_deleted_for_recreation(self) -> None:
        owner = sts(1)
        cluster, controller = make(owner, revision(owner), member(owner, 0, phase="Failed"))
        await controller.reconcile(KEY)
        deletes = writes(cluster, "pods", "delete")
        assert [a.name for a in deletes] == ["web-0"]

    async def test_when_deleted_delete_makes_the_set_own_the_claims(self) -> None:
        owner = sts(
            1,
            volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}],
            persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"},
        )
        cluster, controller = make(owner)
        await controller.reconcile(KEY)
        claim = writes(cluster, "persistentvolumeclaims", "create")[0].body
        assert claim["metadata"]["ownerReferences"][0]["uid"] == "sts-uid"
        assert claim["metadata"]["ownerReferences"][0]["controller"] is False
        assert claim["metadata"]["labels"] == {"app": "web"}


class TestScaleDown:
    async def test_ordered_ready_deletes_the_highest_ordinal_only(self) -> None:
        owner = sts(1)
        cluster, controller = make(
            owner, revision(owner), member(owner, 0), member(owner, 1), member(owner, 2)
        )
        await controller.reconcile(KEY)
        assert [a.name for a in writes(cluster, "pods", "delete")] == ["web-2"]

    async def test_waits_while_a_lower_pod_is_unhealthy(self) -> None:
        owner = sts(1)
        cluster, controller = make(
            owner,
            revision(owner),
            member(owner, 0),
            member(owner, 1, ready=False),
            member(owner, 2),
        )
        await controller.reconcile(KEY)
        assert writes(cluster, "pods", "delete") == []

    async def test_parallel_deletes_every_condemned_pod(self) -> None:
        owner = sts(1, podManagementPolicy="Parallel")
        cluster, controller = make(
            owner, revision(owner), member(owner, 0), member(owner, 1), member(owner, 2)
        )
        await controller.reconcile(KEY)
        assert sorted(a.name for a in writes(cluster, "pods", "delete")) == ["web-1", "web-2"]

    async def test_when_scaled_delete_hands_the_claim_to_the_pod_first(self) -> None:
        owner = sts(
            1,
            volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}],
            persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Delete"},
        )
        claims = [
            statefulset.new_claim(with_owner(owner), {"metadata": {"name": "data"}}, i)
            for i in (0, 1)
        ]
        cluster, controller = make(
            owner, revision(owner), member(owner, 0), member(owner, 1), *claims
        )
        await controller.reconcile(KEY)
        patches = writes(cluster, "persistentvolumeclaims", "patch")
        assert [a.name for a in patches] == ["data-web-1"]
        ref = patches[0].body["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"]) == ("Pod", "uid-web-1")
        assert [a.name for a in writes(cluster, "pods", "delete")] == ["web-1"]


class TestUpdates:
    def old_and_new(self, **spec: Any) -> tuple[Obj, Obj, Obj]:
        old = sts(3, image="nginx:1", **spec)
        new = sts(3, image="nginx:2", **spec)
        new["status"] = {"currentRevision": history.revision_name(old, 0)}
        return old, new, revision(old)

    async def test_rolling_update_replaces_the_highest_ordinal_first(self) -> None:
        old, new, old_rev = self.old_and_new()
        pods = [member(old, i) for i in range(3)]
        cluster, controller = make(new, old_rev, *pods)
        await controller.reconcile(KEY)
        assert [a.name for a in writes(cluster, "pods", "delete")] == ["web-2"]
        status = writes(cluster, "statefulsets", "update")[-1].body["status"]
        assert status["currentRevision"] == old_rev["metadata"]["name"]
        assert status["updateRevision"] == history.revision_name(new, 0)
        assert status["currentReplicas"] == 3
        assert status["updatedReplicas"] == 0
        revs = writes(cluster, "controllerrevisions", "create")
        assert revs[0].body["revision"] == 2

    async def test_rolling_update_continues_below_an_updated_ready_pod(self) -> None:
        old, new, old_rev = self.old_and_new()
        pods = [member(old, 0), member(old, 1), member(new, 2)]
        cluster, controller = make(new, old_rev, revision(new, 2), *pods)
        await controller.reconcile(KEY)
        assert [a.name for a in writes(cluster, "pods", "delete")] == ["web-1"]

    async def test_partition_keeps_lower_ordinals_on_the_current_revision(self) -> None:
        old, new, old_rev = self.old_and_new(
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
        )
        pods = [member(old, 0), member(old, 1), member(new, 2)]
        cluster, controller = make(new, old_rev, revision(new, 2), *pods)
        await controller.reconcile(KEY)
        assert writes(cluster, "pods", "delete") == []

    async def test_a_recreated_pod_below_the_partition_gets_the_current_template(self) -> None:
        old, new, old_rev = self.old_and_new(
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
        )
        cluster, controller = make(new, old_rev, revision(new, 2), member(old, 0))
        await controller.reconcile(KEY)
        body = writes(cluster, "pods", "create")[0].body
        assert body["metadata"]["name"] == "web-1"
        assert body["spec"]["containers"][0]["image"] == "nginx:1"
        assert (
            body["metadata"]["labels"]["controller-revision-hash"] == (old_rev["metadata"]["name"])
        )

    async def test_on_delete_does_not_replace_pods(self) -> None:
        old, new, old_rev = self.old_and_new(updateStrategy={"type": "OnDelete"})
        pods = [member(old, i) for i in range(3)]
        cluster, controller = make(new, old_rev, *pods)
        await controller.reconcile(KEY)
        assert writes(cluster, "pods", "delete") == []

    async def test_a_completed_rollout_moves_the_current_revision(self) -> None:
        _old, new, old_rev = self.old_and_new()
        pods = [member(new, i) for i in range(3)]
        cluster, controller = make(new, old_rev, revision(new, 2), *pods)
        await controller.reconcile(KEY)
        status = writes(cluster, "statefulsets", "update")[-1].body["status"]
        assert status["currentRevision"] == status["updateRevision"]
        assert status["currentReplicas"] == status["updatedReplicas"] == 3


class TestStatus:
    async def test_counts_and_observed_generation(self) -> None:
        owner = sts(3)
        pods = [member(owner, 0), member(owner, 1), member(owner, 2, ready=False)]
        cluster, controller = make(owner, revision(owner), *pods)
        await controller.reconcile(KEY)
        status = writes(cluster, "statefulsets", "update")[-1].body["status"]
        assert status["replicas"] == 3
        assert status["readyReplicas"] == 2
        assert status["availableReplicas"] == 2
        assert status["updatedReplicas"] == 3
        assert status["observedGeneration"] == 4

    async def test_gone_set_is_a_no_op(self) -> None:
        cluster, controller = make()
        await controller.reconcile(KEY)
        assert cluster.writes() == []

    async def test_old_revisions_beyond_the_history_limit_are_deleted(self) -> None:
        owner = sts(1, revisionHistoryLimit=0)
        older = copy.deepcopy(revision(sts(1, image="old")))
        cluster, controller = make(owner, revision(owner, 2), older, member(owner, 0))
        await controller.reconcile(KEY)
        deletes = writes(cluster, "controllerrevisions", "delete")
        assert [a.name for a in deletes] == [older["metadata"]["name"]]
