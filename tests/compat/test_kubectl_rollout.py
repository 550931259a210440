"""The real kubectl's `rollout` family (status, history, undo, pause, resume, restart), `scale`,
`set image` and `annotate ... kubernetes.io/change-cause` against `kybern server
--simulated-nodes 3`: the controllers, the scheduler and simulated nodes run, so rollouts
really happen. Each test asserts on kubectl's output and on the objects it leaves behind."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import cluster
from tests.support import kubectl as kubectl_

pytestmark = pytest.mark.timeout(120)
Obj = dict[str, Any]
HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubectl_.Kubectl]:
    proc = cluster.start_server(
        tmp_path_factory.mktemp("kybern-rollout"), "--simulated-nodes", "3", api_only=False
    )
    try:
        kubectl = kubectl_.Kubectl(proc.kubeconfig)
        cluster.wait_until(
            lambda: kubectl("get", "nodes", "--no-headers").out.count(" Ready ") == 3,
            timeout=30,
            interval=0.1,
            what="3 Ready nodes",
        )
        yield kubectl
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()


@pytest.fixture
def k(sim: kubectl_.Kubectl) -> Kube:
    """kubectl in a fresh namespace of the module's server."""
    namespace = f"r-{uuid.uuid4().hex[:8]}"
    sim("create", "namespace", namespace)
    return Kube(sim, namespace)


class Kube:
    def __init__(self, kubectl: kubectl_.Kubectl, namespace: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace

    def __call__(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        result = self.kubectl("-n", self.namespace, *args, check=check, stdin=stdin)
        return result.out if check else result.out + result.err

    def fails(self, *args: str) -> str:
        result = self.kubectl("-n", self.namespace, *args, check=False)
        assert result.code != 0, result.out
        return result.err

    def get(self, *args: str) -> Obj:
        found: Obj = json.loads(self("get", *args, "-o", "json"))
        return found

    def items(self, *args: str) -> list[Obj]:
        return list(self.get(*args)["items"])

    def status(self, ref: str) -> str:
        return self("rollout", "status", ref, "--timeout=60s")

    def sets(self, app: str) -> dict[str, Obj]:
        """ReplicaSets of app by pod-template-hash."""
        return {rs["metadata"]["labels"][HASH]: rs for rs in self.items("rs", "-l", f"app={app}")}

    def live_pods(self, app: str) -> list[Obj]:
        """The app's pods that are not terminating."""
        pods = self.items("pods", "-l", f"app={app}")
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def images(self, app: str) -> list[str]:
        """Images of the app's pods that are not terminating, once they all agree."""

        def settled() -> list[str]:
            images = sorted(p["spec"]["containers"][0]["image"] for p in self.live_pods(app))
            return images if len(set(images)) == 1 else []

        return cluster.wait_until(settled, timeout=30, interval=0.1, what=f"{app} pods settled")


def history_rows(out: str) -> list[tuple[str, str]]:
    """`rollout history` table -> [(REVISION, CHANGE-CAUSE)]."""
    lines = [line for line in out.splitlines()[1:] if line.strip()]
    assert lines[0].split() == ["REVISION", "CHANGE-CAUSE"], out
    return [(line.split(None, 1)[0], line.split(None, 1)[1].strip()) for line in lines[1:]]


def conditions(obj: Obj) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj["status"].get("conditions", [])}


def make_web(k: Kube, replicas: int = 3, image: str = "nginx:1.0") -> None:
    out = k("create", "deployment", "web", f"--image={image}", f"--replicas={replicas}")
    assert out == "deployment.apps/web created\n"
    assert k.status("deployment/web").endswith('deployment "web" successfully rolled out\n')


class TestDeploymentRollout:
    def test_status_waits_for_the_rollout_and_the_controller_reports_it(self, k: Kube) -> None:
        make_web(k)
        deployment = k.get("deployment", "web")
        status = deployment["status"]
        assert status["observedGeneration"] == deployment["metadata"]["generation"]
        assert {f: status.get(f) for f in ("replicas", "updatedReplicas", "readyReplicas")} == {
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
        }
        assert status["availableReplicas"] == 3
        assert status.get("unavailableReplicas", 0) == 0
        assert conditions(deployment) == {
            "Available": ("True", "MinimumReplicasAvailable"),
            "Progressing": ("True", "NewReplicaSetAvailable"),
        }
        [rs] = k.sets("web").values()
        assert rs["metadata"]["name"] == f"web-{rs['metadata']['labels'][HASH]}"
        assert rs["metadata"]["annotations"][REVISION] == "1"
        assert deployment["metadata"]["annotations"][REVISION] == "1"
        message = f"Scaled up replica set {rs['metadata']['name']} from 0 to 3"
        cluster.wait_until(
            lambda: message in k("get", "events", "--field-selector", "involvedObject.name=web"),
            what="the ScalingReplicaSet event",
        )

    def test_set_image_rolls_out_and_history_shows_change_causes(self, k: Kube) -> None:
        make_web(k)
        k("annotate", "deployment/web", "kubernetes.io/change-cause=first")
        # the controller copies the cause onto the current ReplicaSet, where history reads it
        cluster.wait_until(
            lambda: history_rows(k("rollout", "history", "deployment/web")) == [("1", "first")],
            what="change-cause on revision 1",
        )
        assert k("set", "image", "deployment/web", "nginx=nginx:2.0") == (
            "deployment.apps/web image updated\n"
        )
        k("annotate", "deployment/web", "--overwrite", "kubernetes.io/change-cause=to 2.0")
        assert "successfully rolled out" in k.status("deployment/web")
        assert k.images("web") == ["nginx:2.0"] * 3
        cluster.wait_until(
            lambda: (
                history_rows(k("rollout", "history", "deployment/web"))
                == [("1", "first"), ("2", "to 2.0")]
            ),
            what="change-cause on revision 2",
        )
        one = k("rollout", "history", "deployment/web", "--revision=1")
        assert "deployment.apps/web with revision #1" in one
        assert "Image:\tnginx:1.0" in one
        assert f"{HASH}=" in one
        assert "unable to find the specified revision" in k.fails(
            "rollout", "history", "deployment/web", "--revision=7"
        )
        assert len(k.sets("web")) == 2

    def test_undo_reuses_the_old_replicaset_as_a_new_revision(self, k: Kube) -> None:
        make_web(k)
        [first_hash] = k.sets("web")
        k("set", "image", "deployment/web", "nginx=nginx:2.0")
        k.status("deployment/web")
        assert k("rollout", "undo", "deployment/web") == "deployment.apps/web rolled back\n"
        assert "successfully rolled out" in k.status("deployment/web")
        assert k.images("web") == ["nginx:1.0"] * 3
        sets = k.sets("web")
        assert len(sets) == 2  # no third set: the first one came back
        first = sets[first_hash]["metadata"]["annotations"]
        assert first[REVISION] == "3"
        assert first["deployment.kubernetes.io/revision-history"] == "1"
        assert sets[first_hash]["spec"]["replicas"] == 3
        deployment = k.get("deployment", "web")
        assert deployment["metadata"]["annotations"][REVISION] == "3"
        assert HASH not in deployment["spec"]["template"]["metadata"]["labels"]
        assert [r for r, _ in history_rows(k("rollout", "history", "deployment/web"))] == [
            "2",
            "3",
        ]

    def test_undo_to_revision(self, k: Kube) -> None:
        make_web(k, replicas=2)
        for image in ("nginx:2.0", "nginx:3.0"):
            k("set", "image", "deployment/web", f"nginx={image}")
            k.status("deployment/web")
        out = k("rollout", "undo", "deployment/web", "--to-revision=2")
        assert out == "deployment.apps/web rolled back\n"
        k.status("deployment/web")
        assert k.images("web") == ["nginx:2.0"] * 2
        assert "skipped rollback (current template already matches revision 4)" in k(
            "rollout", "undo", "deployment/web", "--to-revision=4"
        )
        assert "unable to find specified revision 9 in history" in k.fails(
            "rollout", "undo", "deployment/web", "--to-revision=9"
        )
        rows = history_rows(k("rollout", "history", "deployment/web"))
        assert [r for r, _ in rows] == ["1", "3", "4"]

    def test_pause_holds_the_rollout_and_resume_lets_it_go(self, k: Kube) -> None:
        make_web(k, replicas=2)
        assert k("rollout", "pause", "deployment/web") == "deployment.apps/web paused\n"
        cluster.wait_until(
            lambda: (
                conditions(k.get("deployment", "web"))["Progressing"]
                == ("Unknown", "DeploymentPaused")
            ),
            what="DeploymentPaused",
        )
        k("set", "image", "deployment/web", "nginx=nginx:2.0")
        k("set", "env", "deployment/web", "MODE=paused")
        err = k.fails("rollout", "status", "deployment/web", "--timeout=1s")
        assert "timed out waiting for the condition" in err
        assert len(k.sets("web")) == 1  # nothing rolled out while paused
        assert k.images("web") == ["nginx:1.0"] * 2
        assert "cannot rollback a paused deployment" in k.fails(
            "rollout", "undo", "deployment/web", "--to-revision=1"
        )
        assert k("rollout", "resume", "deployment/web") == "deployment.apps/web resumed\n"
        assert "successfully rolled out" in k.status("deployment/web")
        assert k.images("web") == ["nginx:2.0"] * 2
        assert len(k.sets("web")) == 2
        deployment = k.get("deployment", "web")
        assert conditions(deployment)["Progressing"] == ("True", "NewReplicaSetAvailable")
        assert "is not paused" in k.fails("rollout", "resume", "deployment/web")

    def test_paused_deployments_still_scale(self, k: Kube) -> None:
        make_web(k, replicas=2)
        k("rollout", "pause", "deployment/web")
        assert k("scale", "deployment/web", "--replicas=4") == "deployment.apps/web scaled\n"
        cluster.wait_until(
            lambda: k.get("deployment", "web")["status"].get("availableReplicas") == 4,
            timeout=30,
            what="4 available while paused",
        )
        [rs] = k.sets("web").values()
        assert rs["spec"]["replicas"] == 4

    def test_restart_rolls_out_a_new_template(self, k: Kube) -> None:
        make_web(k, replicas=2)
        [before] = k.sets("web")
        assert k("rollout", "restart", "deployment/web") == "deployment.apps/web restarted\n"
        assert "successfully rolled out" in k.status("deployment/web")
        template = k.get("deployment", "web")["spec"]["template"]
        assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
        sets = k.sets("web")
        assert len(sets) == 2
        after = next(h for h in sets if h != before)
        assert sets[after]["metadata"]["annotations"][REVISION] == "2"
        assert sets[before]["spec"]["replicas"] == 0
        pods = k.items("pods", "-l", f"app=web,{HASH}={after}")
        assert len(pods) == 2

    def test_scale_up_and_down(self, k: Kube) -> None:
        make_web(k, replicas=1)
        for count in (5, 2):
            out = k("scale", "deployment", "web", f"--replicas={count}")
            assert out == "deployment.apps/web scaled\n"
            k.status("deployment/web")
            cluster.wait_until(
                lambda count=count: len(k.live_pods("web")) == count,  # type: ignore[misc]
                timeout=30,
                what=f"{count} pods",
            )
            row = k("get", "deployment", "web", "--no-headers").split()
            assert row[1:4] == [f"{count}/{count}", str(count), str(count)]

    def test_a_stalled_rollout_exceeds_its_progress_deadline(self, k: Kube) -> None:
        make_web(k, replicas=1)
        k("patch", "deployment/web", "-p", '{"spec":{"progressDeadlineSeconds":1}}')
        # pods nobody can schedule: the rollout cannot progress
        k(
            "patch",
            "deployment/web",
            "-p",
            '{"spec":{"template":{"spec":{"nodeSelector":{"no":"such-node"}}}}}',
        )
        err = k.fails("rollout", "status", "deployment/web", "--timeout=60s")
        assert 'deployment "web" exceeded its progress deadline' in err
        deployment = k.get("deployment", "web")
        assert conditions(deployment)["Progressing"] == ("False", "ProgressDeadlineExceeded")
        phases = sorted(p["status"].get("phase") for p in k.items("pods", "-l", "app=web"))
        assert phases == ["Pending", "Running"]  # the old pod stays: 25% of 1 unavailable is 0

    def test_revision_history_limit_deletes_the_oldest_sets(self, k: Kube) -> None:
        make_web(k, replicas=1)
        k("patch", "deployment/web", "-p", '{"spec":{"revisionHistoryLimit":1}}')
        for image in ("nginx:2.0", "nginx:3.0", "nginx:4.0"):
            k("set", "image", "deployment/web", f"nginx={image}")
            k.status("deployment/web")
        cluster.wait_until(lambda: len(k.sets("web")) == 2, timeout=30, what="2 sets left")
        rows = history_rows(k("rollout", "history", "deployment/web"))
        assert [r for r, _ in rows] == ["3", "4"]


STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "db:1"}]}
"""

DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: "agent:1"}]}
"""


class TestControllerRevisionHistory:
    @pytest.mark.parametrize(
        ("manifest", "ref", "container", "app", "count", "done"),
        [
            (STATEFULSET, "statefulset/db", "db", "db", 2, "partitioned roll out complete"),
            (DAEMONSET, "daemonset/agent", "agent", "agent", 3, "successfully rolled out"),
        ],
    )
    def test_status_history_and_undo(
        self, k: Kube, manifest: str, ref: str, container: str, app: str, count: int, done: str
    ) -> None:
        k("apply", "-f", "-", stdin=manifest)
        assert done in k.status(ref)
        k("annotate", ref, "kubernetes.io/change-cause=second")
        k("set", "image", ref, f"{container}={app}:2")
        assert done in k.status(ref)
        assert k.images(app) == [f"{app}:2"] * count
        rows = history_rows(k("rollout", "history", ref))
        assert rows == [("1", "<none>"), ("2", "second")]
        one = k("rollout", "history", ref, "--revision=1")
        assert f"Image:\t{app}:1" in one
        kind = ref.split("/")[0]
        assert k("rollout", "undo", ref) == f"{kind}.apps/{ref.split('/')[1]} rolled back\n"
        assert done in k.status(ref)
        assert k.images(app) == [f"{app}:1"] * count
        assert [r for r, _ in history_rows(k("rollout", "history", ref))] == ["2", "3"]
        revisions = k.items("controllerrevisions", "-l", f"app={app}")
        assert sorted(r["revision"] for r in revisions) == [2, 3]
        assert "skipped rollback" in k("rollout", "undo", ref, "--to-revision=3")
        assert "unable to find specified revision 8 in history" in k.fails(
            "rollout", "undo", ref, "--to-revision=8"
        )
        out = k("rollout", "undo", ref, "--to-revision=2")
        assert "rolled back" in out
        assert done in k.status(ref)
        assert k.images(app) == [f"{app}:2"] * count
        assert k("rollout", "restart", ref) == f"{kind}.apps/{ref.split('/')[1]} restarted\n"
        assert done in k.status(ref)
        assert [r for r, _ in history_rows(k("rollout", "history", ref))] == ["3", "4", "5"]

        def restarted() -> bool:
            stamps = [
                (p["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/restartedAt")
                for p in k.live_pods(app)
            ]
            return len(stamps) == count and all(stamps)

        cluster.wait_until(restarted, timeout=30, interval=0.1, what="restarted pods")
