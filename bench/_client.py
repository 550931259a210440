"""Load-generator side of the API benchmarks: credentials, HTTPS sessions, CPU meters and a
lightweight watch stream reader.

Request/response load goes through aiohttp: one ``ClientSession`` with a one-connection
connector per simulated client, so N clients are N keep-alive TLS connections, authenticated
with the admin client certificate from the server's kubeconfig (or its bearer token).

Watches use ``WatchStream``, a bare ``asyncio.Protocol`` over TLS rather than aiohttp: with
1,000 streams in one client process the per-event cost of the reader is what would otherwise
dominate the measured delivery latency. It records the arrival time of each marker it sees in
the byte stream and does not parse the events.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import resource
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml


@dataclass(frozen=True)
class Credentials:
    url: str
    host: str
    port: int
    ssl_context: ssl.SSLContext
    headers: dict[str, str]


def load_credentials(data_dir: Path, url: str, *, auth: str = "cert") -> Credentials:
    """TLS context (cluster CA, admin client cert) and headers from the server's data dir."""
    config = yaml.safe_load((data_dir / "kubeconfig.yaml").read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    context = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if auth == "cert":
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            context.load_cert_chain(cert, key)
    else:
        token = (data_dir / "pki" / "token").read_text().strip()
        headers["Authorization"] = f"Bearer {token}"
    host, port = url.removeprefix("https://").rsplit(":", 1)
    return Credentials(url, host, int(port), context, headers)


def session(creds: Credentials, *, connections: int = 1) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        ssl=creds.ssl_context, limit=connections, keepalive_timeout=300, ttl_dns_cache=None
    )
    return aiohttp.ClientSession(
        base_url=creds.url,
        connector=connector,
        headers=creds.headers,
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
        timeout=aiohttp.ClientTimeout(total=120),
    )


async def request(
    client: aiohttp.ClientSession, method: str, path: str, body: Any = None, expect: int = 200
) -> bytes:
    data = orjson.dumps(body) if body is not None else None
    async with client.request(method, path, data=data) as resp:
        payload = await resp.read()
        if resp.status != expect:
            raise RuntimeError(f"{method} {path}: {resp.status} {payload[:300]!r}")
        return payload


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE (inherited by a server started afterwards); return the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# -- CPU and memory of both sides -------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime, all threads


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def machine_busy_seconds() -> float:
    """CPU seconds all processes spent busy since boot (user, nice, system, irq, steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


@dataclass
class CpuMeter:
    """Wall time and CPU time of one scenario: client = this process, server = ``pid``,
    other = everything else on the machine (other people's tests disturb the numbers)."""

    pid: int
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    other_cpu: float = 0.0
    _start: tuple[float, ...] = field(default=(), repr=False)

    def __enter__(self) -> CpuMeter:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        wall, client, server, busy = (
            b - a for a, b in zip(self._start, self._sample(), strict=True)
        )
        self.wall, self.client_cpu, self.server_cpu = wall, client, server
        self.other_cpu = max(0.0, busy - client - server)

    def _sample(self) -> tuple[float, ...]:
        return (
            time.perf_counter(),
            time.process_time(),
            process_cpu_seconds(self.pid),
            machine_busy_seconds(),
        )

    def columns(self) -> dict[str, str]:
        """CPU in cores (1.00 = one core busy for the whole run)."""
        wall = self.wall or 1.0
        return {
            "server CPU": f"{self.server_cpu / wall:.2f}",
            "client CPU": f"{self.client_cpu / wall:.2f}",
            "other CPU": f"{self.other_cpu / wall:.2f}",
        }


# -- watch streams ----------------------------------------------------------------------------


class WatchStream(asyncio.Protocol):
    """One HTTP/1.1 watch request on its own TLS connection; records when each marker arrives.

    Markers are the ``name`` values matched by ``pattern`` (group 1); the first arrival of each
    is kept in ``arrivals``. ``ready`` resolves when the response headers arrived, i.e. the
    server has registered the watcher; ``complete`` is set once ``want`` markers arrived.
    """

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.arrivals: dict[bytes, float] = {}
        self.ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.want = 0
        self.complete = asyncio.Event()
        self.transport: asyncio.Transport | None = None
        self._tail = b""
        self._headers_done = False

    @classmethod
    async def open(cls, creds: Credentials, path: str, pattern: re.Pattern[bytes]) -> WatchStream:
        loop = asyncio.get_running_loop()
        _, stream = await loop.create_connection(
            lambda: cls(pattern), creds.host, creds.port, ssl=creds.ssl_context
        )
        headers = "".join(f"{k}: {v}\r\n" for k, v in creds.headers.items())
        assert stream.transport is not None
        stream.transport.write(
            f"GET {path} HTTP/1.1\r\nHost: {creds.host}:{creds.port}\r\n{headers}\r\n".encode()
        )
        status = await stream.ready
        if status != 200:
            raise RuntimeError(f"watch {path}: HTTP {status}")
        return stream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self._headers_done:
            data = self._tail + data
            end = data.find(b"\r\n\r\n")
            if end == -1:
                self._tail = data
                return
            self._headers_done = True
            status = int(data.split(b" ", 2)[1])
            if not self.ready.done():
                self.ready.set_result(status)
            data, self._tail = data[end + 4 :], b""
        buf = self._tail + data
        for match in self.pattern.finditer(buf):
            self.arrivals.setdefault(match.group(1), now)
        self._tail = buf[-256:]
        if self.want and len(self.arrivals) >= self.want:
            self.complete.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("watch connection closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
