"""Server-side apply: merging, ownership, pruning and conflicts (pure)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern.api import apply, errors
from kybern.api import fieldpath as fp
from kybern.api import managedfields as mf


def config(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "replicas": 1,
        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
    }
    base.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": base,
    }


def run(
    live: dict[str, Any] | None, cfg: dict[str, Any], manager: str, **kw: Any
) -> dict[str, Any]:
    return apply.apply(live, cfg, manager=manager, force=kw.get("force", False), now="T")


def owners(obj: dict[str, Any]) -> dict[str, fp.FieldSet]:
    return {
        e["manager"]: fp.decode(e["fieldsV1"]) for e in obj["metadata"].get("managedFields", [])
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


class TestMerge:
    def test_create_from_nothing(self) -> None:
        obj = run(None, config(), "a")
        assert obj["spec"]["replicas"] == 1
        [entry] = obj["metadata"]["managedFields"]
        assert (entry["manager"], entry["operation"]) == ("a", "Apply")

    def test_associative_lists_merge_by_key_and_keep_others(self) -> None:
        live = run(None, config(), "a")
        other = config(template={"spec": {"containers": [{"name": "side", "image": "s"}]}})
        del other["spec"]["replicas"]
        obj = run(live, other, "b")
        assert [c["name"] for c in containers(obj)] == ["c", "side"]

    def test_atomic_fields_are_replaced(self) -> None:
        live = run(None, config(selector={"matchLabels": {"a": "1", "b": "2"}}), "a")
        obj = run(live, config(selector={"matchLabels": {"a": "1"}}), "a")
        assert obj["spec"]["selector"] == {"matchLabels": {"a": "1"}}

    def test_config_order_for_shared_items(self) -> None:
        live = run(
            None, config(template={"spec": {"containers": [{"name": "x"}, {"name": "y"}]}}), "a"
        )
        obj = run(
            live,
            config(
                template={"spec": {"containers": [{"name": "y"}, {"name": "new"}, {"name": "x"}]}}
            ),
            "a",
        )
        assert [c["name"] for c in containers(obj)] == ["y", "new", "x"]

    def test_port_without_protocol_matches_the_defaulted_live_port(self) -> None:
        ports = {
            "template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}
        }
        live = run(None, config(**ports), "a")
        containers(live)[0]["ports"][0]["protocol"] = "TCP"  # defaulting
        obj = run(live, config(**ports), "a")
        assert containers(obj)[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_a_repeated_apply_changes_nothing() -> None:
    live = run(None, config(), "a")
    again = apply.apply(live, config(), manager="a", force=False, now="LATER")
    assert again == live


class TestOwnership:
    def test_removed_fields_are_pruned(self) -> None:
        live = run(None, config(minReadySeconds=5), "a")
        obj = run(live, config(), "a")
        assert "minReadySeconds" not in obj["spec"]

    def test_removed_list_item_is_pruned(self) -> None:
        two = {"template": {"spec": {"containers": [{"name": "c"}, {"name": "d"}]}}}
        live = run(None, config(**two), "a")
        obj = run(live, config(template={"spec": {"containers": [{"name": "c"}]}}), "a")
        assert [c["name"] for c in containers(obj)] == ["c"]

    def test_fields_another_manager_owns_survive(self) -> None:
        live = run(None, config(minReadySeconds=5), "a")
        live = run(live, config(minReadySeconds=5), "b")
        obj = run(live, config(), "a")
        assert obj["spec"]["minReadySeconds"] == 5
        assert ("f:spec", "f:minReadySeconds") in owners(obj)["b"]
        assert ("f:spec", "f:minReadySeconds") not in owners(obj)["a"]

    def test_fields_set_by_update_are_not_pruned(self) -> None:
        live = run(None, config(), "a")
        edited = copy.deepcopy(live)
        edited["spec"]["paused"] = True
        mf.update(live, edited, manager="kubectl-edit", now="T")
        obj = run(edited, config(), "a")
        assert obj["spec"]["paused"] is True

    def test_object_without_managed_fields_is_owned_before_first_apply(self) -> None:
        live = config(replicas=3)
        with pytest.raises(apply.Conflict) as info:
            run(live, config(replicas=1), "a")
        assert info.value.items == [
            apply.ConflictItem('"before-first-apply" using apps/v1', ".spec.replicas")
        ]


class TestConflicts:
    def test_conflict_message_and_causes(self) -> None:
        live = run(None, config(), "a")
        with pytest.raises(apply.Conflict) as info:
            run(live, config(replicas=2), "b")
        assert str(info.value) == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'
        assert info.value.causes() == [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "a"',
                "field": ".spec.replicas",
            }
        ]

    def test_several_conflicts(self) -> None:
        live = run(None, config(), "a")
        changed = config(
            replicas=2, template={"spec": {"containers": [{"name": "c", "image": "j"}]}}
        )
        with pytest.raises(apply.Conflict) as info:
            run(live, changed, "b")
        assert str(info.value) == (
            'Apply failed with 2 conflicts: conflicts with "a":\n'
            "- .spec.replicas\n"
            '- .spec.template.spec.containers[name="c"].image'
        )

    def test_same_value_is_shared_not_a_conflict(self) -> None:
        live = run(None, config(), "a")
        obj = run(live, config(), "b")
        assert ("f:spec", "f:replicas") in owners(obj)["a"]
        assert ("f:spec", "f:replicas") in owners(obj)["b"]

    def test_force_takes_ownership(self) -> None:
        live = run(None, config(), "a")
        obj = run(live, config(replicas=7), "b", force=True)
        assert obj["spec"]["replicas"] == 7
        assert ("f:spec", "f:replicas") not in owners(obj)["a"]
        assert ("f:spec", "f:replicas") in owners(obj)["b"]

    def test_conflict_with_an_update_manager(self) -> None:
        live = config()
        mf.update(None, live, manager="kubectl-client-side-apply", now="T")
        with pytest.raises(
            apply.Conflict,
            match=r'conflict with "kubectl-client-side-apply" using apps/v1: \.spec\.replicas',
        ):
            run(live, config(replicas=4), "kubectl")


class TestBadConfigurations:
    def test_undeclared_fields_are_refused(self) -> None:
        cfg = config(bogus=1)
        cfg["metadata"]["namespace"] = "ns"
        with pytest.raises(errors.BadRequest) as info:
            run(None, cfg, "a")
        assert str(info.value) == (
            "failed to create typed patch object (ns/d; apps/v1, Kind=Deployment): "
            ".spec.bogus: field not declared in schema"
        )
        cfg = config(template={"spec": {"containers": [{"name": "c", "colour": "red"}]}})
        with pytest.raises(
            errors.BadRequest,
            match=r'\.spec\.template\.spec\.containers\[name="c"\]\.colour: field',
        ):
            run(None, cfg, "a")
        labels = config()
        labels["metadata"]["labels"] = {"any-key": "fine"}  # maps take any key
        run(None, labels, "a")

    @pytest.mark.parametrize(
        "cfg",
        [
            ["not", "an", "object"],
            {"kind": "Deployment", "metadata": {"name": "d"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}},
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d", "managedFields": []},
            },
        ],
    )
    def test_rejected(self, cfg: Any) -> None:
        with pytest.raises(errors.BadRequest):
            apply.check_config(cfg)
