"""The OCI runtime binary (runc or crun): choosing it and the commands the runtime runs.

``--oci-runtime`` (``Options.extra["oci_runtime"]``) names it; by default crun when it works on
this host, else runc. crun is ~3x faster to start but refuses hybrid cgroup layouts (cgroup v1
controllers plus a cgroup2 mount holding only hugetlb, DESIGN.md section 7), so "works" is
measured once per process by running a trivial container with it (``probe``).

Every command uses our own state root (``--root <state>/runc``), so kybern's containers never mix
with another engine's on the same host, and a restarted agent finds them there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("crun", "runc")


class DriverError(Exception):
    pass


@functools.cache
def probe(binary: str) -> bool:
    """Whether ``binary`` can run a container here: ``busybox true`` in an otherwise empty
    read-only rootfs (the host's busybox bound in)."""
    path = shutil.which(binary)
    true = shutil.which("busybox") or ""
    if path is None or os.geteuid() != 0 or not true:
        return False
    with tempfile.TemporaryDirectory(prefix="kybern-probe-") as tmp:
        bundle = Path(tmp)
        (bundle / "rootfs" / "bin").mkdir(parents=True)
        (bundle / "rootfs" / "proc").mkdir()
        (bundle / "rootfs" / "bin" / "busybox").touch()
        config = {
            "ociVersion": "1.0.2",
            "process": {"args": ["/bin/busybox", "true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs", "readonly": True},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/bin/busybox", "type": "bind", "source": true, "options": ["rbind", "ro"]}
            ],
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]},
        }  # fmt: skip
        (bundle / "config.json").write_text(json.dumps(config))
        try:
            result = subprocess.run(
                [
                    path,
                    "--root",
                    str(bundle / "state"),
                    "run",
                    "--bundle",
                    tmp,
                    f"probe{os.getpid()}",
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0


def choose(requested: str = "") -> str:
    """The path of the binary to use: the requested one (if installed), else the first that
    works."""
    if requested:
        path = shutil.which(requested)
        if path is None:
            raise DriverError(f"OCI runtime {requested!r} is not installed")
        return path
    for candidate in CANDIDATES:
        if probe(candidate):
            return shutil.which(candidate) or candidate
    raise DriverError("neither crun nor runc can run containers on this host")


@dataclass(frozen=True)
class Driver:
    binary: str
    root: Path  # the runtime's state root (--root)

    def base(self) -> list[str]:
        return [self.binary, "--root", str(self.root)]

    def run_detached(self, bundle: Path, container_id: str, pid_file: Path) -> list[str]:
        return [*self.base(), "run", "--detach", "--bundle", str(bundle), "--pid-file", str(pid_file), container_id]  # fmt: skip

    def exec_argv(
        self, container_id: str, cmd: list[str], *, tty: bool, pid_file: Path
    ) -> list[str]:
        tty_flag = ["--tty"] if tty else []
        return [*self.base(), "exec", *tty_flag, "--pid-file", str(pid_file), container_id, *cmd]

    async def run(self, *args: str, limit: float = 30.0) -> tuple[int, str]:
        """Run a short command (kill, delete, state); returns (exit code, stderr+stdout)."""
        proc = await asyncio.create_subprocess_exec(
            *self.base(),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return -1, f"{self.binary} {args[0]} timed out"
        return proc.returncode or 0, out.decode(errors="replace").strip()

    async def delete(self, container_id: str) -> None:
        code, out = await self.run("delete", "--force", container_id)
        if code != 0 and "does not exist" not in out and "not exist" not in out:
            raise DriverError(f"{self.binary} delete {container_id}: {out}")

    def known(self) -> set[str]:
        """Container ids the binary has state for."""
        try:
            return {p.name for p in self.root.iterdir() if p.is_dir()}
        except FileNotFoundError:
            return set()
