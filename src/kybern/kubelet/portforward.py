"""Port-forward sessions: SPDY/3.1 streams tunnelled in a websocket, to ports in a pod.

One websocket (subprotocol ``SPDY/3.1+portforward.k8s.io``) carries any number of forwarded
connections; each is a pair of SPDY streams sharing a ``requestid`` header: ``error`` (the
server writes a failure there as text) and ``data`` (the connection's bytes both ways). The
framing lives in :mod:`kybern.kubelet.spdy`; this module opens one
:class:`~kybern.runtime.cri.PortStream` per data stream and copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from kybern.kubelet import spdy
from kybern.runtime import cri

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
Opener = Callable[[int], Awaitable[cri.PortStream]]


@dataclass
class _Stream:
    """One data stream: its pod connection and the bytes from the client not yet written."""

    port: int
    inbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Session:
    """The SPDY side of one port-forward websocket."""

    def __init__(self, ws: web.WebSocketResponse, opener: Opener, *, pod: str) -> None:
        self.ws = ws
        self.opener = opener
        self.pod = pod
        self.reader = spdy.FrameReader()
        self.codec = spdy.HeaderCodec()
        self.lock = asyncio.Lock()
        self.error_streams: dict[str, int] = {}  # requestid -> error stream id
        self.streams: dict[int, _Stream] = {}

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                for frame in self.reader.feed(msg.data):
                    await self._frame(frame)
        except spdy.ProtocolError as exc:
            log.info("port-forward to %s: %s", self.pod, exc)
        finally:
            for stream in self.streams.values():
                for task in stream.tasks:
                    task.cancel()
            await self.ws.close()

    async def send(self, frame: bytes) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(frame)

    async def _frame(self, frame: spdy.Frame) -> None:
        if not frame.control:
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                if frame.payload:
                    stream.inbox.put_nowait(frame.payload)
                if frame.fin:
                    stream.inbox.put_nowait(None)
        elif frame.type == spdy.SYN_STREAM:
            await self._syn_stream(frame)
        elif frame.type == spdy.RST_STREAM:
            stream = self.streams.pop(frame.stream_id, None)
            for task in stream.tasks if stream else ():
                task.cancel()
        elif frame.type == spdy.PING:
            await self.send(spdy.ping(frame.stream_id))
        elif frame.type == spdy.GOAWAY:
            await self.ws.close()

    async def _syn_stream(self, frame: spdy.Frame) -> None:
        async with self.lock:  # header compression is one ordered stream
            headers = spdy.parse_syn_stream(frame, self.codec)
            await self.send(spdy.syn_reply(frame.stream_id, self.codec))
        kind, request = headers.get("streamtype", ""), headers.get("requestid", "")
        if kind == "error":
            self.error_streams[request] = frame.stream_id
            return
        if kind != "data":
            await self.send(spdy.rst_stream(frame.stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            await self._fail(request, frame.stream_id, f"invalid port {headers.get('port')!r}")
            return
        stream = _Stream(port)
        self.streams[frame.stream_id] = stream
        stream.tasks.append(asyncio.create_task(self._forward(frame.stream_id, request, stream)))

    async def _forward(self, stream_id: int, request: str, stream: _Stream) -> None:
        """Copy both ways until the pod's side ends, then close both streams (kubectl waits
        for the error stream's end before it lets the local connection go)."""
        try:
            conn = await self.opener(stream.port)
        except (cri.RuntimeError_, OSError) as exc:
            await self._fail(request, stream_id, str(exc), port=stream.port)
            return
        inbound = asyncio.create_task(self._client_to_pod(stream, conn))
        try:
            await self._pod_to_client(stream_id, conn)
        finally:
            inbound.cancel()
            await conn.close()
            self.streams.pop(stream_id, None)
            error_id = self.error_streams.pop(request, None)
            if error_id is not None:
                await self.send(spdy.data_frame(error_id, b"", fin=True))

    @staticmethod
    async def _client_to_pod(stream: _Stream, conn: cri.PortStream) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while (data := await stream.inbox.get()) is not None:
                await conn.write(data)
            await conn.close_write()

    async def _pod_to_client(self, stream_id: int, conn: cri.PortStream) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await conn.read():
                for start in range(0, len(data), spdy.MAX_DATA):
                    await self.send(spdy.data_frame(stream_id, data[start : start + spdy.MAX_DATA]))
        await self.send(spdy.data_frame(stream_id, b"", fin=True))

    async def _fail(self, request: str, stream_id: int, message: str, *, port: int = 0) -> None:
        text = f"error forwarding port {port} to pod {self.pod}: {message}"
        error_id = self.error_streams.pop(request, None)
        if error_id is not None:
            await self.send(spdy.data_frame(error_id, text.encode(), fin=True))
        await self.send(spdy.data_frame(stream_id, b"", fin=True))


CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")


class ChannelSession:
    """The older websocket port-forward (``v4.channel.k8s.io``, the Python client's): one
    connection per port named in ``?ports=``; port i uses channel 2i for data and 2i+1 for
    errors, and each channel's first server message is the port as 2 little-endian bytes."""

    def __init__(
        self, ws: web.WebSocketResponse, opener: Opener, ports: list[int], *, pod: str
    ) -> None:
        self.ws = ws
        self.opener = opener
        self.ports = ports
        self.pod = pod
        self.conns: dict[int, cri.PortStream] = {}

    async def run(self) -> None:
        pumps = []
        try:
            for index, port in enumerate(self.ports):
                header = struct.pack("<H", port)
                await self.send(bytes((2 * index,)) + header)
                await self.send(bytes((2 * index + 1,)) + header)
                try:
                    conn = await self.opener(port)
                except (cri.RuntimeError_, OSError) as exc:
                    text = f"error forwarding port {port} to pod {self.pod}: {exc}"
                    await self.send(bytes((2 * index + 1,)) + text.encode())
                    return
                self.conns[index] = conn
                pumps.append(asyncio.create_task(self._pod_to_client(index, conn)))
            reader = asyncio.create_task(self._client_to_pods())
            await asyncio.wait([reader, *pumps], return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
        finally:
            for task in pumps:
                task.cancel()
            for conn in self.conns.values():
                await conn.close()
            await self.ws.close()

    async def send(self, message: bytes) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(message)

    async def _pod_to_client(self, index: int, conn: cri.PortStream) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await conn.read():
                await self.send(bytes((2 * index,)) + data)

    async def _client_to_pods(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, payload = msg.data[0], msg.data[1:]
            conn = self.conns.get(channel // 2) if channel % 2 == 0 else None
            if conn is not None and payload:
                await conn.write(payload)


def parse_ports(values: list[str]) -> list[int]:
    """``?ports=8080,9090`` (or repeated): the ports of a channel-protocol session."""
    ports = []
    for value in values:
        for part in value.split(","):
            port = int(part)
            if not 0 < port < 65536:
                raise ValueError(f"invalid port {part}")
            ports.append(port)
    return ports
