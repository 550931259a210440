"""From a pod spec to the runtime's sandbox and container configurations (pure).

The kubelet labels everything it creates the way kubelet labels CRI objects (``io.kubernetes.*``)
so that a restarted agent can tell, from the runtime alone, which pod and container each
sandbox and container belongs to and how often it was restarted; this module is the one place
those labels are written and read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kybern.api import quantity
from kybern.runtime import cri

Obj = dict[str, Any]

POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
DEFAULT_GRACE = 30


def meta(pod: Obj) -> Obj:
    m = pod.get("metadata")
    return m if isinstance(m, dict) else {}


def pod_labels(pod: Obj) -> dict[str, str]:
    m = meta(pod)
    return {
        POD_UID: str(m.get("uid", "")),
        POD_NAME: str(m.get("name", "")),
        POD_NAMESPACE: str(m.get("namespace", "")),
    }


def pod_uid_of(labels: dict[str, str]) -> str:
    return labels.get(POD_UID, "")


def full_name(pod: Obj) -> str:
    """kubelet's ``format.Pod``: ``name_namespace(uid)``."""
    m = meta(pod)
    return f"{m.get('name', '')}_{m.get('namespace', '')}({m.get('uid', '')})"


def grace_period(pod: Obj) -> int:
    """The deletion's gracePeriodSeconds, else the spec's terminationGracePeriodSeconds."""
    value = meta(pod).get("deletionGracePeriodSeconds")
    if value is None:
        value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return DEFAULT_GRACE


def log_directory(root: Path, pod: Obj) -> Path:
    """``<root>/<namespace>_<name>_<uid>`` (kubelet: /var/log/pods/...)."""
    m = meta(pod)
    return root / f"{m.get('namespace', '')}_{m.get('name', '')}_{m.get('uid', '')}"


def sandbox_config(
    pod: Obj, *, attempt: int, log_root: Path, pod_cidr: str = "", dns: cri.DNSConfig | None = None
) -> cri.PodSandboxConfig:
    m = meta(pod)
    spec = pod.get("spec") or {}
    return cri.PodSandboxConfig(
        metadata=cri.PodMeta(
            name=str(m.get("name", "")),
            namespace=str(m.get("namespace", "")),
            uid=str(m.get("uid", "")),
            attempt=attempt,
        ),
        hostname=str(spec.get("hostname") or m.get("name", ""))[:63],
        log_directory=str(log_directory(log_root, pod)),
        dns=dns,
        port_mappings=_port_mappings(spec),
        host_aliases=tuple(
            cri.HostAlias(ip=str(a.get("ip", "")), hostnames=tuple(a.get("hostnames") or ()))
            for a in spec.get("hostAliases") or []
        ),
        labels=pod_labels(pod),
        annotations={GRACE_PERIOD: str(grace_period(pod))},
        host_network=bool(spec.get("hostNetwork")),
        host_pid=bool(spec.get("hostPID")),
        host_ipc=bool(spec.get("hostIPC")),
        share_process_namespace=bool(spec.get("shareProcessNamespace")),
        cgroup_parent=f"kubepods/pod{m.get('uid', '')}",
        sysctls={
            str(s.get("name")): str(s.get("value", ""))
            for s in (spec.get("securityContext") or {}).get("sysctls") or []
        },
        pod_cidr=pod_cidr,
    )


def _port_mappings(spec: Obj) -> tuple[cri.PortMapping, ...]:
    return tuple(
        cri.PortMapping(
            container_port=int(port.get("containerPort", 0)),
            host_port=int(port["hostPort"]),
            protocol=str(port.get("protocol") or "TCP"),
            host_ip=str(port.get("hostIP") or ""),
        )
        for container in spec.get("containers") or []
        for port in container.get("ports") or []
        if port.get("hostPort")
    )


def resources(container: Obj) -> cri.Resources:
    """cgroup values from requests and limits, as kubelet computes them (cgroup v1 units)."""
    res = container.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    cpu_request = requests.get("cpu") or limits.get("cpu")
    shares = max(2, quantity.milli_value(cpu_request) * 1024 // 1000) if cpu_request else 2
    quota = max(1000, quantity.milli_value(limits["cpu"]) * 100) if limits.get("cpu") else 0
    memory = quantity.int_value(limits["memory"]) if limits.get("memory") else 0
    return cri.Resources(cpu_shares=shares, cpu_quota=quota, memory_limit_bytes=memory)


def security(pod: Obj, container: Obj) -> cri.SecurityContext:
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}
    caps = sc.get("capabilities") or {}

    def pick(key: str) -> Any:
        return sc.get(key, pod_sc.get(key))

    return cri.SecurityContext(
        run_as_user=pick("runAsUser"),
        run_as_group=pick("runAsGroup"),
        supplemental_groups=tuple(pod_sc.get("supplementalGroups") or ()),
        run_as_non_root=bool(pick("runAsNonRoot")),
        privileged=bool(sc.get("privileged")),
        capabilities_add=tuple(caps.get("add") or ()),
        capabilities_drop=tuple(caps.get("drop") or ()),
        readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
    )


def container_config(
    pod: Obj,
    container: Obj,
    *,
    attempt: int,
    command: list[str],
    args: list[str],
    env: list[tuple[str, str]],
    mounts: list[cri.Mount],
    log_dir: Path,
    termination_host_path: str,
) -> cri.ContainerConfig:
    name = str(container.get("name", ""))
    termination_path = str(container.get("terminationMessagePath") or "/dev/termination-log")
    return cri.ContainerConfig(
        metadata=cri.ContainerMeta(name=name, attempt=attempt),
        image=str(container.get("image", "")),
        command=tuple(command),
        args=tuple(args),
        working_dir=str(container.get("workingDir") or ""),
        envs=tuple(env),
        mounts=tuple(mounts),
        log_path=str(log_dir / name / f"{attempt}.log"),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        labels={**pod_labels(pod), CONTAINER_NAME: name},
        annotations={
            RESTART_COUNT: str(attempt),
            TERMINATION_MESSAGE_PATH: termination_path,
            GRACE_PERIOD: str(grace_period(pod)),
        },
        resources=resources(container),
        security=security(pod, container),
        termination_message_host_path=termination_host_path,
        termination_message_path=termination_path,
    )
