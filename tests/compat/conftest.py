"""Fixtures for the compatibility tests: one ``kybern server`` subprocess per session, driven by
the official Python client (``kubernetes`` from PyPI) through the kubeconfig the server wrote.

Every test gets its own namespace (``ns``), so tests never see each other's objects; cluster
scoped objects carry the namespace name as a suffix for the same reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from kybern.testing import server_process
from tests.support import cluster
from tests.support import kubectl as kubectl_


@pytest.fixture(scope="session")
def kybern_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[server_process.ServerProcess]:
    proc = cluster.start_server(tmp_path_factory.mktemp("kybern-compat"))
    yield proc
    proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()


@pytest.fixture(scope="session")
def kubeconfig(kybern_server: server_process.ServerProcess) -> Path:
    return kybern_server.kubeconfig


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    yield client
    client.close()


@pytest.fixture(scope="session")
def core(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def raw(kubeconfig: Path) -> cluster.RawClient:
    return cluster.RawClient(kubeconfig)


@pytest.fixture
def ns(core: kubernetes.client.CoreV1Api) -> str:
    """A fresh namespace for one test (left behind: there is no namespace controller yet)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> kubectl_.Kubectl:
    """The real kubectl, pointed at the session's server."""
    return kubectl_.Kubectl(kubeconfig)
