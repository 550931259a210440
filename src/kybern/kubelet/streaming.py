"""The websocket channel protocols of exec and attach (``*.channel.k8s.io``).

Every binary websocket message is one channel byte followed by that channel's bytes:
0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize. Versions differ in what they add:

- ``channel.k8s.io`` (v1) and ``v2.channel.k8s.io``: the error channel carries plain text;
- ``v3.channel.k8s.io``: the resize channel (JSON ``{"Width": w, "Height": h}``);
- ``v4.channel.k8s.io``: the error channel carries a JSON ``Status``: ``Success``, or a
  ``Failure`` with reason ``NonZeroExitCode`` and a cause ``ExitCode`` holding the code;
- ``v5.channel.k8s.io``: channel 255 closes the channel in the next byte (stdin EOF), which
  ``kubectl exec -i`` needs to end a command reading its input;
- ``base64.channel.k8s.io`` and ``v4.base64.channel.k8s.io``: the same as v1 and v4 in text
  frames: the channel as an ASCII digit, then the bytes in base64 (for browsers).

:func:`serve_session` runs one exec or attach session on an open websocket: stdin and resize
from the client into the runtime's :class:`~kybern.runtime.cri.StreamSession`, stdout and
stderr back, then the exit status on the error channel and a close.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSMessage, WSMsgType, web

from kybern.runtime import cri

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = "channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
BASE64 = "base64.channel.k8s.io"
# Served protocols; as in Kubernetes' handshake, the first one in the client's list wins.
PROTOCOLS = (V5, V4, V4_BASE64, V3, V2, V1, BASE64)


def encode(channel: int, data: bytes) -> bytes:
    return bytes((channel,)) + data


def decode(message: bytes) -> tuple[int, bytes]:
    """(channel, payload) of one binary message; an empty message is channel -1."""
    if not message:
        return -1, b""
    return message[0], message[1:]


def is_base64(protocol: str) -> bool:
    """Base64 protocols send text frames: the channel as a digit, then the data in base64."""
    return protocol in (V4_BASE64, BASE64)


async def send(ws: web.WebSocketResponse, protocol: str, message: bytes) -> None:
    """Send one ``encode``d message in the protocol's framing."""
    if is_base64(protocol):
        await ws.send_str(chr(ord("0") + message[0]) + base64.b64encode(message[1:]).decode())
    else:
        await ws.send_bytes(message)


def receive(protocol: str, msg: WSMessage) -> tuple[int, bytes]:
    """(channel, payload) of a client message; channel -1 for what the protocol ignores."""
    if is_base64(protocol):
        if msg.type != WSMsgType.TEXT or not msg.data or not msg.data[0].isdigit():
            return -1, b""
        try:
            return int(msg.data[0]), base64.b64decode(msg.data[1:])
        except ValueError:
            return -1, b""
    return decode(msg.data) if msg.type == WSMsgType.BINARY else (-1, b"")


def has_status(protocol: str) -> bool:
    return protocol in (V5, V4, V4_BASE64)


def supports_close(protocol: str) -> bool:
    return protocol == V5


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, command: list[str] | None = None) -> dict[str, Any]:
    """The Status the kubelet sends when a command exits non-zero (kubectl reads the cause)."""
    what = f"error executing command {command}, exit code {code}" if command else str(code)
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {what}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"}


def status_message(protocol: str, status: dict[str, Any]) -> bytes:
    """The error-channel message for ``status`` in ``protocol`` (text before v4)."""
    if has_status(protocol):
        return encode(ERROR, orjson.dumps(status))
    return encode(ERROR, str(status.get("message", "")).encode())


def parse_resize(payload: bytes) -> cri.TerminalSize | None:
    try:
        size = orjson.loads(payload)
        return cri.TerminalSize(width=int(size["Width"]), height=int(size["Height"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Streams:
    """Which streams the client asked for (query ``stdin``/``stdout``/``stderr``/``tty``)."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


async def serve_session(
    ws: web.WebSocketResponse,
    session: cri.StreamSession,
    streams: Streams,
    *,
    command: list[str] | None = None,
) -> None:
    """Bridge ``ws`` and ``session`` until the process ends or the client goes away."""
    protocol = ws.ws_protocol or V1
    reader = asyncio.create_task(_client_to_session(ws, session, streams, protocol))
    pumps = [asyncio.create_task(_pump(ws, protocol, session.read_stdout, STDOUT, streams.stdout))]
    if not streams.tty:
        pumps.append(
            asyncio.create_task(_pump(ws, protocol, session.read_stderr, STDERR, streams.stderr))
        )
    try:
        pending: set[asyncio.Task[None]] = {reader, *pumps}
        while any(pump in pending for pump in pumps):
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if reader not in pending:  # the client left first: tear the session down
                return
        try:
            code = await session.wait()
            status = success_status() if code == 0 else exit_status(code, command)
        except cri.RuntimeError_ as exc:
            status = error_status(str(exc))
        with contextlib.suppress(*_GONE):
            await send(ws, protocol, status_message(protocol, status))
    finally:
        reader.cancel()
        for pump in pumps:
            pump.cancel()
        with contextlib.suppress(*_GONE):
            await session.close()
        await ws.close()


# What a runtime's stream calls raise when the process or its pipes are gone.
_GONE = (OSError, RuntimeError, cri.RuntimeError_)


async def _pump(
    ws: web.WebSocketResponse,
    protocol: str,
    read: Callable[[], Awaitable[bytes]],
    channel: int,
    wanted: bool,
) -> None:
    """Copy one output stream to its channel until it ends (dropped when not asked for)."""
    with contextlib.suppress(*_GONE):  # ConnectionError is an OSError: the client left
        while data := await read():
            if wanted and not ws.closed:
                await send(ws, protocol, encode(channel, data))


async def _client_to_session(
    ws: web.WebSocketResponse, session: cri.StreamSession, streams: Streams, protocol: str
) -> None:
    with contextlib.suppress(*_GONE):
        async for msg in ws:
            channel, payload = receive(protocol, msg)
            await _from_client(session, streams, protocol, channel, payload)
    # The websocket closed: no more input will come.
    with contextlib.suppress(*_GONE):
        await session.close_stdin()


async def _from_client(
    session: cri.StreamSession, streams: Streams, protocol: str, channel: int, payload: bytes
) -> None:
    if channel == STDIN and streams.stdin and payload:
        await session.write_stdin(payload)
    elif channel == RESIZE:
        size = parse_resize(payload)
        if size is not None:
            await session.resize(size)
    elif channel == CLOSE and supports_close(protocol) and payload[:1] == bytes((STDIN,)):
        await session.close_stdin()
