"""The kubelet's HTTPS server on its own: client-certificate authentication, logs, exec over the
channel protocols, port-forward over SPDY-in-websocket and over channels, and its errors.

A client CA and a client certificate are made here with the API server's PKI helpers (the test
plays the API server); the runtime and PodLookup are the doubles in kubeletdouble.py."""

from __future__ import annotations

import asyncio
import base64
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType

from kybern.apiserver import pki
from kybern.kubelet import certs, spdy, streaming
from kybern.kubelet import server as kubelet_server
from kybern.runtime import crilog
from tests.integration import kubeletdouble


@dataclass
class Env:
    server: kubelet_server.KubeletServer
    lookup: kubeletdouble.Lookup
    runtime: kubeletdouble.LocalRuntime
    client_tls: ssl.SSLContext
    logs: Path

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    def session(self, tls: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=tls or self.client_tls),
            timeout=aiohttp.ClientTimeout(total=10),
        )


def _insecure() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    ca = await asyncio.to_thread(pki.ensure_pki, data_dir=tmp_path / "api")
    client_tls = await asyncio.to_thread(pki.kubelet_client_ssl_context, ca)
    cert, key = certs.ensure_serving_cert(tmp_path / "kubelet", hostname="node-1")
    lookup, runtime = kubeletdouble.Lookup(), kubeletdouble.LocalRuntime()
    server = kubelet_server.KubeletServer(
        runtime=runtime,
        lookup=lookup,
        host="127.0.0.1",
        port=0,
        ssl_context=certs.server_ssl_context(cert=cert, key=key, client_ca=ca.ca_cert),
        poll_interval=0.02,
    )
    await server.start()
    logs = tmp_path / "logs"
    logs.mkdir()
    lookup.add("ns", "web", "main", logs)
    try:
        yield Env(server, lookup, runtime, client_tls, logs)
    finally:
        for session in runtime.sessions:
            await session.close()
        await server.stop()


class TestAuthentication:
    async def test_no_client_certificate_is_401_but_healthz_is_open(self, env: Env) -> None:
        async with env.session(_insecure()) as http:
            async with http.get(env.base + "/containerLogs/ns/web/main") as r:
                assert r.status == 401
            async with http.get(env.base + "/healthz") as r:
                assert (r.status, await r.text()) == (200, "ok")

    async def test_a_certificate_from_another_ca_fails_the_handshake(
        self, env: Env, tmp_path: Path
    ) -> None:
        other = await asyncio.to_thread(pki.ensure_pki, data_dir=tmp_path / "other")
        tls = await asyncio.to_thread(pki.kubelet_client_ssl_context, other)
        async with env.session(tls) as http:
            with pytest.raises(aiohttp.ClientError):
                await http.get(env.base + "/containerLogs/ns/web/main")

    def test_the_kubelet_client_certificate_names_the_api_server(self, tmp_path: Path) -> None:
        from cryptography import x509

        ca = pki.ensure_pki(data_dir=tmp_path)
        pki.kubelet_client_ssl_context(ca)
        cert = x509.load_pem_x509_certificate(
            (ca.ca_cert.parent / "apiserver-kubelet-client.crt").read_bytes()
        )
        assert cert.subject.rfc4514_string() == "CN=kube-apiserver-kubelet-client,O=system:masters"


class TestLogs:
    async def test_query_parameters(self, env: Env) -> None:
        path = env.logs / "main.log"
        path.write_bytes(
            b"".join(
                crilog.format_line(crilog.STDOUT, b"line%d" % i, ns=(1_700_000_000 + i) * 10**9)
                for i in range(5)
            )
        )
        async with env.session() as http:
            url = env.base + "/containerLogs/ns/web/main"
            async with http.get(url, params={"tailLines": "2", "timestamps": "true"}) as r:
                assert r.headers["Content-Type"].startswith("text/plain")
                assert await r.text() == (
                    "2023-11-14T22:13:23Z line3\n2023-11-14T22:13:24Z line4\n"
                )
            async with http.get(url, params={"sinceTime": "2023-11-14T22:13:23Z"}) as r:
                assert await r.text() == "line3\nline4\n"
            async with http.get(url, params={"limitBytes": "8"}) as r:
                assert await r.text() == "line0\nli"
            async with http.get(url, params={"tailLines": "x"}) as r:
                assert r.status == 400
            async with http.get(url, params={"previous": "true"}) as r:
                assert r.status == 400
                assert "previous terminated container" in await r.text()

    async def test_unknown_container_is_404(self, env: Env) -> None:
        async with env.session() as http, http.get(env.base + "/containerLogs/ns/web/nope") as r:
            assert r.status == 404
            assert await r.text() == 'container "nope" in pod "web" not found'


async def _collect(ws: aiohttp.ClientWebSocketResponse) -> dict[int, bytes]:
    """Every channel's bytes until the server closes."""
    got: dict[int, bytes] = {}
    async with asyncio.timeout(10):
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                channel, payload = streaming.decode(msg.data)
                got[channel] = got.get(channel, b"") + payload
    return got


class TestExec:
    @pytest.mark.parametrize("protocol", [streaming.V5, streaming.V4])
    async def test_exit_code_as_status(self, env: Env, protocol: str) -> None:
        params = [("command", "sh"), ("command", "-c"), ("command", "echo o; echo e >&2; exit 7")]
        params += [("stdout", "1"), ("stderr", "1")]
        async with (
            env.session() as http,
            http.ws_connect(
                env.base + "/exec/ns/web/main", params=params, protocols=[protocol]
            ) as ws,
        ):
            assert ws.protocol == protocol
            got = await _collect(ws)
        assert got[streaming.STDOUT] == b"o\n"
        assert got[streaming.STDERR] == b"e\n"
        status = orjson.loads(got[streaming.ERROR])
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]

    async def test_base64_protocol_uses_text_frames(self, env: Env) -> None:
        params = [("command", "cat"), ("stdin", "1"), ("stdout", "1")]
        async with (
            env.session() as http,
            http.ws_connect(
                env.base + "/exec/ns/web/main", params=params, protocols=[streaming.V4_BASE64]
            ) as ws,
        ):
            await ws.send_str("0" + base64.b64encode(b"via base64").decode())
            first = await ws.receive(timeout=10)
            assert first.type == WSMsgType.TEXT
            assert (first.data[0], base64.b64decode(first.data[1:])) == ("1", b"via base64")

    async def test_v5_close_ends_stdin(self, env: Env) -> None:
        params = [("command", "cat"), ("stdin", "true"), ("stdout", "true")]
        async with (
            env.session() as http,
            http.ws_connect(
                env.base + "/exec/ns/web/main", params=params, protocols=[streaming.V5]
            ) as ws,
        ):
            await ws.send_bytes(streaming.encode(streaming.STDIN, b"abc"))
            await ws.send_bytes(bytes((streaming.CLOSE, streaming.STDIN)))
            got = await _collect(ws)
        assert got[streaming.STDOUT] == b"abc"
        assert orjson.loads(got[streaming.ERROR])["status"] == "Success"

    async def test_a_command_that_cannot_start_is_a_failure_status(self, env: Env) -> None:
        params = [("command", "/no/such/binary"), ("stdout", "true")]
        async with (
            env.session() as http,
            http.ws_connect(
                env.base + "/exec/ns/web/main", params=params, protocols=[streaming.V4]
            ) as ws,
        ):
            got = await _collect(ws)
        assert orjson.loads(got[streaming.ERROR])["status"] == "Failure"

    async def test_requests_the_kubelet_refuses(self, env: Env) -> None:
        async with env.session() as http:
            url = env.base + "/exec/ns/web/main"
            async with http.get(url, params={"stdout": "1"}) as r:  # no command
                assert (r.status, await r.text()) == (400, "you must specify at least 1 command")
            async with http.get(url, params={"command": "ls"}) as r:  # no stream
                assert r.status == 400
            async with http.get(url, params={"command": "ls", "stdout": "1"}) as r:  # no upgrade
                assert (r.status, await r.text()) == (400, "Upgrade request required")


class TestPortForward:
    @pytest.fixture
    async def echo_port(self) -> AsyncIterator[int]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                writer.write(data.upper())
                await writer.drain()
            writer.close()

        srv = await asyncio.start_server(echo, "127.0.0.1", 0)
        yield srv.sockets[0].getsockname()[1]
        srv.close()

    async def test_spdy_streams_over_a_websocket(self, env: Env, echo_port: int) -> None:
        codec, reader = spdy.HeaderCodec(), spdy.FrameReader()
        async with (
            env.session() as http,
            http.ws_connect(
                env.base + "/portForward/ns/web", protocols=["SPDY/3.1+portforward.k8s.io"]
            ) as ws,
        ):
            for sid, kind in ((1, "error"), (3, "data")):
                headers = {"streamType": kind, "port": str(echo_port), "requestID": "0"}
                await ws.send_bytes(spdy.syn_stream(sid, codec, headers))
            await ws.send_bytes(spdy.ping(9))
            await ws.send_bytes(spdy.data_frame(3, b"hello"))
            await ws.send_bytes(spdy.data_frame(3, b"", fin=True))
            frames: list[spdy.Frame] = []
            async with asyncio.timeout(10):
                while not any(f.fin and f.stream_id == 3 and not f.control for f in frames):
                    msg = await ws.receive()
                    assert msg.type == WSMsgType.BINARY, msg
                    frames.extend(reader.feed(msg.data))
        replies = [f.stream_id for f in frames if f.control and f.type == spdy.SYN_REPLY]
        assert replies == [1, 3]
        assert any(f.control and f.type == spdy.PING and f.stream_id == 9 for f in frames)
        data = b"".join(f.payload for f in frames if not f.control and f.stream_id == 3)
        assert data == b"HELLO"

    async def test_spdy_error_stream_when_nothing_listens(self, env: Env) -> None:
        codec, reader = spdy.HeaderCodec(), spdy.FrameReader()
        with socketless_port() as port:
            async with (
                env.session() as http,
                http.ws_connect(
                    env.base + "/portForward/ns/web", protocols=["SPDY/3.1+portforward.k8s.io"]
                ) as ws,
            ):
                for sid, kind in ((1, "error"), (3, "data")):
                    headers = {"streamType": kind, "port": str(port), "requestID": "0"}
                    await ws.send_bytes(spdy.syn_stream(sid, codec, headers))
                frames: list[spdy.Frame] = []
                async with asyncio.timeout(10):
                    while not any(f.fin and f.stream_id == 1 for f in frames):
                        frames.extend(reader.feed((await ws.receive()).data))
        error = b"".join(f.payload for f in frames if not f.control and f.stream_id == 1)
        assert error.startswith(f"error forwarding port {port} to pod ns/web".encode())

    async def test_channel_protocol(self, env: Env, echo_port: int) -> None:
        async with (
            env.session() as http,
            http.ws_connect(
                env.base + "/portForward/ns/web",
                params={"ports": str(echo_port)},
                protocols=["v4.channel.k8s.io"],
            ) as ws,
        ):
            header = struct.pack("<H", echo_port)
            assert (await ws.receive_bytes()) == b"\x00" + header
            assert (await ws.receive_bytes()) == b"\x01" + header
            await ws.send_bytes(b"\x00ping")
            assert (await ws.receive_bytes()) == b"\x00PING"

    async def test_unknown_pod_is_404(self, env: Env) -> None:
        async with env.session() as http, http.get(env.base + "/portForward/ns/nope") as r:
            assert r.status == 404


class socketless_port:
    """A port nothing listens on (bound, never listening, for the test's duration)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
