"""Copying a TCP connection's bytes between two sockets without passing them through Python.

The userspace proxy relays every byte of every connection. Reading into Python and writing
back out costs two copies and interpreter work per chunk; ``splice(2)`` moves the data from
one socket into a pipe and from the pipe into the other socket inside the kernel, so the
event loop only wakes to say "more". Each direction has its own pipe, resized to
:data:`PIPE_SIZE` so one wake-up moves a lot.

A half-close is passed on (EOF one way shuts down writing the other way, the other direction
keeps flowing); an error either way ends both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket

F_SETPIPE_SZ = 1031  # <linux/fcntl.h>; fcntl.F_SETPIPE_SZ is missing before Python 3.10
PIPE_SIZE = 1 << 20  # bytes in flight per direction; needs <= /proc/sys/fs/pipe-max-size
FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK


async def relay(a: socket.socket, b: socket.socket) -> None:
    """Copy ``a`` to ``b`` and ``b`` to ``a`` until both directions have ended. Both sockets
    must be non-blocking; the caller closes them."""
    await asyncio.gather(_one_way(a, b), _one_way(b, a))


async def _one_way(src: socket.socket, dst: socket.socket) -> None:
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # a smaller pipe still works, only slower
        fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
    try:
        while n := await _splice(src.fileno(), w, PIPE_SIZE, wait_for=src.fileno(), write=False):
            while n:
                n -= await _splice(r, dst.fileno(), n, wait_for=dst.fileno(), write=True)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)  # EOF: the other direction may still be talking
    except OSError:  # reset, broken pipe: end the other direction too
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
    finally:
        os.close(r)
        os.close(w)


async def _splice(src: int, dst: int, count: int, *, wait_for: int, write: bool) -> int:
    """Bytes spliced from ``src`` to ``dst`` (0 at EOF), waiting until ``wait_for`` (the
    socket end) is ready when the kernel says it would block."""
    while True:
        try:
            return os.splice(src, dst, count, flags=FLAGS)
        except BlockingIOError:
            await _ready(wait_for, write=write)


async def _ready(fd: int, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
