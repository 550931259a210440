"""Running one CNI plugin binary: the CNI environment protocol (CNI spec, "Section 3").

A plugin is an executable found by its ``type`` in the plugin directories. It gets its
parameters in the environment (``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``,
``CNI_IFNAME``, ``CNI_ARGS``, ``CNI_PATH``) and the network configuration as JSON on stdin; it
answers with a result (ADD), a version document (VERSION) or nothing (DEL, CHECK) on stdout,
or exits non-zero with an error document ``{"code", "msg", "details"}``, which becomes a
``CNIError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

ADD, DEL, CHECK, VERSION = "ADD", "DEL", "CHECK", "VERSION"
# Our order of preference; results of 0.3.x/0.4.0 and 1.0.0 share a shape (see result.py).
SUPPORTED_VERSIONS = ("1.0.0", "0.4.0", "0.3.1")
# The plugins run iptables, ip, sysctl ...: give them the usual system PATH.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TIMEOUT = 60.0

# Well-known CNI error codes (CNI spec "Error"), for messages.
ERROR_CODES = {
    1: "incompatible CNI version",
    2: "unsupported field in network configuration",
    3: "container unknown or does not exist",
    4: "invalid necessary environment variables",
    5: "I/O failure",
    6: "failed to decode content",
    7: "invalid network config",
    11: "try again later",
}


class CNIError(Exception):
    """A plugin failed; ``code``/``msg``/``details`` come from its error document."""

    def __init__(
        self, *, plugin: str, command: str, code: int, msg: str, details: str = ""
    ) -> None:
        self.plugin, self.command = plugin, command
        self.code, self.msg, self.details = code, msg, details
        text = f"CNI plugin {plugin} {command} failed (code {code}"
        text += f": {ERROR_CODES[code]})" if code in ERROR_CODES else ")"
        text += f": {msg}" + (f": {details}" if details else "")
        super().__init__(text)


@dataclass(frozen=True, slots=True)
class Invocation:
    """One call's runtime parameters (everything but the network config)."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: Sequence[tuple[str, str]] = ()


def cni_args(pairs: Iterable[tuple[str, str]]) -> str:
    """``CNI_ARGS``: ``K=V`` pairs joined with ``;``, ``IgnoreUnknown=1`` first so plugins
    that do not know a key (K8S_POD_NAME ...) accept it."""
    items = [("IgnoreUnknown", "1"), *pairs]
    for key, value in items:
        if any(c in f"{key}{value}" for c in ";="):
            raise ValueError(f"CNI_ARGS cannot carry {key}={value!r} (';' or '=' inside)")
    return ";".join(f"{k}={v}" for k, v in items)


def environment(call: Invocation, plugin_dirs: Sequence[Path]) -> dict[str, str]:
    """The plugin's whole environment (nothing else of ours leaks into it)."""
    env = {
        "CNI_COMMAND": call.command,
        "CNI_PATH": os.pathsep.join(str(d) for d in plugin_dirs),
        "PATH": SYSTEM_PATH,
    }
    if call.command != VERSION:
        env |= {
            "CNI_CONTAINERID": call.container_id,
            "CNI_NETNS": call.netns,
            "CNI_IFNAME": call.ifname,
            "CNI_ARGS": cni_args(call.args),
        }
    return env


def find(plugin_type: str, plugin_dirs: Sequence[Path]) -> Path:
    """The plugin binary for ``type`` (FileNotFoundError naming the directories if none)."""
    if "/" in plugin_type or plugin_type in ("", ".", ".."):
        raise ValueError(f"invalid CNI plugin type {plugin_type!r}")
    for directory in plugin_dirs:
        candidate = directory / plugin_type
        if os.access(candidate, os.X_OK):
            return candidate
    dirs = ", ".join(str(d) for d in plugin_dirs)
    raise FileNotFoundError(f"CNI plugin {plugin_type!r} not found in {dirs}")


def parse_error(
    plugin: str, command: str, returncode: int, stdout: bytes, stderr: bytes
) -> CNIError:
    """The plugin's error document, or the best we can say without one."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and ("code" in doc or "msg" in doc):
        return CNIError(
            plugin=plugin,
            command=command,
            code=_int(doc.get("code")),
            msg=str(doc.get("msg", "")),
            details=str(doc.get("details", "")),
        )
    text = (stderr or stdout).decode(errors="replace").strip()
    return CNIError(
        plugin=plugin, command=command, code=999, msg=f"exit status {returncode}", details=text
    )


async def run(
    plugin_type: str,
    call: Invocation,
    conf: Mapping[str, Any],
    plugin_dirs: Sequence[Path],
) -> Obj | None:
    """Run the plugin once; its stdout as JSON (None when empty), or CNIError."""
    binary = find(plugin_type, plugin_dirs)
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(call, plugin_dirs),
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            stdout, stderr = await _communicate(proc, json.dumps(conf).encode())
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CNIError(
            plugin=plugin_type, command=call.command, code=11, msg=f"timed out after {TIMEOUT}s"
        ) from None
    if proc.returncode != 0:
        raise parse_error(plugin_type, call.command, proc.returncode or 0, stdout, stderr)
    if not stdout.strip():
        return None
    result = json.loads(stdout)
    if not isinstance(result, dict):
        raise CNIError(plugin=plugin_type, command=call.command, code=6, msg="result not an object")
    return result


async def _communicate(proc: asyncio.subprocess.Process, data: bytes) -> tuple[bytes, bytes]:
    """``communicate`` that tolerates a plugin exiting without reading its stdin (VERSION):
    under uvloop writing to the closed pipe raises RuntimeError rather than BrokenPipeError."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
        proc.stdin.close()
    stdout, stderr = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
    await proc.wait()
    return stdout, stderr


async def supported_versions(plugin_type: str, plugin_dirs: Sequence[Path]) -> list[str]:
    """The CNI versions the plugin speaks (its VERSION answer)."""
    doc = await run(plugin_type, Invocation(VERSION), {"cniVersion": "1.0.0"}, plugin_dirs)
    return [str(v) for v in (doc or {}).get("supportedVersions", [])]


def negotiate(wanted: str, supported_by_plugins: Iterable[Sequence[str]]) -> str:
    """``wanted`` if every plugin speaks it, else the highest of ours they all speak."""
    common = set(SUPPORTED_VERSIONS)
    for versions in supported_by_plugins:
        common &= set(versions)
    if wanted in common:
        return wanted
    for version in SUPPORTED_VERSIONS:
        if version in common:
            return version
    raise CNIError(plugin="*", command=VERSION, code=1, msg="no CNI version shared by all plugins")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 999
