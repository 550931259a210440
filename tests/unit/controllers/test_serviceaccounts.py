"""The default ServiceAccount in every active namespace."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import serviceaccounts
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)


def namespace(name: str, phase: str = "Active") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if phase == "Terminating":
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta, "status": {"phase": phase}}


def make(
    *objs: dict[str, Any],
) -> tuple[fakeclient.FakeCluster, serviceaccounts.ServiceAccountController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = serviceaccounts.ServiceAccountController(
        client=cluster.client, informers=cluster.informers
    )
    return cluster, controller


async def test_creates_the_default_account() -> None:
    cluster, controller = make(namespace("team"))
    await controller.reconcile("team")
    [action] = cluster.writes()
    assert (action.verb, action.resource, action.namespace) == ("create", "serviceaccounts", "team")
    assert action.body["metadata"]["name"] == "default"


async def test_an_existing_account_is_left_alone() -> None:
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": "team"},
    }
    cluster, controller = make(namespace("team"), account)
    await controller.reconcile("team")
    assert cluster.actions == []


async def test_terminating_namespaces_get_none() -> None:
    cluster, controller = make(namespace("team", "Terminating"))
    await controller.reconcile("team")
    assert cluster.actions == []


async def test_already_exists_from_a_lagging_cache_is_fine() -> None:
    cluster, controller = make(namespace("team"))
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": "team"},
    }
    cluster.add(account, cache=False)
    await controller.reconcile("team")
    assert [a.verb for a in cluster.writes()] == ["create"]


def test_only_the_default_account_maps_to_its_namespace() -> None:
    default = {"metadata": {"name": "default", "namespace": "a"}}
    other = {"metadata": {"name": "builder", "namespace": "a"}}
    assert list(serviceaccounts.namespace_key(default)) == ["a"]
    assert list(serviceaccounts.namespace_key(other)) == []
