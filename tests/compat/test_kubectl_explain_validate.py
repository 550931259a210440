"""The real kubectl against a started server: ``explain`` reads the OpenAPI v3 documents, and
``create``/``apply``/``replace`` delegate validation to the server (kubectl sends
``fieldValidation=Strict`` because the documents declare the parameter)."""

from __future__ import annotations

import json

from tests.support import kubectl as kubectl_


def deployment(name: str, **spec_extra: object) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                **spec_extra,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        }
    )


def test_explain_prints_kubernetes_field_descriptions(kubectl: kubectl_.Kubectl) -> None:
    out = kubectl("explain", "deployment.spec.strategy").out
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n")
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "The deployment strategy to use to replace existing pods with new ones." in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "type\t<string>" in out
    assert 'Type of deployment. Can be "Recreate" or "RollingUpdate". Default is' in out
    out = kubectl("explain", "pods.spec.containers").out
    assert "KIND:       Pod" in out
    assert "FIELD: containers <[]Container>" in out
    assert "List of containers belonging to the pod." in out
    assert "image\t<string>" in out
    assert "name\t<string> -required-" in out
    out = kubectl("explain", "deployment.spec.strategy.rollingUpdate.maxSurge").out
    assert "FIELD: maxSurge <IntOrString>" in out
    missing = kubectl("explain", "deployment.spec.bogus", check=False)
    assert missing.code != 0
    assert 'field "bogus" does not exist' in missing.err


def test_create_and_apply_pass_validation_without_flags(kubectl: kubectl_.Kubectl, ns: str) -> None:
    out = kubectl("-n", ns, "create", "-f", "-", stdin=deployment("made")).out
    assert "deployment.apps/made created" in out
    out = kubectl("-n", ns, "apply", "-f", "-", stdin=deployment("applied", replicas=2)).out
    assert "deployment.apps/applied created" in out
    out = kubectl("-n", ns, "apply", "-f", "-", stdin=deployment("applied", replicas=3)).out
    assert "deployment.apps/applied configured" in out


def test_unknown_field_fails_strict_and_creates_nothing(kubectl: kubectl_.Kubectl, ns: str) -> None:
    bad = deployment("bogus", bogus=1)
    result = kubectl("-n", ns, "create", "-f", "-", stdin=bad, check=False)
    assert result.code == 1
    assert (
        'Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" '
        'cannot be handled as a Deployment: strict decoding error: unknown field "spec.bogus"'
    ) in result.err
    listed = kubectl("-n", ns, "get", "deployments", "-o", "name").out
    assert listed.strip() == ""
    result = kubectl("-n", ns, "apply", "-f", "-", stdin=bad, check=False)
    assert result.code == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in result.err
    assert kubectl("-n", ns, "get", "deployments", "-o", "name").out.strip() == ""


def test_apply_of_an_existing_object_with_an_unknown_field_is_refused(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    kubectl("-n", ns, "apply", "-f", "-", stdin=deployment("web"))
    before = json.loads(kubectl("-n", ns, "get", "deployment", "web", "-o", "json").out)
    result = kubectl("-n", ns, "apply", "-f", "-", stdin=deployment("web", bogus=1), check=False)
    assert result.code == 1
    assert "The request is invalid: patch: Invalid value: " in result.err
    assert 'strict decoding error: unknown field "spec.bogus"' in result.err
    after = json.loads(kubectl("-n", ns, "get", "deployment", "web", "-o", "json").out)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_validate_warn_prints_the_warning_and_validate_false_accepts(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    result = kubectl(
        "-n", ns, "create", "-f", "-", "--validate=warn", stdin=deployment("warned", bogus=1)
    )
    assert "deployment.apps/warned created" in result.out
    assert 'Warning: unknown field "spec.bogus"' in result.err
    result = kubectl(
        "-n", ns, "create", "-f", "-", "--validate=false", stdin=deployment("quiet", bogus=1)
    )
    assert "deployment.apps/quiet created" in result.out
    assert "Warning" not in result.err
    stored = json.loads(kubectl("-n", ns, "get", "deployment", "quiet", "-o", "json").out)
    assert "bogus" not in stored["spec"]
    result = kubectl(
        "-n", ns, "replace", "-f", "-", stdin=deployment("quiet", bogus=2), check=False
    )
    assert result.code == 1
    assert 'error when replacing "STDIN"' in result.err
    assert 'strict decoding error: unknown field "spec.bogus"' in result.err


def test_explain_over_openapi_v2_protobuf(kubectl: kubectl_.Kubectl) -> None:
    out = kubectl("explain", "deploy.spec.strategy", "--output=plaintext-openapiv2").out
    assert "KIND:     Deployment" in out
    assert "RESOURCE: strategy <Object>" in out
    assert "The deployment strategy to use to replace existing pods with new ones." in out
    assert "rollingUpdate\t<Object>" in out


def test_lists_are_validated_by_kubectl_against_openapi_v2(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    """kubectl cannot ask the server to check a v1 List, so it validates one itself, with the
    Swagger 2.0 document in protobuf."""
    items = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}, "data": {"a": "1"}},
        json.loads(deployment("listed", replicas=2)),
    ]
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    out = kubectl("-n", ns, "create", "-f", "-", stdin=listed).out
    assert "configmap/one created" in out
    assert "deployment.apps/listed created" in out
    items[0] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two"}, "bogus": 1}
    bad = json.dumps({"apiVersion": "v1", "kind": "List", "items": items[:1]})
    result = kubectl("-n", ns, "create", "-f", "-", stdin=bad, check=False)
    assert result.code == 1
    assert (
        'ValidationError(ConfigMap): unknown field "bogus" in io.k8s.api.core.v1.ConfigMap'
        in result.err
    )
    assert kubectl("-n", ns, "get", "configmap", "two", check=False).code == 1
