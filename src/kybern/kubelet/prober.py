"""Container probes (exec, httpGet, tcpSocket, grpc) and the workers that run them.

Interface for the kubelet core:

- ``await run_probe(probe, *, pod, container, container_id, runtime, pod_ip) -> ProbeResult``:
  one check. ``success`` is True/False, or None when the probe could not run (bad port name,
  unsupported handler): Kubernetes then throws the result away.
- ``ProbeManager(*, runtime, on_result, clock=REAL, on_event=None)``: one worker per (pod,
  container, liveness|readiness|startup). ``add(pod, container_id_by_name, *, pod_ip="")``
  starts them (containers missing from the map are not probed until ``reset``);
  ``reset(pod_uid, container_name, container_id=None)`` after a restart; ``remove(pod_uid)``;
  ``await close()``. ``on_result(pod_uid, container_name, kind, result)`` is called only when a
  result changes (and readiness False at the start); ``on_event(pod_uid, container_name, kind,
  message)`` gets the ``Unhealthy`` Warning text (``Liveness probe failed: ...``) of every
  failed check.

Semantics are kubelet v1.32's ``prober/worker.go``: probe at once, then every periodSeconds;
nothing until initialDelaySeconds after the container (re)started; liveness and readiness wait
for the startup probe to succeed, which is then no longer run; a result counts once it repeats
successThreshold/failureThreshold times; a failed liveness or startup result holds the worker
until ``reset`` (the container is being restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from kybern.client import clock as clock_mod
from kybern.kubelet import envvars, grpcprobe
from kybern.runtime import cri

Obj = dict[str, Any]
log = logging.getLogger(__name__)
USER_AGENT = "kube-probe/1.32"
MAX_REDIRECTS = 10
BODY_LIMIT = 10 * 1024
KINDS = ("startup", "liveness", "readiness")


@dataclass(frozen=True)
class ProbeResult:
    success: bool | None
    output: str = ""


class ProbeError(Exception):
    """The probe could not be run at all (an Unknown result)."""


# --- the checks --------------------------------------------------------------------------


def resolve_port(port: object, container: Obj) -> int:
    """A probe's port by number or by the name of one of the container's ports."""
    if isinstance(port, str) and not port.isdigit():
        for spec in container.get("ports") or []:
            if spec.get("name") == port:
                return int(spec.get("containerPort", 0))
        raise ProbeError(f"port {port} not found")
    number = int(str(port))
    if not 0 < number < 65536:
        raise ProbeError(f"invalid port number: {number}")
    return number


def static_command(command: list[str], container: Obj) -> list[str]:
    """Expand ``$(VAR)`` with the container's literal ``value`` env only, as the kubelet does."""
    static = {
        e["name"]: str(e.get("value") or "")
        for e in container.get("env") or []
        if "valueFrom" not in e
    }
    return [envvars.expand(str(part), static) for part in command]


async def exec_check(
    runtime: cri.Runtime, container_id: str, command: list[str], time_limit: float
) -> ProbeResult:
    try:
        result = await runtime.exec_sync(container_id, command, kill_after=time_limit)
    except TimeoutError:
        return ProbeResult(False, f"command {envvars.go_quote(' '.join(command))} timed out")
    output = (result.stdout + result.stderr).decode(errors="replace")
    return ProbeResult(result.exit_code == 0, output)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def http_url(action: Obj, *, container: Obj, pod_ip: str) -> str:
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = str(action.get("host") or pod_ip)
    port = resolve_port(action.get("port", 80 if scheme == "http" else 443), container)
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{_host_port(host, port)}{path}"


def http_headers(action: Obj, user_agent: str) -> dict[str, str]:
    headers = {"User-Agent": user_agent, "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        name = str(header.get("name", ""))
        # Go's canonical header keys: one entry per name, the first value given wins.
        canonical = "-".join(part.capitalize() for part in name.split("-"))
        headers[canonical] = str(header.get("value", ""))
    return headers


async def http_get(
    url: str, headers: Mapping[str, str], time_limit: float
) -> tuple[int, str, bool]:
    """GET ``url`` following same-host redirects (at most 10); returns the status, the start of
    the body, and whether a redirect to another host was not followed."""
    client_timeout = aiohttp.ClientTimeout(total=time_limit)
    connector = aiohttp.TCPConnector(ssl=False, force_close=True)
    async with aiohttp.ClientSession(timeout=client_timeout, connector=connector) as session:
        origin = urlsplit(url).hostname
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(url, headers=dict(headers), allow_redirects=False) as resp:
                body = (await resp.content.read(BODY_LIMIT)).decode(errors="replace")
                location = resp.headers.get("Location")
                if resp.status not in (301, 302, 303, 307, 308) or not location:
                    return resp.status, body, False
                target = urljoin(url, location)
                if urlsplit(target).hostname != origin:
                    return resp.status, body, True
                url = target
    raise ProbeError(f'Get "{url}": stopped after {MAX_REDIRECTS} redirects')


async def http_check(action: Obj, *, container: Obj, pod_ip: str, time_limit: float) -> ProbeResult:
    url = http_url(action, container=container, pod_ip=pod_ip)
    try:
        status, body, stopped = await http_get(url, http_headers(action, USER_AGENT), time_limit)
    except TimeoutError:
        return ProbeResult(
            False,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
        )
    except (aiohttp.ClientError, OSError) as err:
        return ProbeResult(False, f'Get "{url}": {dial_error(url, err)}')
    except ProbeError as err:
        return ProbeResult(False, str(err))
    if 200 <= status < 400:
        if stopped:
            return ProbeResult(True, f"Probe terminated redirects, Response body: {body}")
        return ProbeResult(True, body)
    return ProbeResult(False, f"HTTP probe failed with statuscode: {status}")


def dial_error(url: str, err: BaseException) -> str:
    parts = urlsplit(url)
    address = _host_port(parts.hostname or "", parts.port or 0)
    if isinstance(err, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return f"dial tcp {address}: connect: connection refused"
    return str(err) or type(err).__name__


async def tcp_check(action: Obj, *, container: Obj, pod_ip: str, time_limit: float) -> ProbeResult:
    host = str(action.get("host") or pod_ip)
    port = resolve_port(action.get("port"), container)
    address = _host_port(host, port)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), time_limit)
    except TimeoutError:
        return ProbeResult(False, f"dial tcp {address}: i/o timeout")
    except OSError as err:
        reason = "connection refused" if isinstance(err, ConnectionRefusedError) else err.strerror
        return ProbeResult(False, f"dial tcp {address}: connect: {reason}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True, "")


async def run_probe(
    probe: Obj,
    *,
    pod: Obj,
    container: Obj,
    container_id: str,
    runtime: cri.Runtime,
    pod_ip: str,
) -> ProbeResult:
    """One check of ``probe`` against the container (see the module docstring)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "exec" in probe:
            command = static_command(list(probe["exec"].get("command") or []), container)
            return await exec_check(runtime, container_id, command, timeout)
        if "httpGet" in probe:
            return await http_check(
                probe["httpGet"], container=container, pod_ip=pod_ip, time_limit=timeout
            )
        if "tcpSocket" in probe:
            return await tcp_check(
                probe["tcpSocket"], container=container, pod_ip=pod_ip, time_limit=timeout
            )
        if "grpc" in probe:
            success, output = await grpcprobe.check(
                probe["grpc"], pod_ip=pod_ip, time_limit=timeout
            )
            return ProbeResult(success, output)
    except ProbeError as err:
        return ProbeResult(None, str(err))
    except cri.RuntimeError_ as err:
        return ProbeResult(None, str(err))
    return ProbeResult(None, "missing probe handler")


# --- workers -----------------------------------------------------------------------------

OnResult = Callable[[str, str, str, bool], None]
OnEvent = Callable[[str, str, str, str], None]


@dataclass
class _Worker:
    pod: Obj
    container: Obj
    kind: str
    probe: Obj
    container_id: str | None
    pod_ip: str
    started_at: float
    last: bool | None = None  # the last raw result
    run: int = 0  # how many times in a row ``last`` came
    reported: bool | None = None  # what on_result last said
    on_hold: bool = False
    generation: int = 0  # bumped by reset: a check of the previous container is discarded
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def period(self) -> float:
        return float(self.probe.get("periodSeconds") or 10)


class ProbeManager:
    def __init__(
        self,
        *,
        runtime: cri.Runtime,
        on_result: OnResult,
        clock: clock_mod.Clock = clock_mod.REAL,
        on_event: OnEvent | None = None,
    ) -> None:
        self.runtime = runtime
        self.on_result = on_result
        self.on_event = on_event
        self.clock = clock
        self._workers: dict[tuple[str, str, str], _Worker] = {}

    def add(self, pod: Obj, container_id_by_name: Mapping[str, str], *, pod_ip: str = "") -> None:
        uid = str(pod["metadata"]["uid"])
        ip = pod_ip or str((pod.get("status") or {}).get("podIP") or "")
        for container in (pod.get("spec") or {}).get("containers") or []:
            name = str(container.get("name", ""))
            for kind in KINDS:
                probe = container.get(f"{kind}Probe")
                key = (uid, name, kind)
                if not probe or key in self._workers:
                    continue
                worker = _Worker(
                    pod,
                    container,
                    kind,
                    probe,
                    container_id_by_name.get(name),
                    ip,
                    self.clock.monotonic(),
                )
                self._workers[key] = worker
                if kind == "readiness":
                    self._report(uid, worker, False)
                elif kind == "liveness":
                    worker.reported = True  # implicitly alive until a probe says otherwise
                worker.task = asyncio.create_task(
                    self._loop(uid, worker), name=f"probe {uid}/{name}/{kind}"
                )

    def reset(self, pod_uid: str, container_name: str, container_id: str | None = None) -> None:
        """The container restarted (or started): probe the new one from scratch."""
        for kind in KINDS:
            worker = self._workers.get((pod_uid, container_name, kind))
            if worker is None:
                continue
            if container_id is not None:
                worker.container_id = container_id
            worker.started_at = self.clock.monotonic()
            worker.last, worker.run, worker.on_hold = None, 0, False
            worker.generation += 1
            if kind == "liveness":
                worker.reported = True
            elif worker.reported:
                self._report(pod_uid, worker, False)

    def remove(self, pod_uid: str) -> None:
        for key in [k for k in self._workers if k[0] == pod_uid]:
            worker = self._workers.pop(key)
            if worker.task is not None:
                worker.task.cancel()

    async def close(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        self._workers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def startup_done(self, pod_uid: str, container_name: str) -> bool:
        worker = self._workers.get((pod_uid, container_name, "startup"))
        return worker is None or worker.reported is True

    async def _loop(self, uid: str, worker: _Worker) -> None:
        while True:
            try:
                await self._tick(uid, worker)
            except Exception:  # a probe bug must not stop the worker
                log.exception(
                    "probe %s of %s/%s failed", worker.kind, uid, worker.container.get("name")
                )
            await self.clock.sleep(worker.period)

    async def _tick(self, uid: str, worker: _Worker) -> None:
        name = str(worker.container.get("name", ""))
        if worker.container_id is None or worker.on_hold:
            return
        started = self.startup_done(uid, name)
        if (worker.kind == "startup") == started:
            return  # startup gates the others; once started, startup is not run again
        delay = float(worker.probe.get("initialDelaySeconds") or 0)
        if self.clock.monotonic() - worker.started_at < delay:
            return
        generation = worker.generation
        result = await run_probe(
            worker.probe,
            pod=worker.pod,
            container=worker.container,
            container_id=worker.container_id,
            runtime=self.runtime,
            pod_ip=worker.pod_ip,
        )
        if generation == worker.generation:
            self._record(uid, worker, result)

    def _record(self, uid: str, worker: _Worker, result: ProbeResult) -> None:
        if result.success is None:
            return  # Unknown: thrown away, as the kubelet does
        if not result.success and self.on_event is not None:
            message = f"{worker.kind.capitalize()} probe failed: {result.output}"
            self.on_event(uid, str(worker.container.get("name", "")), worker.kind, message)
        worker.run = worker.run + 1 if worker.last == result.success else 1
        worker.last = result.success
        threshold = int(
            worker.probe.get("successThreshold" if result.success else "failureThreshold")
            or (1 if result.success else 3)
        )
        if worker.run < threshold:
            return
        self._report(uid, worker, result.success)
        if worker.kind in ("liveness", "startup") and not result.success:
            worker.on_hold, worker.run = True, 0

    def _report(self, uid: str, worker: _Worker, result: bool) -> None:
        if worker.reported is result:
            return
        worker.reported = result
        self.on_result(uid, str(worker.container.get("name", "")), worker.kind, result)
