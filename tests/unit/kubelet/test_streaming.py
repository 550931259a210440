"""The exec/attach channel codec and the SPDY/3.1 framing of port-forward."""

from __future__ import annotations

import struct
import zlib

import orjson

from kybern.kubelet import spdy, streaming
from kybern.runtime import cri


class TestChannels:
    def test_encode_decode_round_trip(self) -> None:
        message = streaming.encode(streaming.STDOUT, b"hello")
        assert message == b"\x01hello"
        assert streaming.decode(message) == (1, b"hello")
        assert streaming.decode(b"") == (-1, b"")

    def test_exit_status_carries_the_code_as_a_cause(self) -> None:
        status = streaming.exit_status(3, ["sh", "-c", "exit 3"])
        assert status["status"] == "Failure"
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]

    def test_status_is_json_from_v4_and_text_before(self) -> None:
        ok = streaming.status_message(streaming.V5, streaming.success_status())
        assert ok[0] == streaming.ERROR
        assert orjson.loads(ok[1:]) == {"metadata": {}, "status": "Success"}
        failed = streaming.status_message(streaming.V2, streaming.error_status("boom"))
        assert failed == b"\x03boom"

    def test_resize_payload(self) -> None:
        assert streaming.parse_resize(b'{"Width":80,"Height":24}') == cri.TerminalSize(80, 24)
        assert streaming.parse_resize(b"not json") is None
        assert streaming.parse_resize(b'{"Width":80}') is None

    def test_close_only_in_v5(self) -> None:
        assert streaming.supports_close(streaming.V5)
        assert not streaming.supports_close(streaming.V4)


class TestSpdy:
    def test_dictionary_is_the_spdy3_one(self) -> None:
        assert len(spdy.DICTIONARY) == 1423
        assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2

    def test_headers_round_trip_across_several_blocks(self) -> None:
        client, server = spdy.HeaderCodec(), spdy.HeaderCodec()
        for request in ("0", "1", "2"):
            headers = {"streamType": "data", "port": "8080", "requestID": request}
            frame = spdy.syn_stream(1, client, headers)
            (parsed,) = spdy.FrameReader().feed(frame)
            assert parsed.control
            assert parsed.type == spdy.SYN_STREAM
            assert parsed.stream_id == 1
            assert spdy.parse_syn_stream(parsed, server) == {
                "streamtype": "data",
                "port": "8080",
                "requestid": request,
            }

    def test_reader_handles_frames_split_anywhere(self) -> None:
        stream = spdy.data_frame(3, b"abc") + spdy.ping(7) + spdy.data_frame(3, b"", fin=True)
        reader = spdy.FrameReader()
        frames = [f for i in range(len(stream)) for f in reader.feed(stream[i : i + 1])]
        assert [(f.control, f.type, f.stream_id, f.payload, f.fin) for f in frames] == [
            (False, 0, 3, b"abc", False),
            (True, spdy.PING, 7, struct.pack(">I", 7), False),
            (False, 0, 3, b"", True),
        ]

    def test_syn_reply_decodes_with_an_empty_header_block(self) -> None:
        server, client = spdy.HeaderCodec(), spdy.HeaderCodec()
        (reply,) = spdy.FrameReader().feed(spdy.syn_reply(5, server))
        assert reply.type == spdy.SYN_REPLY
        assert reply.stream_id == 5
        assert client.decode(reply.payload[4:]) == {}
