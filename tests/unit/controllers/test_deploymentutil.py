"""The Deployment arithmetic: hashes, surge/unavailable, rolling steps, conditions."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import deploymentutil as util

pytestmark = pytest.mark.timeout(10)
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "a"}]},
}


def dep(replicas: int, surge: Any = None, unavailable: Any = None) -> dict[str, Any]:
    rolling = {
        k: v for k, v in (("maxSurge", surge), ("maxUnavailable", unavailable)) if v is not None
    }
    return {
        "metadata": {"name": "web", "generation": 1},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
        },
    }


def rs(
    name: str, replicas: int, available: int = 0, created: str = "2026-01-01T00:00:00Z"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "availableReplicas": available},
    }


class TestHash:
    def test_stable_label_safe_and_template_sensitive(self) -> None:
        first = util.template_hash(TEMPLATE)
        assert first == util.template_hash(TEMPLATE)
        assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789")
        other = {**TEMPLATE, "spec": {"containers": [{"name": "c", "image": "b"}]}}
        assert util.template_hash(other) != first
        assert util.template_hash(TEMPLATE, 1) != first

    def test_templates_compare_without_the_hash_label(self) -> None:
        hashed = {
            "metadata": {"labels": {"app": "web", "pod-template-hash": "x"}},
            "spec": TEMPLATE["spec"],
        }
        assert util.same_template(hashed, TEMPLATE)


class TestSurgeAndUnavailable:
    @pytest.mark.parametrize(
        ("replicas", "surge", "unavailable", "expected"),
        [
            (4, None, None, (1, 1)),  # 25% each: surge rounds up, unavailable down
            (3, None, None, (1, 0)),
            (10, "30%", "30%", (3, 3)),
            (3, 0, 0, (0, 1)),  # both zero would never progress
            (3, 2, 5, (2, 3)),
        ],
    )
    def test_resolution(
        self, replicas: int, surge: Any, unavailable: Any, expected: tuple[int, int]
    ) -> None:
        assert util.surge_and_unavailable(dep(replicas, surge, unavailable)) == expected


class TestRollingSteps:
    def test_the_new_set_grows_up_to_the_surge(self) -> None:
        old, new = rs("old", 3, 3), rs("new", 0)
        assert util.new_rs_replicas(dep(3, 1, 0), [old, new], new) == 1

    def test_no_growth_when_the_surge_is_used(self) -> None:
        old, new = rs("old", 3, 3), rs("new", 1)
        assert util.new_rs_replicas(dep(3, 1, 0), [old, new], new) == 1

    def test_old_sets_shrink_only_as_far_as_availability_allows(self) -> None:
        old, new = rs("old", 3, 3), rs("new", 1, 1)
        # 4 pods, 4 available, 3 must stay available: one old pod may go
        assert util.scale_down_plan(dep(3, 1, 0), [old, new], [old], new) == {"old": 2}

    def test_nothing_shrinks_while_the_new_pods_are_unavailable(self) -> None:
        old, new = rs("old", 3, 3), rs("new", 1, 0)
        assert util.scale_down_plan(dep(3, 1, 0), [old, new], [old], new) == {}

    def test_unhealthy_old_pods_go_first(self) -> None:
        old, new = rs("old", 3, 1), rs("new", 1, 1)
        plan = util.scale_down_plan(dep(3, 1, 1), [old, new], [old], new)
        assert plan == {"old": 1}


class TestConditions:
    def test_an_unchanged_status_keeps_its_times(self) -> None:
        first = util.condition("Available", "True", "R", "m", "t1")
        again = util.condition("Available", "True", "R", "m", "t2")
        [kept] = util.set_condition([first], again)
        assert kept["lastTransitionTime"] == "t1"
        assert kept["lastUpdateTime"] == "t1"

    def test_complete_needs_every_count_and_the_generation(self) -> None:
        d = dep(2)
        full = {
            "updatedReplicas": 2,
            "replicas": 2,
            "availableReplicas": 2,
            "observedGeneration": 1,
        }
        assert util.complete(d, full)
        assert not util.complete(d, {**full, "availableReplicas": 1})


class TestHashShape:
    def test_the_hash_uses_kubernetes_safe_alphabet_over_the_decimal_value(self) -> None:
        # SafeEncodeString maps the digits 0-9 to 4 5 6 7 8 9 b c d f
        assert util.safe_encode("0123456789") == "456789bcdf"
        pod_hash = util.template_hash(TEMPLATE)
        assert 1 <= len(pod_hash) <= 10
        assert set(pod_hash) <= set("456789bcdf")


class TestNewSetAnnotations:
    def test_a_new_set_gets_the_deployments_annotations_but_not_its_own(self) -> None:
        d = dep(4, 1)
        d["metadata"]["annotations"] = {
            "kubernetes.io/change-cause": "why",
            util.REVISION: "7",
            util.LAST_APPLIED: "{}",
        }
        assert util.new_rs_annotations(d, None, 3) == {
            "kubernetes.io/change-cause": "why",
            util.REVISION: "3",
            util.DESIRED_REPLICAS: "4",
            util.MAX_REPLICAS: "5",
        }

    def test_a_set_brought_back_keeps_its_former_revisions(self) -> None:
        back = rs("old", 0)
        back["metadata"]["annotations"] = {util.REVISION: "2", util.REVISION_HISTORY: "1"}
        out = util.new_rs_annotations(dep(1), back, 5)
        assert (out[util.REVISION], out[util.REVISION_HISTORY]) == ("5", "1,2")
        assert util.new_rs_annotations(dep(1), {**back}, 2)[util.REVISION] == "2"
        assert util.REVISION_HISTORY not in util.new_rs_annotations(dep(1), rs("x", 0), 1)

    def test_the_history_is_trimmed_from_the_oldest(self) -> None:
        history = ",".join(str(n) for n in range(1, 600))
        trimmed = util._append_history(history, "600")
        assert len(trimmed) <= util.MAX_HISTORY_CHARS
        assert trimmed.endswith(",599,600")
        assert not trimmed.startswith("1,")


def sized(name: str, replicas: int, desired: int, max_replicas: int, created: str) -> Any:
    out = rs(name, replicas, replicas, created)
    out["metadata"]["annotations"] = {
        util.DESIRED_REPLICAS: str(desired),
        util.MAX_REPLICAS: str(max_replicas),
    }
    return out


class TestScalingEvents:
    def test_a_set_sized_for_another_replica_count_is_a_scaling_event(self) -> None:
        current = sized("a", 3, 3, 4, "2026-01-01T00:00:00Z")
        assert not util.scaling_event(dep(3), [current])
        assert util.scaling_event(dep(5), [current])
        assert not util.scaling_event(dep(5), [{**current, "spec": {"replicas": 0}}])

    def test_one_active_set_or_else_the_newest(self) -> None:
        old = sized("old", 0, 3, 4, "2026-01-01T00:00:00Z")
        new = sized("new", 3, 3, 4, "2026-01-02T00:00:00Z")
        assert util.active_or_latest(new, [old]) is new
        idle_new = {**new, "spec": {"replicas": 0}}
        assert util.active_or_latest(idle_new, [old]) is idle_new
        both = {**old, "spec": {"replicas": 1}}
        assert util.active_or_latest(new, [both]) is None

    def test_proportional_scale_up_and_down(self) -> None:
        # Kubernetes' own example: 10 -> 20 replicas, maxSurge 3, sets of 7 and 6 (13 pods)
        old = sized("old", 7, 10, 13, "2026-01-01T00:00:00Z")
        new = sized("new", 6, 10, 13, "2026-01-02T00:00:00Z")
        assert util.proportional_sizes(dep(20, 3, 2), [old, new]) == {"old": 12, "new": 11}
        # and down to 5 (8 allowed): 7 * 8 / 13 = 4.3 -> 4, 6 * 8 / 13 = 3.7 -> 4
        assert util.proportional_sizes(dep(5, 3, 2), [old, new]) == {"old": 4, "new": 4}

    def test_leftovers_go_to_the_biggest_set_and_zero_takes_all(self) -> None:
        a = sized("a", 1, 2, 3, "2026-01-01T00:00:00Z")
        b = sized("b", 2, 2, 3, "2026-01-02T00:00:00Z")
        assert sum(util.proportional_sizes(dep(3, 1, 0), [a, b]).values()) == 4
        assert util.proportional_sizes(dep(0, 1, 0), [a, b]) == {"a": 0, "b": 0}


class TestConditionRules:
    def test_same_status_and_reason_keeps_the_condition_as_it_is(self) -> None:
        first = util.condition("Progressing", "True", "ReplicaSetUpdated", "m1", "t1")
        again = util.condition("Progressing", "True", "ReplicaSetUpdated", "m2", "t2")
        assert util.set_condition([first], again) == [first]
        [changed] = util.set_condition(
            [first], util.condition("Progressing", "True", "X", "m", "t3")
        )
        assert (changed["lastTransitionTime"], changed["lastUpdateTime"]) == ("t1", "t3")

    def test_progress_refreshes_the_update_time_only(self) -> None:
        first = util.condition("Progressing", "True", "ReplicaSetUpdated", "m1", "t1")
        again = util.condition("Progressing", "True", "ReplicaSetUpdated", "m2", "t2")
        [cond] = util.replace_condition([first], again)
        assert (cond["lastTransitionTime"], cond["lastUpdateTime"], cond["message"]) == (
            "t1",
            "t2",
            "m2",
        )

    def test_recreate_has_no_surge_and_no_unavailability_budget(self) -> None:
        d = {"spec": {"replicas": 3, "strategy": {"type": "Recreate"}}}
        assert util.surge_and_unavailable(d) == (0, 0)
