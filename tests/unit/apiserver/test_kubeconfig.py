"""Tests for kybern.apiserver.kubeconfig: the file itself, and that real clients (the official
Python client, kubectl) accept it against a TLS server using the PKI and the authn middleware."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from aiohttp import web

from kybern.apiserver import authn, kubeconfig, pki

KUBECTL = shutil.which("kubectl")
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kybern",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@pytest.fixture
def cluster_pki(tmp_path: Path) -> pki.PKI:
    return pki.ensure_pki(data_dir=tmp_path / "data", extra_sans=[])


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


class TestFile:
    def test_structure(self, cluster_pki: pki.PKI, tmp_path: Path) -> None:
        path = tmp_path / "kubeconfig.yaml"
        url = "https://127.0.0.1:6443"
        kubeconfig.write_admin_kubeconfig(pki=cluster_pki, server_url=url, path=path)
        config = _load(path)
        assert config["current-context"] == "kybern"
        assert config["contexts"] == [
            {"name": "kybern", "context": {"cluster": "kybern", "user": "kybern-admin"}}
        ]
        cluster = config["clusters"][0]
        assert cluster["name"] == "kybern"
        assert cluster["cluster"]["server"] == url
        ca = base64.b64decode(cluster["cluster"]["certificate-authority-data"])
        assert ca == cluster_pki.ca_cert.read_bytes()
        user = config["users"][0]
        assert user["name"] == "kybern-admin"
        cert = base64.b64decode(user["user"]["client-certificate-data"])
        key = base64.b64decode(user["user"]["client-key-data"])
        assert cert == cluster_pki.admin_cert.read_bytes()
        assert key == cluster_pki.admin_key.read_bytes()

    def test_private_and_atomic(self, cluster_pki: pki.PKI, tmp_path: Path) -> None:
        path = tmp_path / "sub" / "kubeconfig.yaml"
        path.parent.mkdir()
        path.write_text("old")
        path.chmod(0o644)
        kubeconfig.write_admin_kubeconfig(pki=cluster_pki, server_url="https://x:1", path=path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["kubeconfig.yaml"]

    def test_creates_parent_directories(self, cluster_pki: pki.PKI, tmp_path: Path) -> None:
        path = tmp_path / "a" / "b" / "kubeconfig.yaml"
        kubeconfig.write_admin_kubeconfig(pki=cluster_pki, server_url="https://x:1", path=path)
        assert _load(path)["kind"] == "Config"


class TestServerURL:
    @pytest.mark.parametrize(
        ("bind", "url"),
        [
            ("0.0.0.0", "https://127.0.0.1:6443"),
            ("127.0.0.1", "https://127.0.0.1:6443"),
            ("::", "https://[::1]:6443"),
            ("10.0.0.5", "https://10.0.0.5:6443"),
            ("2001:db8::5", "https://[2001:db8::5]:6443"),
            ("api.example.com", "https://api.example.com:6443"),
        ],
    )
    def test_mapping(self, bind: str, url: str) -> None:
        assert kubeconfig.server_url(bind_address=bind, port=6443) == url


# --- real clients ------------------------------------------------------------------------------


async def _version(request: web.Request) -> web.Response:
    return web.json_response(VERSION)


async def _whoami(request: web.Request) -> web.Response:
    user: authn.UserInfo = request[authn.USER_KEY]
    return web.json_response(user.to_dict())


@contextlib.asynccontextmanager
async def _serve(p: pki.PKI) -> AsyncIterator[int]:
    """A tiny API server on 127.0.0.1 (ephemeral port): PKI TLS context + authn middleware."""
    app = web.Application(middlewares=[authn.middleware(authn.Authenticator.from_pki(p))])
    app.router.add_get("/version", _version)
    app.router.add_get("/version/", _version)  # the Python client asks with a slash
    app.router.add_get("/whoami", _whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=p.server_ssl_context())
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def _python_client_version(config_file: Path) -> Any:
    """Blocking (urllib3): run in a thread so the server on the event loop can answer."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(config_file), client_configuration=configuration
    )
    with kubernetes.client.ApiClient(configuration) as api:
        return kubernetes.client.VersionApi(api).get_code()


class TestRealClients:
    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    async def test_python_client(self, cluster_pki: pki.PKI, tmp_path: Path, host: str) -> None:
        path = tmp_path / "kubeconfig.yaml"
        async with _serve(cluster_pki) as port:
            url = f"https://{host}:{port}"
            kubeconfig.write_admin_kubeconfig(pki=cluster_pki, server_url=url, path=path)
            version = await asyncio.to_thread(_python_client_version, path)
        assert version.major == "1"
        assert version.minor == "32"

    @pytest.mark.skipif(KUBECTL is None, reason="kubectl not on PATH")
    async def test_kubectl_get_raw(self, cluster_pki: pki.PKI, tmp_path: Path) -> None:
        path = tmp_path / "kubeconfig.yaml"
        async with _serve(cluster_pki) as port:
            url = kubeconfig.server_url(bind_address="127.0.0.1", port=port)
            kubeconfig.write_admin_kubeconfig(pki=cluster_pki, server_url=url, path=path)
            version = await _kubectl(
                tmp_path, "--kubeconfig", str(path), "get", "--raw", "/version"
            )
            whoami = await _kubectl(tmp_path, "--kubeconfig", str(path), "get", "--raw", "/whoami")
        assert json.loads(version) == VERSION
        assert json.loads(whoami) == {
            "username": "kybern-admin",
            "groups": ["system:masters", "system:authenticated"],
        }


async def _kubectl(home: Path, *args: str) -> str:
    """Run kubectl with a private HOME and cache; return stdout, fail on a non-zero exit."""
    assert KUBECTL is not None
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | {"HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--cache-dir",
        str(home / "kube-cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()
