"""A started ``kybern server`` subprocess and a raw HTTPS client that speaks to it.

Compatibility and integration tests share this: ``start_server`` launches the server on a
free loopback port (kybern.testing.server_process) and ``RawClient`` sends exact bytes with
the admin client certificate from the written kubeconfig, for the cases a typed client cannot
express (malformed JSON, wrong media types, oversized bodies). ``wait_until`` polls a
condition with a deadline: tests never sleep for a fixed time.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kybern.testing import server_process

T = TypeVar("T")


# The API-level tests pin exact API semantics (resourceVersions that must not move, pods that
# stay unscheduled, namespaces that stay Terminating): they run the API server and store alone,
# without the scheduler, controllers and node agent writing beside them.
API_ONLY = ("--disable-scheduler", "--disable-controller-manager", "--disable-agent")


def start_server(
    data_dir: Path, *extra_args: str, api_only: bool = True
) -> server_process.ServerProcess:
    """A running server on a free port; its kubeconfig is written when this returns."""
    args = [*(API_ONLY if api_only else ()), *extra_args]
    proc = server_process.ServerProcess(data_dir=data_dir, extra_args=args)
    return proc.start(timeout=30)


def wait_until(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll `condition` until it returns a truthy value; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def ssl_context(kubeconfig: Path) -> ssl.SSLContext:
    """Verify the server with the kubeconfig's CA; present its admin client certificate."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    directory = kubeconfig.parent / "test-client"
    directory.mkdir(exist_ok=True, mode=0o700)
    cert, key = directory / "admin.crt", directory / "admin.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    key.chmod(0o600)
    context = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    context.load_cert_chain(cert, key)
    return context


def server_url(kubeconfig: Path) -> str:
    config = yaml.safe_load(kubeconfig.read_text())
    return str(config["clusters"][0]["cluster"]["server"])


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


class RawClient:
    """One-request-per-connection HTTPS client with the admin certificate."""

    def __init__(self, kubeconfig: Path, *, timeout: float = 30.0) -> None:
        url = urllib.parse.urlsplit(server_url(kubeconfig))
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        self.context = ssl_context(kubeconfig)
        self.timeout = timeout

    def connect(self, timeout: float | None = None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=timeout or self.timeout
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        sent = dict(headers or {})
        if data is not None:
            sent.setdefault("Content-Type", content_type)
        conn = self.connect()
        try:
            conn.request(method, with_query(path, query), body=data, headers=sent)
            reply = conn.getresponse()
            return Response(reply.status, reply.headers, reply.read())
        finally:
            conn.close()

    def get(self, path: str, **query: Any) -> Response:
        return self.request("GET", path, query=query)

    def stream(
        self, path: str, *, query: dict[str, Any], timeout: float = 10.0
    ) -> Iterator[dict[str, Any]]:
        """The events of a watch, one decoded JSON line at a time, until the server ends it."""
        conn = self.connect(timeout)
        try:
            conn.request("GET", with_query(path, {"watch": "true", **query}))
            reply = conn.getresponse()
            assert reply.status == 200, (reply.status, reply.read())
            while True:
                line = reply.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()


def with_query(path: str, query: dict[str, Any] | None) -> str:
    if not query:
        return path
    return f"{path}?{urllib.parse.urlencode({k: str(v) for k, v in query.items()})}"
