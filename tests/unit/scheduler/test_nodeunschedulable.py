from __future__ import annotations

import pytest

from kybern.scheduler import framework
from kybern.scheduler.plugins import nodeunschedulable

from . import objects

pytestmark = pytest.mark.timeout(10)
TOLERATE = {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("cordoned", "tolerations", "ok"),
    [
        (False, [], True),
        (True, [], False),
        (True, [TOLERATE], True),
        (True, [{"operator": "Exists"}], True),
        (True, [{**TOLERATE, "effect": "NoExecute"}], False),
    ],
)
def test_filter(cordoned: bool, tolerations: list[dict[str, str]], ok: bool) -> None:
    p = objects.info(objects.pod("p", spec={"tolerations": tolerations}))
    n = objects.node_info(objects.node("n", unschedulable=cordoned))
    status = nodeunschedulable.NodeUnschedulable().filter(framework.CycleState(), p, n)
    assert status.ok is ok
    if not ok:
        assert status.reasons == ("node(s) were unschedulable",)
        assert status.code is framework.Code.UNSCHEDULABLE_AND_UNRESOLVABLE
