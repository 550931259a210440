from __future__ import annotations

import pytest

from kybern.scheduler import framework
from kybern.scheduler.plugins import imagelocality

from . import objects

pytestmark = pytest.mark.timeout(10)
MB = 1024 * 1024


def test_priority_clips_to_thresholds() -> None:
    assert imagelocality.priority(0, 1) == 0
    assert imagelocality.priority(10 * MB, 1) == 0
    assert imagelocality.priority(2000 * MB, 1) == 100
    assert imagelocality.priority((23 + 977 // 2) * MB, 1) == 49


def test_nodes_with_the_image_score_higher_weighted_by_spread() -> None:
    image = [{"names": ["registry.example/big:v1"], "sizeBytes": 500 * MB}]
    nodes = [
        objects.node_info(objects.node("has", images=image)),
        objects.node_info(objects.node("no1")),
        objects.node_info(objects.node("no2")),
    ]
    plugin = imagelocality.ImageLocality()
    p = objects.info(objects.pod("p", image="registry.example/big:v1"))
    state = framework.CycleState()
    plugin.pre_score(state, p, nodes, objects.snapshot(*nodes))
    scores = [plugin.score(state, p, n) for n in nodes]
    # 500 MB * 1/3 of nodes = 166 MB -> (166-23)/(1000-23)
    assert scores == [imagelocality.priority(int(500 * MB / 3), 1), 0, 0]
    assert scores[0] > 0


def test_untagged_image_means_latest() -> None:
    image = [{"names": ["nginx:latest"], "sizeBytes": 900 * MB}]
    n = objects.node_info(objects.node("has", images=image))
    plugin = imagelocality.ImageLocality()
    p = objects.info(objects.pod("p", image="nginx"))
    state = framework.CycleState()
    plugin.pre_score(state, p, [n], objects.snapshot(n))
    assert plugin.score(state, p, n) == imagelocality.priority(900 * MB, 1)
