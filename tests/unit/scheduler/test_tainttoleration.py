from __future__ import annotations

from typing import Any

import pytest

from kybern.scheduler import framework
from kybern.scheduler.plugins import tainttoleration

from . import objects

pytestmark = pytest.mark.timeout(10)
CP = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("toleration", "taint", "ok"),
    [
        (
            {"key": "a", "operator": "Equal", "value": "1", "effect": "NoSchedule"},
            {"key": "a", "value": "1", "effect": "NoSchedule"},
            True,
        ),
        ({"key": "a", "value": "1"}, {"key": "a", "value": "1", "effect": "NoExecute"}, True),
        ({"key": "a", "value": "2"}, {"key": "a", "value": "1", "effect": "NoSchedule"}, False),
        (
            {"key": "a", "operator": "Exists"},
            {"key": "a", "value": "x", "effect": "NoSchedule"},
            True,
        ),
        ({"operator": "Exists"}, {"key": "b", "effect": "NoExecute"}, True),
        (
            {"key": "a", "operator": "Exists", "effect": "NoExecute"},
            {"key": "a", "effect": "NoSchedule"},
            False,
        ),
        ({"key": "b", "operator": "Exists"}, {"key": "a", "effect": "NoSchedule"}, False),
    ],
)
def test_tolerates(toleration: dict[str, str], taint: dict[str, str], ok: bool) -> None:
    assert tainttoleration.tolerates(toleration, taint) is ok


def test_filter_message_names_the_first_untolerated_taint() -> None:
    n = objects.node_info(objects.node("n", taints=[CP]))
    status = tainttoleration.TaintToleration().filter(
        framework.CycleState(), objects.info(objects.pod("p")), n
    )
    assert status.code is framework.Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == (
        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
    )


def test_prefer_no_schedule_does_not_filter_but_scores_lower() -> None:
    plugin = tainttoleration.TaintToleration()
    soft = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}
    nodes = [
        objects.node_info(objects.node("clean")),
        objects.node_info(objects.node("one", taints=[soft])),
        objects.node_info(objects.node("two", taints=[soft, {**soft, "key": "k2"}])),
    ]
    p = objects.info(objects.pod("p"))
    state = framework.CycleState()
    assert all(plugin.filter(state, p, n).ok for n in nodes)
    plugin.pre_score(state, p, nodes, objects.snapshot(*nodes))
    scores = [plugin.score(state, p, n) for n in nodes]
    plugin.normalize_score(state, p, scores)
    assert scores == [100, 50, 0]


def test_tolerated_prefer_no_schedule_scores_full() -> None:
    plugin = tainttoleration.TaintToleration()
    soft: dict[str, Any] = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}
    n = objects.node_info(objects.node("one", taints=[soft]))
    p = objects.info(objects.pod("p", spec={"tolerations": [{"key": "k", "operator": "Exists"}]}))
    state = framework.CycleState()
    plugin.pre_score(state, p, [n], objects.snapshot(n))
    scores = [plugin.score(state, p, n)]
    plugin.normalize_score(state, p, scores)
    assert scores == [100]
