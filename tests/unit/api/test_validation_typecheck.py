"""The schema walk: Go-decoder-like type errors, required fields, unknown fields, speed."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.api import errors, kinds, validation
from kybern.api.validation import typecheck

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"


def deployment() -> dict[str, Any]:
    container = {
        "name": "web",
        "image": "nginx",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "env": [{"name": "A", "value": "1"}],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web"},
            "creationTimestamp": "2024-05-01T10:00:00Z",
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container]},
            },
        },
    }


def check(obj: Any, find_unknown: bool = False) -> typecheck.Report:
    return typecheck.check(
        DEPLOYMENT, obj, kind="Deployment", version="v1", find_unknown=find_unknown
    )


def bad_request(obj: Any) -> str:
    with pytest.raises(errors.BadRequest) as info:
        check(obj)
    return str(info.value)


PREFIX = 'Deployment in version "v1" cannot be handled as a Deployment: '


def test_valid_object_has_no_findings() -> None:
    report = check(deployment(), find_unknown=True)
    assert report.causes == []
    assert report.unknown == []


def test_string_for_int32() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = "3"
    assert bad_request(obj) == PREFIX + (
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
        "of type int32"
    )


def test_int32_overflow_and_float() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = 2**31
    assert "cannot unmarshal number 2147483648 into Go struct field" in bad_request(obj)
    obj["spec"]["replicas"] = 1.5
    assert "cannot unmarshal number 1.5 into Go struct field" in bad_request(obj)


def test_nested_field_names_innermost_struct_and_full_path() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = 5
    assert bad_request(obj) == PREFIX + (
        "json: cannot unmarshal number into Go struct field "
        "EnvVar.spec.template.spec.containers.env.value of type string"
    )


def test_wrong_item_and_container_types() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = ["nginx"]
    assert bad_request(obj).endswith(
        "cannot unmarshal string into Go struct field PodSpec.spec.template.spec.containers "
        "of type v1.Container"
    )
    obj = deployment()
    obj["spec"]["template"] = []
    assert bad_request(obj).endswith("DeploymentSpec.spec.template of type v1.PodTemplateSpec")


def test_map_value_and_bool_and_int_or_string() -> None:
    obj = deployment()
    obj["metadata"]["labels"]["x"] = 1
    assert bad_request(obj).endswith("ObjectMeta.metadata.labels of type string")
    obj = deployment()
    obj["spec"]["paused"] = "yes"
    assert bad_request(obj).endswith("DeploymentSpec.spec.paused of type bool")
    obj = deployment()
    obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = True
    assert bad_request(obj).endswith(
        "cannot unmarshal bool into Go struct field "
        "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32"
    )


def test_bad_quantity_and_time() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "1x"
    assert bad_request(obj) == PREFIX + (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )
    obj = deployment()
    obj["metadata"]["creationTimestamp"] = "yesterday"
    assert 'parsing time "yesterday"' in bad_request(obj)


def test_numbers_are_quantities_and_null_is_skipped() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 0.5
    obj["spec"]["replicas"] = None
    obj["spec"]["template"]["spec"]["containers"].append(None)
    assert check(obj).causes == []


def test_base64_bytes() -> None:
    secret = {"metadata": {"name": "s"}, "data": {"ok": "aGk=", "bad": "a$b="}}
    with pytest.raises(errors.BadRequest) as info:
        typecheck.check("io.k8s.api.core.v1.Secret", secret, kind="Secret", version="v1")
    assert str(info.value) == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 1'
    )


def test_top_level_not_an_object() -> None:
    with pytest.raises(errors.BadRequest, match="cannot unmarshal array into Go value"):
        check([1])


def test_required_fields_with_kubernetes_paths() -> None:
    obj = deployment()
    del obj["spec"]["template"]["spec"]["containers"][0]["name"]
    del obj["spec"]["selector"]
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = None
    fields = [c.field for c in check(obj).causes]
    assert fields == [
        "spec.template.spec.containers[0].ports[0].containerPort",
        "spec.template.spec.containers[0].name",
        "spec.selector",
    ]
    assert all(c.reason == "FieldValueRequired" for c in check(obj).causes)


def test_unknown_fields() -> None:
    obj = deployment()
    obj["spec"]["bogus"] = 1
    obj["spec"]["template"]["spec"]["containers"][0]["imagePullSecret"] = "x"
    obj["metadata"]["extra"] = {"deep": 1}
    unknown = typecheck.unknown_fields(DEPLOYMENT, obj, kind="Deployment", version="v1")
    assert sorted(unknown) == [
        "metadata.extra",
        "spec.bogus",
        "spec.template.spec.containers[0].imagePullSecret",
    ]
    assert check(obj).unknown is None


def test_free_form_fields_accept_anything() -> None:
    crd_schema = {"type": "object", "properties": {"x": {"type": "string", "default": 5}}}
    crd = {
        "metadata": {"name": "a.b.c", "managedFields": [{"fieldsV1": {"f:x": {}}}]},
        "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": crd_schema}}]},
    }
    name = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    report = typecheck.check(
        name, crd, kind="CustomResourceDefinition", version="v1", find_unknown=True
    )
    assert report.unknown == []


def test_render_path() -> None:
    assert typecheck.render_path(["spec", "containers", "[0]", "name"]) == "spec.containers[0].name"
    assert typecheck.render_path(["data", "[a.b]"]) == "data[a.b]"


def test_entry_points_raise_bad_request() -> None:
    info = kinds.for_kind("apps/v1", "Deployment")
    assert info is not None
    obj = deployment()
    obj["spec"]["replicas"] = "x"
    with pytest.raises(errors.BadRequest):
        validation.validate_create(info, obj)
    with pytest.raises(errors.BadRequest):
        validation.validate_update(info, obj, deployment())
    with pytest.raises(errors.BadRequest):
        validation.validate_status_update(info, obj, deployment())


def test_prune_drops_unknown_fields_in_place_and_reports_them() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "bogus": 1},
        "spec": {"containers": [{"name": "c", "image": "i", "extra": True}], "nope": {}},
    }
    report = typecheck.check("io.k8s.api.core.v1.Pod", obj, kind="Pod", version="v1", prune=True)
    assert sorted(report.unknown or []) == [
        "metadata.bogus",
        "spec.containers[0].extra",
        "spec.nope",
    ]
    assert obj["metadata"] == {"name": "p"}
    assert obj["spec"] == {"containers": [{"name": "c", "image": "i"}]}
