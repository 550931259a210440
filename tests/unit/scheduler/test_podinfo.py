"""PodInfo: requests aggregated like Kubernetes (init containers max, sidecars, overhead)."""

from __future__ import annotations

import pytest

from kybern.scheduler import podinfo

from . import objects

pytestmark = pytest.mark.timeout(10)


def _c(cpu: str, *, sidecar: bool = False) -> dict[str, object]:
    c: dict[str, object] = {"name": "x", "resources": {"requests": {"cpu": cpu}}}
    if sidecar:
        c["restartPolicy"] = "Always"
    return c


def test_containers_add_up_and_init_containers_take_the_max() -> None:
    p = objects.pod(
        "p", spec={"containers": [_c("100m"), _c("200m")], "initContainers": [_c("1"), _c("500m")]}
    )
    assert podinfo.pod_info(p).requests["cpu"] == 1000


def test_sidecars_add_to_containers_and_run_alongside_later_init_containers() -> None:
    spec = {
        "containers": [_c("100m")],
        "initContainers": [_c("50m", sidecar=True), _c("300m"), _c("20m", sidecar=True)],
    }
    # app 100 + sidecars 70 = 170; init phase max(50, 300+50, 70) = 350
    assert podinfo.pod_info(objects.pod("p", spec=spec)).requests["cpu"] == 350


def test_overhead_is_added() -> None:
    p = objects.pod("p", cpu="100m", spec={"overhead": {"cpu": "250m", "memory": "1Mi"}})
    info = podinfo.pod_info(p)
    assert info.requests == {"cpu": 350, "memory": 1024 * 1024}


def test_non_zero_defaults_for_scoring() -> None:
    info = podinfo.pod_info(objects.pod("p"))
    assert info.requests == {}
    assert (info.non_zero_cpu, info.non_zero_memory) == (100, 200 * 1024 * 1024)


def test_equivalence_key_ignores_names_but_not_requirements() -> None:
    a = podinfo.pod_info(objects.pod("a", cpu="1", labels={"x": "1"}))
    b = podinfo.pod_info(objects.pod("b", cpu="1", labels={"x": "2"}))
    c = podinfo.pod_info(objects.pod("c", cpu="2"))
    assert a.equivalence_key() == b.equivalence_key() != c.equivalence_key()
