"""The per-container shim of the oci runtime: runs ``runc run --detach`` and stays the parent.

Run as ``python -I -S shim.py <container state dir> <process runtime dir>``. Like the process
runtime's monitor (whose log writer, attach server and status file it reuses, imported from
``kybern/runtime/process/monitor.py`` as a plain module), it detaches from the agent, then:

- becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``) and runs ``runc run --detach`` with the
  container's stdio as its own: runc hands those descriptors to the container and exits, and
  the container's init is re-parented to us, so we can wait for it and learn its exit code
  (``runc state`` has none);
- with ``tty``, runc sends the pty master over ``console.sock`` (``--console-socket``);
- writes output to the CRI log, serves ``attach.sock``, and records pid, start, exit and
  ``oom_killed`` (from the memory cgroup's ``oom_kill`` counter) in ``status``.

The agent reads the first line on our stdout (``ok <pid>`` or ``error <message>``). Builtin
modules only, as the monitor: startup time is container start latency.
"""

from __future__ import annotations

import _socket
import marshal
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Spec = dict[str, Any]

PR_SET_CHILD_SUBREAPER = 36


def set_subreaper() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def receive_console(listener: _socket.socket) -> int:
    """The pty master runc sends over the console socket (SCM_RIGHTS)."""
    conn, _ = listener._accept()  # type: ignore[attr-defined]
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, conn)
    try:
        _, ancillary, _, _ = sock.recvmsg(4096, _socket.CMSG_SPACE(4))
        for level, kind, data in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                return int.from_bytes(data[:4], sys.byteorder)
    finally:
        sock.close()
    raise OSError("runc sent no console")


def read_pending(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
    finally:
        os.set_blocking(fd, True)


def start(spec: Spec) -> tuple[int, int, int, int | None]:
    """Run runc; returns (container pid, stdout fd, stderr fd or -1, stdin fd or None)."""
    null = os.open(os.devnull, os.O_RDWR)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, stdin_w = os.pipe() if spec["stdin"] and not spec["tty"] else (null, -1)
    argv = list(spec["argv"])
    listener = None
    if spec["tty"]:
        if os.path.exists("console.sock"):
            os.unlink("console.sock")
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        listener.bind("console.sock")
        listener.listen(1)
        argv[-1:-1] = ["--console-socket", os.path.abspath("console.sock")]
    pid = os.fork()
    if pid == 0:
        try:
            for target, fd in enumerate((in_r, out_w, err_w)):
                os.dup2(fd, target)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    for fd in {in_r, out_w, err_w, null}:
        if fd not in (stdin_w,):
            os.close(fd)
    master = -1
    if listener is not None:
        listener.settimeout(30.0)
        try:
            master = receive_console(listener)
        except OSError:
            master = -1
        listener.close()
        os.unlink("console.sock")
    _, status = os.waitpid(pid, 0)
    if status != 0:
        message = read_pending(err_r) or read_pending(out_r)
        raise ChildProcessError(runc_error(message.decode(errors="replace"), spec))
    with open(spec["pid_file"]) as f:
        container = int(f.read().strip())
    if master >= 0:
        os.close(out_r)
        os.close(err_r)
        return container, master, -1, master if spec["stdin"] else None
    return container, out_r, err_r, (stdin_w if stdin_w >= 0 else None)


def runc_error(stderr: str, spec: Spec) -> str:
    """runc's own message (its --log file has it as JSON lines; stderr has it as text)."""
    try:
        with open(spec["runc_log"]) as f:
            lines = [line for line in f.read().splitlines() if '"error"' in line]
        if lines:
            import json

            return str(json.loads(lines[-1]).get("msg", lines[-1]))
    except (OSError, ValueError):
        pass
    return stderr.strip() or "runc failed"


def oom_killed(path: str) -> bool:
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value) > 0
    except (OSError, ValueError):
        pass
    return False


def main(state_dir: str, process_dir: str) -> None:
    os.closerange(3, 65536)
    os.chdir(state_dir)
    sys.path.insert(0, process_dir)
    import monitor as base  # the process runtime's monitor: logs, attach, status

    with open("spec.bin", "rb") as f:
        spec = marshal.load(f)
    if os.fork():
        os._exit(0)
    os.setsid()
    record: dict[str, object] = {
        "monitor_pid": os.getpid(),
        "monitor_start": base.proc_start_ticks(os.getpid()),
    }
    try:
        set_subreaper()
        logs = base.LogWriter(spec["log_path"], spec["log_max_size"], spec["log_max_files"])
        pid, out, err, stdin = start(spec)
        monitor = base.Monitor(spec, logs, pid, out, err, stdin)
    except Exception as failure:
        record.update(finished_at=time.time_ns(), exit_code=128, error=str(failure))
        base.write_status(record)
        base.report("error " + str(failure).replace("\n", " "))
        return
    record.update(pid=pid, pid_start=base.proc_start_ticks(pid), started_at=time.time_ns())
    base.write_status(record)
    base.report(f"ok {pid}")
    code, signal = base.exit_code(monitor.run())
    record.update(finished_at=time.time_ns(), exit_code=code, signal=signal)
    if code != 0 and oom_killed(spec["oom_file"]):
        record["oom_killed"] = 1
    base.write_status(record)
    monitor.finish(code)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
