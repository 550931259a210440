"""The real kubectl with ResourceQuota and LimitRange: `create quota`, `describe quota`,
refused creates with Kubernetes' message on stderr, LimitRange defaults.

The session server runs the API only (no controller), so those tests play the resourcequota
controller's part once: they fill the quota's status through `/status`, as the controller
would; admission (charging, refusing) is the server's own. One test starts a server with the
controllers to see the controller fill the status itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import cluster
from tests.support import kubectl as kubectl_

pytestmark = pytest.mark.timeout(120)


def fill_status(kubectl: kubectl_.Kubectl, ns: str, name: str, hard: dict[str, str]) -> None:
    status = {"status": {"hard": hard, "used": dict.fromkeys(hard, "0")}}
    patch = ["patch", "quota", name, "--subresource=status", "--type=merge"]
    kubectl("-n", ns, *patch, "-p", json.dumps(status))


def cpu_pod(name: str, cpu: str) -> str:
    container = {"name": name, "image": "busybox", "resources": {"requests": {"cpu": cpu}}}
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}}
    return json.dumps({**body, "spec": {"containers": [container]}})


def test_quota_is_described_and_enforced(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "quota", "compute", "--hard=pods=1,requests.cpu=1")
    fill_status(kubectl, ns, "compute", {"pods": "1", "requests.cpu": "1"})
    kubectl("-n", ns, "run", "first", "--image=busybox", "--overrides", cpu_pod("first", "500m"))
    described = kubectl("-n", ns, "describe", "quota", "compute").out
    assert "Resource      Used  Hard" in described
    assert "pods          1     1" in described
    assert "requests.cpu  500m  1" in described

    refused = kubectl("-n", ns, "run", "second", "--image=busybox", check=False)
    assert refused.code != 0
    assert (
        'Error from server (Forbidden): pods "second" is forbidden: failed quota: compute: '
        "must specify requests.cpu for: second"
    ) in refused.err

    over = kubectl("-n", ns, "create", "-f", "-", check=False, stdin=cpu_pod("third", "100m"))
    assert over.code != 0
    assert (
        'pods "third" is forbidden: exceeded quota: compute, requested: pods=1, '
        "used: pods=1, limited: pods=1"
    ) in over.err


def test_limit_range_defaults_a_run(kubectl: kubectl_.Kubectl, ns: str) -> None:
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "defaults"},
        "spec": {"limits": [{"type": "Container", "default": {"memory": "128Mi"}}]},
    }
    kubectl("-n", ns, "create", "-f", "-", stdin=json.dumps(limits))
    kubectl("-n", ns, "run", "web", "--image=nginx")
    got = json.loads(kubectl("-n", ns, "get", "pod", "web", "-o", "json").out)
    assert got["spec"]["containers"][0]["resources"] == {
        "limits": {"memory": "128Mi"},
        "requests": {"memory": "128Mi"},
    }
    assert got["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: memory request for container web; memory limit for container web"
    )


def test_the_controller_fills_status_for_describe(tmp_path: Path) -> None:
    """With the controllers running (no nodes needed), the quota's status is the controller's
    and `describe` shows the usage of what already existed."""
    args = ("--disable-scheduler", "--disable-agent")
    proc = cluster.start_server(tmp_path, *args, api_only=False)
    try:
        full = kubectl_.Kubectl(proc.kubeconfig)
        full("create", "namespace", "team")
        full("-n", "team", "create", "configmap", "settings", "--from-literal=a=b")
        full("-n", "team", "create", "quota", "objects", "--hard=count/configmaps=5,pods=2")

        def described() -> str | None:
            existing = len(full("-n", "team", "get", "configmaps", "-o", "name").out.split())
            out = full("-n", "team", "describe", "quota", "objects").out
            return out if f"count/configmaps  {existing}     5" in out else None

        out = cluster.wait_until(described, what="controller-filled quota status")
        assert "pods              0     2" in out
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()


def test_server_dry_run_is_judged_but_not_charged(kubectl: kubectl_.Kubectl, ns: str) -> None:
    """`--dry-run=server` goes through quota admission (same refusal) but charges nothing."""
    kubectl("-n", ns, "create", "quota", "compute", "--hard=pods=2,requests.cpu=1")
    fill_status(kubectl, ns, "compute", {"pods": "2", "requests.cpu": "1"})

    def used() -> dict[str, str]:
        out = kubectl("-n", ns, "get", "resourcequota", "compute", "-o", "json").out
        return dict(json.loads(out)["status"]["used"])

    dry_run = ("-n", ns, "create", "--dry-run=server", "-f", "-")
    dry = kubectl(*dry_run, stdin=cpu_pod("dry", "500m"))
    assert dry.out.strip() == "pod/dry created (server dry run)"
    assert used() == {"pods": "0", "requests.cpu": "0"}
    assert kubectl("-n", ns, "get", "pods", "-o", "name").out.strip() == ""

    kubectl("-n", ns, "create", "-f", "-", stdin=cpu_pod("real", "1"))
    assert used() == {"pods": "1", "requests.cpu": "1"}
    over = kubectl(*dry_run, check=False, stdin=cpu_pod("more", "100m"))
    assert over.code != 0
    assert over.err.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "more" is forbidden: '
        "exceeded quota: compute, requested: requests.cpu=100m, used: requests.cpu=1, "
        "limited: requests.cpu=1"
    )
    assert used() == {"pods": "1", "requests.cpu": "1"}
