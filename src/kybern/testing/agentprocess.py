"""A ``kybern agent`` running as a subprocess, for end-to-end tests and benchmarks that kill,
stop and restart it, and the runtime processes an agent leaves behind.

The agent's output is appended to one log file across restarts, so a test can count what
each run logged (``kubelet ready`` once per start) and look for tracebacks at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


class AgentProcess:
    """``args`` is the whole command line; ``log`` the file stdout and stderr append to."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL, as a crash would: the agent gets no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def monitors(data_dir: Path) -> list[int]:
    """The process runtime's per-container monitor processes under data_dir: started directly
    (``monitor.py <state dir>``) or forked by the launcher (its command line, but running in
    the container's state dir); not the launcher itself (it runs beside ``launcher.sock``)."""
    found = []
    prefix = str(data_dir.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if not any(b"monitor.py" in arg for arg in cmdline):
                continue
            cwd = os.readlink(entry / "cwd")
            by_arg = any(arg.startswith(str(data_dir).encode()) for arg in cmdline)
            forked = cwd.startswith(prefix) and not os.path.exists(
                os.path.join(cwd, "launcher.sock")
            )
            if by_arg or forked:
                found.append(int(entry.name))
    return found


def launchers(data_dir: Path) -> list[int]:
    """The process runtime's monitor launchers (``monitor.py --serve``) under data_dir."""
    found = []
    prefix = str(data_dir.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
            if (
                b"--serve" in cmdline
                and cwd.startswith(prefix)
                and os.path.exists(os.path.join(cwd, "launcher.sock"))
            ):
                found.append(int(entry.name))
    return found
