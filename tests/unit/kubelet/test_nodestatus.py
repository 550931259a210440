"""Node, status and Lease builders: what a kubelet writes about its node."""

from __future__ import annotations

import datetime

import pytest

from kybern.kubelet import nodestatus

pytestmark = pytest.mark.timeout(10)
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(seconds=10)
SPEC = nodestatus.NodeSpec(
    name="n1",
    internal_ip="192.0.2.1",
    pod_cidr="10.244.0.0/24",
    labels={"zone": "a"},
    taints=[{"key": "k", "effect": "NoSchedule"}],
)


def test_node_carries_kubelet_labels_spec_and_status() -> None:
    node = nodestatus.node(SPEC, T0)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "n1"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["zone"] == "a"
    assert node["spec"] == {
        "taints": [{"key": "k", "effect": "NoSchedule"}],
        "podCIDR": "10.244.0.0/24",
        "podCIDRs": ["10.244.0.0/24"],
    }
    assert node["status"]["capacity"] == node["status"]["allocatable"]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-kybern"


def test_conditions_keep_transition_time_while_unchanged() -> None:
    first = nodestatus.conditions(T0)
    assert [c["type"] for c in first] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    later = nodestatus.conditions(T1, first)
    ready = later[-1]
    assert ready["lastHeartbeatTime"] == "2026-01-01T00:00:10Z"
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    unknown = [{**c, "status": "Unknown"} if c["type"] == "Ready" else c for c in first]
    assert nodestatus.conditions(T1, unknown)[-1]["lastTransitionTime"] == "2026-01-01T00:00:10Z"


def test_lease_is_owned_by_the_node_with_micro_time() -> None:
    lease = nodestatus.lease("n1", T0, node_uid="u1")
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert lease["spec"]["renewTime"] == "2026-01-01T00:00:00.000000Z"
    assert lease["spec"]["leaseDurationSeconds"] == 40
