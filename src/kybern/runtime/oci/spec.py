"""OCI runtime spec (a bundle's ``config.json``) for one container: pure, no I/O.

Input is what the kubelet resolved (:class:`cri.ContainerConfig`, :class:`cri.PodSandboxConfig`),
the image config, and where the runtime put things on the host (:class:`Placement`: rootfs,
sandbox namespaces and files, cgroup path, the init binary). Kubernetes' rules, as containerd's
CRI plugin applies them:

- argv: ``command`` replaces the image's ENTRYPOINT (and drops its CMD); ``args`` replaces CMD;
  the result runs under tini (``/.kybern/tini --``) so SIGTERM reaches it and zombies are reaped;
- env: the image's, then ``HOSTNAME``, then the container's (later names win, order kept);
- user: runAsUser/runAsGroup, else the image's USER (numeric or looked up in the image's
  /etc/passwd and /etc/group); ``runAsNonRoot`` is checked as the kubelet does
  (``CreateContainerConfigError``);
- namespaces: the sandbox's network, IPC and UTS (by path), a PID namespace of its own unless
  the pod shares one, a mount namespace of its own;
- capabilities: containerd's default set plus ``add`` minus ``drop`` (``ALL`` allowed); privileged
  gets every capability, no masked or read-only paths and a writable /sys;
- resources: cpu shares/quota/period, memory limit, pids limit, oom_score_adj.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kybern.runtime import cri
from kybern.runtime.images import model

INIT_PATH = "/.kybern/tini"  # where the init binary is bound inside every container
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# containerd's default capability set (pkg/cri/opts/spec_opts.go / oci.defaultUnixCaps)
DEFAULT_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
ALL_CAPS = (
    *DEFAULT_CAPS,
    "CAP_DAC_READ_SEARCH",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_LEASE",
    "CAP_AUDIT_CONTROL",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
# containerd's defaults (oci.populateDefaultUnixSpec)
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
PROPAGATION = {"private": "rprivate", "rslave": "rslave", "rshared": "rshared"}


class ConfigError(cri.RuntimeError_):
    """The pod asks for something that cannot be honoured (the kubelet's CreateContainerConfigError)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="CreateContainerConfigError")


@dataclass(frozen=True)
class Placement:
    """Where the runtime put the container's pieces on the host."""

    rootfs: str
    cgroups_path: str  # "/kybern/pod<uid>/<id>" style, relative to each hierarchy
    netns: str = ""  # "" = the host's network namespace
    ipcns: str = ""  # "" = a new IPC namespace (or the host's with host_ipc)
    utsns: str = ""  # "" = the host's UTS namespace
    pidns: str = ""  # a shared pod PID namespace; "" = a new one (or the host's)
    etc_files: tuple[tuple[str, str], ...] = ()  # (container path, host path): hosts, resolv.conf
    init: str = ""  # host path of tini-static; "" = run the app as PID 1
    passwd: str = ""  # the image's /etc/passwd text
    group: str = ""  # the image's /etc/group text


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()


# --- argv, env, user ---------------------------------------------------------------------


def argv(config: cri.ContainerConfig, image: model.ImageConfig) -> list[str]:
    """Kubernetes' rule: command replaces ENTRYPOINT (and CMD); args replaces CMD."""
    if config.command:
        return [*config.command, *config.args]
    return [*image.entrypoint, *(config.args or image.cmd)]


def environment(config: cri.ContainerConfig, image: model.ImageConfig, hostname: str) -> list[str]:
    """The image's env, then HOSTNAME, then the container's; a later name replaces in place."""
    merged: dict[str, str] = {}
    for item in image.env:
        name, _, value = item.partition("=")
        merged[name] = value
    merged.setdefault("PATH", DEFAULT_PATH)
    merged["HOSTNAME"] = hostname
    merged.update(config.envs)
    return [f"{k}={v}" for k, v in merged.items()]


def _table(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _lookup(text: str, key: str) -> list[str] | None:
    """The /etc/passwd or /etc/group row whose name (or numeric id) is ``key``."""
    rows = _table(text)
    for row in rows:
        if row[0] == key and len(row) > 2:
            return row
    if key.isdigit():
        for row in rows:
            if len(row) > 2 and row[2] == key:
                return row
    return None


def resolve_user(
    security: cri.SecurityContext, image: model.ImageConfig, passwd: str, group: str
) -> User:
    """uid, gid and groups as containerd resolves them (runAs* first, then the image's USER)."""
    user_part, _, group_part = image.user.partition(":")
    uid = security.run_as_user
    gid: int | None = None
    name = ""
    if uid is None:
        if not user_part or user_part.isdigit():
            uid = int(user_part or 0)
        else:
            row = _lookup(passwd, user_part)
            if row is None:
                raise ConfigError(f"no users found for {user_part!r} in the image's /etc/passwd")
            uid, gid, name = int(row[2]), int(row[3]), row[0]
    if not name and (row := _lookup(passwd, str(uid))) is not None:
        name, gid = row[0], gid if gid is not None else int(row[3])
    if security.run_as_group is not None:
        gid = security.run_as_group
    elif group_part and security.run_as_user is None:
        gid = _group_id(group_part, group)
    groups = [*security.supplemental_groups]
    if name:
        groups += [int(r[2]) for r in _table(group) if len(r) > 3 and name in r[3].split(",")]
    gid = gid if gid is not None else 0
    return User(uid=uid, gid=gid, additional_gids=tuple(dict.fromkeys(g for g in groups)))


def _group_id(part: str, group: str) -> int:
    if part.isdigit():
        return int(part)
    row = _lookup(group, part)
    if row is None:
        raise ConfigError(f"no groups found for {part!r} in the image's /etc/group")
    return int(row[2])


def check_non_root(
    config: cri.ContainerConfig, image: model.ImageConfig, user: User, pod: str
) -> None:
    """The kubelet's verifyRunAsNonRoot, with its messages (pod is ``name_namespace(uid)``)."""
    security = config.security
    if not security.run_as_non_root:
        return
    name = config.metadata.name
    if security.run_as_user is not None:
        if security.run_as_user == 0:
            raise ConfigError(
                f"container's runAsUser breaks non-root policy (pod: {pod!r}, container: {name})"
            )
        return
    user_part = image.user.partition(":")[0]
    if user_part and not user_part.isdigit():
        raise ConfigError(
            f"container has runAsNonRoot and image has non-numeric user ({user_part}), "
            f"cannot verify user is non-root (pod: {pod!r}, container: {name})"
        )
    if user.uid == 0:
        raise ConfigError(
            f"container has runAsNonRoot and image will run as root (pod: {pod!r}, container: {name})"
        )


# --- capabilities ------------------------------------------------------------------------


def _cap(name: str) -> str:
    upper = name.upper()
    return upper if upper.startswith("CAP_") else f"CAP_{upper}"


def capabilities(security: cri.SecurityContext) -> list[str]:
    if security.privileged:
        return list(ALL_CAPS)
    drop = {_cap(c) for c in security.capabilities_drop}
    add = [_cap(c) for c in security.capabilities_add]
    base = [] if "CAP_ALL" in drop else [c for c in DEFAULT_CAPS if c not in drop]
    extra = list(ALL_CAPS) if "CAP_ALL" in add else add
    return list(dict.fromkeys(c for c in [*base, *extra] if c != "CAP_ALL"))


# --- mounts ------------------------------------------------------------------------------


def _bind(destination: str, source: str, *, readonly: bool, propagation: str) -> dict[str, Any]:
    options = ["rbind", PROPAGATION.get(propagation, "rprivate")]
    if readonly:
        options.append("ro")
    return {"destination": destination, "type": "bind", "source": source, "options": options}


def mounts(config: cri.ContainerConfig, place: Placement) -> list[dict[str, Any]]:
    privileged = config.security.privileged
    sys_options = ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"]
    result: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [*sys_options, "relatime"]},
    ]  # fmt: skip
    taken = {m.container_path for m in config.mounts}
    if "/dev/shm" not in taken:
        shm = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        result.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": shm})
    for destination, source in place.etc_files:
        if destination not in taken:
            result.append(_bind(destination, source, readonly=False, propagation="private"))
    host, path = config.termination_message_host_path, config.termination_message_path
    if host and path and path not in taken:
        result.append(_bind(path, host, readonly=False, propagation="private"))
    result += [
        _bind(m.container_path, m.host_path, readonly=m.readonly, propagation=m.propagation)
        for m in config.mounts
    ]
    if place.init:
        result.append(_bind(INIT_PATH, place.init, readonly=True, propagation="private"))
    return result


# --- linux section -----------------------------------------------------------------------


def namespaces(sandbox: cri.PodSandboxConfig, place: Placement) -> list[dict[str, str]]:
    result = [{"type": "mount"}]
    if place.pidns:
        result.append({"type": "pid", "path": place.pidns})
    elif not sandbox.host_pid:
        result.append({"type": "pid"})
    if place.netns:
        result.append({"type": "network", "path": place.netns})
    elif not sandbox.host_network:
        result.append({"type": "network"})
    if place.ipcns:
        result.append({"type": "ipc", "path": place.ipcns})
    elif not sandbox.host_ipc:
        result.append({"type": "ipc"})
    if place.utsns:
        result.append({"type": "uts", "path": place.utsns})
    return result


def resources(res: cri.Resources, privileged: bool) -> dict[str, Any]:
    cpu: dict[str, int] = {"shares": max(res.cpu_shares, 2)}
    if res.cpu_quota > 0:
        cpu |= {"quota": res.cpu_quota, "period": res.cpu_period}
    result: dict[str, Any] = {
        "devices": [{"allow": privileged, "access": "rwm"}],
        "cpu": cpu,
    }
    if res.memory_limit_bytes > 0:
        result["memory"] = {"limit": res.memory_limit_bytes}
    if res.pids_limit > 0:
        result["pids"] = {"limit": res.pids_limit}
    return result


def linux(
    config: cri.ContainerConfig, sandbox: cri.PodSandboxConfig, place: Placement
) -> dict[str, Any]:
    security = config.security
    privileged = security.privileged
    masked = () if privileged else security.masked_paths
    readonly = () if privileged else security.readonly_paths
    section: dict[str, Any] = {
        "namespaces": namespaces(sandbox, place),
        "cgroupsPath": place.cgroups_path,
        "resources": resources(config.resources, privileged),
        "maskedPaths": list(MASKED_PATHS if masked is None else masked),
        "readonlyPaths": list(READONLY_PATHS if readonly is None else readonly),
    }
    if sandbox.sysctls and not sandbox.host_network:
        section["sysctl"] = dict(sandbox.sysctls)
    return section


# --- the whole document ------------------------------------------------------------------


def generate(
    config: cri.ContainerConfig,
    sandbox: cri.PodSandboxConfig,
    image: model.ImageConfig,
    place: Placement,
) -> dict[str, Any]:
    """The ``config.json`` of the container's bundle; raises :class:`ConfigError`."""
    args = argv(config, image)
    if not args:
        raise cri.RuntimeError_(
            "failed to generate container spec: no command specified",
            reason="CreateContainerError",
        )
    user = resolve_user(config.security, image, place.passwd, place.group)
    meta = sandbox.metadata
    check_non_root(config, image, user, f"{meta.name}_{meta.namespace}({meta.uid})")
    hostname = sandbox.hostname or meta.name
    if place.init:
        args = [INIT_PATH, *(["-s"] if place.pidns or sandbox.host_pid else []), "--", *args]
    caps = capabilities(config.security)
    process: dict[str, Any] = {
        "terminal": config.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": environment(config, image, hostname),
        "cwd": config.working_dir or image.working_dir or "/",
        "capabilities": dict.fromkeys(("bounding", "effective", "permitted"), caps),
        "noNewPrivileges": config.security.no_new_privs and not config.security.privileged,
        "oomScoreAdj": config.resources.oom_score_adj,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = list(user.additional_gids)
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": place.rootfs, "readonly": config.security.readonly_rootfs},
        "mounts": mounts(config, place),
        "annotations": dict(config.annotations),
        "linux": linux(config, sandbox, place),
    }
