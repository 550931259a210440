"""Kubeconfig files for the cluster's PKI: the admin's, and later ones for node agents.

``kybern server`` writes ``<data_dir>/kubeconfig.yaml`` on every start with the CA, the admin
client certificate and its key embedded (base64), so the real kubectl, helm and the official
client libraries work with ``--kubeconfig`` alone. The file holds a private key: mode 0600,
written atomically so a client never reads half a file.
"""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path
from typing import Any

import yaml

from kybern.apiserver import pki as pki_

CLUSTER_NAME = "kybern"
CONTEXT_NAME = "kybern"
ADMIN_USER = pki_.ADMIN_USER
# Bind addresses a local client reaches through IPv4 loopback (0.0.0.0 listens there too).
_LOCAL_V4 = {"", "0.0.0.0", "127.0.0.1", "localhost"}
_LOCAL_V6 = {"::", "::1"}


def server_url(*, bind_address: str, port: int) -> str:
    """The URL a client on this machine should dial for a server bound to ``bind_address``."""
    if bind_address in _LOCAL_V4:
        host = "127.0.0.1"
    elif bind_address in _LOCAL_V6:
        host = "[::1]"
    else:
        host = _url_host(bind_address)
    return f"https://{host}:{port}"


def write_admin_kubeconfig(*, pki: pki_.PKI, server_url: str, path: Path) -> None:
    """Write the admin kubeconfig (cluster, user and context; current-context set)."""
    config = build_kubeconfig(
        server_url=server_url,
        ca_pem=pki.ca_cert.read_bytes(),
        cert_pem=pki.admin_cert.read_bytes(),
        key_pem=pki.admin_key.read_bytes(),
        user=ADMIN_USER,
    )
    write_kubeconfig(config, path=path)


def build_kubeconfig(
    *, server_url: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, user: str
) -> dict[str, Any]:
    """A kubeconfig document with one cluster, one user and one context, data embedded."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server_url, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(cert_pem),
                    "client-key-data": _b64(key_pem),
                },
            }
        ],
        "contexts": [{"name": CONTEXT_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


def write_kubeconfig(config: dict[str, Any], *, path: Path) -> None:
    """Write a kubeconfig document to ``path`` (mode 0600, atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config, default_flow_style=False, sort_keys=False)
    pki_.write_atomic(path, text.encode(), mode=0o600)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _url_host(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address  # a host name
    return f"[{ip}]" if ip.version == 6 else str(ip)
