"""The real kubectl's write commands: client-side and server-side apply, diff, patch, edit,
replace, label, annotate, scale and set. They send strategic merge patches (with
``$setElementOrder`` and ``$retainKeys``), apply patches and dry runs.

kubectl validates against the server's OpenAPI documents (``--validate=strict``, the default).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import yaml

from tests.support import kubectl as kubectl_


def manifest(
    *,
    replicas: int = 1,
    image: str = "nginx:1.25",
    labels: dict[str, str] | None = None,
    strategy: dict[str, Any] | None = None,
    name: str = "web",
) -> str:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "nginx", "image": image}]},
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": spec,
    }
    return yaml.safe_dump(doc)


def get(kubectl: kubectl_.Kubectl, ns: str, *what: str) -> dict[str, Any]:
    return json.loads(kubectl("-n", ns, "get", *what, "-o", "json").out)  # type: ignore[no-any-return]


def test_apply_twice_changes_replicas_image_labels_and_removes_a_field(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    first = manifest(
        labels={"app": "web", "tier": "front"},
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}},
    )
    out = kubectl("-n", ns, "apply", "-f", "-", stdin=first).out
    assert "deployment.apps/web created" in out
    live = get(kubectl, ns, "deployment", "web")
    assert "kubectl.kubernetes.io/last-applied-configuration" in live["metadata"]["annotations"]
    second = manifest(
        replicas=3,
        image="nginx:1.26",
        labels={"app": "web", "env": "prod"},
        strategy={"type": "Recreate"},
    )
    out = kubectl("-n", ns, "apply", "-f", "-", stdin=second).out
    assert "deployment.apps/web configured" in out
    live = get(kubectl, ns, "deployment", "web")
    assert live["spec"]["replicas"] == 3
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert live["metadata"]["labels"] == {"app": "web", "env": "prod"}
    assert live["spec"]["strategy"] == {"type": "Recreate"}  # rollingUpdate gone ($retainKeys)
    applied = json.loads(
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert applied["spec"]["replicas"] == 3
    out = kubectl("-n", ns, "apply", "-f", "-", stdin=second).out
    assert "deployment.apps/web unchanged" in out


def test_apply_prune_deletes_labelled_objects_no_longer_in_the_manifests(
    kubectl: kubectl_.Kubectl, ns: str, tmp_path: Path
) -> None:
    def configmap(name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app": "x"}},
            "data": {"k": name},
        }

    (tmp_path / "a.yaml").write_text(yaml.safe_dump(configmap("a")))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(configmap("b")))
    kubectl("-n", ns, "apply", "-f", str(tmp_path))
    (tmp_path / "b.yaml").unlink()
    out = kubectl("-n", ns, "apply", "--prune", "-l", "app=x", "-f", str(tmp_path)).out
    assert "configmap/b pruned" in out
    names = kubectl("-n", ns, "get", "configmaps", "-l", "app=x", "-o", "name").out.split()
    assert names == ["configmap/a"]


def test_server_side_apply_conflict_with_client_side_apply_and_force(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    kubectl("-n", ns, "apply", "-f", "-", stdin=manifest())
    conflict = kubectl(
        "-n",
        ns,
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=manifest(replicas=4),
        check=False,
    )
    assert conflict.code != 0
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1:'
        " .spec.replicas" in conflict.err
    )
    assert get(kubectl, ns, "deployment", "web")["spec"]["replicas"] == 1
    out = kubectl(
        "-n",
        ns,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=manifest(replicas=4),
    ).out
    assert "deployment.apps/web serverside-applied" in out
    live = json.loads(
        kubectl("-n", ns, "get", "deployment", "web", "-o", "json", "--show-managed-fields").out
    )
    assert live["spec"]["replicas"] == 4
    entries = {(e["manager"], e["operation"]) for e in live["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in entries
    # kubectl then migrates the client-side-apply manager's fields with a JSON patch of
    # managedFields (csaupgrade); the server keeps the valid entries it sends.
    assert ("kubectl-client-side-apply", "Update") not in entries


def test_server_side_apply_creates(kubectl: kubectl_.Kubectl, ns: str) -> None:
    out = kubectl(
        "-n",
        ns,
        "apply",
        "--server-side",
        "--field-manager=me",
        "-f",
        "-",
        stdin=manifest(),
    ).out
    assert "deployment.apps/web serverside-applied" in out
    live = json.loads(
        kubectl("-n", ns, "get", "deployment", "web", "-o", "json", "--show-managed-fields").out
    )
    assert [(e["manager"], e["operation"]) for e in live["metadata"]["managedFields"]] == [
        ("me", "Apply")
    ]


def test_diff_shows_changes_and_changes_nothing(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "apply", "-f", "-", stdin=manifest())
    diff = kubectl("-n", ns, "diff", "-f", "-", stdin=manifest(replicas=2), check=False)
    assert diff.code == 1, diff.err  # 1: differences found
    assert "-  replicas: 1" in diff.out
    assert "+  replicas: 2" in diff.out
    same = kubectl("-n", ns, "diff", "-f", "-", stdin=manifest(), check=False)
    assert (same.code, same.out) == (0, "")
    ssa = kubectl(
        "-n",
        ns,
        "diff",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=manifest(replicas=5),
        check=False,
    )
    assert ssa.code == 1, ssa.err
    assert "+  replicas: 5" in ssa.out
    assert get(kubectl, ns, "deployment", "web")["spec"]["replicas"] == 1
    for server_side in ([], ["--server-side"]):
        new = kubectl(
            "-n", ns, "diff", *server_side, "-f", "-", stdin=manifest(name="other"), check=False
        )
        assert new.code == 1, new.err
        assert "+  name: other" in new.out
    missing = kubectl("-n", ns, "get", "deployment", "other", check=False)
    assert "NotFound" in missing.err


def test_patch_types(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "apply", "-f", "-", stdin=manifest())
    sidecar = {
        "spec": {"template": {"spec": {"containers": [{"name": "log", "image": "busybox"}]}}}
    }
    kubectl(
        "-n", ns, "patch", "deployment", "web", "--type", "strategic", "-p", json.dumps(sidecar)
    )
    live = get(kubectl, ns, "deployment", "web")
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["nginx", "log"]
    kubectl(
        "-n", ns, "patch", "deployment", "web", "--type", "merge", "-p", '{"spec":{"replicas":2}}'
    )
    ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"}]
    kubectl("-n", ns, "patch", "deployment", "web", "--type", "json", "-p", json.dumps(ops))
    live = get(kubectl, ns, "deployment", "web")
    assert live["spec"]["replicas"] == 2
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    delete = {"spec": {"template": {"spec": {"containers": [{"name": "log", "$patch": "delete"}]}}}}
    kubectl("-n", ns, "patch", "deployment", "web", "-p", json.dumps(delete))
    live = get(kubectl, ns, "deployment", "web")
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["nginx"]


def test_edit_with_an_editor_script(kubectl: kubectl_.Kubectl, ns: str, tmp_path: Path) -> None:
    kubectl("-n", ns, "apply", "-f", "-", stdin=manifest())
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/replicas: 1/replicas: 6/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    out = kubectl(
        "-n",
        ns,
        "edit",
        "deployment",
        "web",
        env={"EDITOR": str(editor), "KUBE_EDITOR": str(editor)},
    ).out
    assert "deployment.apps/web edited" in out
    live = json.loads(
        kubectl("-n", ns, "get", "deployment", "web", "-o", "json", "--show-managed-fields").out
    )
    assert live["spec"]["replicas"] == 6
    assert "kubectl-edit" in {e["manager"] for e in live["metadata"]["managedFields"]}


def test_replace(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "-f", "-", stdin=manifest())
    out = kubectl("-n", ns, "replace", "-f", "-", stdin=manifest(image="httpd")).out
    assert "deployment.apps/web replaced" in out
    live = get(kubectl, ns, "deployment", "web")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "httpd"


def test_label_and_annotate(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "configmap", "c", "--from-literal=a=1")
    kubectl("-n", ns, "label", "configmap", "c", "tier=web")
    refused = kubectl("-n", ns, "label", "configmap", "c", "tier=db", check=False)
    assert refused.code != 0
    assert "already has a value (web), and --overwrite is false" in refused.err
    kubectl("-n", ns, "label", "configmap", "c", "tier=db", "--overwrite")
    kubectl("-n", ns, "annotate", "configmap", "c", "note=hi")
    refused = kubectl("-n", ns, "annotate", "configmap", "c", "note=bye", check=False)
    assert (
        "--overwrite is false but found the following declared annotation(s): 'note'" in refused.err
    )
    live = get(kubectl, ns, "configmap", "c")
    assert live["metadata"]["labels"] == {"tier": "db"}
    assert live["metadata"]["annotations"] == {"note": "hi"}
    kubectl("-n", ns, "label", "configmap", "c", "tier-")
    kubectl("-n", ns, "annotate", "configmap", "c", "note-")
    live = get(kubectl, ns, "configmap", "c")
    assert not live["metadata"].get("labels")
    assert not live["metadata"].get("annotations")


def test_scale_and_set(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "apply", "-f", "-", stdin=manifest())
    assert (
        "deployment.apps/web scaled"
        in kubectl("-n", ns, "scale", "deployment", "web", "--replicas=4").out
    )
    kubectl("-n", ns, "set", "image", "deployment/web", "nginx=nginx:1.27")
    kubectl("-n", ns, "set", "resources", "deployment/web", "--limits=cpu=200m,memory=64Mi")
    kubectl("-n", ns, "set", "env", "deployment/web", "MODE=fast", "LEVEL=2")
    live = get(kubectl, ns, "deployment", "web")
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert live["spec"]["replicas"] == 4
    assert container["image"] == "nginx:1.27"
    assert container["resources"]["limits"] == {"cpu": "200m", "memory": "64Mi"}
    assert container["env"] == [{"name": "MODE", "value": "fast"}, {"name": "LEVEL", "value": "2"}]
    kubectl("-n", ns, "set", "env", "deployment/web", "MODE-")
    live = get(kubectl, ns, "deployment", "web")
    assert live["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "LEVEL", "value": "2"}
    ]


def test_apply_removes_a_configmap_key_and_a_service_port(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    def objects(keys: dict[str, str], ports: list[int]) -> str:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": keys}
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc"},
            "spec": {
                "selector": {"app": "x"},
                "ports": [{"name": f"p{p}", "port": p} for p in ports],
            },
        }
        return yaml.safe_dump_all([cm, svc])

    kubectl("-n", ns, "apply", "-f", "-", stdin=objects({"a": "1", "b": "2"}, [80, 443]))
    kubectl("-n", ns, "apply", "-f", "-", stdin=objects({"a": "1"}, [443, 8080]))
    assert get(kubectl, ns, "configmap", "cfg")["data"] == {"a": "1"}
    ports = get(kubectl, ns, "service", "svc")["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in ports] == [("p443", 443), ("p8080", 8080)]


def test_server_side_apply_refuses_undeclared_fields(kubectl: kubectl_.Kubectl, ns: str) -> None:
    doc = yaml.safe_load(manifest())
    doc["spec"]["bogus"] = 1
    refused = kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(doc), check=False
    )
    assert refused.code != 0
    assert (
        f"failed to create typed patch object ({ns}/web; apps/v1, Kind=Deployment): "
        ".spec.bogus: field not declared in schema" in refused.err
    )
    assert "NotFound" in kubectl("-n", ns, "get", "deployment", "web", check=False).err


def test_reapplying_a_rolebinding_to_a_service_account_is_unchanged(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    manifest = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: robot-view, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}}
subjects:
- {{kind: ServiceAccount, name: robot, namespace: {ns}}}
"""
    assert "created" in kubectl("apply", "-f", "-", stdin=manifest).out
    assert "unchanged" in kubectl("apply", "-f", "-", stdin=manifest).out
