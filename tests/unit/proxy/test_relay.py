"""The splice relay: every byte arrives, half-closes pass through, a reset ends both ways.

Each scenario runs on asyncio's own loop and on uvloop (what ``kybern server`` runs)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from kybern.proxy import relay

pytestmark = pytest.mark.timeout(60)

Scenario = Callable[[], Awaitable[None]]


def pair() -> tuple[socket.socket, socket.socket]:
    """Two connected TCP sockets on loopback (splice needs real sockets, not a socketpair)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    for s in (client, accepted):
        s.setblocking(False)
    return client, accepted


async def through_relay(
    work: Callable[[socket.socket, socket.socket], Awaitable[None]],
) -> None:
    """``work(client, server)`` where client <-> relay <-> server."""
    client, front = pair()
    back, server = pair()
    task = asyncio.create_task(relay.relay(front, back))
    try:
        await work(client, server)
        await asyncio.wait_for(task, 10)
    finally:
        for s in (client, front, back, server):
            s.close()


async def send_all(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)


async def recv_all(sock: socket.socket) -> bytes:
    loop, chunks = asyncio.get_running_loop(), []
    while chunk := await loop.sock_recv(sock, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


async def bulk_both_ways_and_half_close() -> None:
    up, down = os.urandom(8 << 20), os.urandom(3 << 20)

    async def work(client: socket.socket, server: socket.socket) -> None:
        async def client_side() -> bytes:
            await send_all(client, up)
            client.shutdown(socket.SHUT_WR)  # half-close: the answer must still arrive
            return await recv_all(client)

        async def server_side() -> bytes:
            got = await recv_all(server)  # ends at the client's EOF, passed through
            await send_all(server, down)
            server.shutdown(socket.SHUT_WR)
            return got

        answer, request = await asyncio.gather(client_side(), server_side())
        assert hashlib.sha256(request).digest() == hashlib.sha256(up).digest()
        assert hashlib.sha256(answer).digest() == hashlib.sha256(down).digest()

    await through_relay(work)


async def reset_ends_both_directions() -> None:
    async def work(client: socket.socket, server: socket.socket) -> None:
        await send_all(client, b"hello")
        assert await asyncio.get_running_loop().sock_recv(server, 5) == b"hello"
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close()  # a reset: the client's connection must end, not hang half-open
        try:
            assert await asyncio.wait_for(recv_all(client), 10) == b""
        except ConnectionResetError:
            pass  # ended either way

    await through_relay(work)  # and the relay itself ended (waited on with a deadline)


SCENARIOS = [bulk_both_ways_and_half_close, reset_ends_both_directions]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
async def test_on_asyncio(scenario: Scenario) -> None:
    await scenario()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_on_uvloop(scenario: Scenario) -> None:
    uvloop.run(scenario())
