"""SPDY/3.1 framing, just enough for Kubernetes' port-forward protocol (server side).

kubectl v1.32 port-forwards over a websocket with the subprotocol
``SPDY/3.1+portforward.k8s.io``: the websocket's binary messages carry a byte stream of SPDY
frames (message boundaries mean nothing). The client opens two streams per forwarded
connection with SYN_STREAM, headers ``streamtype`` (``error`` or ``data``), ``port`` and
``requestid``; the server answers each with a SYN_REPLY, copies the data stream to and from
the pod's port, and writes a failure as text on the error stream.

Frames (all integers big-endian):
- control: ``1 | version(15) | type(16) | flags(8) | length(24) | payload``;
- data: ``0 | stream id(31) | flags(8) | length(24) | payload``; flag 0x01 = FIN.

Header blocks are zlib streams (one per direction for the whole connection, each block
ended by a sync flush) primed with the SPDY/3 dictionary below. Flow control (WINDOW_UPDATE,
SETTINGS) is ignored: Kubernetes' SPDY library does not enforce it either.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

VERSION = 3
FLAG_FIN = 0x01

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

RST_CANCEL = 5
RST_PROTOCOL_ERROR = 1
MAX_DATA = 0xFFFFFF

_WORDS = (
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, "
    "Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): the
# length-prefixed common header words, then a block of common values.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3."""


@dataclass(frozen=True)
class Frame:
    control: bool
    type: int  # control frames: the frame type; data frames: 0
    stream_id: int  # data frames; for control frames the id parsed from the payload if any
    flags: int
    payload: bytes

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class FrameReader:
    """Frames out of a byte stream fed in arbitrary pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            frames.append(_frame(head, payload))
        return frames


def _frame(head: bytes, payload: bytes) -> Frame:
    first, flags = int.from_bytes(head[:4], "big"), head[4]
    if first & 0x8000_0000:
        version, ftype = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        stream = int.from_bytes(payload[:4], "big") & 0x7FFF_FFFF if len(payload) >= 4 else 0
        return Frame(True, ftype, stream, flags, payload)
    return Frame(False, 0, first & 0x7FFF_FFFF, flags, payload)


def control_frame(ftype: int, payload: bytes, flags: int = 0) -> bytes:
    head = struct.pack(">HH", 0x8000 | VERSION, ftype)
    return head + bytes((flags,)) + len(payload).to_bytes(3, "big") + payload


def data_frame(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
    flags = FLAG_FIN if fin else 0
    return (
        struct.pack(">I", stream_id & 0x7FFF_FFFF)
        + bytes((flags,))
        + len(data).to_bytes(3, "big")
        + data
    )


def rst_stream(stream_id: int, status: int) -> bytes:
    return control_frame(RST_STREAM, struct.pack(">II", stream_id, status))


def ping(ping_id: int) -> bytes:
    return control_frame(PING, struct.pack(">I", ping_id))


class HeaderCodec:
    """One direction each: decompress the peer's header blocks, compress ours."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zdict=DICTIONARY
        )

    def decode(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        count, pos, headers = int.from_bytes(raw[:4], "big"), 4, {}
        for _ in range(count):
            name, pos = _string(raw, pos)
            value, pos = _string(raw, pos)
            headers[name.lower()] = value
        return headers

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            for text in (name.lower(), value):
                raw += struct.pack(">I", len(text.encode())) + text.encode()
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def _string(raw: bytes, pos: int) -> tuple[str, int]:
    if pos + 4 > len(raw):
        raise ProtocolError("truncated header block")
    length = int.from_bytes(raw[pos : pos + 4], "big")
    end = pos + 4 + length
    if end > len(raw):
        raise ProtocolError("truncated header block")
    return raw[pos + 4 : end].decode(errors="replace"), end


def parse_syn_stream(frame: Frame, codec: HeaderCodec) -> dict[str, str]:
    """The headers of a SYN_STREAM (stream id 4 bytes, associated id 4, priority 2, block)."""
    if len(frame.payload) < 10:
        raise ProtocolError("short SYN_STREAM")
    return codec.decode(frame.payload[10:])


def syn_reply(stream_id: int, codec: HeaderCodec, headers: dict[str, str] | None = None) -> bytes:
    return control_frame(SYN_REPLY, struct.pack(">I", stream_id) + codec.encode(headers or {}))


def syn_stream(
    stream_id: int, codec: HeaderCodec, headers: dict[str, str], *, fin: bool = False
) -> bytes:
    """A client's SYN_STREAM (tests play kubectl with it)."""
    payload = struct.pack(">IIH", stream_id, 0, 0) + codec.encode(headers)
    return control_frame(SYN_STREAM, payload, FLAG_FIN if fin else 0)
