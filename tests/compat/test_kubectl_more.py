"""The real kubectl: cluster-info, api-resources, field selectors, describe, the ways of
deleting (name, file, label, --all, --wait, --force, --cascade), kubeconfig contexts, wait and
apply -k.

Most tests use the session's API-only server; the ones that need controllers (cascading
deletion, a Deployment becoming Available, a pod Running) use a module-scoped full control
plane with two simulated nodes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import cluster
from tests.support import kubectl as kubectl_

pytestmark = pytest.mark.timeout(120)

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubectl_.Kubectl]:
    """kubectl against a server with the scheduler, controllers and two simulated nodes."""
    proc = cluster.start_server(
        tmp_path_factory.mktemp("kybern-full"), "--simulated-nodes", "2", api_only=False
    )
    try:
        yield kubectl_.Kubectl(proc.kubeconfig)
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()


def fresh_namespace(kubectl: kubectl_.Kubectl) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    return name


def get_json(kubectl: kubectl_.Kubectl, ns: str, *what: str) -> Obj:
    return json.loads(kubectl("-n", ns, "get", *what, "-o", "json").out)  # type: ignore[no-any-return]


def names(kubectl: kubectl_.Kubectl, ns: str, *what: str) -> list[str]:
    return sorted(kubectl("-n", ns, "get", *what, "-o", "name").out.split())


def pod(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def event(ns: str, name: str, involved: Obj, reason: str, message: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": "Warning",
        "source": {"component": "kybern-test"},
        "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
    }


def background(kubectl: kubectl_.Kubectl, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [kubectl_.binary(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubectl.kubeconfig)},
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def configmap_with_finalizer(kubectl: kubectl_.Kubectl, ns: str, name: str) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "finalizers": ["kybern.io/test-hold"]},
    }
    kubectl("-n", ns, "create", "-f", "-", stdin=json.dumps(manifest))


def release(kubectl: kubectl_.Kubectl, ns: str, name: str) -> None:
    patch = json.dumps({"metadata": {"finalizers": None}})
    kubectl("-n", ns, "patch", "configmap", name, "--type=merge", "-p", patch)


def terminating(kubectl: kubectl_.Kubectl, ns: str, *what: str) -> bool:
    got = kubectl("-n", ns, "get", *what, "-o", "json", check=False)
    return got.code == 0 and "deletionTimestamp" in json.loads(got.out)["metadata"]


# --- discovery -------------------------------------------------------------------------------


def test_cluster_info_names_the_control_plane(kubectl: kubectl_.Kubectl) -> None:
    out = kubectl("cluster-info").out
    port = cluster.server_url(kubectl.kubeconfig).rsplit(":", 1)[1]
    assert f"Kubernetes control plane is running at https://127.0.0.1:{port}" in out
    assert re.search(r"https://127\.0\.0\.1:\d+\b", out)


def _table(out: str) -> dict[str, list[str]]:
    rows = out.splitlines()
    return {line.split()[0]: line.split() for line in rows[1:] if line.strip()}


def test_api_resources_short_names_scope_and_verbs(kubectl: kubectl_.Kubectl) -> None:
    out = kubectl("api-resources").out
    assert out.splitlines()[0].split() == [
        "NAME",
        "SHORTNAMES",
        "APIVERSION",
        "NAMESPACED",
        "KIND",
    ]
    rows = _table(out)
    assert rows["pods"][1:] == ["po", "v1", "true", "Pod"]
    assert rows["services"][1:] == ["svc", "v1", "true", "Service"]
    assert rows["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert rows["namespaces"][1:] == ["ns", "v1", "false", "Namespace"]

    cluster_scoped = _table(kubectl("api-resources", "--namespaced=false").out)
    assert {"namespaces", "nodes", "clusterroles", "persistentvolumes"} <= set(cluster_scoped)
    assert "pods" not in cluster_scoped
    assert "deployments" not in cluster_scoped
    assert all(row[-2] == "false" for row in cluster_scoped.values() if len(row) >= 4)

    wide = kubectl("api-resources", "-o", "wide").out
    assert "VERBS" in wide.splitlines()[0]
    verbs = {line.split()[0]: line for line in wide.splitlines()[1:]}
    assert "create,delete,deletecollection,get,list,patch,update,watch" in verbs["pods"]
    assert verbs["pods"].split()[-1] == "all"  # the CATEGORIES column
    assert verbs["selfsubjectaccessreviews"].split()[-1] == "create"
    assert verbs["namespaces"].split()[-1] == "create,delete,get,list,patch,update,watch"
    names_only = kubectl("api-resources", "-o", "name").out.split()
    assert "pods" in names_only
    assert "deployments.apps" in names_only


# --- get --field-selector --------------------------------------------------------------------


def test_get_field_selector_on_name_and_phase(
    kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str
) -> None:
    for name in ("one", "two"):
        kubectl("-n", ns, "create", "-f", "-", stdin=json.dumps(pod(name)))
    reply = raw.request(
        "PATCH",
        f"/api/v1/namespaces/{ns}/pods/one/status",
        {"status": {"phase": "Running"}},
        content_type="application/merge-patch+json",
    )
    assert reply.status == 200, reply.body

    def selected(selector: str) -> list[str]:
        return names(kubectl, ns, "pods", "--field-selector", selector)

    assert selected("metadata.name=one") == ["pod/one"]
    assert selected("metadata.name!=one") == ["pod/two"]
    assert selected("status.phase=Running") == ["pod/one"]
    assert selected("status.phase=Pending") == ["pod/two"]
    assert selected("status.phase!=Running,metadata.name=two") == ["pod/two"]
    empty = kubectl("-n", ns, "get", "pods", "--field-selector", "status.phase=Failed")
    assert f"No resources found in {ns} namespace." in empty.err
    bad = kubectl("-n", ns, "get", "pods", "--field-selector", "spec.bogus=x", check=False)
    assert bad.code == 1
    assert "BadRequest" in bad.err
    assert "field label not supported" in bad.err


# --- describe --------------------------------------------------------------------------------


def test_describe_pod_shows_fields_and_its_events(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "-f", "-", stdin=json.dumps(pod("web")))
    uid = get_json(kubectl, ns, "pod", "web")["metadata"]["uid"]
    involved = {"kind": "Pod", "namespace": ns, "name": "web", "uid": uid, "apiVersion": "v1"}
    ev = event(ns, "web.1", involved, "BackOff", "Back-off pulling image busybox")
    kubectl("-n", ns, "create", "-f", "-", stdin=json.dumps(ev))
    out = kubectl("-n", ns, "describe", "pod", "web").out
    assert re.search(r"^Name:\s+web$", out, re.M)
    assert re.search(rf"^Namespace:\s+{ns}$", out, re.M)
    assert re.search(r"^Labels:\s+app=web$", out, re.M)
    assert re.search(r"^Status:\s+Pending$", out, re.M)
    assert re.search(r"^\s+Image:\s+busybox$", out, re.M)
    events = out.split("\nEvents:", 1)[1]
    assert re.search(r"Warning\s+BackOff\s+.*kybern-test\s+Back-off pulling image busybox", events)


def test_describe_service_shows_ports_selector_and_events(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    kubectl("-n", ns, "create", "service", "clusterip", "api", "--tcp=80:8080")
    uid = get_json(kubectl, ns, "service", "api")["metadata"]["uid"]
    involved = {"kind": "Service", "namespace": ns, "name": "api", "uid": uid, "apiVersion": "v1"}
    kubectl(
        "-n",
        ns,
        "create",
        "-f",
        "-",
        stdin=json.dumps(event(ns, "api.1", involved, "Sync", "synced")),
    )
    out = kubectl("-n", ns, "describe", "service", "api").out
    assert re.search(r"^Name:\s+api$", out, re.M)
    assert re.search(r"^Selector:\s+app=api$", out, re.M)
    assert re.search(r"^Type:\s+ClusterIP$", out, re.M)
    assert re.search(r"^Port:\s+80-8080\s+80/TCP$", out, re.M)
    assert re.search(r"^TargetPort:\s+8080/TCP$", out, re.M)
    assert re.search(r"Warning\s+Sync\s+.*kybern-test\s+synced", out.split("\nEvents:", 1)[1])


def test_describe_node_shows_fields_and_events(kubectl: kubectl_.Kubectl, ns: str) -> None:
    name = f"node-{ns}"
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": "10.9.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
    }
    kubectl("create", "-f", "-", stdin=json.dumps(node))
    try:
        uid = json.loads(kubectl("get", "node", name, "-o", "json").out)["metadata"]["uid"]
        # Node events live in the default namespace, with the node's name as involvedObject.
        involved = {"kind": "Node", "name": name, "uid": uid, "apiVersion": "v1"}
        ev = event("default", f"{name}.1", involved, "Rebooted", "node rebooted")
        kubectl("-n", "default", "create", "-f", "-", stdin=json.dumps(ev))
        out = kubectl("describe", "node", name).out
        assert re.search(rf"^Name:\s+{name}$", out, re.M)
        assert re.search(rf"kubernetes.io/hostname={name}", out)
        assert re.search(r"^Taints:\s+k:NoSchedule$", out, re.M)
        assert re.search(r"^PodCIDR:\s+10.9.0.0/24$", out, re.M)
        assert re.search(r"Warning\s+Rebooted\s+.*node rebooted", out.split("\nEvents:", 1)[1])
    finally:
        kubectl("delete", "node", name, "--wait=false")
        kubectl("-n", "default", "delete", "event", f"{name}.1", "--wait=false")


def test_describe_deployment_with_its_replicaset_and_events(full: kubectl_.Kubectl) -> None:
    ns = fresh_namespace(full)
    full("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=2")
    full("-n", ns, "wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
    uid = get_json(full, ns, "deployment", "web")["metadata"]["uid"]
    involved = {"kind": "Deployment", "namespace": ns, "name": "web", "uid": uid}
    involved["apiVersion"] = "apps/v1"
    ev = event(ns, "web.custom", involved, "Audited", "looked at by a test")
    full("-n", ns, "create", "-f", "-", stdin=json.dumps(ev))
    out = full("-n", ns, "describe", "deployment", "web").out
    assert re.search(r"^Selector:\s+app=web$", out, re.M)
    assert re.search(
        r"^Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$",
        out,
        re.M,
    )
    assert re.search(r"^StrategyType:\s+RollingUpdate$", out, re.M)
    assert re.search(r"^\s+Available\s+True\s+MinimumReplicasAvailable$", out, re.M)
    assert re.search(r"^NewReplicaSet:\s+web-\S+ \(2/2 replicas created\)$", out, re.M)
    events = out.split("\nEvents:", 1)[1]
    assert re.search(r"Normal\s+ScalingReplicaSet\s+.*Scaled up replica set web-\S+ .*to 2", events)
    assert re.search(r"Warning\s+Audited\s+.*looked at by a test", events)


# --- delete ----------------------------------------------------------------------------------


def test_delete_by_name_file_label_and_all(
    kubectl: kubectl_.Kubectl, ns: str, tmp_path: Path
) -> None:
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db"), ("d", "db"), ("e", "db")):
        kubectl("-n", ns, "create", "configmap", name, "--from-literal=k=v")
        kubectl("-n", ns, "label", "configmap", name, f"tier={tier}")
    assert kubectl("-n", ns, "delete", "configmap", "a").out.strip() == 'configmap "a" deleted'
    manifest = tmp_path / "b.yaml"
    manifest.write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}})
    )
    out = kubectl("-n", ns, "delete", "-f", str(manifest)).out
    assert out.strip() == 'configmap "b" deleted'
    assert names(kubectl, ns, "configmaps", "-l", "tier") == [
        "configmap/c",
        "configmap/d",
        "configmap/e",
    ]
    out = kubectl("-n", ns, "delete", "configmap", "-l", "tier=db,app notin (x)").out
    assert sorted(out.strip().splitlines()) == [
        'configmap "c" deleted',
        'configmap "d" deleted',
        'configmap "e" deleted',
    ]
    kubectl("-n", ns, "create", "configmap", "f")
    kubectl("-n", ns, "create", "configmap", "g")
    out = kubectl("-n", ns, "delete", "configmaps", "--all").out
    assert 'configmap "f" deleted' in out
    assert 'configmap "g" deleted' in out
    remaining = [n for n in names(kubectl, ns, "configmaps") if n != "configmap/kube-root-ca.crt"]
    assert remaining == []
    missing = kubectl("-n", ns, "delete", "configmap", "a", check=False)
    assert missing.code == 1
    assert 'Error from server (NotFound): configmaps "a" not found' in missing.err
    assert kubectl("-n", ns, "delete", "configmap", "a", "--ignore-not-found").out == ""


def test_delete_waits_for_finalizers_by_default(kubectl: kubectl_.Kubectl, ns: str) -> None:
    configmap_with_finalizer(kubectl, ns, "held")
    proc = background(kubectl, "-n", ns, "delete", "configmap", "held")
    try:
        cluster.wait_until(
            lambda: terminating(kubectl, ns, "configmap", "held"), what="deletionTimestamp set"
        )
        assert proc.poll() is None, "kubectl delete returned before the object was gone"
        release(kubectl, ns, "held")
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 0, err
    assert out.strip() == 'configmap "held" deleted'
    assert kubectl("-n", ns, "get", "configmap", "held", check=False).code == 1

    configmap_with_finalizer(kubectl, ns, "quick")
    out = kubectl("-n", ns, "delete", "configmap", "quick", "--wait=false").out
    assert out.strip() == 'configmap "quick" deleted'
    assert terminating(kubectl, ns, "configmap", "quick")
    release(kubectl, ns, "quick")


def test_force_delete_of_a_bound_pod_is_immediate(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "-f", "-", stdin=json.dumps(pod("bound", nodeName="nowhere")))
    # Bound to a node, a pod deletes gracefully: it is only marked until its kubelet confirms.
    kubectl("-n", ns, "delete", "pod", "bound", "--wait=false")
    marked = get_json(kubectl, ns, "pod", "bound")
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert "deletionTimestamp" in marked["metadata"]
    forced = kubectl("-n", ns, "delete", "pod", "bound", "--grace-period=0", "--force")
    assert forced.out.strip() == 'pod "bound" force deleted'
    assert "Immediate deletion does not wait for confirmation" in forced.err
    missing = kubectl("-n", ns, "get", "pod", "bound", check=False)
    assert 'pods "bound" not found' in missing.err


def test_cascade_orphan_keeps_the_dependents(full: kubectl_.Kubectl) -> None:
    ns = fresh_namespace(full)
    full("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=2")
    full("-n", ns, "wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
    replicasets = names(full, ns, "replicasets")
    pods = names(full, ns, "pods")
    assert len(replicasets) == 1
    assert len(pods) == 2
    out = full("-n", ns, "delete", "deployment", "web", "--cascade=orphan").out
    assert out.strip() == 'deployment.apps "web" deleted'
    assert names(full, ns, "deployments") == []
    assert names(full, ns, "replicasets") == replicasets
    assert names(full, ns, "pods") == pods
    # The orphans lose their ownerReference to the deleted Deployment.
    cluster.wait_until(
        lambda: not get_json(full, ns, replicasets[0])["metadata"].get("ownerReferences"),
        timeout=20,
        what="ownerReferences cleared",
    )


def test_cascade_foreground_deletes_dependents_first(full: kubectl_.Kubectl) -> None:
    ns = fresh_namespace(full)
    full("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=2")
    full("-n", ns, "wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
    assert len(names(full, ns, "replicasets")) == 1
    out = full("-n", ns, "delete", "deployment", "web", "--cascade=foreground").out
    assert out.strip() == 'deployment.apps "web" deleted'
    # kubectl waited for the Deployment to go, which foreground deletion allows only after its
    # dependents (the ReplicaSet, and the ReplicaSet's pods before it) are gone.
    assert names(full, ns, "deployments") == []
    assert names(full, ns, "replicasets") == []
    cluster.wait_until(
        lambda: names(full, ns, "pods") == [], timeout=30, interval=0.2, what="pods gone"
    )


def test_cascade_background_is_the_default(full: kubectl_.Kubectl) -> None:
    ns = fresh_namespace(full)
    full("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=1")
    full("-n", ns, "wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
    full("-n", ns, "delete", "deployment", "web")
    cluster.wait_until(
        lambda: names(full, ns, "replicasets,pods") == [],
        timeout=30,
        interval=0.2,
        what="ReplicaSet and pods collected",
    )


# --- kubectl config --------------------------------------------------------------------------


def test_config_set_context_use_context_and_view(
    kubectl: kubectl_.Kubectl, ns: str, tmp_path: Path
) -> None:
    copy = tmp_path / "kubeconfig"
    copy.write_bytes(kubectl.kubeconfig.read_bytes())
    mine = kubectl_.Kubectl(copy)
    original = mine("config", "current-context").out.strip()
    cluster_name = mine("config", "view", "-o", "jsonpath={.clusters[0].name}").out
    user = mine("config", "view", "-o", "jsonpath={.users[0].name}").out
    out = mine(
        "config",
        "set-context",
        "dev",
        f"--cluster={cluster_name}",
        f"--user={user}",
        f"--namespace={ns}",
    ).out
    assert out.strip() == 'Context "dev" created.'
    assert mine("config", "use-context", "dev").out.strip() == 'Switched to context "dev".'
    assert mine("config", "current-context").out.strip() == "dev"
    view = yaml.safe_load(mine("config", "view", "--minify").out)
    assert view["current-context"] == "dev"
    assert view["contexts"] == [
        {"name": "dev", "context": {"cluster": cluster_name, "user": user, "namespace": ns}}
    ]
    assert view["users"][0]["user"]["client-key-data"] in ("DATA+OMITTED", "REDACTED")
    # The context's namespace is where namespaced commands go without -n.
    mine("create", "configmap", "from-context", "--from-literal=a=1")
    assert names(kubectl, ns, "configmap", "from-context") == ["configmap/from-context"]
    mine("config", "set-context", "--current", "--namespace=default")
    assert mine("config", "view", "--minify", "-o", "jsonpath={..namespace}").out == "default"
    mine("config", "use-context", original)
    contexts = mine("config", "get-contexts", "-o", "name").out.split()
    assert sorted(contexts) == sorted([original, "dev"])
    # The session's own kubeconfig is untouched.
    assert kubectl("config", "current-context").out.strip() == original


# --- wait ------------------------------------------------------------------------------------


def test_wait_for_deployment_available(full: kubectl_.Kubectl) -> None:
    ns = fresh_namespace(full)
    full("-n", ns, "create", "deployment", "api", "--image=nginx", "--replicas=2")
    out = full("-n", ns, "wait", "--for=condition=Available", "deployment/api", "--timeout=60s")
    assert out.out.strip() == "deployment.apps/api condition met"
    status = get_json(full, ns, "deployment", "api")["status"]
    assert status["availableReplicas"] == 2
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Available"] == "True"


def test_wait_for_jsonpath_pod_running(full: kubectl_.Kubectl) -> None:
    ns = fresh_namespace(full)
    full("-n", ns, "run", "x", "--image=busybox")
    out = full("-n", ns, "wait", "--for=jsonpath={.status.phase}=Running", "pod/x", "--timeout=60s")
    assert out.out.strip() == "pod/x condition met"
    assert get_json(full, ns, "pod", "x")["status"]["phase"] == "Running"


def test_wait_times_out_with_a_message(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "-f", "-", stdin=json.dumps(pod("pending")))
    result = kubectl(
        "-n",
        ns,
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod/pending",
        "--timeout=1s",
        check=False,
    )
    assert result.code == 1
    assert "timed out waiting for the condition on pods/pending" in result.err


def test_wait_for_delete(kubectl: kubectl_.Kubectl, ns: str) -> None:
    configmap_with_finalizer(kubectl, ns, "going")
    proc = background(kubectl, "-n", ns, "wait", "--for=delete", "configmap/going", "--timeout=30s")
    try:
        kubectl("-n", ns, "delete", "configmap", "going", "--wait=false")
        assert terminating(kubectl, ns, "configmap", "going")
        assert proc.poll() is None, "kubectl wait returned while the object still exists"
        release(kubectl, ns, "going")
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 0, err
    assert out.strip() == "configmap/going condition met"


# --- apply -k --------------------------------------------------------------------------------


def test_apply_kustomization_directory(kubectl: kubectl_.Kubectl, ns: str, tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["app.yaml"],
                "commonLabels": {"team": "blue"},
                "configMapGenerator": [{"name": "settings", "literals": ["mode=fast"]}],
            }
        )
    )
    app = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx",
                            "envFrom": [{"configMapRef": {"name": "settings"}}],
                        }
                    ]
                },
            },
        },
    }
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(app))
    out = kubectl("-n", ns, "apply", "-k", str(tmp_path)).out
    generated = re.search(r"configmap/(settings-[a-z0-9]{10}) created", out)
    assert generated, out
    assert "deployment.apps/web created" in out
    cm = get_json(kubectl, ns, "configmap", generated.group(1))
    assert cm["data"] == {"mode": "fast"}
    assert cm["metadata"]["labels"] == {"team": "blue"}
    deployment = get_json(kubectl, ns, "deployment", "web")
    assert deployment["metadata"]["labels"] == {"team": "blue"}
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "web", "team": "blue"}
    spec = deployment["spec"]["template"]["spec"]
    assert spec["containers"][0]["envFrom"] == [{"configMapRef": {"name": generated.group(1)}}]
    again = kubectl("-n", ns, "apply", "-k", str(tmp_path)).out
    assert f"configmap/{generated.group(1)} unchanged" in again
    assert "deployment.apps/web unchanged" in again
    assert names(kubectl, ns, "all", "-l", "team=blue") == ["deployment.apps/web"]
