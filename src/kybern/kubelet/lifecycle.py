"""postStart and preStop hooks: exec, httpGet and sleep handlers.

Interface for the kubelet core: ``await run_handler(handler, *, pod, container, container_id,
runtime, pod_ip, clock, time_limit=None) -> str | None``: None when the hook succeeded, else the
message for the ``FailedPostStartHook`` / ``FailedPreStopHook`` Warning event, worded as
kubelet v1.32 words it. ``time_limit`` (seconds) bounds the hook: for preStop the caller passes
the remaining grace period; an exec hook is killed when it runs out.

As in Kubernetes, an httpGet hook fails only when the request cannot be made (any HTTP status
is accepted), uses ``User-Agent: kube-lifecycle/1.32`` and defaults its host to the pod IP; a
sleep handler just waits (on ``clock``, so tests use a FakeClock).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from kybern.client import clock as clock_mod
from kybern.kubelet import envvars, prober
from kybern.runtime import cri

Obj = dict[str, Any]
USER_AGENT = "kube-lifecycle/1.32"
DEFAULT_LIMIT = 30.0  # when the caller gives none: the default grace period


def format_pod(pod: Obj) -> str:
    """Kubernetes' ``format.Pod``: ``name_namespace(uid)``."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


q = envvars.go_quote


def go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


async def _exec(
    handler: Obj, *, pod: Obj, container: Obj, container_id: str, runtime: cri.Runtime, limit: float
) -> str | None:
    command = [str(part) for part in handler.get("command") or []]
    where = f"Exec lifecycle hook ({go_list(command)}) for Container {q(str(container.get('name', '')))} in Pod {q(format_pod(pod))}"
    try:
        result = await runtime.exec_sync(container_id, command, kill_after=limit)
    except TimeoutError:
        return f'{where} failed - error: command {q(" ".join(command))} timed out, message: ""'
    except cri.RuntimeError_ as err:
        return f'{where} failed - error: {err}, message: ""'
    if result.exit_code == 0:
        return None
    output = (result.stdout + result.stderr).decode(errors="replace")
    error = f"command '{' '.join(command)}' exited with {result.exit_code}: {result.stderr.decode(errors='replace')}"
    return f"{where} failed - error: {error}, message: {envvars.go_quote(output)}"


async def _http(handler: Obj, *, pod: Obj, container: Obj, pod_ip: str, limit: float) -> str | None:
    path = str(handler.get("path") or "")
    where = f"HTTP lifecycle hook ({path}) for Container {q(str(container.get('name', '')))} in Pod {q(format_pod(pod))}"
    try:
        url = prober.http_url(handler, container=container, pod_ip=pod_ip)
        await prober.http_get(url, prober.http_headers(handler, USER_AGENT), limit)
    except prober.ProbeError as err:
        return f"{where} failed - error: {err}"
    except TimeoutError:
        return f'{where} failed - error: Get "{url}": context deadline exceeded'
    except (aiohttp.ClientError, OSError) as err:
        return f'{where} failed - error: Get "{url}": {prober.dial_error(url, err)}'
    return None


async def run_handler(
    handler: Obj,
    *,
    pod: Obj,
    container: Obj,
    container_id: str,
    runtime: cri.Runtime,
    pod_ip: str,
    clock: clock_mod.Clock,
    time_limit: float | None = None,
) -> str | None:
    """Run one lifecycle handler; see the module docstring."""
    limit = DEFAULT_LIMIT if time_limit is None else max(0.0, time_limit)
    if "exec" in handler:
        return await _exec(
            handler["exec"],
            pod=pod,
            container=container,
            container_id=container_id,
            runtime=runtime,
            limit=limit,
        )
    if "httpGet" in handler:
        return await _http(
            handler["httpGet"], pod=pod, container=container, pod_ip=pod_ip, limit=limit
        )
    if "sleep" in handler:
        seconds = float(handler["sleep"].get("seconds") or 0)
        await clock.sleep(min(seconds, limit))
        return None
    # tcpSocket is deprecated for hooks and, as in the kubelet, fails at run time.
    return f"Cannot run handler: invalid handler: {handler}"
