"""ObjectMeta rules on create and update."""

from __future__ import annotations

from typing import Any

from kybern.api import errors, kinds, validation
from kybern.api.validation import metadata

from .test_validation_valid import sample


def info(api_version: str, kind: str) -> kinds.ResourceInfo:
    found = kinds.for_kind(api_version, kind)
    assert found is not None
    return found


POD = info("v1", "Pod")
NAMESPACE = info("v1", "Namespace")
ROLE = info("rbac.authorization.k8s.io/v1", "Role")


def messages(causes: list[errors.Cause]) -> list[str]:
    return [c.message for c in causes]


def meta_causes(kind_info: kinds.ResourceInfo, **meta: Any) -> list[str]:
    obj = sample(kind_info)
    obj["metadata"] = meta
    return messages(metadata.validate(kind_info, obj))


def test_name_or_generate_name_required() -> None:
    assert meta_causes(POD, namespace="default") == [
        "metadata.name: Required value: name or generateName is required"
    ]
    assert meta_causes(POD, namespace="default", generateName="web-") == []


def test_bad_name_and_generate_name() -> None:
    [name] = meta_causes(POD, name="Web", namespace="default")
    assert name.startswith('metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain')
    [prefix] = meta_causes(POD, generateName="Web-", namespace="default")
    assert prefix.startswith('metadata.generateName: Invalid value: "Web-": a lowercase RFC')


def test_name_rule_follows_kind() -> None:
    assert meta_causes(NAMESPACE, name="a.b") == [
        'metadata.name: Invalid value: "a.b": must not contain dots'
    ]
    assert meta_causes(ROLE, name="system:reader", namespace="default") == []
    assert meta_causes(ROLE, name="a/b", namespace="default") == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"
    ]


def test_namespace_presence_follows_scope() -> None:
    assert meta_causes(POD, name="p") == ["metadata.namespace: Required value"]
    assert meta_causes(NAMESPACE, name="n", namespace="default") == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]
    [bad] = meta_causes(POD, name="p", namespace="Bad_NS")
    assert bad.startswith('metadata.namespace: Invalid value: "Bad_NS"')


def test_labels_and_annotations() -> None:
    causes = meta_causes(
        POD,
        name="p",
        namespace="d",
        labels={"-bad": "ok", "ok": "-bad"},
        annotations={"Ok/x": "1", "Bad_Prefix/x": "1"},
    )
    assert len(causes) == 3
    assert causes[0].startswith('metadata.labels: Invalid value: "-bad": name part must consist')
    assert causes[1].startswith('metadata.labels: Invalid value: "-bad": a valid label must be')
    assert causes[2].startswith('metadata.annotations: Invalid value: "Bad_Prefix/x": prefix part')


def test_annotation_total_size() -> None:
    big = {"a": "x" * (256 * 1024)}
    assert meta_causes(POD, name="p", namespace="d", annotations=big) == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    ]
    fits = {"a": "x" * (256 * 1024 - 1)}
    assert meta_causes(POD, name="p", namespace="d", annotations=fits) == []


def test_owner_references() -> None:
    refs = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "a",
            "uid": "1",
            "controller": True,
        },
        {"apiVersion": "", "kind": "", "name": "", "uid": "", "controller": True},
    ]
    causes = meta_causes(POD, name="p", namespace="d", ownerReferences=refs)
    assert causes[:4] == [
        'metadata.ownerReferences[1].apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences[1].kind: Invalid value: "": kind must not be empty',
        'metadata.ownerReferences[1].name: Invalid value: "": name must not be empty',
        'metadata.ownerReferences[1].uid: Invalid value: "": uid must not be empty',
    ]
    assert "Only one reference can have Controller set to true" in causes[4]


def test_finalizers() -> None:
    assert meta_causes(POD, name="p", namespace="d", finalizers=["example.com/x", "orphan"]) == []
    causes = meta_causes(POD, name="p", namespace="d", finalizers=["orphan", "foregroundDeletion"])
    assert causes == [
        'metadata.finalizers: Invalid value: []string{"orphan", "foregroundDeletion"}: '
        "finalizer orphan and foregroundDeletion cannot be both set"
    ]
    [bad] = meta_causes(POD, name="p", namespace="d", finalizers=["a/b/c"])
    assert bad.startswith('metadata.finalizers: Invalid value: "a/b/c": a qualified name')


def test_negative_generation() -> None:
    assert meta_causes(POD, name="p", namespace="d", generation=-1) == [
        "metadata.generation: Invalid value: -1: must be greater than or equal to 0"
    ]


def test_update_immutable_identity() -> None:
    old = sample(POD)
    new = sample(POD)
    new["metadata"].update(
        name="other", namespace="ns2", uid="u2", creationTimestamp="2020-01-01T00:00:00Z"
    )
    assert messages(metadata.validate_update(new, old)) == [
        'metadata.name: Invalid value: "other": field is immutable',
        'metadata.namespace: Invalid value: "ns2": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
        'metadata.creationTimestamp: Invalid value: "2020-01-01T00:00:00Z": field is immutable',
    ]


def test_update_without_uid_or_timestamp_keeps_them() -> None:
    old = sample(POD)
    new = sample(POD)
    del new["metadata"]["uid"], new["metadata"]["creationTimestamp"]
    assert metadata.validate_update(new, old) == []


def test_update_generation_and_finalizers_during_deletion() -> None:
    old = sample(POD)
    old["metadata"].update(
        generation=3, deletionTimestamp="2024-05-01T10:00:00Z", finalizers=["a.io/x"]
    )
    new = sample(POD)
    new["metadata"].update(
        generation=2, deletionTimestamp="2024-05-01T10:00:00Z", finalizers=["a.io/x", "b.io/y"]
    )
    assert messages(metadata.validate_update(new, old)) == [
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being "
        'deleted, found new finalizers []string{"b.io/y"}',
        "metadata.generation: Invalid value: 2: must not be decremented",
    ]


def test_status_update_runs_metadata_update_rules() -> None:
    old = sample(POD)
    new = sample(POD)
    new["metadata"]["name"] = "renamed"
    assert messages(validation.validate_status_update(POD, new, old)) == [
        'metadata.name: Invalid value: "renamed": field is immutable'
    ]
