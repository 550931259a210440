from __future__ import annotations

import pytest

from kybern.scheduler import framework
from kybern.scheduler.plugins import noderesourcesfit as fit

from . import objects

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("requests", "existing", "reasons"),
    [
        ({"cpu": "1"}, [], ()),
        ({"cpu": "5"}, [], ("Insufficient cpu",)),
        ({"cpu": "2"}, [{"cpu": "3"}], ("Insufficient cpu",)),
        ({"cpu": "1", "memory": "9Gi"}, [], ("Insufficient memory",)),
        ({"cpu": "5", "memory": "9Gi"}, [], ("Insufficient cpu", "Insufficient memory")),
        ({"ephemeral-storage": "20Gi"}, [], ("Insufficient ephemeral-storage",)),
        ({"example.com/gpu": "1"}, [], ("Insufficient example.com/gpu",)),
        ({"cpu": "4"}, [], ()),  # exactly allocatable fits
    ],
)
def test_filter_reasons(
    requests: dict[str, str], existing: list[dict[str, str]], reasons: tuple[str, ...]
) -> None:
    n = objects.node_info(
        objects.node("n", cpu="4", memory="8Gi", extra={"ephemeral-storage": "10Gi"}),
        *(objects.pod(f"e{i}", requests=r, node_name="n") for i, r in enumerate(existing)),
    )
    status = fit.NodeResourcesFit().filter(
        framework.CycleState(), objects.info(objects.pod("p", requests=requests)), n
    )
    assert status.reasons == reasons
    assert status.ok is (not reasons)
    if reasons:
        assert status.code is framework.Code.UNSCHEDULABLE


def test_extended_resource_fits_when_the_node_has_it() -> None:
    n = objects.node_info(objects.node("n", extra={"example.com/gpu": "2"}))
    p = objects.info(objects.pod("p", requests={"example.com/gpu": "2"}))
    assert fit.NodeResourcesFit().filter(framework.CycleState(), p, n).ok


def test_too_many_pods() -> None:
    n = objects.node_info(objects.node("n", pods="1"), objects.pod("e", node_name="n"))
    status = fit.NodeResourcesFit().filter(
        framework.CycleState(), objects.info(objects.pod("p")), n
    )
    assert status.reasons == ("Too many pods",)


def test_init_container_max_and_overhead_count() -> None:
    spec = {
        "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3"}}}],
        "overhead": {"cpu": "1500m"},
    }
    p = objects.info(objects.pod("p", cpu="1", spec=spec))
    status = fit.NodeResourcesFit().filter(
        framework.CycleState(), p, objects.node_info(objects.node("n", cpu="4"))
    )
    assert status.reasons == ("Insufficient cpu",)  # max(3, 1) + 1.5 > 4


def _score(plugin: fit.NodeResourcesFit, used_cpu: str) -> int:
    n = objects.node_info(
        objects.node("n", cpu="4", memory="8Gi"),
        objects.pod("e", cpu=used_cpu, memory="2Gi", node_name="n"),
    )
    return plugin.score(
        framework.CycleState(), objects.info(objects.pod("p", cpu="1", memory="2Gi")), n
    )


def test_least_allocated_prefers_empty_nodes_worst_fit() -> None:
    plugin = fit.NodeResourcesFit()
    # cpu (4-2)/4 = 50, memory (8-4)/8 = 50
    assert _score(plugin, "1") == 50
    assert _score(plugin, "3") == 25  # cpu 0, memory 50


def test_most_allocated_prefers_full_nodes_best_fit() -> None:
    plugin = fit.NodeResourcesFit(strategy=fit.MOST_ALLOCATED)
    assert _score(plugin, "1") == 50
    assert _score(plugin, "3") == 75  # cpu 100, memory 50


def test_requested_to_capacity_ratio_follows_the_shape() -> None:
    plugin = fit.new(
        {
            "scoringStrategy": {
                "type": "RequestedToCapacityRatio",
                "requestedToCapacityRatio": {
                    "shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]
                },
            }
        }
    )
    assert _score(plugin, "1") == 50
    hybrid = fit.NodeResourcesFit(
        strategy=fit.REQUESTED_TO_CAPACITY_RATIO, shape=[(0, 0), (50, 10), (100, 0)]
    )
    assert _score(hybrid, "1") == 100  # both at 50% utilisation: the peak


def test_scoring_uses_non_zero_defaults_for_best_effort_pods() -> None:
    n = objects.node_info(objects.node("n", cpu="1", memory="1Gi"))
    score = fit.NodeResourcesFit().score(framework.CycleState(), objects.info(objects.pod("p")), n)
    # cpu (1000-100)/1000 = 90, memory (1024-200)/1024 = 80
    assert score == (90 + 80) // 2
