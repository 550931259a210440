"""The service proxy component end to end without privileges: an in-process API server, a
Service and its EndpointSlice written through the API, kybern.proxy.proxier.run in userspace
mode on 127.0.0.1 (the process-runtime layout), and real TCP backends on 127.0.0.1."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kybern import client as kclient
from kybern.apiserver import server
from kybern.proxy import proxier

HOST = "127.0.0.1"
Obj = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def api_server(
    tmp_path: Path,
) -> AsyncIterator[tuple[kclient.Client, kclient.SharedInformerFactory]]:
    api = server.APIServer(server.Config(data_dir=tmp_path, port=0, tls=False))
    await api.start()
    transport = kclient.InProcessTransport(api.local_api())
    informers = kclient.SharedInformerFactory(kclient.Client(transport))
    try:
        yield kclient.Client(transport), informers
    finally:
        await informers.stop()
        await api.stop()


@pytest.fixture
async def backends() -> AsyncIterator[list[int]]:
    servers = []
    for i in range(3):

        async def answer(reader, writer, i=i):
            writer.write(f"backend-{i}".encode())
            await writer.drain()
            writer.close()

        servers.append(await asyncio.start_server(answer, HOST, 0))
    yield [s.sockets[0].getsockname()[1] for s in servers]
    for s in servers:
        s.close()


def slices(backend_ports: list[int]) -> list[Obj]:
    """One slice per backend: they share 127.0.0.1 and differ by port."""
    return [
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"web-{i}",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [HOST], "conditions": {"ready": True}, "nodeName": "n1"}],
        }
        for i, port in enumerate(backend_ports)
    ]


async def ask(port: int) -> str:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return ""
    try:
        return (await reader.read()).decode()
    except OSError:
        return ""
    finally:
        writer.close()


async def until(predicate, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not await predicate():  # noqa: ASYNC110 - polling the data path, no event
            await asyncio.sleep(0.02)


async def test_userspace_proxy_balances_and_follows_changes(tmp_path, backends):
    port = free_port()
    async with api_server(tmp_path) as (client, informers):
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "clusterIP": "10.43.0.50",
                "ports": [{"name": "http", "port": port, "protocol": "TCP", "targetPort": "http"}],
            },
        }
        created = await client.create(svc)
        if not (created.get("spec") or {}).get("clusterIP"):
            pytest.skip("the API server does not keep clusterIP yet")
        for s in slices(backends):
            await client.create(s)
        task = asyncio.create_task(
            proxier.run(client, informers, node_name="n1", mode="userspace", node_ips=())
        )
        try:
            await until(lambda: _answers(port))
            counts = collections.Counter([await ask(port) for _ in range(30)])
            assert counts == {"backend-0": 10, "backend-1": 10, "backend-2": 10}

            # Scaling down: the endpoint leaves the rotation within a second.
            await client.delete(
                "discovery.k8s.io/v1", "EndpointSlice", "web-2", namespace="default"
            )
            await until(lambda: _only(port, {"backend-0", "backend-1"}), within=1.0)

            await client.delete("v1", "Service", "web", namespace="default")
            await until(lambda: _closed(port))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _answers(port: int) -> bool:
    return (await ask(port)).startswith("backend-")


async def _only(port: int, allowed: set[str]) -> bool:
    return {await ask(port) for _ in range(6)} <= allowed


async def _closed(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(HOST, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False
