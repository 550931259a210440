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
