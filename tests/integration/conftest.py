"""In-process API servers (plain HTTP on loopback, no TLS) for fast integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from kybern.apiserver import server


class Client:
    """A tiny JSON client for an in-process server."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        **params: Any,
    ) -> tuple[int, Any]:
        data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        headers = {"Content-Type": content_type} if data is not None else {}
        query = {k: str(v) for k, v in params.items()}
        async with self.session.request(
            method, self.base + path, data=data, headers=headers, params=query
        ) as r:
            raw = await r.read()
            try:
                return r.status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return r.status, raw.decode()

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **params)

    async def post(self, path: str, body: Any, **params: Any) -> tuple[int, Any]:
        return await self.request("POST", path, body, **params)

    async def put(self, path: str, body: Any, **params: Any) -> tuple[int, Any]:
        return await self.request("PUT", path, body, **params)

    async def patch(
        self,
        path: str,
        body: Any,
        *,
        content_type: str = "application/merge-patch+json",
        **params: Any,
    ) -> tuple[int, Any]:
        return await self.request("PATCH", path, body, content_type=content_type, **params)

    async def delete(self, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, body, **params)

    async def watch(self, path: str, **params: Any) -> aiohttp.ClientResponse:
        query = {k: str(v) for k, v in {"watch": "true", **params}.items()}
        return await self.session.get(self.base + path, params=query)


async def next_event(response: aiohttp.ClientResponse) -> dict[str, Any]:
    line = await response.content.readline()
    assert line, "the watch ended"
    return orjson.loads(line)  # type: ignore[no-any-return]


async def start_server(tmp_path: Path, **config: Any) -> server.APIServer:
    apiserver = server.APIServer(server.Config(data_dir=tmp_path, port=0, tls=False, **config))
    await apiserver.start()
    return apiserver


@pytest.fixture
async def apiserver(tmp_path: Path) -> AsyncIterator[server.APIServer]:
    instance = await start_server(tmp_path)
    yield instance
    await instance.stop()


@pytest.fixture
async def client(apiserver: server.APIServer) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, f"http://127.0.0.1:{apiserver.port}")
