from __future__ import annotations

import pytest

from kybern.scheduler import framework
from kybern.scheduler.plugins import nodename

from . import objects

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("wanted", "node", "ok"), [("", "n1", True), ("n1", "n1", True), ("n2", "n1", False)]
)
def test_filter(wanted: str, node: str, ok: bool) -> None:
    p = objects.info(objects.pod("p", node_name=wanted))
    status = nodename.NodeName().filter(
        framework.CycleState(), p, objects.node_info(objects.node(node))
    )
    assert status.ok is ok
    if not ok:
        assert status.code is framework.Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == ("node(s) didn't match the requested node name",)
