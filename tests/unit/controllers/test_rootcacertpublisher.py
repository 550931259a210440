"""The kube-root-ca.crt ConfigMap in every active namespace."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import manager, rootcacertpublisher
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def namespace(name: str, phase: str = "Active") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if phase == "Terminating":
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta, "status": {"phase": phase}}


def configmap(data: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "kube-root-ca.crt", "namespace": "team"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def make(
    *objs: dict[str, Any], root_ca: str = CA
) -> tuple[fakeclient.FakeCluster, rootcacertpublisher.RootCACertPublisher]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = rootcacertpublisher.RootCACertPublisher(
        client=cluster.client, informers=cluster.informers, options={"root_ca_pem": root_ca}
    )
    return cluster, controller


async def test_creates_the_configmap_with_the_ca() -> None:
    cluster, controller = make(namespace("team"))
    await controller.reconcile("team")
    [action] = cluster.writes()
    assert (action.verb, action.resource, action.namespace) == ("create", "configmaps", "team")
    assert action.body["metadata"]["name"] == "kube-root-ca.crt"
    assert action.body["data"] == {"ca.crt": CA}
    description = action.body["metadata"]["annotations"]["kubernetes.io/description"]
    assert description.startswith(
        "Contains a CA bundle that can be used to verify the kube-apiserver"
    )


async def test_an_up_to_date_configmap_is_left_alone() -> None:
    current = configmap({"ca.crt": CA}, {"kubernetes.io/description": "x"})
    cluster, controller = make(namespace("team"), current)
    await controller.reconcile("team")
    assert cluster.writes() == []


@pytest.mark.parametrize(
    ("data", "annotations"),
    [
        ({"ca.crt": "stale"}, {"kubernetes.io/description": "x"}),
        ({"ca.crt": CA, "extra": "1"}, {"kubernetes.io/description": "x"}),
        ({"ca.crt": CA}, None),
    ],
    ids=["stale-ca", "extra-key", "no-description"],
)
async def test_a_changed_configmap_is_restored(
    data: dict[str, str], annotations: dict[str, str] | None
) -> None:
    cluster, controller = make(namespace("team"), configmap(data, annotations))
    await controller.reconcile("team")
    [action] = cluster.writes()
    assert action.verb == "update"
    assert action.body["data"] == {"ca.crt": CA}
    assert action.body["metadata"]["annotations"]["kubernetes.io/description"]


async def test_terminating_and_missing_namespaces_get_none() -> None:
    cluster, controller = make(namespace("team", "Terminating"))
    await controller.reconcile("team")
    await controller.reconcile("gone")
    assert cluster.actions == []


async def test_refused_create_is_not_retried() -> None:
    cluster, controller = make(namespace("team"))
    cluster.on(
        "create",
        "configmaps",
        lambda _: fakeclient.status_response(403, "Forbidden", "namespace team is terminating"),
    )
    result = await controller.reconcile("team")
    assert result.requeue_after is None


async def test_without_a_ca_nothing_is_published() -> None:
    cluster, controller = make(namespace("team"), root_ca="")
    await controller.reconcile("team")
    assert cluster.actions == []


def test_only_the_root_ca_configmap_maps_to_its_namespace() -> None:
    other = {"metadata": {"name": "settings", "namespace": "team"}}
    assert list(rootcacertpublisher.namespace_key(configmap({}))) == ["team"]
    assert list(rootcacertpublisher.namespace_key(other)) == []


def test_the_manager_passes_its_options() -> None:
    cluster = fakeclient.FakeCluster()
    [runner] = manager.build(
        ["root-ca-cert-publisher"], cluster.client, cluster.informers, {"root_ca_pem": CA}
    )
    assert isinstance(runner.controller, rootcacertpublisher.RootCACertPublisher)
    assert runner.controller.root_ca == CA
