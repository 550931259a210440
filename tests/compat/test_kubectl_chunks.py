"""The real kubectl's chunked lists (`--chunk-size`: `limit` + `continue` requests, pages
printed as one table) and the official Python client paging through a collection that
changes between its pages (every page at the first page's resourceVersion)."""

from __future__ import annotations

import re
from typing import Any

import kubernetes

from tests.support import cluster
from tests.support import kubectl as kubectl_


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "chunks"}},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


def create_pods(raw: cluster.RawClient, ns: str, names: list[str]) -> None:
    for name in names:
        reply = raw.request("POST", f"/api/v1/namespaces/{ns}/pods", pod(name))
        assert reply.status == 201, (reply.status, reply.body)


def test_get_pods_chunk_size_2_pages_through_everything(
    kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str
) -> None:
    names = [f"p-{i}" for i in range(7)]
    create_pods(raw, ns, names)
    result = kubectl("get", "pods", "-n", ns, "--chunk-size=2", "-v=6")
    lines = result.out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "READY", "STATUS"]  # one header for all pages
    assert [line.split()[0] for line in lines[1:]] == names
    requests = re.findall(r"GET https://\S+/pods\?(\S+)", result.err)
    assert len(requests) == 4, result.err  # 2 + 2 + 2 + 1
    assert all("limit=2" in query for query in requests)
    assert sum("continue=" in query for query in requests) == 3


def test_get_all_namespaces_by_name_in_chunks(
    kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str
) -> None:
    names = [f"q-{i}" for i in range(5)]
    create_pods(raw, ns, names)
    out = kubectl("get", "pods", "-A", "-l", "app=chunks", "--chunk-size=2", "-o", "name").out
    assert [f"pod/{n}" for n in names] == [line for line in out.split() if "/q-" in line]


def page_of(listed: kubernetes.client.V1PodList) -> tuple[list[str], str, str, int | None]:
    """(names, continue token, resourceVersion, remainingItemCount) of one page."""
    meta = listed.metadata
    assert meta is not None
    names = [p.metadata.name for p in listed.items if p.metadata and p.metadata.name]
    return names, meta._continue or "", meta.resource_version or "", meta.remaining_item_count


def test_python_client_pages_see_the_first_pages_snapshot(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    names = [f"s-{i}" for i in range(6)]
    create_pods(raw, ns, names)
    seen, token, rv, remaining = page_of(core.list_namespaced_pod(ns, limit=2))
    assert remaining == 4
    core.delete_namespaced_pod("s-4", ns, grace_period_seconds=0)  # after the first page
    create_pods(raw, ns, ["s-2a"])
    while token:
        more, token, page_rv, _ = page_of(core.list_namespaced_pod(ns, limit=2, _continue=token))
        assert page_rv == rv
        seen += more
    assert seen == names  # as of the first page: no s-2a, s-4 still there
    now, _, _, _ = page_of(core.list_namespaced_pod(ns))
    assert "s-2a" in now
