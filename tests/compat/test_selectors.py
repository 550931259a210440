"""Listing through the official client: label selectors (equality and set-based), field
selectors per kind, all-namespace lists and limit/continue paging."""

from __future__ import annotations

import uuid

import kubernetes
import pytest

from tests.compat.helpers import Obj

pytestmark = pytest.mark.compat

LABELS = {
    "a": {"tier": "web", "env": "prod"},
    "b": {"tier": "web", "env": "dev"},
    "c": {"tier": "db", "env": "prod", "critical": "yes"},
    "d": {"tier": "cache"},
    "e": {},
}


@pytest.fixture
def labelled(core: kubernetes.client.CoreV1Api, ns: str) -> str:
    for name, labels in LABELS.items():
        core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": labels}})
    return ns


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", "ab"),
        ("tier==web", "ab"),
        ("tier!=web", "cde"),
        ("tier=web,env=prod", "a"),
        ("tier in (web,db)", "abc"),
        ("tier notin (web,db)", "de"),
        ("env", "abc"),
        ("!env", "de"),
        ("critical,tier in (db)", "c"),
        ("env notin (dev),tier", "acd"),
        ("tier=nothing", ""),
    ],
)
def test_label_selectors(
    core: kubernetes.client.CoreV1Api, labelled: str, selector: str, expected: str
) -> None:
    listed = core.list_namespaced_config_map(labelled, label_selector=selector)
    assert "".join(sorted(c.metadata.name for c in listed.items)) == expected


def test_label_selector_across_namespaces(core: kubernetes.client.CoreV1Api, labelled: str) -> None:
    listed = core.list_config_map_for_all_namespaces(label_selector="tier=web")
    mine = [(c.metadata.namespace, c.metadata.name) for c in listed.items]
    assert (labelled, "a") in mine
    assert (labelled, "b") in mine
    assert all(c.metadata.labels["tier"] == "web" for c in listed.items)


def test_field_selectors_on_metadata(core: kubernetes.client.CoreV1Api, labelled: str) -> None:
    by_name = core.list_namespaced_config_map(labelled, field_selector="metadata.name=c")
    assert [c.metadata.name for c in by_name.items] == ["c"]
    not_name = core.list_namespaced_config_map(labelled, field_selector="metadata.name!=c")
    assert sorted(c.metadata.name for c in not_name.items) == list("abde")

    everywhere = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={labelled}"
    )
    assert sorted(c.metadata.name for c in everywhere.items) == list("abcde")
    both = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={labelled},metadata.name=a", label_selector="env=prod"
    )
    assert [(c.metadata.namespace, c.metadata.name) for c in both.items] == [(labelled, "a")]


def test_all_namespaces_list_spans_namespaces(core: kubernetes.client.CoreV1Api) -> None:
    names = []
    for _ in range(2):
        name = f"t-span-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name}})
        core.create_namespaced_config_map(name, {"metadata": {"name": "same"}})
        names.append(name)
    listed = core.list_config_map_for_all_namespaces(field_selector="metadata.name=same")
    assert {c.metadata.namespace for c in listed.items} >= set(names)


def test_pod_field_selectors(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    def pod(name: str, node: str | None) -> Obj:
        spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
        if node:
            spec["nodeName"] = node
        return {"metadata": {"name": name}, "spec": spec}

    core.create_namespaced_pod(ns, pod("on-1", "node-1"))
    core.create_namespaced_pod(ns, pod("on-2", "node-2"))
    core.create_namespaced_pod(ns, pod("nowhere", None))
    running = core.read_namespaced_pod("on-2", ns)
    running.status.phase = "Running"
    core.replace_namespaced_pod_status("on-2", ns, running)

    def names(**selector: str) -> list[str]:
        return sorted(p.metadata.name for p in core.list_namespaced_pod(ns, **selector).items)

    assert names(field_selector="spec.nodeName=node-1") == ["on-1"]
    assert names(field_selector="spec.nodeName=") == ["nowhere"]  # unscheduled pods
    assert names(field_selector="spec.nodeName!=") == ["on-1", "on-2"]
    assert names(field_selector="status.phase=Running") == ["on-2"]
    assert names(field_selector="status.phase=Pending") == ["nowhere", "on-1"]
    assert names(field_selector="status.phase!=Running,spec.nodeName=node-1") == ["on-1"]
    all_ns = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-2")
    assert [(p.metadata.namespace, p.metadata.name) for p in all_ns.items] == [(ns, "on-2")]


def test_event_field_selectors(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    for name, target in (("e1", "web-0"), ("e2", "web-1"), ("e3", "web-0")):
        core.create_namespaced_event(
            ns,
            {
                "metadata": {"name": name},
                "involvedObject": {
                    "kind": "Pod",
                    "name": target,
                    "namespace": ns,
                    "uid": "u-" + target,
                },
                "reason": "Tested",
                "message": "m",
                "type": "Normal",
            },
        )
    listed = core.list_namespaced_event(ns, field_selector="involvedObject.name=web-0")
    assert sorted(e.metadata.name for e in listed.items) == ["e1", "e3"]
    # what `kubectl describe` sends
    described = core.list_namespaced_event(
        ns, field_selector="involvedObject.name=web-1,involvedObject.uid=u-web-1"
    )
    assert [e.metadata.name for e in described.items] == ["e2"]
    by_kind = core.list_namespaced_event(ns, field_selector="involvedObject.kind=Pod,reason=Tested")
    assert len(by_kind.items) == 3


def test_paging_with_limit_and_continue(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    for i in range(7):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"p{i}"}})
    first = core.list_namespaced_config_map(ns, limit=3)
    assert [c.metadata.name for c in first.items] == ["p0", "p1", "p2"]
    assert first.metadata._continue
    assert first.metadata.remaining_item_count == 4

    # Later pages come from the first page's snapshot: later writes are not in them.
    core.create_namespaced_config_map(ns, {"metadata": {"name": "p9"}})
    core.delete_namespaced_config_map("p5", ns)
    seen = [c.metadata.name for c in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(ns, limit=3, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
    assert seen == [f"p{i}" for i in range(7)]

    fresh = core.list_namespaced_config_map(ns)
    assert [c.metadata.name for c in fresh.items] == ["p0", "p1", "p2", "p3", "p4", "p6", "p9"]
    assert fresh.metadata._continue is None


def test_paging_with_a_selector(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    for i in range(6):
        labels = {"even": str(i % 2 == 0).lower()}
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"q{i}", "labels": labels}})
    seen, token = [], None
    while True:
        page = core.list_namespaced_config_map(
            ns, label_selector="even=true", limit=2, _continue=token
        )
        assert len(page.items) <= 2
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == ["q0", "q2", "q4"]


def test_paging_all_namespaces(core: kubernetes.client.CoreV1Api) -> None:
    total = core.list_namespace()
    seen, token = [], None
    while True:
        page = core.list_namespace(limit=1, _continue=token)
        seen += [n.metadata.name for n in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == [n.metadata.name for n in total.items]
    assert len(seen) == len(set(seen)) >= 4
