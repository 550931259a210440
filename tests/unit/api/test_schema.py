"""The Kubernetes v1.32 schema data: loading, $ref resolution, field lookup, merge metadata."""

from __future__ import annotations

from kybern.api import schema

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"


def test_definitions_loaded_once() -> None:
    assert schema.definitions() is schema.definitions()
    assert len(schema.definitions()) > 500
    assert schema.definitions_path().name == "_definitions.json"


def test_resolve_follows_ref_and_keeps_local_keys() -> None:
    fragment = schema.definition("io.k8s.api.apps.v1.DeploymentSpec")["properties"]["strategy"]
    resolved = schema.resolve(fragment)
    assert "rollingUpdate" in resolved["properties"]
    assert resolved["x-kubernetes-patch-strategy"] == "retainKeys"
    plain = {"type": "string"}
    assert schema.resolve(plain) is plain


def test_field_schema_steps_through_arrays_and_maps() -> None:
    containers = schema.field_schema(DEPLOYMENT, "spec.template.spec.containers")
    assert containers is not None
    assert schema.patch_merge_key(containers) == "name"
    assert schema.patch_strategy(containers) == ("merge",)
    assert schema.list_type(containers) == "map"
    assert schema.list_map_keys(containers) == ("name",)
    port = schema.field_schema(DEPLOYMENT, ["spec", "template", "spec", "containers", "ports"])
    assert port is not None
    assert schema.list_map_keys(port) == ("containerPort", "protocol")
    number = schema.field_schema(DEPLOYMENT, "spec.template.spec.containers.ports.containerPort")
    assert number == {
        "description": number["description"],
        "format": "int32",
        "type": "integer",
    }
    assert schema.field_schema(DEPLOYMENT, "metadata.labels.anything") == {
        "type": ["string", "null"]
    }
    assert schema.field_schema(DEPLOYMENT, "spec.bogus") is None


def test_volumes_patch_strategy_has_two_parts() -> None:
    volumes = schema.field_schema("io.k8s.api.core.v1.Pod", "spec.volumes")
    assert volumes is not None
    assert schema.patch_strategy(volumes) == ("merge", "retainKeys")


def test_types_and_nullability() -> None:
    spec = schema.definition("io.k8s.api.apps.v1.DeploymentSpec")
    assert schema.types(spec["properties"]["replicas"]) == {"integer"}
    assert schema.nullable(spec["properties"]["replicas"])
    assert schema.types(schema.definition(schema.INT_OR_STRING)) == {"string", "integer"}
    assert schema.types(schema.definition(schema.QUANTITY)) == {"string", "number"}
    container = schema.definition("io.k8s.api.core.v1.Container")
    assert not schema.nullable(container["properties"]["name"])
    assert schema.required(container) == ("name",)
    assert "image" in schema.properties({"$ref": "#/$defs/io.k8s.api.core.v1.Container"})


def test_gvk_lookup() -> None:
    assert schema.for_gvk("apps", "v1", "Deployment") == DEPLOYMENT
    assert schema.for_gvk("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert schema.for_gvk("apps", "v1", "Nope") is None
    assert schema.group_version_kinds("io.k8s.api.core.v1.PodSpec") == []


def test_map_type_and_items() -> None:
    selector = schema.definition("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
    assert schema.map_type(selector) == "atomic"
    item = schema.items(schema.definition("io.k8s.api.core.v1.PodSpec")["properties"]["containers"])
    assert item is not None
    assert "image" in item["properties"]
