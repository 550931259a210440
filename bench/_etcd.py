"""A throwaway single-member etcd for the raw-put comparison.

Runs the Debian ``etcd`` binary (etcd-server package) on two free 127.0.0.1 ports with a
temporary data dir, and drives etcd 3.4's JSON gRPC gateway (``POST /v3/kv/put`` with base64
key and value) from aiohttp: one keep-alive connection per client, like the API benchmark.
No ``benchmark`` tool is packaged and ``etcdctl`` forks per call, so this is the fair raw put.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import _load
import aiohttp
from _report import progress, rate

from kybern.testing import server_process

CONCURRENCY = (1, 16, 64)


def binary() -> str | None:
    return shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)


def version() -> str:
    exe = binary()
    if not exe:
        return "not installed"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


class EtcdProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.client_port = server_process.free_port()
        self.peer_port = server_process.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 20.0) -> EtcdProcess:
        exe = binary()
        if exe is None:
            raise FileNotFoundError("etcd not installed (apt-get install etcd-server)")
        peer = f"http://127.0.0.1:{self.peer_port}"
        args = [
            exe,
            "--name=bench",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=bench={peer}",
            "--initial-cluster-state=new",
            "--log-level=error",
        ]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir.parent / "etcd.log", "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                    if b'"health":"true"' in resp.read():
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError("etcd not healthy in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def session(url: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=url,
        connector=aiohttp.TCPConnector(limit=1, keepalive_timeout=300),
        timeout=aiohttp.ClientTimeout(total=60),
    )


def put_body(key: str, value: bytes) -> bytes:
    k = base64.b64encode(key.encode()).decode()
    v = base64.b64encode(value).decode()
    return f'{{"key":"{k}","value":"{v}"}}'.encode()


async def put(client: aiohttp.ClientSession, key: str, value: bytes) -> None:
    async with client.post("/v3/kv/put", data=put_body(key, value)) as resp:
        payload = await resp.read()
        if resp.status != 200 or b"header" not in payload:
            raise RuntimeError(f"etcd put: {resp.status} {payload[:200]!r}")


def put_op(prefix: str, value: bytes) -> _load.Op:
    async def op(client: aiohttp.ClientSession, w: int, i: int) -> None:
        await put(client, f"{prefix}/o{w}-{i}", value)

    return op


async def put_runs(
    url: str, pid: int, seconds: dict[int, float], value_sizes: dict[str, int]
) -> list[dict[str, object]]:
    """Closed-loop puts with 1, 16, 64 clients for each value size (named by a kind)."""
    rows = []
    for kind, size in value_sizes.items():
        value = b"x" * size
        for c in CONCURRENCY:
            progress(f"etcd put ({size} B values, like a {kind}): {c} clients")
            clients = [session(url) for _ in range(c)]
            try:
                await asyncio.gather(
                    *(put(cl, f"/warm/{n}", value) for n, cl in enumerate(clients))
                )
                op = put_op(f"/registry/{kind}/bench-{c}", value)
                run = await _load.closed_loop(clients, op, pid=pid, seconds=seconds[c])
            finally:
                await asyncio.gather(*(cl.close() for cl in clients))
            rows.append(run.row(kind=kind, **{"value bytes": size}, clients=c))
            progress(f"  -> {rate(run.throughput)}/s")
    return rows
