"""``pods/log``, ``pods/exec``, ``pods/attach`` and ``pods/portforward``: proxied to the kubelet.

The API server resolves the pod, checks what Kubernetes checks here (a node assigned, a valid
container name, the container's state for logs), finds the node's kubelet (its InternalIP and
``status.daemonEndpoints.kubeletEndpoint.Port``) and opens the same request there with its
kubelet-client certificate (kybern.apiserver.pki.kubelet_client_ssl_context, installed on the
app under :data:`KUBELET_TLS` by the server). Logs stream back as text/plain; exec, attach and
port-forward are websockets spliced message by message, so whatever subprotocol the client
and the kubelet agree on (``v5.channel.k8s.io``, ``SPDY/3.1+portforward.k8s.io``, ...) passes
through untouched. Errors are Status objects with Kubernetes' messages.

Plain SPDY/3.1 upgrades (what kubectl falls back to when a websocket is refused, and what
kubectl before 1.30 speaks) are not served: aiohttp cannot hand over a connection upgraded to
anything but a websocket. Such a request gets the kubelet's refusal, if it has one, else a 400
saying that only websockets are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web

from kybern.api import errors as api_errors
from kybern.api import kinds
from kybern.apiserver import errors
from kybern.apiserver.handlers import context

log = logging.getLogger(__name__)

KUBELET_TLS = web.AppKey("kubelet_tls", ssl.SSLContext)
SUBRESOURCES = ("log", "exec", "attach", "portforward")
DEFAULT_KUBELET_PORT = 10250
# kubectl sends POST for SPDY and GET for websockets; logs are GET only.
_METHODS = {
    "log": ("GET",),
    "exec": ("GET", "POST"),
    "attach": ("GET", "POST"),
    "portforward": ("GET", "POST"),
}
_CONNECT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, connect=10)
_MAX_MESSAGE = 16 * 1024 * 1024
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}


async def handle(req: context.Request) -> web.StreamResponse:
    if req.http.method not in _METHODS[req.subresource]:
        raise errors.method_not_allowed()
    pod = await req.registry.get(req.info, req.namespace, req.name)
    node_name = pod.get("spec", {}).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {req.name} does not have a host assigned")
    query = list(req.http.query.items())
    if req.subresource == "portforward":
        path = f"/portForward/{_q(req.namespace)}/{_q(req.name)}"
    else:
        container = resolve_container(pod, req.http.query.get("container", ""))
        if req.subresource == "log":
            validate_log_options(req.name, req.http.query)
            check_log_state(pod, container, previous=_is_true(req.http.query.get("previous")))
        kubelet_path = {"log": "containerLogs", "exec": "exec", "attach": "attach"}
        path = (
            f"/{kubelet_path[req.subresource]}/{_q(req.namespace)}/{_q(req.name)}/{_q(container)}"
        )
        query = [(k, v) for k, v in query if k != "container"]
    base = await kubelet_base(req, node_name)
    tls = req.http.app.get(KUBELET_TLS)
    if req.subresource == "log":
        return await _proxy_log(req, base + path, query, tls)
    return await _proxy_websocket(req, base + path, query, tls)


def _q(part: str) -> str:
    return quote(part, safe="")


def _is_true(value: str | None) -> bool:
    return value is not None and value in ("", "1", "t", "T", "true", "TRUE", "True")


def resolve_container(pod: dict[str, Any], name: str) -> str:
    """The container a request means; Kubernetes' 400s for a missing or unknown name."""
    spec = pod.get("spec", {})
    pod_name = pod.get("metadata", {}).get("name", "")
    names = [c.get("name", "") for c in spec.get("containers") or []]
    init = [c.get("name", "") for c in spec.get("initContainers") or []]
    ephemeral = [c.get("name", "") for c in spec.get("ephemeralContainers") or []]
    if not name:
        if len(names) == 1:
            return str(names[0])
        message = f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(names)}]"
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.bad_request(message)
    if name not in (*names, *init, *ephemeral):
        raise errors.bad_request(f"container {name} is not valid for pod {pod_name}")
    return name


def _container_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    status = pod.get("status", {})
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for item in status.get(key) or []:
            if item.get("name") == name:
                return item  # type: ignore[no-any-return]
    return None


def _int_option(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(
            f'strconv.ParseInt: parsing "{value}": invalid syntax (query parameter {name})'
        ) from None


def validate_log_options(name: str, query: Mapping[str, str]) -> None:
    """PodLogOptions checks (ValidatePodLogOptions): 422 Invalid, kind PodLogOptions."""
    causes = []
    tail, limit = _int_option(query, "tailLines"), _int_option(query, "limitBytes")
    since = _int_option(query, "sinceSeconds")
    if tail is not None and tail < 0:
        causes.append(api_errors.invalid("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(api_errors.invalid("limitBytes", limit, "must be greater than 0"))
    if since is not None and query.get("sinceTime"):
        causes.append(
            api_errors.forbidden(
                "", "at most one of `sinceTime` or `sinceSeconds` may be specified"
            )
        )
    elif since is not None and since < 1:
        causes.append(api_errors.invalid("sinceSeconds", since, "must be greater than 0"))
    if causes:
        raise errors.invalid("PodLogOptions", name, causes)


def check_log_state(pod: dict[str, Any], container: str, *, previous: bool) -> None:
    """The kubelet's checks before serving logs (validateContainerLogStatus), done here where
    the pod's status is at hand."""
    pod_name = pod.get("metadata", {}).get("name", "")
    status = _container_status(pod, container)
    if status is None:
        raise errors.bad_request(
            f'container "{container}" in pod "{pod_name}" is waiting to start: ContainerCreating'
        )
    state, last = status.get("state") or {}, status.get("lastState") or {}
    if previous:
        if "terminated" not in last:
            raise errors.bad_request(
                f'previous terminated container "{container}" in pod "{pod_name}" not found'
            )
        return
    if "running" in state or "terminated" in state or "terminated" in last:
        return
    reason = (state.get("waiting") or {}).get("reason", "")
    if reason == "ErrImagePull":
        reason = "image can't be pulled"
    elif reason == "ImagePullBackOff":
        reason = "trying and failing to pull image"
    if not reason:
        raise errors.bad_request(
            f'container "{container}" in pod "{pod_name}" is waiting to start - no logs yet'
        )
    raise errors.bad_request(
        f'container "{container}" in pod "{pod_name}" is waiting to start: {reason}'
    )


async def kubelet_base(req: context.Request, node_name: str) -> str:
    """``https://<address>:<port>`` of the node's kubelet."""
    info = kinds.lookup("", "v1", "nodes")
    assert info is not None
    node = await req.registry.get(info, "", node_name)
    status = node.get("status", {})
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = next(
        (addresses[t] for t in ("InternalIP", "ExternalIP", "Hostname") if addresses.get(t)),
        None,
    )
    if host is None:
        raise errors.StatusError(
            503, "ServiceUnavailable", f"no preferred addresses found for node {node_name}"
        )
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    port = int(endpoint.get("Port") or DEFAULT_KUBELET_PORT)
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _client_tls(tls: ssl.SSLContext | None) -> ssl.SSLContext:
    if tls is not None:
        return tls
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no PKI (plain-HTTP test servers)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _upstream_error(code: int, body: str) -> errors.StatusError:
    message = body.strip() or f"the kubelet answered {code}"
    if code >= 500:
        return errors.internal(message)
    return errors.StatusError(code, _REASONS.get(code, "BadRequest"), message)


async def _proxy_log(
    req: context.Request, url: str, query: list[tuple[str, str]], tls: ssl.SSLContext | None
) -> web.StreamResponse:
    connector = aiohttp.TCPConnector(ssl=_client_tls(tls))
    async with aiohttp.ClientSession(connector=connector, timeout=_CONNECT_TIMEOUT) as session:
        try:
            upstream = await session.get(url, params=query)
        except aiohttp.ClientError as exc:
            raise errors.internal(f"error dialing backend: {exc}") from None
        async with upstream:
            if upstream.status != 200:
                raise _upstream_error(upstream.status, await upstream.text())
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(req.http)
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            return response


async def _proxy_websocket(
    req: context.Request, url: str, query: list[tuple[str, str]], tls: ssl.SSLContext | None
) -> web.StreamResponse:
    offered = [
        p.strip()
        for p in req.http.headers.get("Sec-WebSocket-Protocol", "").split(",")
        if p.strip()
    ]
    connector = aiohttp.TCPConnector(ssl=_client_tls(tls))
    async with aiohttp.ClientSession(connector=connector, timeout=_CONNECT_TIMEOUT) as session:
        if req.http.headers.get("Upgrade", "").lower() != "websocket":
            # A SPDY upgrade (kubectl falls back to it when the websocket is refused): say why
            # the kubelet refuses, else that only websockets are served.
            raise await _refusal(session, url, query, 400, prefix="")
        try:
            upstream = await session.ws_connect(
                url, params=query, protocols=offered, max_msg_size=_MAX_MESSAGE, autoping=True
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise await _refusal(session, url, query, exc.status) from None
        except aiohttp.ClientError as exc:
            raise errors.internal(f"error dialing backend: {exc}") from None
        async with upstream:
            protocols = (upstream.protocol,) if upstream.protocol else ()
            ws = web.WebSocketResponse(protocols=protocols, max_msg_size=_MAX_MESSAGE)
            await ws.prepare(req.http)
            await _splice(ws, upstream)
            return ws


async def _refusal(
    session: aiohttp.ClientSession,
    url: str,
    query: list[tuple[str, str]],
    status: int,
    *,
    prefix: str = "unable to upgrade connection: ",
) -> errors.StatusError:
    """Why the kubelet refuses an upgrade: the handshake error drops the body, so ask again
    without upgrading (the kubelet checks everything else before it asks for an upgrade)."""
    body = ""
    with contextlib.suppress(aiohttp.ClientError):
        async with session.get(url, params=query) as response:
            status, body = response.status, (await response.text()).strip()
    if body == "Upgrade request required":
        return errors.bad_request(
            "Upgrade request required: kybern serves exec, attach and port-forward over "
            "websockets only (SPDY/3.1 upgrades are not supported)"
        )
    return _upstream_error(status, f"{prefix}{body or status}")


async def _splice(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Copy messages both ways until either side closes, then close the other."""
    ups = asyncio.create_task(_copy(upstream, client))
    downs = asyncio.create_task(_copy(client, upstream))
    try:
        await asyncio.wait({ups, downs}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (ups, downs):
            task.cancel()
        await upstream.close()
        await client.close()


async def _copy(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
        async for msg in source:
            if msg.type == WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await sink.send_str(msg.data)
            else:
                break
