from __future__ import annotations

import pytest

from kybern.scheduler import framework
from kybern.scheduler.plugins import nodeports

from . import objects

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("wanted", "used", "ok"),
    [
        ([("0.0.0.0", "TCP", 80)], [], True),
        ([("0.0.0.0", "TCP", 80)], [("0.0.0.0", "TCP", 80)], False),
        ([("0.0.0.0", "UDP", 80)], [("0.0.0.0", "TCP", 80)], True),
        ([("10.0.0.1", "TCP", 80)], [("10.0.0.2", "TCP", 80)], True),
        ([("10.0.0.1", "TCP", 80)], [("0.0.0.0", "TCP", 80)], False),
        ([("0.0.0.0", "TCP", 80)], [("10.0.0.2", "TCP", 80)], False),
        ([("0.0.0.0", "TCP", 81)], [("0.0.0.0", "TCP", 80)], True),
    ],
)
def test_fits(
    wanted: list[tuple[str, str, int]], used: list[tuple[str, str, int]], ok: bool
) -> None:
    assert nodeports.fits(wanted, dict.fromkeys(used, 1)) is ok


def test_filter_against_pods_on_the_node_and_message() -> None:
    ports = [{"containerPort": 8080, "hostPort": 80}]
    n = objects.node_info(objects.node("n"), objects.pod("e", node_name="n", ports=ports))
    plugin = nodeports.NodePorts()
    p = objects.info(objects.pod("p", ports=ports))
    status = plugin.filter(framework.CycleState(), p, n)
    assert status.reasons == ("node(s) didn't have free ports for the requested pod ports",)
    assert status.code is framework.Code.UNSCHEDULABLE
    n.remove_pod("uid-default-e")
    assert plugin.filter(framework.CycleState(), p, n).ok


def test_pods_without_host_ports_skip() -> None:
    _, status = nodeports.NodePorts().pre_filter(
        framework.CycleState(),
        objects.info(objects.pod("p", ports=[{"containerPort": 80}])),
        objects.snapshot(),
    )
    assert status.code is framework.Code.SKIP
