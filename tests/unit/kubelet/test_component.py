"""Agent start-up options: defaults, and how `kybern agent` finds the server and the CA."""

from __future__ import annotations

import asyncio
import base64
import sys
import threading
import warnings
from pathlib import Path

import pytest
import yaml

from kybern.kubelet import component


def test_defaults_fill_in(tmp_path: Path) -> None:
    config = component.agent_config(component.Options(data_dir=tmp_path, runtime="fake"))
    assert config.node_name
    assert config.node_ip.count(".") == 3
    assert config.runtime_name == "fake"
    assert config.port == 10250


def test_server_and_token_without_ca_is_unverified(tmp_path: Path) -> None:
    config = component._cluster_config("https://10.0.0.1:6443/", "t0k", "", "")
    assert config.server == "https://10.0.0.1:6443"
    assert config.token == "t0k"
    assert config.insecure
    with pytest.raises(ValueError, match="--server"):
        component._cluster_config("", "", "", "")


def test_client_ca_from_kubeconfig_data(tmp_path: Path) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    kubeconfig = tmp_path / "kubeconfig.yaml"
    doc = {
        "clusters": [
            {"name": "c", "cluster": {"certificate-authority-data": base64.b64encode(pem).decode()}}
        ]
    }
    kubeconfig.write_text(yaml.safe_dump(doc))
    path = component._client_ca(tmp_path / "agent", str(kubeconfig), "")
    assert path is not None
    assert path.read_bytes() == pem
    assert component._client_ca(tmp_path, "", "/ca.pem") == Path("/ca.pem")
    assert component._client_ca(tmp_path, "", "") is None


async def test_children_are_reaped_through_pidfds_on_the_agents_loop() -> None:
    if sys.version_info >= (3, 12):
        pytest.skip("3.12 chooses the pidfd watcher by itself")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        before = asyncio.get_child_watcher()
    try:
        component.watch_children_with_pidfds()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            assert isinstance(asyncio.get_child_watcher(), asyncio.PidfdChildWatcher)
        threads = threading.active_count()
        proc = await asyncio.create_subprocess_exec("true")
        assert threading.active_count() == threads  # no waiter thread for the child
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(before)  # process-wide: the other tests' loops need it
