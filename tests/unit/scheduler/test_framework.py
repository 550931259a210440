from __future__ import annotations

import pytest

from kybern.scheduler import framework, plugins

from . import objects

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("percentage", "nodes", "expected"),
    [
        (0, 50, 50),  # fewer than 100 nodes: all
        (0, 100, 100),
        (0, 500, 230),  # 50 - 500/125 = 46%
        (0, 1000, 420),  # 42%
        (0, 5000, 500),  # 10%
        (0, 6000, 300),  # 50 - 48 = 2% -> floor 5%
        (0, 1500, 570),  # 38%
        (10, 500, 100),  # at least 100
        (30, 1000, 300),
        (100, 5000, 5000),
    ],
)
def test_num_feasible_nodes_to_find(percentage: int, nodes: int, expected: int) -> None:
    assert framework.num_feasible_nodes_to_find(percentage, nodes) == expected


def test_default_normalize() -> None:
    scores = [0, 5, 10]
    framework.default_normalize_score(scores)
    assert scores == [0, 50, 100]
    framework.default_normalize_score(scores, reverse=True)
    assert scores == [100, 50, 0]
    zeros = [0, 0]
    framework.default_normalize_score(zeros, reverse=True)
    assert zeros == [100, 100]


def test_plugins_sort_into_extension_points_in_order() -> None:
    fw = framework.Framework(plugins.build(), weights=plugins.DEFAULT_WEIGHTS)
    assert [p.name for p in fw.filters] == [
        "NodeUnschedulable",
        "NodeName",
        "TaintToleration",
        "NodeAffinity",
        "NodePorts",
        "NodeResourcesFit",
        "PodTopologySpread",
        "InterPodAffinity",
    ]
    assert [p.name for p in fw.post_filters] == ["DefaultPreemption"]
    weights = dict(zip([p.name for p in fw.scores], fw.weights, strict=True))
    assert weights["TaintToleration"] == 3
    assert weights["NodeResourcesFit"] == 1


def test_filter_stops_at_the_first_rejection_and_names_the_plugin() -> None:
    fw = framework.Framework(plugins.build())
    n = objects.node_info(objects.node("n", cpu="1", unschedulable=True))
    status = fw.run_filter(framework.CycleState(), objects.info(objects.pod("p", cpu="2")), n)
    assert status.plugin == "NodeUnschedulable"
    assert status.reasons == ("node(s) were unschedulable",)
