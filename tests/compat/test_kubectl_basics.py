"""The real kubectl against a started server: the commands that work on the core API."""

from __future__ import annotations

import json

from tests.support import kubectl as kubectl_


def test_version_reports_1_32(kubectl: kubectl_.Kubectl) -> None:
    out = json.loads(kubectl("version", "-o", "json").out)
    assert out["serverVersion"]["major"] == "1"
    assert out["serverVersion"]["minor"] == "32"


def test_api_versions_list_every_group(kubectl: kubectl_.Kubectl) -> None:
    versions = kubectl("api-versions").out.split()
    for expected in (
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "rbac.authorization.k8s.io/v1",
    ):
        assert expected in versions


def test_create_get_label_delete_roundtrip(kubectl: kubectl_.Kubectl, ns: str) -> None:
    manifest = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"mode": "fast"},
        }
    )
    assert (
        "configmap/settings created"
        in kubectl("-n", ns, "create", "-f", "-", "--validate=false", stdin=manifest).out
    )
    kubectl("-n", ns, "label", "configmap", "settings", "tier=web")
    got = json.loads(kubectl("-n", ns, "get", "configmap", "settings", "-o", "json").out)
    assert got["metadata"]["labels"] == {"tier": "web"}
    assert got["data"] == {"mode": "fast"}
    assert kubectl("-n", ns, "get", "configmaps", "-l", "tier=web", "-o", "name").out.split() == [
        "configmap/settings"
    ]
    assert (
        'configmap "settings" deleted' in kubectl("-n", ns, "delete", "configmap", "settings").out
    )
    missing = kubectl("-n", ns, "get", "configmap", "settings", check=False)
    assert missing.code == 1
    assert 'Error from server (NotFound): configmaps "settings" not found' in missing.err
