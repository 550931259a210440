from __future__ import annotations

from typing import Any

import pytest

from kybern.scheduler import framework
from kybern.scheduler.plugins import nodeaffinity

from . import objects

pytestmark = pytest.mark.timeout(10)
REASON = "node(s) didn't match Pod's node affinity/selector"


def _required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
            }
        }
    }


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}


LABELS = {"zone": "a", "gpu": "true", "cores": "8"}


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ({}, True),
        ({"nodeSelector": {"zone": "a"}}, True),
        ({"nodeSelector": {"zone": "b"}}, False),
        (_required(_expr("zone", "In", "a", "b")), True),
        (_required(_expr("zone", "NotIn", "a")), False),
        (_required(_expr("gpu", "Exists")), True),
        (_required(_expr("gpu", "DoesNotExist")), False),
        (_required(_expr("cores", "Gt", "4")), True),
        (_required(_expr("cores", "Lt", "4")), False),
        (_required(_expr("cores", "Gt", "x")), False),
        (_required(_expr("zone", "In", "b"), _expr("gpu", "Exists")), True),  # terms are ORed
        (
            _required(
                {
                    "matchExpressions": [
                        {"key": "zone", "operator": "In", "values": ["a"]},
                        {"key": "gpu", "operator": "DoesNotExist"},
                    ]
                }
            ),
            False,
        ),
        (
            _required(
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}
            ),
            True,
        ),
        (
            _required(
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["m"]}]}
            ),
            False,
        ),
        (_required({}), False),  # an empty term matches nothing
        ({**_required(_expr("zone", "In", "a")), "nodeSelector": {"gpu": "false"}}, False),
    ],
)
def test_filter(spec: dict[str, Any], ok: bool) -> None:
    p = objects.info(objects.pod("p", spec=spec))
    n = objects.node_info(objects.node("n", labels=LABELS))
    status = nodeaffinity.NodeAffinity().filter(framework.CycleState(), p, n)
    assert status.ok is ok
    if not ok:
        assert status.reasons == (REASON,)
        assert status.code is framework.Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_pre_filter_narrows_to_match_fields_names_and_skips_without_constraints() -> None:
    plugin = nodeaffinity.NodeAffinity()
    spec = _required(
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}]}
    )
    names, status = plugin.pre_filter(
        framework.CycleState(), objects.info(objects.pod("p", spec=spec)), objects.snapshot()
    )
    assert (names, status.ok) == ({"n1", "n2"}, True)
    _, status = plugin.pre_filter(
        framework.CycleState(), objects.info(objects.pod("p")), objects.snapshot()
    )
    assert status.code is framework.Code.SKIP


def test_preferred_terms_score_by_weight_then_normalize() -> None:
    spec = {
        "affinity": {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "preference": _expr("zone", "In", "a")},
                    {"weight": 30, "preference": _expr("gpu", "Exists")},
                ]
            }
        }
    }
    plugin = nodeaffinity.NodeAffinity()
    p = objects.info(objects.pod("p", spec=spec))
    nodes = [
        objects.node_info(objects.node(n, labels=lb))
        for n, lb in (("both", LABELS), ("zone", {"zone": "a"}), ("none", {}))
    ]
    state = framework.CycleState()
    assert plugin.pre_score(state, p, nodes, objects.snapshot(*nodes)).ok
    scores = [plugin.score(state, p, n) for n in nodes]
    assert scores == [40, 10, 0]
    plugin.normalize_score(state, p, scores)
    assert scores == [100, 25, 0]
