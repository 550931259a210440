"""The per-container monitor of the process runtime (kybern's conmon / containerd-shim).

Run as ``python -I -S monitor.py <container state dir>``. It reads ``spec.bin`` (a marshal'd
dict written by :mod:`kybern.runtime.process.layout`), detaches from the agent (fork, the first
process exits, the second calls ``setsid``), forks the container process and stays its parent:

- the container runs in its own session and process group (pgid = its pid), so a signal to the
  group reaches every child; when the main process exits the rest of its group is SIGKILLed,
  as a PID namespace would do;
- its stdout/stderr (or its pty with ``tty``) are read here and written to the CRI log file
  (:mod:`kybern.runtime.crilog` format, lines over 16 KiB split into ``P`` entries), rotated by
  size: the current file is the spec's ``log_path``, older ones ``<log_path>.1`` (newest) to
  ``<log_path>.<max_files-1>``;
- ``status`` records pid, start and finish times and the exit code (``128+signal`` when killed),
  always replaced atomically (write ``status.tmp``, rename);
- ``attach.sock`` (a unix socket in the state dir) serves attach: stdin forwarding, output
  fan-out, resize and the exit code (frames: 1 type byte, 4-byte big-endian length, payload).

The agent learns the outcome of the start from the first line on our stdout: ``ok <pid>`` or
``error <message>``. ``monitor.py --serve <socket>`` is the launcher: one interpreter that forks
a monitor per request on a unix socket, so that a start costs a fork instead of an interpreter
start (see ``serve`` at the end). The agent may die and come back at any time; everything it needs is in the
state dir. Startup time is the container's start latency, so this file imports only builtin
modules (no json, socket, signal, selectors: each costs milliseconds) and no kybern code.
"""

from __future__ import annotations

import _signal  # builtin; `signal` would import enum (~4 ms)
import _socket
import marshal
import os
import select
import sys
import time

TYPE_CHECKING = False  # typing costs milliseconds at startup; mypy honours this name
if TYPE_CHECKING:
    from typing import Any

    Spec = dict[str, Any]

MAX_LINE = 16 * 1024  # containerd's maximum log line size; longer lines become P entries
DRAIN_SECONDS = 2.0  # how long output is still read after the main process exits
FRAME_STDIN, FRAME_CLOSE, FRAME_RESIZE, FRAME_HELLO = b"i", b"c", b"r", b"h"
FRAME_STDOUT, FRAME_STDERR, FRAME_EXIT = b"o", b"e", b"x"


# --- status and logs ---------------------------------------------------------------------


def write_status(values: dict[str, object]) -> None:
    """``key=value`` lines, replaced atomically so readers never see half a file."""
    text = "".join(f"{k}={v}\n" for k, v in values.items())
    with open("status.tmp", "w") as f:
        f.write(text)
    os.replace("status.tmp", "status")


def timestamp(ns: int) -> bytes:
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode() + (b".%09dZ" % frac)


class LogWriter:
    """CRI-format lines for both streams into one size-rotated file."""

    def __init__(self, path: str, max_size: int, max_files: int) -> None:
        self.path, self.max_size, self.max_files = path, max_size, max_files
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.pending = {b"stdout": b"", b"stderr": b""}

    def write(self, stream: bytes, data: bytes) -> None:
        buf = self.pending[stream] + data
        lines = buf.split(b"\n")
        for line in lines[:-1]:
            self._emit(stream, line, partial=False)
        rest = lines[-1]
        while len(rest) >= MAX_LINE:
            self._emit(stream, rest[:MAX_LINE], partial=True)
            rest = rest[MAX_LINE:]
        self.pending[stream] = rest

    def flush(self) -> None:
        """At end of stream, what is left without a newline is a full entry (as containerd)."""
        for stream, rest in self.pending.items():
            if rest:
                self._emit(stream, rest, partial=False)
        self.pending = {b"stdout": b"", b"stderr": b""}

    def _emit(self, stream: bytes, content: bytes, *, partial: bool) -> None:
        while len(content) > MAX_LINE:  # a full line longer than the limit: P pieces, then F
            self._emit(stream, content[:MAX_LINE], partial=True)
            content = content[MAX_LINE:]
        tag = b"P" if partial else b"F"
        line = b" ".join((timestamp(time.time_ns()), stream, tag, content)) + b"\n"
        if self.size and self.size + len(line) > self.max_size:
            self._rotate()
        os.write(self.fd, line)
        self.size += len(line)

    def _rotate(self) -> None:
        os.close(self.fd)
        for n in range(self.max_files - 1, 0, -1):
            older = f"{self.path}.{n}"
            if os.path.exists(older):
                if n == self.max_files - 1:
                    os.unlink(older)
                else:
                    os.replace(older, f"{self.path}.{n + 1}")
        if self.max_files > 1:
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = 0


# --- the container process ---------------------------------------------------------------


def exec_child(spec: Spec, fds: tuple[int, int, int], tty: bool, err_w: int) -> None:
    """In the forked child: new session, stdio, mounts, working dir, then exec. Never returns."""
    try:
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        if tty:
            import fcntl
            import termios

            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)  # Python ignores it; the child must not
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_DFL)
        if spec["mounts"]:
            import mounts  # our sibling (ctypes): imported only when needed

            mounts.setup(spec["mounts"], scratch=spec["scratch"])
        if spec["user"]:  # after the mounts, which need root
            import warnings  # noqa: F401  # execvpe imports it: later the stdlib may be unreadable

            uid, gid, *groups = spec["user"]
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
        try:
            os.chdir(spec["cwd"])
        except OSError as err:
            raise OSError(f"working directory {spec['cwd']!r}: {err.strerror}") from None
        env = dict(spec["env"])
        try:
            os.execvpe(spec["argv"][0], spec["argv"], env)
        except OSError as err:
            where = "" if "/" in spec["argv"][0] else " in $PATH"
            raise OSError(f'exec: "{spec["argv"][0]}": {err.strerror}{where}') from None
    except BaseException as err:
        os.write(err_w, str(err).encode() or repr(err).encode())
    finally:
        os._exit(127)


def spawn(spec: Spec) -> tuple[int, int, int, int | None]:
    """Fork the container; returns (pid, stdout fd, stderr fd or -1, stdin fd or None)."""
    null = os.open(os.devnull, os.O_RDWR)
    if spec["tty"]:
        master, slave = os.openpty()
        fds, out_r, err_r, stdin_w = (slave, slave, slave), master, -1, master
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, stdin_w = os.pipe() if spec["stdin"] else (null, -1)
        fds = (in_r, out_w, err_w)
    err_pipe_r, err_pipe_w = os.pipe()  # close-on-exec: EOF without data means exec worked
    pid = os.fork()
    if pid == 0:
        exec_child(spec, fds, spec["tty"], err_pipe_w)
    os.close(err_pipe_w)
    for fd in {*fds, null}:
        if fd not in (out_r, err_r, stdin_w):
            os.close(fd)
    failure = b""
    while chunk := os.read(err_pipe_r, 4096):
        failure += chunk
    os.close(err_pipe_r)
    if failure:
        os.waitpid(pid, 0)
        raise ChildProcessError(failure.decode(errors="replace"))
    return pid, out_r, err_r, (stdin_w if stdin_w >= 0 else None)


def proc_start_ticks(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat: with the pid, identifies the process across pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except OSError:
        return ""


# --- the event loop ----------------------------------------------------------------------


def frame(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


class Monitor:
    """Owns the running container: output to logs and attached clients, stdin, exit."""

    def __init__(
        self, spec: Spec, logs: LogWriter, pid: int, out: int, err: int, stdin: int | None
    ) -> None:
        self.spec, self.logs, self.pid, self.stdin = spec, logs, pid, stdin
        self.streams = {out: b"stdout"} | ({err: b"stderr"} if err >= 0 else {})
        self.poll = select.poll()
        self.clients: dict[int, tuple[_socket.socket, bytearray, bool]] = {}
        self.stdin_buf = bytearray()
        self.stdin_used = False
        self.exit_status: int | None = None
        for fd in self.streams:
            self.poll.register(fd, select.POLLIN)
        self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        if os.path.exists("attach.sock"):
            os.unlink("attach.sock")
        self.listener.bind("attach.sock")
        self.listener.listen(8)
        self.poll.register(self.listener.fileno(), select.POLLIN)
        self.exit_fd = self._exit_notifier()

    def _exit_notifier(self) -> int:
        if hasattr(os, "pidfd_open"):
            fd = os.pidfd_open(self.pid)
        else:  # macOS: SIGCHLD through the wakeup fd
            fd, w = os.pipe()
            os.set_blocking(w, False)
            _signal.signal(_signal.SIGCHLD, lambda *_: None)
            _signal.set_wakeup_fd(w)
        self.poll.register(fd, select.POLLIN)
        return fd

    def run(self) -> int:
        """Serve until the main process has exited and its output is drained (or timed out)."""
        deadline = 0.0
        while self.exit_status is None or (self.streams and time.monotonic() < deadline):
            timeout = None if self.exit_status is None else (deadline - time.monotonic()) * 1000
            for fd, events in self.poll.poll(None if timeout is None else max(0.0, timeout)):
                self._dispatch(fd, events)
            if self.exit_status is None:
                self._reap()
                deadline = time.monotonic() + DRAIN_SECONDS
        self.logs.flush()
        return self.exit_status

    def _reap(self) -> None:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == self.pid:
            self.exit_status = status
            try:  # what is left of the group dies with the main process, as in a pid namespace
                os.killpg(self.pid, 9)
            except OSError:
                pass

    def _dispatch(self, fd: int, events: int) -> None:
        if fd in self.streams:
            self._read_output(fd)
        elif fd == self.listener.fileno():
            conn_fd, _ = self.listener._accept()  # type: ignore[attr-defined]
            conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, conn_fd)
            conn.settimeout(2.0)  # a client that stops reading is dropped, never stalls us
            self.clients[conn.fileno()] = (conn, bytearray(), False)
            self.poll.register(conn.fileno(), select.POLLIN)
        elif fd in self.clients:
            self._read_client(fd)
        elif fd == self.stdin and events & select.POLLOUT:
            self._flush_stdin()
        elif fd == self.exit_fd:
            self.poll.unregister(fd)
            if not hasattr(os, "pidfd_open"):
                os.read(fd, 512)
                self.poll.register(fd, select.POLLIN)

    def _read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO from a pty master once the child side is closed
            data = b""
        stream = self.streams[fd]
        if not data:
            self.poll.unregister(fd)
            del self.streams[fd]
            return
        self.logs.write(stream, data)
        kind = FRAME_STDOUT if stream == b"stdout" else FRAME_STDERR
        for cfd in list(self.clients):
            try:
                self.clients[cfd][0].sendall(frame(kind, data))
            except OSError:
                self._drop_client(cfd)

    def _read_client(self, fd: int) -> None:
        conn, buf, _ = self.clients[fd]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop_client(fd)
            return
        buf += data
        while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[1:5], "big"):
            size = int.from_bytes(buf[1:5], "big")
            kind, payload = bytes(buf[:1]), bytes(buf[5 : 5 + size])
            del buf[: 5 + size]
            if kind == FRAME_HELLO and payload == b"stdin":
                self.clients[fd] = (conn, buf, True)
                self.stdin_used = True
            else:
                self._client_frame(kind, payload)

    def _client_frame(self, kind: bytes, payload: bytes) -> None:
        if kind == FRAME_STDIN and self.stdin is not None:
            self.stdin_buf += payload
            self._flush_stdin()
        elif kind == FRAME_CLOSE:
            self._close_stdin()
        elif kind == FRAME_RESIZE and self.spec["tty"]:
            import fcntl
            import termios

            width, height = (int(v) for v in payload.split())
            size = height.to_bytes(2, sys.byteorder) + width.to_bytes(2, sys.byteorder) + bytes(4)
            fcntl.ioctl(self.stdin if self.stdin is not None else -1, termios.TIOCSWINSZ, size)

    def _flush_stdin(self) -> None:
        if self.stdin is None:
            return
        try:
            os.set_blocking(self.stdin, False)
            written = os.write(self.stdin, self.stdin_buf) if self.stdin_buf else 0
            del self.stdin_buf[:written]
        except BlockingIOError:
            pass
        except OSError:  # the reader is gone
            self.stdin_buf.clear()
        if self.spec["tty"] or self.stdin is None:  # a pty master is polled for output already
            return
        if self.stdin_buf:
            self.poll.register(self.stdin, select.POLLOUT)
        else:
            self._unwatch_stdin()

    def _unwatch_stdin(self) -> None:
        if self.stdin is not None:
            try:
                self.poll.unregister(self.stdin)
            except KeyError:  # was not watched
                pass

    def _close_stdin(self) -> None:
        if self.stdin is None:
            return
        if self.spec["tty"]:  # the pty stays open for output; EOF is ^D at the line discipline
            os.write(self.stdin, b"\x04")
            return
        self._unwatch_stdin()
        os.close(self.stdin)
        self.stdin = None

    def _drop_client(self, fd: int) -> None:
        conn, _, wants_stdin = self.clients.pop(fd)
        self.poll.unregister(fd)
        conn.close()
        if wants_stdin and self.spec["stdin_once"]:
            self._close_stdin()

    def finish(self, code: int) -> None:
        for conn, _, _ in self.clients.values():
            try:
                conn.sendall(frame(FRAME_EXIT, str(code).encode()))
            except OSError:
                pass
            conn.close()
        self.listener.close()
        try:
            os.unlink("attach.sock")
        except OSError:
            pass


# --- main --------------------------------------------------------------------------------


def exit_code(status: int) -> tuple[int, int]:
    """(exit code, signal): a signal-killed process reports 128+signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status), os.WTERMSIG(status)
    return os.WEXITSTATUS(status), 0


def report(message: str) -> None:
    os.write(1, message.encode() + b"\n")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def main(state_dir: str) -> None:
    # Some spawners (uvloop) leak descriptors into children: holding a copy of the agent's end
    # of our stdout would keep the agent waiting for EOF, so keep only stdio.
    os.closerange(3, 65536)
    os.chdir(state_dir)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    with open("spec.bin", "rb") as f:
        spec = marshal.load(f)
    if os.fork():
        os._exit(0)  # the agent reaps this one; the monitor lives on, reparented
    os.setsid()
    record: dict[str, object] = {
        "monitor_pid": os.getpid(),
        "monitor_start": proc_start_ticks(os.getpid()),
    }
    pid = 0
    try:
        logs = LogWriter(spec["log_path"], spec["log_max_size"], spec["log_max_files"])
        pid, out, err, stdin = spawn(spec)
        monitor = Monitor(spec, logs, pid, out, err, stdin)
    except Exception as failure:
        if pid:  # started, but we cannot serve it: it must not run unmonitored
            os.killpg(pid, 9)
            os.waitpid(pid, 0)
        record.update(finished_at=time.time_ns(), exit_code=128, error=str(failure))
        write_status(record)
        report("error " + str(failure).replace("\n", " "))
        return
    record.update(pid=pid, pid_start=proc_start_ticks(pid), started_at=time.time_ns())
    write_status(record)
    report(f"ok {pid}")
    code, signal = exit_code(monitor.run())
    record.update(finished_at=time.time_ns(), exit_code=code, signal=signal)
    write_status(record)
    monitor.finish(code)


# --- the launcher ------------------------------------------------------------------------
#
# ``monitor.py --serve <socket>``: one interpreter, started once, that forks a monitor per
# request instead of the runtime starting ``python monitor.py <dir>`` per container. A fork of
# this small process costs well under a millisecond; an interpreter start costs 6-10 ms of CPU
# (the largest part of a container start on a busy node). Protocol, one start per connection:
# the client sends the state dir and a newline, and reads what ``main`` reports (``ok <pid>``
# or ``error <message>``) up to EOF, exactly as from a monitor it started itself. The launcher
# exits when its stdin reaches EOF (the agent that started it is gone), so an agent restarted
# with new code never gets monitors forked from the old.

MAX_REQUEST = 4096


def serve(socket_path: str) -> None:
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    listener.bind(socket_path)
    listener.listen(128)
    report("ready")  # bound: the runtime may connect
    poll = select.poll()
    poll.register(0, select.POLLIN)
    poll.register(listener.fileno(), select.POLLIN)
    while True:
        ready = dict(poll.poll())
        reap_children()
        if ready.get(0) and not os.read(0, 4096):
            listener.close()
            os.unlink(socket_path)
            return
        if ready.get(listener.fileno()):
            fd, _ = listener._accept()  # type: ignore[attr-defined]
            launch(listener, _socket.socket(fileno=fd))


def launch(listener: _socket.socket, conn: _socket.socket) -> None:
    """Fork one monitor for the request on ``conn`` (the child's first fork exits at once)."""
    request = b""
    conn.settimeout(2)  # a client sends its line at once; a stuck one must not stall the rest
    try:
        while not request.endswith(b"\n") and len(request) < MAX_REQUEST:
            chunk = conn.recv(MAX_REQUEST)
            if not chunk:
                break
            request += chunk
    except OSError:
        conn.close()
        return
    state_dir = request.decode(errors="replace").strip()
    conn.settimeout(None)  # blocking again: it becomes the monitor's stdout
    if os.fork() == 0:
        try:
            listener.close()
            os.dup2(conn.fileno(), 1)  # first: an error from here on reaches the client
            conn.close()
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # not the launcher's pipe from the agent
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            os.dup2(os.open(os.path.join(state_dir, "monitor.log"), flags, 0o640), 2)
            main(state_dir)
        except BaseException as err:  # reported to the client, never raised
            with_error = "error " + (str(err) or repr(err)).replace("\n", " ")
            try:
                os.write(1, with_error.encode() + b"\n")
            except OSError:
                pass
        os._exit(0)
    conn.close()


def reap_children() -> None:
    """The launched monitors' first processes, which exit at once."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        main(sys.argv[1])
