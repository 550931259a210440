from __future__ import annotations

import pytest

from kybern.scheduler import framework
from kybern.scheduler.plugins import balancedallocation

from . import objects

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("fractions", "score"), [([0.5, 0.5], 100), ([1.0, 0.0], 50), ([0.2, 0.6], 80), ([], 100)]
)
def test_balance(fractions: list[float], score: int) -> None:
    assert balancedallocation.balance(fractions) == score


def test_score_uses_requests_after_placing_the_pod() -> None:
    plugin = balancedallocation.BalancedAllocation()
    n = objects.node_info(objects.node("n", cpu="4", memory="8Gi"))
    p = objects.info(objects.pod("p", cpu="2", memory="1Gi"))
    state = framework.CycleState()
    assert plugin.pre_score(state, p, [n], objects.snapshot(n)).ok
    assert plugin.score(state, p, n) == int((1 - abs(0.5 - 0.125) / 2) * 100)


def test_best_effort_pods_skip() -> None:
    p = objects.info(objects.pod("p"))
    status = balancedallocation.BalancedAllocation().pre_score(
        framework.CycleState(), p, [], objects.snapshot()
    )
    assert status.code is framework.Code.SKIP
