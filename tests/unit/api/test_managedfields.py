"""Field sets (FieldsV1), comparisons and the registry's managedFields hook."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern.api import errors
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


class TestManagerNames:
    @pytest.mark.parametrize(
        ("field_manager", "agent", "expected"),
        [
            ("kubectl-edit", "kubectl/v1.32.3 (linux/amd64)", "kubectl-edit"),
            (None, "kubectl/v1.32.3 (linux/amd64) kubernetes/abc", "kubectl"),
            (None, "Go-http-client/2.0", "Go-http-client"),
            (None, "OpenAPI-Generator/32.0.1/python", "OpenAPI-Generator"),
            (None, None, ""),
        ],
    )
    def test_default_from_user_agent(
        self, field_manager: str | None, agent: str | None, expected: str
    ) -> None:
        assert mf.manager_name(field_manager, agent) == expected

    def test_too_long(self) -> None:
        with pytest.raises(errors.BadRequest):
            mf.manager_name("x" * 129, None)


class TestUpdateHook:
    def test_create_records_an_update_entry(self) -> None:
        obj = deployment()
        mf.update(None, obj, manager="kubectl-create", now="T")
        [entry] = obj["metadata"]["managedFields"]
        assert {
            k: entry[k] for k in ("manager", "operation", "apiVersion", "time", "fieldsType")
        } == {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "T",
            "fieldsType": "FieldsV1",
        }
        fields = entry["fieldsV1"]
        assert "f:status" not in fields  # status is not the main resource's
        assert "f:uid" not in fields["f:metadata"]
        assert fields["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}

    def test_update_moves_changed_fields_and_drops_removed_ones(self) -> None:
        old = deployment()
        mf.update(None, old, manager="a", now="T1")
        new = copy.deepcopy(old)
        new["spec"]["replicas"] = 5
        del new["metadata"]["labels"]
        mf.update(old, new, manager="b", now="T2")
        entries = {e["manager"]: e for e in new["metadata"]["managedFields"]}
        assert "f:replicas" not in entries["a"]["fieldsV1"]["f:spec"]
        assert "f:labels" not in entries["a"]["fieldsV1"].get("f:metadata", {})
        assert entries["b"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
        assert entries["b"]["time"] == "T2"

    def test_no_change_keeps_entries_and_time(self) -> None:
        old = deployment()
        mf.update(None, old, manager="a", now="T1")
        new = copy.deepcopy(old)
        mf.update(old, new, manager="b", now="T2")
        assert new["metadata"]["managedFields"] == old["metadata"]["managedFields"]

    def test_client_entries_kept_when_valid_live_ones_otherwise(self) -> None:
        old = deployment()
        mf.update(None, old, manager="a", now="T1")
        stripped = copy.deepcopy(old)
        del stripped["metadata"]["managedFields"]
        mf.update(old, stripped, manager=None, now="T2")
        assert stripped["metadata"]["managedFields"] == old["metadata"]["managedFields"]
        reset = copy.deepcopy(old)
        reset["metadata"]["managedFields"] = [{}]
        mf.update(old, reset, manager=None, now="T2")
        assert "managedFields" not in reset["metadata"]
        garbage = copy.deepcopy(old)
        garbage["metadata"]["managedFields"] = [{"operation": "Nope"}]
        mf.update(old, garbage, manager=None, now="T2")
        assert garbage["metadata"]["managedFields"] == old["metadata"]["managedFields"]

    def test_client_times_are_normalised(self) -> None:
        entry = {
            "manager": "m",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2024-01-02T03:04:05+00:00",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {}},
        }
        [parsed] = mf.parse_entries([entry])
        assert parsed.time == "2024-01-02T03:04:05Z"

    def test_at_most_ten_update_managers(self) -> None:
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
        for n in range(12):
            new = copy.deepcopy(obj)
            new["data"] = {**obj.get("data", {}), f"k{n}": "v"}
            mf.update(obj, new, manager=f"m{n:02d}", now=f"2024-01-01T00:00:{n:02d}Z")
            obj = new
        names = [e["manager"] for e in obj["metadata"]["managedFields"]]
        assert len(names) == 10
        assert names[0] == "ancient-changes"
        assert "m00" not in names
        assert "m11" in names
        ancient = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]
        assert {"f:k0", "f:k1", "f:k2"} <= set(ancient)

    def test_entries_sorted_apply_first_then_by_time(self) -> None:
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"a": "1"},
        }
        mf.store(
            obj,
            [
                mf.Entry("z", mf.UPDATE, "v1", "T2", frozenset({("f:data",)})),
                mf.Entry("y", mf.UPDATE, "v1", "T1", frozenset({("f:data",)})),
                mf.Entry("x", mf.APPLY, "v1", "T3", frozenset({("f:data",)})),
            ],
        )
        assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["x", "y", "z"]
