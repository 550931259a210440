"""Sandbox and container configs from a pod: labels for adoption, resources, grace periods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kybern.kubelet import containerconfig as cc

POD: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "prod", "uid": "u1"},
    "spec": {
        "terminationGracePeriodSeconds": 45,
        "hostNetwork": True,
        "containers": [
            {
                "name": "app",
                "image": "nginx",
                "ports": [{"containerPort": 80, "hostPort": 8080}],
                "resources": {
                    "requests": {"cpu": "250m"},
                    "limits": {"cpu": "1", "memory": "64Mi"},
                },
                "securityContext": {"allowPrivilegeEscalation": False},
            }
        ],
        "securityContext": {"runAsUser": 1000},
    },
}


def test_sandbox_config() -> None:
    config = cc.sandbox_config(POD, attempt=2, log_root=Path("/logs"))
    assert config.metadata.attempt == 2
    assert config.log_directory == "/logs/prod_web_u1"
    assert config.labels == {cc.POD_UID: "u1", cc.POD_NAME: "web", cc.POD_NAMESPACE: "prod"}
    assert config.host_network
    assert [(p.container_port, p.host_port) for p in config.port_mappings] == [(80, 8080)]


def test_container_config_labels_and_resources() -> None:
    container = POD["spec"]["containers"][0]
    config = cc.container_config(
        POD,
        container,
        attempt=3,
        command=["nginx"],
        args=[],
        env=[("A", "1")],
        mounts=[],
        log_dir=Path("/logs/prod_web_u1"),
        termination_host_path="/t",
    )
    assert config.log_path == "/logs/prod_web_u1/app/3.log"
    assert config.labels[cc.CONTAINER_NAME] == "app"
    assert cc.pod_uid_of(config.labels) == "u1"
    assert config.annotations[cc.RESTART_COUNT] == "3"
    assert config.termination_message_path == "/dev/termination-log"
    assert (config.resources.cpu_shares, config.resources.cpu_quota) == (256, 100_000)
    assert config.resources.memory_limit_bytes == 64 * 1024 * 1024
    assert config.security.run_as_user == 1000
    assert config.security.no_new_privs


def test_grace_period_prefers_the_deletion() -> None:
    assert cc.grace_period(POD) == 45
    deleting = {**POD, "metadata": {**POD["metadata"], "deletionGracePeriodSeconds": 5}}
    assert cc.grace_period(deleting) == 5
    assert cc.grace_period({"spec": {}}) == 30
    assert cc.full_name(POD) == "web_prod(u1)"
