"""From a :class:`cri.ContainerConfig` to what the process runtime runs: environment, user,
and whether volumes (a mount namespace) are possible here."""

from __future__ import annotations

import contextlib
import os
import pwd
import sys
from pathlib import Path

from kybern.runtime import cri
from kybern.runtime.process import layout

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def container_env(
    config: cri.ContainerConfig, sandbox: layout.SandboxRecord, uid: int
) -> dict[str, str]:
    """The container's env over defaults for PATH, HOSTNAME and HOME (the user's, or /)."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": sandbox.hostname, "HOME": "/"}
    with contextlib.suppress(KeyError):
        env["HOME"] = pwd.getpwuid(uid).pw_dir
    env.update(config.envs)  # later names win
    return env


def identity(security: cri.SecurityContext) -> list[int]:
    """``[uid, gid, *groups]`` from runAsUser/runAsGroup/supplementalGroups, honoured only when
    the agent is root (an unprivileged agent runs everything as itself); [] = no switch."""
    if os.geteuid() != 0 or (security.run_as_user is None and security.run_as_group is None):
        return []
    uid = 0 if security.run_as_user is None else security.run_as_user
    gid = security.run_as_group
    if gid is None:  # as runc: the user's primary group when it is known, else 0
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = 0
    return [uid, gid, *security.supplemental_groups]


def namespace_unavailable() -> str:
    """Why a mount namespace cannot be made here ("" when it can, as far as we can tell)."""
    if os.geteuid() == 0:
        return ""
    checks = {
        "/proc/sys/user/max_user_namespaces": "0",
        "/proc/sys/kernel/unprivileged_userns_clone": "0",
    }
    for path, bad in checks.items():
        with contextlib.suppress(OSError):
            if Path(path).read_text().strip() == bad:
                setting = path.removeprefix("/proc/sys/").replace("/", ".")
                return (
                    f"volumes need a private mount namespace but {setting} is {bad}: "
                    f"set it (sysctl {setting}=1 or more) or run the agent as root"
                )
    if not sys.platform.startswith("linux"):
        return "volumes need Linux mount namespaces; the process runtime cannot mount them here"
    return ""
