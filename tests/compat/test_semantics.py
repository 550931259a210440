"""Object semantics through the official client: optimistic concurrency, dryRun, generateName,
finalizers and deletion options, deletecollection, the status / scale / binding subresources
and the lifecycle rules of namespaces."""

from __future__ import annotations

import concurrent.futures

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from tests.compat.helpers import MERGE, Obj, api_error, status_of
from tests.support import cluster

pytestmark = pytest.mark.compat
DRY = "All"


def _configmap(name: str, **meta: object) -> Obj:
    return {"metadata": {"name": name, **meta}, "data": {"k": "v"}}


def _deployment(name: str, replicas: int = 1) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def _global_rv(core: kubernetes.client.CoreV1Api) -> int:
    return int(core.list_namespace().metadata.resource_version)


def test_stale_resource_version_is_a_conflict(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_config_map(ns, _configmap("cas"))
    created.data = {"k": "v2"}
    updated = core.replace_namespaced_config_map("cas", ns, created)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)

    created.data = {"k": "lost"}  # still carries the first resourceVersion
    exc = api_error(core.replace_namespaced_config_map, "cas", ns, created)
    body = status_of(exc)
    assert (exc.status, body["reason"], body["kind"]) == (409, "Conflict", "Status")
    assert "the object has been modified" in body["message"]
    assert body["details"] == {"name": "cas", "kind": "configmaps"}

    stale_patch = {"metadata": {"resourceVersion": created.metadata.resource_version}}
    exc = api_error(core.patch_namespaced_config_map, "cas", ns, stale_patch, _content_type=MERGE)
    assert exc.status == 409
    assert core.read_namespaced_config_map("cas", ns).data == {"k": "v2"}


def test_dry_run_leaves_nothing_behind(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    before = _global_rv(core)
    dry = core.create_namespaced_config_map(ns, _configmap("dry"), dry_run=DRY)
    assert dry.metadata.name == "dry"
    assert dry.metadata.uid  # a dry run answers what would have been stored
    assert api_error(core.read_namespaced_config_map, "dry", ns).status == 404
    assert _global_rv(core) == before

    real = core.create_namespaced_config_map(ns, _configmap("dry"))
    after_create = _global_rv(core)
    real.data = {"k": "dry-update"}
    answered = core.replace_namespaced_config_map("dry", ns, real, dry_run=DRY)
    assert answered.data == {"k": "dry-update"}
    patched = core.patch_namespaced_config_map(
        "dry", ns, {"data": {"k": "dry-patch"}}, dry_run=DRY, _content_type=MERGE
    )
    assert patched.data == {"k": "dry-patch"}
    core.delete_namespaced_config_map("dry", ns, dry_run=DRY)
    core.delete_collection_namespaced_config_map(ns, dry_run=DRY)

    stored = core.read_namespaced_config_map("dry", ns)
    assert stored.data == {"k": "v"}
    assert stored.metadata.resource_version == real.metadata.resource_version
    assert _global_rv(core) == after_create


def test_generate_name(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    first = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "gen-"}})
    second = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "gen-"}})
    for made in (first, second):
        assert made.metadata.name.startswith("gen-")
        assert len(made.metadata.name) == len("gen-") + 5
        assert made.metadata.generate_name == "gen-"
    assert first.metadata.name != second.metadata.name
    names = {c.metadata.name for c in core.list_namespaced_config_map(ns).items}
    assert {first.metadata.name, second.metadata.name} <= names


def test_finalizers_hold_an_object_until_removed(
    core: kubernetes.client.CoreV1Api, ns: str
) -> None:
    core.create_namespaced_config_map(ns, _configmap("held", finalizers=["example.com/hold"]))
    core.delete_namespaced_config_map("held", ns)
    held = core.read_namespaced_config_map("held", ns)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.deletion_grace_period_seconds == 0
    assert held.metadata.finalizers == ["example.com/hold"]
    core.delete_namespaced_config_map("held", ns)  # deleting again changes nothing
    assert core.read_namespaced_config_map("held", ns).metadata.finalizers == ["example.com/hold"]

    core.patch_namespaced_config_map(
        "held", ns, {"metadata": {"finalizers": None}}, _content_type=MERGE
    )
    assert api_error(core.read_namespaced_config_map, "held", ns).status == 404


@pytest.mark.parametrize(
    ("policy", "finalizer"), [("Orphan", "orphan"), ("Foreground", "foregroundDeletion")]
)
def test_propagation_policy_adds_its_finalizer(
    api_client: kubernetes.client.ApiClient, ns: str, policy: str, finalizer: str
) -> None:
    apps = kubernetes.client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(ns, _deployment("prop"))
    apps.delete_namespaced_deployment("prop", ns, propagation_policy=policy)
    marked = apps.read_namespaced_deployment("prop", ns)
    assert marked.metadata.finalizers == [finalizer]
    assert marked.metadata.deletion_timestamp is not None

    ops = [{"op": "remove", "path": "/metadata/finalizers"}]
    apps.patch_namespaced_deployment("prop", ns, ops, _content_type="application/json-patch+json")
    assert api_error(apps.read_namespaced_deployment, "prop", ns).status == 404


def test_background_propagation_deletes_at_once(
    api_client: kubernetes.client.ApiClient, ns: str
) -> None:
    apps = kubernetes.client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(ns, _deployment("bg"))
    apps.delete_namespaced_deployment("bg", ns, propagation_policy="Background")
    assert api_error(apps.read_namespaced_deployment, "bg", ns).status == 404


def test_delete_preconditions(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    made = core.create_namespaced_config_map(ns, _configmap("pre"))
    wrong_uid = kubernetes.client.V1DeleteOptions(
        preconditions=kubernetes.client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000")
    )
    exc = api_error(core.delete_namespaced_config_map, "pre", ns, body=wrong_uid)
    assert (exc.status, status_of(exc)["reason"]) == (409, "Conflict")
    assert "Precondition failed: UID in precondition" in status_of(exc)["message"]

    wrong_rv = kubernetes.client.V1DeleteOptions(
        preconditions=kubernetes.client.V1Preconditions(resource_version="1")
    )
    exc = api_error(core.delete_namespaced_config_map, "pre", ns, body=wrong_rv)
    assert (exc.status, status_of(exc)["reason"]) == (409, "Conflict")
    assert core.read_namespaced_config_map("pre", ns).metadata.uid == made.metadata.uid

    right = kubernetes.client.V1DeleteOptions(
        preconditions=kubernetes.client.V1Preconditions(
            uid=made.metadata.uid, resource_version=made.metadata.resource_version
        )
    )
    core.delete_namespaced_config_map("pre", ns, body=right)
    assert api_error(core.read_namespaced_config_map, "pre", ns).status == 404


def test_deletecollection_with_label_selector(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    for i in range(4):
        core.create_namespaced_config_map(ns, _configmap(f"c{i}", labels={"doomed": str(i % 2)}))
    core.delete_collection_namespaced_config_map(ns, label_selector="doomed=1")
    left = sorted(c.metadata.name for c in core.list_namespaced_config_map(ns).items)
    assert left == ["c0", "c2"]
    core.delete_collection_namespaced_config_map(ns)
    assert core.list_namespaced_config_map(ns).items == []


def test_status_and_spec_are_written_separately(
    api_client: kubernetes.client.ApiClient, ns: str
) -> None:
    apps = kubernetes.client.AppsV1Api(api_client)
    made = apps.create_namespaced_deployment(ns, _deployment("st", replicas=1))
    assert made.metadata.generation == 1

    # /status: status changes, spec and generation do not
    made.status = kubernetes.client.V1DeploymentStatus(replicas=1, observed_generation=1)
    made.spec.replicas = 7
    written = apps.replace_namespaced_deployment_status("st", ns, made)
    assert (written.status.replicas, written.status.observed_generation) == (1, 1)
    assert written.spec.replicas == 1
    assert written.metadata.generation == 1

    # the main resource: spec changes and bumps generation, status does not change
    written.spec.replicas = 2
    written.status.replicas = 99
    updated = apps.replace_namespaced_deployment("st", ns, written)
    assert updated.spec.replicas == 2
    assert updated.status.replicas == 1
    assert updated.metadata.generation == 2

    # metadata-only changes keep the generation
    relabelled = apps.patch_namespaced_deployment(
        "st", ns, {"metadata": {"labels": {"x": "y"}}}, _content_type=MERGE
    )
    assert relabelled.metadata.generation == 2

    # a merge patch of /status
    patched = apps.patch_namespaced_deployment_status(
        "st", ns, {"status": {"readyReplicas": 1}, "spec": {"replicas": 5}}, _content_type=MERGE
    )
    assert patched.status.ready_replicas == 1
    assert patched.spec.replicas == 2
    assert patched.metadata.generation == 2


SCALABLE = {
    "deployment": ("AppsV1Api", "deployment"),
    "replicaset": ("AppsV1Api", "replica_set"),
    "statefulset": ("AppsV1Api", "stateful_set"),
    "replicationcontroller": ("CoreV1Api", "replication_controller"),
}


@pytest.mark.parametrize("kind", sorted(SCALABLE))
def test_scale_subresource(api_client: kubernetes.client.ApiClient, ns: str, kind: str) -> None:
    api_name, snake = SCALABLE[kind]
    api = getattr(kubernetes.client, api_name)(api_client)
    body = _deployment("sc", replicas=2)
    if kind == "replicationcontroller":
        body["spec"]["selector"] = {"app": "sc"}
    if kind == "statefulset":
        body["spec"]["serviceName"] = "sc"
    getattr(api, f"create_namespaced_{snake}")(ns, body)

    scale = getattr(api, f"read_namespaced_{snake}_scale")("sc", ns)
    assert isinstance(scale, kubernetes.client.V1Scale)
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=sc"
    assert scale.metadata.name == "sc"

    scale.spec.replicas = 4
    replaced = getattr(api, f"replace_namespaced_{snake}_scale")("sc", ns, scale)
    assert replaced.spec.replicas == 4
    assert getattr(api, f"read_namespaced_{snake}")("sc", ns).spec.replicas == 4

    stale = api_error(getattr(api, f"replace_namespaced_{snake}_scale"), "sc", ns, scale)
    assert stale.status == 409

    patched = getattr(api, f"patch_namespaced_{snake}_scale")(
        "sc", ns, {"spec": {"replicas": 0}}, _content_type=MERGE
    )
    assert patched.spec.replicas == 0
    obj = getattr(api, f"read_namespaced_{snake}")("sc", ns)
    assert obj.spec.replicas == 0
    assert obj.metadata.generation == 3


def _pod(name: str, node: str | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


def test_pod_binding(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, _pod("bind-me"))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "bind-me"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
    }
    # Kubernetes answers a Status here, which the client cannot decode as a V1Binding.
    reply = core.create_namespaced_pod_binding("bind-me", ns, binding, _preload_content=False)
    assert reply.status == 201
    pod = core.read_namespaced_pod("bind-me", ns)
    assert pod.spec.node_name == "node-1"
    scheduled = [c for c in pod.status.conditions if c.type == "PodScheduled"]
    assert [c.status for c in scheduled] == ["True"]

    exc = api_error(core.create_namespaced_pod_binding, "bind-me", ns, binding)
    assert (exc.status, status_of(exc)["reason"]) == (409, "Conflict")
    core.delete_namespaced_pod("bind-me", ns, grace_period_seconds=0)


def test_bound_pod_is_deleted_gracefully(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, _pod("bound", node="node-1"))
    core.delete_namespaced_pod("bound", ns)
    terminating = core.read_namespaced_pod("bound", ns)
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.deletion_grace_period_seconds == 30

    core.delete_namespaced_pod("bound", ns, grace_period_seconds=0)  # what a kubelet does
    assert api_error(core.read_namespaced_pod, "bound", ns).status == 404


def test_unbound_pod_is_deleted_at_once(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, _pod("unbound"))
    gone = core.delete_namespaced_pod("unbound", ns)
    assert isinstance(gone, kubernetes.client.V1Pod)
    assert gone.metadata.name == "unbound"
    assert api_error(core.read_namespaced_pod, "unbound", ns).status == 404


def test_system_namespaces_exist(core: kubernetes.client.CoreV1Api) -> None:
    names = {n.metadata.name: n for n in core.list_namespace().items}
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert names[name].status.phase == "Active"
        assert names[name].metadata.labels["kubernetes.io/metadata.name"] == name


def test_create_in_missing_namespace_is_not_found(core: kubernetes.client.CoreV1Api) -> None:
    exc = api_error(core.create_namespaced_config_map, "no-such-ns", _configmap("x"))
    body = status_of(exc)
    assert (exc.status, body["reason"]) == (404, "NotFound")
    assert body["details"]["kind"] == "namespaces"
    assert body["details"]["name"] == "no-such-ns"


def test_create_in_terminating_namespace_is_forbidden(
    core: kubernetes.client.CoreV1Api, ns: str
) -> None:
    core.delete_namespace(ns)
    assert core.read_namespace(ns).status.phase == "Terminating"
    exc = api_error(core.create_namespaced_config_map, ns, _configmap("late"))
    body = status_of(exc)
    assert (exc.status, body["reason"]) == (403, "Forbidden")
    assert "because it is being terminated" in body["message"]
    assert core.list_namespaced_config_map(ns).items == []

    # what the namespace controller does once the namespace is empty
    finalize = {"metadata": {"name": ns}, "spec": {"finalizers": []}}
    core.replace_namespace_finalize(ns, finalize)
    assert api_error(core.read_namespace, ns).status == 404


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_system_namespaces_cannot_be_deleted(core: kubernetes.client.CoreV1Api, name: str) -> None:
    exc = api_error(core.delete_namespace, name)
    assert (exc.status, status_of(exc)["reason"]) == (403, "Forbidden")
    assert core.read_namespace(name).metadata.deletion_timestamp is None


def test_strategic_merge_and_apply_patches(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, _configmap("smp"))
    patched = core.patch_namespaced_config_map(
        "smp", ns, {"data": {"k2": "x"}}, _content_type="application/strategic-merge-patch+json"
    )
    assert patched.data == {"k": "v", "k2": "x"}
    applied = core.patch_namespaced_config_map(
        "smp",
        ns,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "smp"}, "data": {"k": "y"}},
        _content_type="application/apply-patch+yaml",
        field_manager="test",
        force=True,
    )
    assert applied.data == {"k": "y", "k2": "x"}
    managers = {(e.manager, e.operation) for e in applied.metadata.managed_fields}
    assert ("test", "Apply") in managers


def test_concurrent_patches_all_apply(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    """Patches carry no resourceVersion: the server retries them on conflicting writes
    (GuaranteedUpdate), so none is lost and none fails."""
    core.create_namespaced_config_map(ns, _configmap("shared"))

    def patch(worker: int) -> None:
        for i in range(10):
            body = {"data": {f"w{worker}-{i}": "x"}}
            core.patch_namespaced_config_map("shared", ns, body, _content_type=MERGE)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(patch, range(8)))
    data = core.read_namespaced_config_map("shared", ns).data
    assert len(data) == 1 + 8 * 10


def test_concurrent_updates_from_one_version_one_wins(
    core: kubernetes.client.CoreV1Api, ns: str
) -> None:
    made = core.create_namespaced_config_map(ns, _configmap("race"))

    def update(worker: int) -> int:
        body = {
            "metadata": {"name": "race", "resourceVersion": made.metadata.resource_version},
            "data": {"k": str(worker)},
        }
        try:
            core.replace_namespaced_config_map("race", ns, body)
        except ApiException as exc:
            return int(exc.status)
        return 200

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(update, range(8)))
    assert codes == [200] + [409] * 7
    winner = core.read_namespaced_config_map("race", ns)
    assert int(winner.metadata.resource_version) > int(made.metadata.resource_version)


def test_unknown_fields_are_dropped(raw: cluster.RawClient, ns: str) -> None:
    body = {"metadata": {"name": "unk", "bogus": 2}, "data": {"a": "b"}, "bogus": 1}
    made = raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body)
    assert made.status == 201
    stored = raw.get(f"/api/v1/namespaces/{ns}/configmaps/unk").json
    assert "bogus" not in stored
    assert "bogus" not in stored["metadata"]
    assert stored["data"] == {"a": "b"}
