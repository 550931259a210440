"""gRPC health probes (``grpc.health.v1.Health/Check``) over a minimal HTTP/2 client.

Neither ``grpcio`` nor ``h2`` is installed, and a probe needs very little of HTTP/2: the
cleartext (prior-knowledge) preface, one stream carrying one request, and the response DATA.
Request headers are HPACK literals without indexing and without Huffman coding (always valid to
send). Response headers are not decoded (that needs HPACK's Huffman table): the verdict comes
from the HealthCheckResponse message in the DATA frames: status SERVING is a success, any other
status, no message, RST_STREAM or GOAWAY a failure. Messages follow the kubelet's grpc prober.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
USER_AGENT = "kube-probe/1.32"

Obj = dict[str, Any]


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name: str, value: str) -> bytes:
    """A header as "literal without indexing, new name", no Huffman (RFC 7541 §6.2.2)."""
    raw_name, raw_value = name.encode(), value.encode()
    return (
        b"\x00"
        + _hpack_int(len(raw_name), 7)
        + raw_name
        + _hpack_int(len(raw_value), 7)
        + raw_value
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def request(authority: str, service: str) -> bytes:
    headers = b"".join(
        hpack_literal(name, value)
        for name, value in (
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("user-agent", USER_AGENT),
        )
    )
    message = b"\x0a" + _varint(len(service.encode())) + service.encode() if service else b""
    body = b"\x00" + struct.pack(">I", len(message)) + message
    return (
        PREFACE
        + frame(SETTINGS, 0, 0)
        + frame(HEADERS, END_HEADERS, 1, headers)
        + frame(DATA, END_STREAM, 1, body)
    )


def parse_status(data: bytes) -> int | None:
    """The ``status`` (field 1) of the first HealthCheckResponse in gRPC-framed ``data``."""
    if len(data) < 5:
        return None
    length = struct.unpack(">I", data[1:5])[0]
    message = data[5 : 5 + length]
    position = 0
    status = 0  # proto3: an absent field is its zero value (UNKNOWN)
    while position < len(message):
        tag = message[position]
        position += 1
        value, position = _read_varint(message, position)
        if tag == 0x08:
            status = value
        elif tag & 0x7 == 2:
            position += value  # skip length-delimited fields
    return status


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while position < len(data):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value, position


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    head = await reader.readexactly(9)
    length = int.from_bytes(head[:3], "big")
    stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
    return head[3], head[4], stream, await reader.readexactly(length)


async def _exchange(host: str, port: int, service: str) -> bytes | str:
    """The response DATA of stream 1, or a failure text."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        writer.write(request(authority, service))
        await writer.drain()
        data = b""
        while True:
            kind, flags, stream, payload = await _read_frame(reader)
            if kind == SETTINGS and not flags & ACK:
                writer.write(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                writer.write(frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                return "connection closed by the server (GOAWAY)"
            elif kind == RST_STREAM and stream == 1:
                return "stream reset by the server"
            elif kind == DATA and stream == 1:
                data += payload
            if stream == 1 and kind in (DATA, HEADERS) and flags & END_STREAM:
                return data
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def check(action: Obj, *, pod_ip: str, time_limit: float) -> tuple[bool, str]:
    """One grpc probe: success and the probe output."""
    timeout = time_limit
    port = int(action.get("port", 0))
    service = str(action.get("service") or "")
    address = f"{pod_ip}:{port}"
    try:
        outcome = await asyncio.wait_for(_exchange(pod_ip, port, service), timeout)
    except TimeoutError:
        return (False, f"timeout: health rpc did not complete within {timeout:g}s")
    except (OSError, asyncio.IncompleteReadError) as err:
        return (False, f'timeout: failed to connect service "{address}" within {timeout:g}s: {err}')
    if isinstance(outcome, str):
        return (False, f"error: health rpc probe failed: {outcome}")
    status = parse_status(outcome)
    if status is None:
        return (False, "error: health rpc probe failed: no response message (the rpc failed)")
    if status != 1:
        return (False, f'service unhealthy (responded with "{STATUS_NAMES.get(status, status)}")')
    return (True, "")
