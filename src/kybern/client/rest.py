"""The HTTPS transport: aiohttp with a pooled connection, configured from a kubeconfig.

``kybern server`` writes ``<data-dir>/kubeconfig.yaml`` with the cluster CA, the admin client
certificate and key embedded; ``RESTTransport.from_kubeconfig`` reads that (or any kubeconfig:
file paths instead of embedded data, bearer tokens, ``insecure-skip-tls-verify``) and keeps one
``aiohttp.ClientSession`` for every request, so connections are reused.

Failures to get an answer at all become ``errors.TransportError``; an answer with a failure
code is returned as is (``resources.Client`` turns it into an ``errors.ApiError``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from kybern.client import errors, transport
from kybern.client.transport import Query, Response, WatchEvent

DEFAULT_TIMEOUT = 60.0  # seconds for one ordinary request
CONNECT_TIMEOUT = 10.0
WATCH_READ_SLACK = 30.0  # a watch with timeoutSeconds=N may be silent for N + this


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """What a transport needs: where the server is and how to trust it and log in."""

    server: str
    ssl_context: ssl.SSLContext | None = None  # None: plain http, or the system defaults
    token: str | None = None
    insecure: bool = False


def load_kubeconfig(path: str | Path, *, context: str | None = None) -> ClusterConfig:
    """Read a kubeconfig (blocking file I/O: call it from a thread inside a coroutine)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise errors.ConfigError(f"cannot read kubeconfig {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise errors.ConfigError(f"kubeconfig {path} is not a YAML mapping")
    name = context or doc.get("current-context")
    ctx = _named(doc, "contexts", name, "context")
    cluster = _named(doc, "clusters", ctx.get("cluster"), "cluster")
    user = _named(doc, "users", ctx.get("user"), "user") if ctx.get("user") else {}
    server = str(cluster.get("server") or "")
    if not server:
        raise errors.ConfigError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")
    base = path.parent
    insecure = bool(cluster.get("insecure-skip-tls-verify"))
    ssl_context = None
    if server.startswith("https"):
        ssl_context = _ssl_context(cluster, user, base, insecure=insecure)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _resolve(base, user["tokenFile"]).read_text().strip()
    return ClusterConfig(
        server=server.rstrip("/"), ssl_context=ssl_context, token=token, insecure=insecure
    )


def _named(doc: dict[str, Any], section: str, name: Any, field: str) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(field)
            return value if isinstance(value, dict) else {}
    raise errors.ConfigError(f"kubeconfig has no {section[:-1]} named {name!r}")


def _resolve(base: Path, file: str) -> Path:
    p = Path(os.path.expanduser(file))
    return p if p.is_absolute() else base / p


def _pem(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    file = section.get(key)
    return _resolve(base, file).read_bytes() if file else None


def _ssl_context(
    cluster: dict[str, Any], user: dict[str, Any], base: Path, *, insecure: bool
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ca = _pem(cluster, "certificate-authority", base)
        if ca:
            ctx.load_verify_locations(cadata=ca.decode())
    cert = _pem(user, "client-certificate", base)
    key = _pem(user, "client-key", base)
    if cert and key:
        # ssl can only load a key pair from files: a private directory, removed at once.
        with tempfile.TemporaryDirectory(prefix="kybern-client-") as tmp:
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_file.write_bytes(cert)
            key_file.touch(mode=0o600)
            key_file.write_bytes(key)
            ctx.load_cert_chain(cert_file, key_file)
    return ctx


def _params(query: Query | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in (query or {}).items():
        if isinstance(value, str):
            out.append((key, value))
        else:
            out.extend((key, str(v)) for v in value)
    return out


class RESTTransport:
    """``transport.Transport`` over HTTP(S) with one pooled aiohttp session."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 100,
        user_agent: str = "kybern",
    ) -> None:
        self.config = config
        self.user_agent = user_agent  # the server's default field manager for our writes
        self.timeout = timeout
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    async def from_kubeconfig(
        cls, path: str | Path, *, context: str | None = None, **options: Any
    ) -> RESTTransport:
        config = await asyncio.to_thread(load_kubeconfig, path, context=context)
        return cls(config, **options)

    @classmethod
    def for_url(cls, server: str, *, token: str | None = None, **options: Any) -> RESTTransport:
        """A transport for a plain-HTTP (test) server, or HTTPS with the system CAs."""
        return cls(ClusterConfig(server=server.rstrip("/"), token=token), **options)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            ssl_arg: ssl.SSLContext | bool = self.config.ssl_context or True
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                ssl=ssl_arg if self.config.server.startswith("https") else False,
            )
            headers = {"Accept": transport.JSON, "User-Agent": self.user_agent}
            if self.config.token:
                headers["Authorization"] = f"Bearer {self.config.token}"
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=headers,
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        data = None if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        send = dict(headers or {})
        if data is not None:
            send["Content-Type"] = content_type or transport.JSON
        timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=CONNECT_TIMEOUT)
        try:
            async with self._client().request(
                method,
                self.config.server + path,
                params=_params(query),
                data=data,
                headers=send,
                timeout=timeout,
            ) as r:
                raw = await r.read()
                return Response(r.status, headers=dict(r.headers), raw=raw)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def stream(
        self, method: str, path: str, *, query: Query | None = None
    ) -> AsyncIterator[bytes]:
        """Lines of a long response; a failure status raises ``errors.ApiError``."""
        params = _params(query)
        read = _read_timeout(params)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read)
        try:
            async with self._client().request(
                method, self.config.server + path, params=params, timeout=timeout
            ) as r:
                if r.status >= 300:
                    raw = await r.read()
                    raise errors.from_status(r.status, _decode(raw))
                while line := await r.content.readline():
                    yield line
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def watch(self, path: str, *, query: Query | None = None) -> AsyncIterator[WatchEvent]:
        params = {**(query or {}), "watch": "true"}
        lines = self.stream("GET", path, query=params)
        try:
            async for line in lines:
                if line.strip():
                    event = orjson.loads(line)
                    yield WatchEvent(event["type"], event["object"])
        except errors.ApiError as exc:
            yield WatchEvent("ERROR", exc.status)
        finally:
            await lines.aclose()  # type: ignore[attr-defined]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _read_timeout(params: list[tuple[str, str]]) -> float | None:
    for key, value in params:
        if key == "timeoutSeconds" and value.isdigit():
            return int(value) + WATCH_READ_SLACK
    return None


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def _conforms(t: RESTTransport) -> transport.Transport:
    return t  # mypy checks RESTTransport against the protocol here
