"""DefaultTolerationSeconds admission: the 300 s not-ready/unreachable tolerations."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.api import kinds
from kybern.apiserver import admission

pytestmark = pytest.mark.timeout(10)
PODS = kinds.lookup("", "v1", "pods")
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def pod(*tolerations: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}]}
    if tolerations:
        spec["tolerations"] = list(tolerations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


async def admit(obj: dict[str, Any]) -> list[dict[str, Any]]:
    assert PODS is not None
    await admission.DefaultTolerationSeconds().on_create(admission.Request(PODS), obj)
    return list(obj["spec"].get("tolerations") or [])


async def test_a_plain_pod_gets_both_tolerations_with_300_seconds() -> None:
    assert await admit(pod()) == [
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]


async def test_an_existing_toleration_is_kept_and_only_the_other_added() -> None:
    mine = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    got = await admit(pod(mine))
    assert got[0] == mine
    assert [t["key"] for t in got] == [UNREACHABLE, NOT_READY]


@pytest.mark.parametrize(
    "toleration",
    [
        {"operator": "Exists"},  # empty key and effect: everything
        {"operator": "Exists", "effect": "NoExecute"},
        {"key": "", "operator": "Exists", "effect": ""},
    ],
)
async def test_a_wildcard_toleration_needs_no_defaults(toleration: dict[str, Any]) -> None:
    assert await admit(pod(toleration)) == [toleration]


async def test_a_no_schedule_toleration_does_not_count() -> None:
    no_schedule = {"key": NOT_READY, "operator": "Exists", "effect": "NoSchedule"}
    assert len(await admit(pod(no_schedule))) == 3


async def test_daemon_set_tolerations_without_seconds_are_left_alone() -> None:
    daemon = [
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
    ]
    assert await admit(pod(*daemon)) == daemon


async def test_other_kinds_are_untouched() -> None:
    info = kinds.lookup("", "v1", "configmaps")
    assert info is not None
    obj: dict[str, Any] = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    await admission.DefaultTolerationSeconds().on_create(admission.Request(info), obj)
    assert obj == {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}


async def test_a_subresource_create_is_untouched() -> None:
    assert PODS is not None
    eviction: dict[str, Any] = {"kind": "Eviction", "metadata": {"name": "p"}, "spec": {}}
    await admission.DefaultTolerationSeconds().on_create(
        admission.Request(PODS, subresource="eviction"), eviction
    )
    assert eviction["spec"] == {}
