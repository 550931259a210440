"""The kubelet's HTTPS server (port 10250): container logs, exec, attach and port-forward.

The API server proxies ``pods/log``, ``pods/exec``, ``pods/attach`` and ``pods/portforward``
here (kybern.apiserver.handlers.podproxy). Routes, as the real kubelet serves them:

- ``GET /containerLogs/{ns}/{pod}/{container}?follow&tailLines&sinceSeconds&sinceTime&previous
  &timestamps&limitBytes``: text/plain, streamed (:mod:`kybern.kubelet.logs`);
- ``GET|POST /exec/{ns}/{pod}/{container}?command=..&command=..&stdin&stdout&stderr&tty`` and
  ``/attach/{ns}/{pod}/{container}``: websocket channel protocols
  (:mod:`kybern.kubelet.streaming`); ``input``/``output``/``error`` are accepted as the
  kubelet's own names for stdin/stdout/stderr;
- ``GET|POST /portForward/{ns}/{pod}``: websocket ``SPDY/3.1+portforward.k8s.io``
  (:mod:`kybern.kubelet.portforward`);
- ``GET /healthz``: ``ok``, no authentication.

Authentication: every other route needs a client certificate signed by the cluster CA (the TLS
layer verifies it against the CA given to :func:`kybern.kubelet.certs.server_ssl_context`);
without one the answer is 401. Failures are plain text with an HTTP code, as the kubelet's.

Use :class:`KubeletServer` (``await start()``, ``port``, ``await stop()``) or :func:`serve`
(runs until cancelled).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol

from aiohttp import web

from kybern.kubelet import logs, portforward, streaming
from kybern.kubelet import podlookup as podlookup_
from kybern.runtime import cri

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Query = Mapping[str, str]
DEFAULT_PORT = 10250


class StreamingRuntime(Protocol):
    """The part of :class:`~kybern.runtime.cri.Runtime` this server uses."""

    async def exec(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool
    ) -> cri.StreamSession: ...

    async def attach(self, container_id: str, *, tty: bool, stdin: bool) -> cri.StreamSession: ...

    async def port_forward(self, sandbox_id: str, port: int) -> cri.PortStream: ...


class HTTPError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def go_bool(query: Query, name: str, default: bool = False) -> bool:
    """A boolean query parameter parsed as Go's strconv.ParseBool (a bare ``?x`` is true)."""
    value = query.get(name)
    if value is None:
        return default
    if value == "" or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise HTTPError(400, f'invalid boolean value "{value}" for {name}')


def _int(query: Query, name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise HTTPError(400, f'invalid value "{value}" for {name}: not an integer') from None


def parse_rfc3339(value: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (``Z`` or an offset, any fraction)."""
    text = value.strip()
    offset = 0
    if text.endswith(("Z", "z")):
        text = text[:-1]
    elif len(text) > 6 and text[-6] in "+-" and text[-3] == ":":
        sign = 1 if text[-6] == "+" else -1
        offset = sign * (int(text[-5:-3]) * 3600 + int(text[-2:]) * 60)
        text = text[:-6]
    main, _, frac = text.partition(".")
    seconds = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S")) - offset
    return seconds * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def log_options(query: Query, now_ns: int) -> logs.LogOptions:
    since_ns = None
    since_seconds = _int(query, "sinceSeconds")
    since_time = query.get("sinceTime")
    if since_seconds is not None:
        if since_seconds < 1:
            raise HTTPError(400, "sinceSeconds must be greater than 0")
        since_ns = now_ns - since_seconds * 1_000_000_000
    elif since_time:
        try:
            since_ns = parse_rfc3339(since_time)
        except (ValueError, IndexError):
            raise HTTPError(400, f'invalid sinceTime "{since_time}"') from None
    tail = _int(query, "tailLines")
    limit = _int(query, "limitBytes")
    if tail is not None and tail < 0:
        tail = None  # kubectl sends -1 for "all"
    if limit is not None and limit < 1:
        raise HTTPError(400, "limitBytes must be greater than 0")
    return logs.LogOptions(
        follow=go_bool(query, "follow"),
        tail_lines=tail,
        since_ns=since_ns,
        timestamps=go_bool(query, "timestamps"),
        limit_bytes=limit,
    )


class KubeletServer:
    """The HTTPS server; ``port`` is the bound port after :meth:`start` (0 picks a free one)."""

    def __init__(
        self,
        *,
        runtime: StreamingRuntime,
        lookup: podlookup_.PodLookup,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        ssl_context: ssl.SSLContext | None = None,
        require_client_cert: bool | None = None,
        poll_interval: float = 0.1,
    ) -> None:
        self.runtime = runtime
        self.lookup = lookup
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        # Plain HTTP (tests only) cannot see certificates: authentication then is off.
        self.require_client_cert = (
            ssl_context is not None if require_client_cert is None else require_client_cert
        )
        self.poll_interval = poll_interval
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        application = web.Application(middlewares=[self._errors, self._authenticate])
        router = application.router
        router.add_get("/healthz", self._healthz)
        router.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        for method in ("GET", "POST"):
            router.add_route(method, "/exec/{ns}/{pod}/{container}", self._exec)
            router.add_route(method, "/attach/{ns}/{pod}/{container}", self._attach)
            router.add_route(method, "/portForward/{ns}/{pod}", self._port_forward)
        return application

    async def start(self) -> None:
        # handler_cancellation: a client that goes away ends a followed log at once.
        self._runner = web.AppRunner(
            self.app(), access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, ssl_context=self.ssl_context).start()
        log.info("kubelet server listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- middlewares ----------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except HTTPError as exc:
            return web.Response(status=exc.code, text=exc.message)

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.require_client_cert and request.path != "/healthz":
            transport = request.transport
            peer = transport.get_extra_info("peercert") if transport is not None else None
            if not peer:
                return web.Response(status=401, text="Unauthorized")
        return await handler(request)

    # --- handlers -------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _container(self, request: web.Request) -> podlookup_.ContainerRef:
        ns, pod, name = (request.match_info[k] for k in ("ns", "pod", "container"))
        ref = self.lookup.container(ns, pod, name, uid=request.query.get("podUID", ""))
        if ref is None:
            raise HTTPError(404, f'container "{name}" in pod "{pod}" not found')
        return ref

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, name = (request.match_info[k] for k in ("ns", "pod", "container"))
        ref = self._container(request)
        options = log_options(request.query, time.time_ns())
        path = ref.log_path
        if go_bool(request.query, "previous"):
            if ref.previous_log_path is None or not ref.previous_log_path.exists():
                raise HTTPError(
                    400, f'previous terminated container "{name}" in pod "{pod}" not found'
                )
            path, options = ref.previous_log_path, _no_follow(options)
        elif not path.exists():
            raise HTTPError(400, f'container "{name}" in pod "{pod}" is waiting to start')

        async def running() -> bool:
            now = self.lookup.container(ns, pod, name)
            return now is not None and now.running and now.log_path == ref.log_path

        return await self._stream_log(request, path, options, running)

    async def _stream_log(
        self,
        request: web.Request,
        path: Path,
        options: logs.LogOptions,
        running: logs.Running,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await logs.stream(
                path,
                options,
                write=response.write,
                running=running,
                poll_interval=self.poll_interval,
            )
            await response.write_eof()
        return response

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        ref = self._container(request)
        if not ref.running:
            raise HTTPError(400, f'container not found ("{request.match_info["container"]}")')
        command = request.query.getall("command", [])
        if not command:
            raise HTTPError(400, "you must specify at least 1 command")
        streams = _streams(request)
        _need_websocket(request)

        async def open_session() -> cri.StreamSession:
            return await self.runtime.exec(
                ref.container_id, list(command), tty=streams.tty, stdin=streams.stdin
            )

        return await self._stream_session(request, streams, open_session, list(command))

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        ref = self._container(request)
        if not ref.running:
            raise HTTPError(400, f"container {request.match_info['container']} is not running")
        streams = _streams(request)
        _need_websocket(request)

        async def open_session() -> cri.StreamSession:
            return await self.runtime.attach(ref.container_id, tty=streams.tty, stdin=streams.stdin)

        return await self._stream_session(request, streams, open_session, None)

    async def _stream_session(
        self,
        request: web.Request,
        streams: streaming.Streams,
        open_session: Callable[[], Awaitable[cri.StreamSession]],
        command: list[str] | None,
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=streaming.PROTOCOLS, autoping=True)
        await ws.prepare(request)
        try:
            session = await open_session()
        except (cri.RuntimeError_, OSError) as exc:
            protocol = ws.ws_protocol or streaming.V1
            with contextlib.suppress(ConnectionError, RuntimeError):
                message = streaming.status_message(protocol, streaming.error_status(str(exc)))
                await streaming.send(ws, protocol, message)
            await ws.close()
            return ws
        await streaming.serve_session(ws, session, streams, command=command)
        return ws

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        ns, pod = request.match_info["ns"], request.match_info["pod"]
        sandbox = self.lookup.sandbox(ns, pod, uid=request.query.get("podUID", ""))
        if sandbox is None:
            raise HTTPError(404, f'pod "{pod}" not found')
        _need_websocket(request)
        try:
            ports = portforward.parse_ports(request.query.getall("ports", []))
        except ValueError as exc:
            raise HTTPError(400, str(exc)) from None
        protocols = (portforward.PROTOCOL, *portforward.CHANNEL_PROTOCOLS)
        ws = web.WebSocketResponse(protocols=protocols, autoping=True)
        await ws.prepare(request)

        async def opener(port: int) -> cri.PortStream:
            return await self.runtime.port_forward(sandbox, port)

        if ws.ws_protocol == portforward.PROTOCOL:
            await portforward.Session(ws, opener, pod=f"{ns}/{pod}").run()
        elif not ports:
            await ws.close(message=b"query parameter ports is required")
        else:  # a channel protocol, or none offered (binary channels, as Kubernetes)
            await portforward.ChannelSession(ws, opener, ports, pod=f"{ns}/{pod}").run()
        return ws


def _streams(request: web.Request) -> streaming.Streams:
    q = request.query
    streams = streaming.Streams(
        stdin=go_bool(q, "stdin") or go_bool(q, "input"),
        stdout=go_bool(q, "stdout") or go_bool(q, "output"),
        stderr=go_bool(q, "stderr") or go_bool(q, "error"),
        tty=go_bool(q, "tty"),
    )
    if not (streams.stdin or streams.stdout or streams.stderr):
        raise HTTPError(400, "you must specify at least 1 of stdin, stdout, stderr")
    return streams


def _need_websocket(request: web.Request) -> None:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise HTTPError(400, "Upgrade request required")


def _no_follow(options: logs.LogOptions) -> logs.LogOptions:
    return logs.LogOptions(
        follow=False,
        tail_lines=options.tail_lines,
        since_ns=options.since_ns,
        timestamps=options.timestamps,
        limit_bytes=options.limit_bytes,
    )


async def serve(
    *,
    runtime: StreamingRuntime,
    lookup: podlookup_.PodLookup,
    host: str = "0.0.0.0",
    port: int = DEFAULT_PORT,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Serve until cancelled."""
    server = KubeletServer(
        runtime=runtime, lookup=lookup, host=host, port=port, ssl_context=ssl_context
    )
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
