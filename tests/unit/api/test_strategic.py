"""Strategic merge patch: the examples of Kubernetes' strategic-merge-patch.md and the patches
kubectl's client-side apply sends."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern.api import errors, patch, strategic


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def deployment(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"app": "d", "tier": "web"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": containers}}, **spec},
    }


def smp(doc: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    before = copy.deepcopy(doc)
    result: dict[str, Any] = patch.apply(patch.STRATEGIC_MERGE_PATCH, doc, body)
    assert doc == before, "the input must not change"
    return result


class TestDocumentExamples:
    def test_containers_merge_by_name(self) -> None:
        live = pod(containers=[{"name": "nginx", "image": "nginx-1.0"}])
        out = smp(
            live, {"spec": {"containers": [{"name": "log-tailer", "image": "log-tailer-1.0"}]}}
        )
        assert out["spec"]["containers"] == [
            {"name": "nginx", "image": "nginx-1.0"},
            {"name": "log-tailer", "image": "log-tailer-1.0"},
        ]

    def test_replace_directive_on_a_list(self) -> None:
        live = pod(containers=[{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
        body = {
            "spec": {"containers": [{"name": "nginx", "image": "nginx-1.0"}, {"$patch": "replace"}]}
        }
        assert smp(live, body)["spec"]["containers"] == [{"name": "nginx", "image": "nginx-1.0"}]

    def test_replace_directive_on_a_map(self) -> None:
        live = pod(containers=[{"name": "a", "image": "a"}], restartPolicy="Always")
        body = {"spec": {"$patch": "replace", "containers": [{"name": "nginx", "image": "n"}]}}
        assert smp(live, body)["spec"] == {"containers": [{"name": "nginx", "image": "n"}]}

    def test_delete_directive_in_a_list(self) -> None:
        live = pod(
            containers=[{"name": "nginx", "image": "old"}, {"name": "log-tailer", "image": "l"}]
        )
        body = {
            "spec": {
                "containers": [
                    {"name": "nginx", "image": "nginx-1.0"},
                    {"$patch": "delete", "name": "log-tailer"},
                ]
            }
        }
        assert smp(live, body)["spec"]["containers"] == [{"name": "nginx", "image": "nginx-1.0"}]

    def test_delete_directive_and_null_on_a_map(self) -> None:
        live = deployment([], strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
        for body in (
            {"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}},
            {"spec": {"strategy": {"rollingUpdate": None}}},
        ):
            assert smp(live, body)["spec"]["strategy"] == {"type": "RollingUpdate"}

    def test_delete_from_primitive_list(self) -> None:
        live = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "finalizers": ["a", "b", "c"]},
        }
        out = smp(live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "c"]}})
        assert out["metadata"]["finalizers"] == ["a"]

    def test_set_element_order_of_primitives(self) -> None:
        live = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "finalizers": ["a", "b", "c"]},
        }
        out = smp(live, {"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"]}})
        assert out["metadata"]["finalizers"] == ["b", "c", "a"]

    def test_set_element_order_of_maps(self) -> None:
        live = pod(containers=[{"name": n, "image": n} for n in "abc"])
        body = {
            "spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}]}
        }
        assert [c["name"] for c in smp(live, body)["spec"]["containers"]] == ["b", "c", "a"]

    def test_retain_keys_clears_other_union_members(self) -> None:
        live = deployment([], strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
        body = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
        assert smp(live, body)["spec"]["strategy"] == {"type": "Recreate"}

    def test_primitive_merge_list_is_a_set_union(self) -> None:
        live = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "finalizers": ["a", "b"]},
        }
        out = smp(live, {"metadata": {"finalizers": ["b", "c"]}})
        assert out["metadata"]["finalizers"] == ["a", "b", "c"]


class TestKubectlClientSideApply:
    def test_apply_patch_with_order_retain_keys_and_removed_label(self) -> None:
        live = deployment(
            [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}],
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
        )
        body = {
            "metadata": {
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "labels": {"env": "prod", "tier": None},
            },
            "spec": {
                "replicas": 3,
                "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                        "containers": [
                            {"image": "nginx:1.26", "name": "nginx"},
                            {"image": "busybox", "name": "sidecar"},
                        ],
                    }
                },
            },
        }
        out = smp(live, body)
        assert out["metadata"]["labels"] == {"app": "d", "env": "prod"}
        assert out["metadata"]["annotations"] == {
            "kubectl.kubernetes.io/last-applied-configuration": "{}"
        }
        assert out["spec"]["replicas"] == 3
        assert out["spec"]["strategy"] == {"type": "Recreate"}
        assert out["spec"]["template"]["spec"]["containers"] == [
            {"name": "nginx", "image": "nginx:1.26", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "busybox"},
        ]

    def test_volume_source_switch_with_retain_keys_in_a_list_item(self) -> None:
        live = pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}])
        body = {
            "spec": {
                "$setElementOrder/volumes": [{"name": "v"}, {"name": "w"}],
                "volumes": [
                    {
                        "$retainKeys": ["configMap", "name"],
                        "configMap": {"name": "cm"},
                        "emptyDir": None,
                        "name": "v",
                    }
                ],
            }
        }
        assert smp(live, body)["spec"]["volumes"] == [
            {"name": "v", "configMap": {"name": "cm"}},
            {"name": "w", "emptyDir": {}},
        ]

    def test_removing_the_last_env_var_drops_the_list(self) -> None:
        live = pod(containers=[{"name": "c", "env": [{"name": "A", "value": "1"}]}])
        body = {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "$patch": "delete"}]}]}}
        assert smp(live, body)["spec"]["containers"] == [{"name": "c"}]

    def test_order_keeps_server_only_items_in_place(self) -> None:
        live = pod(containers=[{"name": n} for n in ("a", "server", "b")])
        body = {
            "spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                "containers": [],
            }
        }
        # Kubernetes' mergeSortedSlice: a server-only item goes before a patch item that
        # comes after it in the server's order ("server" is before "b" there).
        names = [c["name"] for c in smp(live, body)["spec"]["containers"]]
        assert names == ["server", "b", "a"]


class TestOtherFields:
    def test_ports_merge_by_container_port(self) -> None:
        live = pod(containers=[{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}])
        body = {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 443}]}]}}
        ports = smp(live, body)["spec"]["containers"][0]["ports"]
        assert ports == [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]

    def test_atomic_lists_are_replaced(self) -> None:
        live = pod(tolerations=[{"key": "a"}], containers=[{"name": "c", "args": ["x", "y"]}])
        body = {
            "spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "c", "args": ["z"]}]}
        }
        out = smp(live, body)
        assert out["spec"]["tolerations"] == [{"key": "b"}]
        assert out["spec"]["containers"][0]["args"] == ["z"]

    def test_free_form_maps_merge_and_unknown_kinds_merge_like_json(self) -> None:
        live = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"a": "1", "b": "2"},
        }
        assert smp(live, {"data": {"a": None, "c": "3"}})["data"] == {"b": "2", "c": "3"}
        custom = {
            "apiVersion": "x.io/v1",
            "kind": "Thing",
            "spec": {"items": [1, 2], "m": {"a": 1}},
        }
        out = smp(custom, {"spec": {"items": [3], "m": {"b": 2}}})
        assert out["spec"] == {"items": [3], "m": {"a": 1, "b": 2}}

    def test_new_values_are_cleaned_of_directives_and_nulls(self) -> None:
        live = pod(containers=[])
        body = {
            "spec": {
                "containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": None}]}]
            }
        }
        assert smp(live, body)["spec"]["containers"] == [
            {"name": "c", "image": "i", "env": [{"name": "A"}]}
        ]


class TestErrors:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"spec": {"$patch": "bogus"}}, "unknown patch type: bogus in map: map[$patch:bogus]"),
            (
                {"spec": {"containers": [{"image": "x"}]}},
                "map: map[image:x] does not contain declared merge key: name",
            ),
            ({"spec": {"$retainKeys": "x"}}, "invalid patch format of retainKeys"),
            (
                {"spec": {"$retainKeys": ["a"], "b": 1}},
                "patch content doesn't match retainKeys list",
            ),
            (
                {"spec": {"$setElementOrder/containers": "x"}},
                "invalid patch format of setElementOrder list",
            ),
            (
                {"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}},
                "invalid patch format of primitive list",
            ),
            ({"spec": {"containers": ["x"]}}, "expected a map, but received a string"),
        ],
    )
    def test_malformed_directives_are_bad_requests(
        self, body: dict[str, Any], message: str
    ) -> None:
        live = pod(containers=[{"name": "c"}])
        with pytest.raises(errors.BadRequest) as info:
            strategic.apply_strategic_merge_patch(live, body)
        assert str(info.value) == message

    def test_a_patch_that_is_not_an_object(self) -> None:
        with pytest.raises(errors.BadRequest):
            strategic.apply_strategic_merge_patch(pod(), ["x"])
