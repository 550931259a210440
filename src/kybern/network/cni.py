"""Pod network attachment through a CNI conflist: ADD on sandbox start, DEL on removal.

``PodNetwork`` runs a conflist's plugins in order for ADD (each gets the previous plugin's
result as ``prevResult``; plugins that declare a capability get it in ``runtimeConfig``, e.g.
``portMappings`` for portmap) and in reverse order for DEL, as libcni does. The loopback
network runs beside the main one. Every successful ADD's result is cached on disk (libcni's
``/var/lib/cni/results``) so that DEL and CHECK get their ``prevResult`` and the port mappings
even after an agent restart.

DEL is idempotent and works when the namespace is already gone (``CNI_NETNS`` is then empty;
the plugins still release the IP and the port mappings). A failed ADD is rolled back with a DEL
before the error is raised, so a retried sandbox start begins clean.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kybern.network import config, invoke, result

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Attachment = result.Attachment
CNIError = invoke.CNIError
IFNAME = "eth0"


@dataclass(frozen=True, slots=True)
class PortMapping:
    """One hostPort (a container port with ``hostPort`` set), as portmap wants it."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def runtime_config(self) -> Obj:
        return {
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol.lower(),
            "hostIP": self.host_ip,
        }


def port_mappings(containers: Iterable[Mapping[str, Any]]) -> list[PortMapping]:
    """The pod's hostPorts from its (init)containers' ``ports`` (those with a hostPort)."""
    out = []
    for container in containers:
        for port in container.get("ports") or []:
            host_port = int(port.get("hostPort") or 0)
            if host_port > 0:
                out.append(
                    PortMapping(
                        host_port=host_port,
                        container_port=int(port["containerPort"]),
                        protocol=str(port.get("protocol") or "TCP"),
                        host_ip=str(port.get("hostIP") or ""),
                    )
                )
    return out


def k8s_args(*, namespace: str, name: str, uid: str, container_id: str) -> list[tuple[str, str]]:
    """The ``CNI_ARGS`` the kubelet passes for a pod sandbox."""
    return [
        ("K8S_POD_NAMESPACE", namespace),
        ("K8S_POD_NAME", name),
        ("K8S_POD_INFRA_CONTAINER_ID", container_id),
        ("K8S_POD_UID", uid),
    ]


def plugin_conf(
    plugin: Obj, *, net_name: str, version: str, prev: Obj | None, runtime: Mapping[str, Any]
) -> Obj:
    """One plugin's stdin from its conflist entry (libcni's buildOneConfig)."""
    conf = {**plugin, "name": net_name, "cniVersion": version}
    if prev is not None:
        conf["prevResult"] = prev
    capabilities = plugin.get("capabilities") or {}
    wanted = {k: v for k, v in runtime.items() if capabilities.get(k)}
    if wanted:
        conf["runtimeConfig"] = wanted
    return conf


class PodNetwork:
    """Attach pods to (and detach them from) one conflist's network plus loopback."""

    def __init__(
        self,
        *,
        conflist: Obj,
        results_dir: Path,
        loopback: Obj | None = None,
        plugin_dirs: Sequence[Path] = config.PLUGIN_DIRS,
        ifname: str = IFNAME,
    ) -> None:
        self.conflist = config.as_conflist(conflist)
        self.loopback = config.as_conflist(loopback) if loopback else None
        self.results_dir = results_dir
        self.plugin_dirs = tuple(plugin_dirs)
        self.ifname = ifname
        self._versions: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_config(
        cls, cfg: config.NetworkConfig, *, plugin_dirs: Sequence[Path] = config.PLUGIN_DIRS
    ) -> PodNetwork:
        return cls(
            conflist=config.conflist(cfg),
            loopback=config.loopback(cfg),
            results_dir=cfg.results_dir,
            plugin_dirs=plugin_dirs,
        )

    @property
    def name(self) -> str:
        return str(self.conflist["name"])

    async def setup(
        self,
        *,
        netns: Path,
        container_id: str,
        namespace: str,
        name: str,
        uid: str,
        port_mappings: Sequence[PortMapping] = (),
    ) -> Attachment:
        """CNI ADD: the pod's interface, address and hostPorts (CNIError on failure)."""
        args = k8s_args(namespace=namespace, name=name, uid=uid, container_id=container_id)
        runtime = {"portMappings": [p.runtime_config() for p in port_mappings]}
        call = invoke.Invocation(invoke.ADD, container_id, str(netns), self.ifname, args)
        try:
            # Both finish before anything is rolled back (gather would leave one running).
            final, lo = await asyncio.gather(
                self._add_list(self.conflist, call, runtime),
                self._add_loopback(call),
                return_exceptions=True,
            )
            for outcome in (final, lo):
                if isinstance(outcome, BaseException):
                    raise outcome
            assert isinstance(final, dict)
            attachment = result.parse(final, ifname=self.ifname)
            await self._store(container_id, args, runtime, final)
        except BaseException:
            await self._rollback(netns, container_id, args, runtime)
            raise
        return attachment

    async def teardown(
        self,
        *,
        netns: Path | None,
        container_id: str,
        namespace: str = "",
        name: str = "",
        uid: str = "",
    ) -> None:
        """CNI DEL, idempotent; works whether or not the namespace still exists."""
        cached = await asyncio.to_thread(self._load, container_id)
        args = k8s_args(namespace=namespace, name=name, uid=uid, container_id=container_id)
        if cached and not namespace:
            args = [(str(k), str(v)) for k, v in cached.get("cniArgs") or args]
        runtime = (cached or {}).get("capabilityArgs") or {}
        prev = (cached or {}).get("result")
        await self._delete(netns, container_id, args, runtime, prev)
        await asyncio.to_thread(self._cache_path(container_id).unlink, missing_ok=True)

    async def check(
        self, *, netns: Path, container_id: str, namespace: str, name: str, uid: str
    ) -> None:
        """CNI CHECK of the attachment made by ``setup`` (CNIError if it is broken)."""
        cached = await asyncio.to_thread(self._load, container_id)
        if cached is None:
            raise CNIError(plugin=self.name, command=invoke.CHECK, code=3, msg="no cached result")
        args = k8s_args(namespace=namespace, name=name, uid=uid, container_id=container_id)
        call = invoke.Invocation(invoke.CHECK, container_id, str(netns), self.ifname, args)
        version = await self._version(self.conflist)
        for plugin in self.conflist["plugins"]:
            conf = plugin_conf(
                plugin,
                net_name=self.name,
                version=version,
                prev=cached.get("result"),
                runtime=cached.get("capabilityArgs") or {},
            )
            try:
                await invoke.run(plugin["type"], call, conf, self.plugin_dirs)
            except CNIError as exc:
                if not _portmap_ipv6_bug(exc, cached.get("result") or {}):
                    raise

    def cached(self, container_id: str) -> Attachment | None:
        """The attachment of an earlier ADD (for adopting sandboxes after a restart)."""
        entry = self._load(container_id)
        if not entry:
            return None
        try:
            return result.parse(entry["result"], ifname=self.ifname)
        except (KeyError, result.ResultError):
            return None

    def cached_ids(self) -> list[str]:
        """Container ids with a cached ADD result in this network."""
        prefix, suffix = f"{self.name}-", f"-{self.ifname}"
        try:
            files = [p.name for p in self.results_dir.iterdir()]
        except FileNotFoundError:
            return []
        return [
            f[len(prefix) : -len(suffix)]
            for f in files
            if f.startswith(prefix) and f.endswith(suffix)
        ]

    async def _add_list(self, conflist: Obj, call: invoke.Invocation, runtime: Obj) -> Obj:
        version = await self._version(conflist)
        prev: Obj | None = None
        for plugin in conflist["plugins"]:
            conf = plugin_conf(
                plugin, net_name=str(conflist["name"]), version=version, prev=prev, runtime=runtime
            )
            prev = await invoke.run(plugin["type"], call, conf, self.plugin_dirs) or prev
        if prev is None:
            raise CNIError(
                plugin=self.name, command=invoke.ADD, code=6, msg="no plugin returned a result"
            )
        return prev

    async def _add_loopback(self, call: invoke.Invocation) -> None:
        if self.loopback is not None:
            lo_call = invoke.Invocation(
                call.command, call.container_id, call.netns, "lo", call.args
            )
            await self._add_list(self.loopback, lo_call, {})

    async def _delete(
        self,
        netns: Path | None,
        container_id: str,
        args: Sequence[tuple[str, str]],
        runtime: Mapping[str, Any],
        prev: Obj | None,
    ) -> None:
        # A namespace that is gone is passed as "": the plugins then skip the interface
        # and still release the address and the port mappings.
        ns = str(netns) if netns is not None and await asyncio.to_thread(netns.exists) else ""
        calls = [
            (conflist, invoke.Invocation(invoke.DEL, container_id, ns, ifname, args))
            for conflist, ifname in self._networks()
        ]
        found = await asyncio.gather(
            *(
                self._del_list(conflist, call, runtime, prev if conflist is self.conflist else None)
                for conflist, call in calls
            )
        )
        errors = [e for errs in found for e in errs]
        if errors:
            raise errors[0]

    async def _del_list(
        self, conflist: Obj, call: invoke.Invocation, runtime: Mapping[str, Any], prev: Obj | None
    ) -> list[BaseException]:
        """DEL through every plugin in reverse order, each tried even if one fails."""
        version = await self._version(conflist)
        errors: list[BaseException] = []
        for plugin in reversed(conflist["plugins"]):
            conf = plugin_conf(
                plugin, net_name=str(conflist["name"]), version=version, prev=prev, runtime=runtime
            )
            try:
                await invoke.run(plugin["type"], call, conf, self.plugin_dirs)
            except (CNIError, OSError) as exc:
                errors.append(exc)
        return errors

    async def _rollback(
        self, netns: Path, container_id: str, args: Sequence[tuple[str, str]], runtime: Obj
    ) -> None:
        try:
            await asyncio.shield(self._delete(netns, container_id, args, runtime, None))
        except (CNIError, OSError) as exc:
            log.warning("CNI rollback of %s after a failed ADD: %s", container_id, exc)

    def _networks(self) -> list[tuple[Obj, str]]:
        nets = [(self.conflist, self.ifname)]
        if self.loopback is not None:
            nets.append((self.loopback, "lo"))
        return nets

    async def negotiate(self) -> None:
        """Ask the plugins their versions now rather than on the first pod (agent start)."""
        await asyncio.gather(*(self._version(conflist) for conflist, _ in self._networks()))

    async def _version(self, conflist: Obj) -> str:
        """The conflist's cniVersion if all its plugins speak it, else the best they share
        (asked once per plugin type with VERSION)."""
        key = str(conflist["name"])
        if key in self._versions:
            return self._versions[key]
        async with self._lock:
            if key not in self._versions:
                types = [str(p["type"]) for p in conflist["plugins"]]
                found = await asyncio.gather(
                    *(invoke.supported_versions(t, self.plugin_dirs) for t in types)
                )
                wanted = str(conflist.get("cniVersion") or config.CNI_VERSION)
                self._versions[key] = invoke.negotiate(wanted, found)
        return self._versions[key]

    def _cache_path(self, container_id: str) -> Path:
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise ValueError(f"invalid container id {container_id!r}")
        return self.results_dir / f"{self.name}-{container_id}-{self.ifname}"

    async def _store(
        self, container_id: str, args: Sequence[tuple[str, str]], runtime: Obj, final: Obj
    ) -> None:
        entry = {
            "kind": "cniCacheV1",
            "containerId": container_id,
            "ifName": self.ifname,
            "networkName": self.name,
            "cniArgs": [list(a) for a in args],
            "capabilityArgs": runtime,
            "result": final,
        }
        await asyncio.to_thread(_write_atomic, self._cache_path(container_id), entry)

    def _load(self, container_id: str) -> Obj | None:
        path = self._cache_path(container_id)
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _portmap_ipv6_bug(exc: CNIError, final: Obj) -> bool:
    """portmap <= 1.2 CHECK looks for IPv6 rules of an IPv4-only pod and fails
    (containernetworking/plugins#819): not a broken attachment."""
    ipv6 = any(":" in str(ip.get("address", "")) for ip in final.get("ips") or [])
    return exc.plugin == "portmap" and "ipv6" in exc.msg and not ipv6


def _write_atomic(path: Path, data: Obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
