"""The real kubectl's `get` against a started server: Kubernetes' columns for every kind
(server-side printing), `-o wide`, `--show-labels`, `-A`, `--sort-by`, `-o custom-columns`,
`-o jsonpath`, `-o name`, and `-w` printing rows as events arrive.

Objects are created with raw JSON (one minimal manifest per kind from kinds_table), so these
tests depend only on the read path.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
from typing import Any

import pytest

from kybern.api import kinds
from tests.compat import kinds_table
from tests.support import cluster
from tests.support import kubectl as kubectl_

# What kubectl v1.32 prints as the header line against Kubernetes v1.32, per kind.
HEADERS = {
    "namespace": "NAME STATUS AGE",
    "pod": "NAME READY STATUS RESTARTS AGE",
    "service": "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
    "endpoints": "NAME ENDPOINTS AGE",
    "configmap": "NAME DATA AGE",
    "secret": "NAME TYPE DATA AGE",
    "node": "NAME STATUS ROLES AGE VERSION",
    "event": "LAST SEEN TYPE REASON OBJECT MESSAGE",
    "serviceaccount": "NAME SECRETS AGE",
    "replicationcontroller": "NAME DESIRED CURRENT READY AGE",
    "persistentvolume": (
        "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS "
        "VOLUMEATTRIBUTESCLASS REASON AGE"
    ),
    "persistentvolumeclaim": (
        "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE"
    ),
    "limitrange": "NAME CREATED AT",
    "resourcequota": "NAME REQUEST LIMIT AGE",
    "podtemplate": "NAME CONTAINERS IMAGES POD LABELS",
    "deployment": "NAME READY UP-TO-DATE AVAILABLE AGE",
    "replicaset": "NAME DESIRED CURRENT READY AGE",
    "statefulset": "NAME READY AGE",
    "daemonset": "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE",
    "controllerrevision": "NAME CONTROLLER REVISION AGE",
    "job": "NAME STATUS COMPLETIONS DURATION AGE",
    "cronjob": "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE",
    "hpa-v1": "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE",
    "hpa-v2": "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE",
    "lease": "NAME HOLDER AGE",
    "endpointslice": "NAME ADDRESSTYPE PORTS ENDPOINTS AGE",
    "event-v1": "LAST SEEN TYPE REASON OBJECT MESSAGE",
    "ingress": "NAME CLASS HOSTS ADDRESS PORTS AGE",
    "ingressclass": "NAME CONTROLLER PARAMETERS AGE",
    "networkpolicy": "NAME POD-SELECTOR AGE",
    "poddisruptionbudget": "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE",
    "role": "NAME CREATED AT",
    "clusterrole": "NAME CREATED AT",
    "rolebinding": "NAME ROLE AGE",
    "clusterrolebinding": "NAME ROLE AGE",
    "storageclass": ("NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"),
    "priorityclass": "NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY",
    "customresourcedefinition": "NAME CREATED AT",
}


def collection_path(info: kinds.ResourceInfo, namespace: str) -> str:
    root = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    scope = f"/namespaces/{namespace}" if info.namespaced else ""
    return f"{root}{scope}/{info.plural}"


def create(raw: cluster.RawClient, manifest: dict[str, Any], namespace: str) -> None:
    info = kinds.for_kind(manifest["apiVersion"], manifest["kind"])
    assert info is not None, manifest
    reply = raw.request("POST", collection_path(info, namespace), manifest)
    assert reply.status == 201, (reply.status, reply.body)


def words(line: str) -> str:
    return " ".join(line.split())


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def resource_arg(case: kinds_table.Case) -> str:
    """``plural.version.group``: the exact group-version even where it is not preferred."""
    info = kinds.for_kind(case.api_version, case.kind)
    assert info is not None
    return f"{info.plural}.{info.version}.{info.group}" if info.group else info.plural


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


def deployment(name: str) -> dict[str, Any]:
    return kinds_table.CASES["deployment"].manifest(name, "")


@pytest.mark.parametrize("case_id", sorted(HEADERS))
def test_get_shows_kubernetes_columns(
    kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str, case_id: str
) -> None:
    case = kinds_table.CASES[case_id]
    name = kinds_table.object_name(case_id, ns)
    create(raw, case.manifest(name, ns), ns)
    out = kubectl("get", resource_arg(case), name, "-n", ns).out.splitlines()
    assert words(out[0]) == HEADERS[case_id]
    assert len(out) == 2, out
    first_cell = columns(out[1])[0]
    if case.kind == "Event":
        assert columns(out[1])[3] == "pod/p"
    elif case.kind == "StorageClass":
        assert first_cell.startswith(name)
    else:
        assert first_cell == name


def test_get_pods_golden_line(kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str) -> None:
    create(raw, pod("web"), ns)
    out = kubectl("get", "pods", "-n", ns).out.splitlines()
    assert columns(out[1])[:4] == ["web", "0/1", "Pending", "0"]
    assert re.fullmatch(r"\d+s", columns(out[1])[4])


def test_wide_adds_priority_one_columns(
    kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str
) -> None:
    create(raw, pod("web"), ns)
    create(raw, deployment("front"), ns)
    pods = kubectl("get", "pods", "-n", ns, "-o", "wide").out.splitlines()
    assert words(pods[0]) == (
        "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    )
    assert columns(pods[1])[5:] == ["<none>", "<none>", "<none>", "<none>"]
    deploys = kubectl("get", "deployments", "-n", ns, "-o", "wide").out.splitlines()
    assert words(deploys[0]) == "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"
    assert columns(deploys[1])[5:] == ["c", "busybox", "app=front"]


def test_show_labels(kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str) -> None:
    create(raw, pod("web", app="web", tier="fe"), ns)
    create(raw, pod("bare"), ns)
    out = kubectl("get", "pods", "-n", ns, "--show-labels").out.splitlines()
    assert words(out[0]) == "NAME READY STATUS RESTARTS AGE LABELS"
    rows = {columns(line)[0]: columns(line)[-1] for line in out[1:]}
    assert rows == {"bare": "<none>", "web": "app=web,tier=fe"}


def test_all_namespaces_adds_namespace_column(
    kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str
) -> None:
    create(raw, pod("web", suite=ns), ns)
    out = kubectl("get", "pods", "-A", "-l", f"suite={ns}").out.splitlines()
    assert words(out[0]) == "NAMESPACE NAME READY STATUS RESTARTS AGE"
    assert columns(out[1])[:2] == [ns, "web"]


def test_sort_by_name(kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str) -> None:
    for name in ("charlie", "alpha", "bravo"):
        create(raw, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}, ns)
    out = kubectl("get", "configmaps", "-n", ns, "--sort-by=.metadata.name").out.splitlines()
    assert words(out[0]) == "NAME DATA AGE"
    names = [columns(line)[0] for line in out[1:]]
    assert names == sorted(names)
    assert {"alpha", "bravo", "charlie"} <= set(names)
    desc = kubectl("get", "pods", "-A", "--sort-by=.metadata.creationTimestamp").out
    assert words(desc.splitlines()[0]).startswith("NAMESPACE NAME READY STATUS")


def test_custom_columns_jsonpath_and_name(
    kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str
) -> None:
    create(raw, pod("web", app="web"), ns)
    create(raw, pod("db", app="db"), ns)
    custom = kubectl(
        "get", "pods", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,APP:.metadata.labels.app"
    ).out.splitlines()
    assert words(custom[0]) == "NAME APP"
    assert sorted(words(line) for line in custom[1:]) == ["db db", "web web"]
    jsonpath = kubectl(
        "get", "pods", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"
    ).out.split()
    assert sorted(jsonpath) == ["db", "web"]
    one = kubectl("get", "pod", "web", "-n", ns, "-o", "jsonpath={.spec.containers[0].image}")
    assert one.out == "busybox"
    names = kubectl("get", "pods", "-n", ns, "-o", "name").out.split()
    assert sorted(names) == ["pod/db", "pod/web"]


def test_no_resources_message(kubectl: kubectl_.Kubectl, ns: str) -> None:
    result = kubectl("get", "configmaps", "-n", ns)
    assert result.out == ""
    assert f"No resources found in {ns} namespace." in result.err


class Watcher:
    """`kubectl get -w` in a subprocess, read line by line with a deadline."""

    def __init__(self, kubectl: kubectl_.Kubectl, *args: str) -> None:
        env = {**os.environ, "KUBECONFIG": str(kubectl.kubeconfig)}
        self.proc = subprocess.Popen(
            [kubectl_.binary(), "get", *args, "-w"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self.lines: list[str] = []

    def until(self, predicate: Any, timeout: float = 20.0) -> list[str]:
        """Read lines until ``predicate(lines)`` holds; fail with what was read at the deadline."""
        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            left = deadline - time.monotonic()
            assert left > 0, f"kubectl get -w printed only {self.lines!r}"
            if self.selector.select(min(left, 0.5)):
                assert self.proc.stdout is not None
                chunk = self.proc.stdout.read() or b""
                assert chunk or self.proc.poll() is None, (
                    self.proc.stderr.read() if self.proc.stderr else ""
                )
                self.buffer += chunk
                *done, self.buffer = self.buffer.split(b"\n")
                self.lines += [line.decode() for line in done]
        return self.lines

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.selector.close()


def test_watch_prints_rows_as_events_arrive(
    kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str
) -> None:
    create(raw, pod("before"), ns)
    watcher = Watcher(kubectl, "pods", "-n", ns)
    try:
        lines = watcher.until(lambda seen: len(seen) >= 2)
        assert words(lines[0]) == "NAME READY STATUS RESTARTS AGE"
        assert columns(lines[1])[:3] == ["before", "0/1", "Pending"]
        create(raw, pod("after"), ns)
        lines = watcher.until(lambda seen: any(columns(x)[0] == "after" for x in seen[2:]))
        row = next(columns(x) for x in lines[2:] if columns(x)[0] == "after")
        assert row[1:3] == ["0/1", "Pending"]
        assert sum(1 for x in lines if x.startswith("NAME")) == 1  # the header once
    finally:
        watcher.stop()


def test_watch_all_namespaces_wide(
    kubectl: kubectl_.Kubectl, raw: cluster.RawClient, ns: str
) -> None:
    watcher = Watcher(kubectl, "deployments", "-A", "-o", "wide", "-l", f"suite={ns}")
    try:
        manifest = deployment("live")
        manifest["metadata"]["labels"] = {"suite": ns}
        create(raw, manifest, ns)
        lines = watcher.until(lambda seen: any("live" in x for x in seen))
        header = next(x for x in lines if x.startswith("NAMESPACE"))
        assert words(header) == (
            "NAMESPACE NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"
        )
        row = columns(next(x for x in lines if "live" in x))
        assert row[:3] == [ns, "live", "0/1"]
        assert row[-3:] == ["c", "busybox", "app=live"]
    finally:
        watcher.stop()
