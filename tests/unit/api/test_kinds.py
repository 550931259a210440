"""The kind registry: identity, discovery order, short names and CLI resolution."""

from __future__ import annotations

import pytest

from kybern.api import kinds, schema


def test_every_resource_has_a_schema_with_its_gvk() -> None:
    for info in kinds.all_resources():
        gvks = schema.group_version_kinds(info.schema)
        assert {"group": info.group, "version": info.version, "kind": info.kind} in gvks


def test_api_version_and_list_kind() -> None:
    deploy = kinds.for_kind("apps/v1", "Deployment")
    pod = kinds.for_kind("v1", "Pod")
    assert deploy is not None
    assert pod is not None
    assert (deploy.api_version, deploy.list_kind) == ("apps/v1", "DeploymentList")
    assert (pod.api_version, pod.group, pod.singular) == ("v1", "", "pod")


def test_lookup_by_group_version_plural() -> None:
    info = kinds.lookup("autoscaling", "v1", "horizontalpodautoscalers")
    assert info is not None
    assert info.kind == "HorizontalPodAutoscaler"
    assert kinds.lookup("apps", "v1", "pods") is None
    assert kinds.lookup("", "v1", "nonexistent") is None


def test_unique_group_version_plural() -> None:
    keys = [(i.group, i.version, i.plural) for i in kinds.all_resources()]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("text", "group", "version", "kind"),
    [
        ("po", "", "v1", "Pod"),
        ("pods", "", "v1", "Pod"),
        ("pod", "", "v1", "Pod"),
        ("Pod", "", "v1", "Pod"),
        ("deploy", "apps", "v1", "Deployment"),
        ("deployments.apps", "apps", "v1", "Deployment"),
        ("deployments.v1.apps", "apps", "v1", "Deployment"),
        ("hpa", "autoscaling", "v2", "HorizontalPodAutoscaler"),
        ("hpa.v1.autoscaling", "autoscaling", "v1", "HorizontalPodAutoscaler"),
        ("ev", "", "v1", "Event"),
        ("events", "", "v1", "Event"),
        ("events.events.k8s.io", "events.k8s.io", "v1", "Event"),
        ("crd", "apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        ("crds", "apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        ("netpol", "networking.k8s.io", "v1", "NetworkPolicy"),
        ("limits", "", "v1", "LimitRange"),
        ("quota", "", "v1", "ResourceQuota"),
        ("cj", "batch", "v1", "CronJob"),
        ("sts", "apps", "v1", "StatefulSet"),
        ("pc", "scheduling.k8s.io", "v1", "PriorityClass"),
    ],
)
def test_resolve(text: str, group: str, version: str, kind: str) -> None:
    info = kinds.resolve(text)
    assert info is not None
    assert (info.group, info.version, info.kind) == (group, version, kind)


@pytest.mark.parametrize("text", ["bogus", "pods.apps", "deployments.v2.apps", ""])
def test_resolve_unknown(text: str) -> None:
    assert kinds.resolve(text) is None


def test_groups_discovery_order() -> None:
    names = [g for g, _, _ in kinds.groups()]
    assert names[:6] == [
        "",
        "apps",
        "events.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
    ]
    assert names.index("batch") < names.index("networking.k8s.io") < names.index("policy")
    assert names[-1] == "discovery.k8s.io"
    autoscaling = {g: (v, p) for g, v, p in kinds.groups()}["autoscaling"]
    assert autoscaling == (("v2", "v1"), "v2")


def test_every_group_is_served() -> None:
    for group, versions, preferred in kinds.groups():
        assert preferred == versions[0]
        for version in versions:
            assert kinds.resources_for(group, version)


def test_storage_shared_across_versions() -> None:
    v1 = kinds.lookup("autoscaling", "v1", "horizontalpodautoscalers")
    v2 = kinds.lookup("autoscaling", "v2", "horizontalpodautoscalers")
    core_ev = kinds.lookup("", "v1", "events")
    new_ev = kinds.lookup("events.k8s.io", "v1", "events")
    assert v1
    assert v2
    assert core_ev
    assert new_ev
    assert v1.storage_resource == v2.storage_resource == "horizontalpodautoscalers.autoscaling"
    assert v1.storage_version == v2.storage_version == "autoscaling/v2"
    assert core_ev.storage_resource == new_ev.storage_resource == "events"
    assert core_ev.storage_version == new_ev.storage_version == "v1"


def test_storage_resources_distinct_per_resource() -> None:
    by_storage: dict[str, set[str]] = {}
    for info in kinds.all_resources():
        by_storage.setdefault(info.storage_resource, set()).add(info.plural)
    assert all(len(plurals) == 1 for plurals in by_storage.values())


def test_subresources_and_categories() -> None:
    pod = kinds.resolve("pods")
    deploy = kinds.resolve("deployments")
    cm = kinds.resolve("configmaps")
    assert pod
    assert deploy
    assert cm
    assert {"status", "binding", "eviction", "log", "exec", "portforward"} <= set(pod.subresources)
    assert deploy.has_status
    assert deploy.has_scale
    assert "all" in deploy.categories
    assert not cm.has_status
    assert cm.categories == ()
    scalable = {i.plural for i in kinds.all_resources() if i.has_scale}
    assert scalable == {"deployments", "replicasets", "statefulsets", "replicationcontrollers"}
    in_all = {i.plural for i in kinds.all_resources() if "all" in i.categories}
    assert in_all == {
        "pods",
        "services",
        "replicationcontrollers",
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
        "jobs",
        "cronjobs",
        "horizontalpodautoscalers",
    }


def test_scope_and_verbs() -> None:
    ns = kinds.resolve("ns")
    node = kinds.resolve("nodes")
    role = kinds.resolve("roles")
    assert ns
    assert node
    assert role
    assert not ns.namespaced
    assert not node.namespaced
    assert role.namespaced
    assert "deletecollection" not in ns.verbs
    assert node.verbs == kinds.ALL_VERBS
    assert list(kinds.ALL_VERBS) == sorted(kinds.ALL_VERBS)
