"""Field paths and field sets: FieldsV1 encoding, shapes from the schemas, comparisons."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern.api import errors
from kybern.api import fieldpath as fp
from kybern.api import managedfields as mf


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n", "uid": "u", "labels": {"app": "d"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "spec": {
                    "containers": [
                        {"name": "c", "image": "i", "ports": [{"containerPort": 80}], "args": ["a"]}
                    ]
                }
            },
        },
        "status": {"replicas": 1},
    }


class TestFieldSets:
    def test_apply_style_field_set_as_fields_v1(self) -> None:
        obj = deployment()
        fields = mf.strip(fp.fields_of(obj, fp.definition_for(obj)), mf.ignored_paths(obj, ""))
        assert fp.encode(fields) == {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},  # LabelSelector is an atomic map
                "f:template": {
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"c"}': {
                                ".": {},
                                "f:args": {},  # atomic list
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {
                                    'k:{"containerPort":80,"protocol":"TCP"}': {
                                        ".": {},
                                        "f:containerPort": {},
                                    }
                                },
                            }
                        }
                    }
                },
            },
        }

    def test_set_lists_use_value_steps(self) -> None:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"finalizers": ["x"]}}
        assert ("f:metadata", "f:finalizers", 'v:"x"') in fp.fields_of(obj, fp.definition_for(obj))

    def test_encode_decode_round_trip(self) -> None:
        obj = deployment()
        fields = fp.fields_of(obj, fp.definition_for(obj))
        assert fp.decode(fp.encode(fields)) == fields

    def test_decode_rejects_garbage(self) -> None:
        with pytest.raises(errors.BadRequest):
            fp.decode({"x:bad": {}})

    def test_path_strings(self) -> None:
        path = ("f:spec", "f:containers", 'k:{"name":"c"}', "f:image")
        assert fp.path_string(path) == '.spec.containers[name="c"].image'
        assert (
            fp.path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'
        )
        ports = ("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')
        assert fp.path_string(ports) == '.ports[containerPort=80,protocol="TCP"]'

    def test_missing_key_fields_are_an_error_in_apply_configurations(self) -> None:
        obj = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"image": "x"}]}}
        with pytest.raises(errors.BadRequest, match="omits key field 'name'"):
            fp.fields_of(obj, fp.definition_for(obj))


class TestCompare:
    def test_changed_and_removed(self) -> None:
        old = deployment()
        new = copy.deepcopy(old)
        new["spec"]["replicas"] = 2
        new["metadata"]["labels"] = {"tier": "x"}
        result = fp.compare(old, new, fp.definition_for(new))
        assert ("f:spec", "f:replicas") in result.changed
        assert ("f:metadata", "f:labels", "f:tier") in result.changed
        assert ("f:metadata", "f:labels", "f:app") in result.removed
        assert ("f:spec", "f:selector") not in result.changed


def test_encode_writes_keys_sorted_with_the_dot_first() -> None:
    fields = frozenset(
        {
            ("f:spec", "f:replicas"),
            ("f:metadata", "f:labels"),
            ("f:metadata", "f:labels", "f:app"),
            ("f:metadata",),
        }
    )
    tree = fp.encode(fields)
    assert list(tree) == ["f:metadata", "f:spec"]
    assert list(tree["f:metadata"]) == [".", "f:labels"]
    assert tree["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    assert tree["f:spec"] == {"f:replicas": {}}
    assert fp.decode(tree) == fields
