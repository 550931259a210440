"""nftables through libnftables, in this process: the fast way to apply nft text.

``nft -f -`` pays for a process start and for building its view of the ruleset (every
table, chain and set) before reading the first command: with 10,000 services, ~45 ms for a
one-chain rewrite. The same text run through one long-lived libnftables context took 18.6 ms
(p50, measured with 10,000 services; bench/RESULTS.md "## Service proxy" has the benchmark).

The library is loaded with :mod:`ctypes` (Debian's ``libnftables1``, a dependency of the
``nft`` command). A context is used from one dedicated thread: calls never block the event
loop, and for a network namespace (tests, benchmarks) only that thread enters it, so the
netlink socket the context opens lives there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import functools
import os
from collections.abc import Sequence

from kybern.proxy import backend

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
# Parsing a big transaction (a full sync: 10,000 services are ~5 MB of text) takes ~200 MiB
# of C heap that libnftables frees but malloc keeps: measured 273 MiB RSS after a full sync,
# 74 MiB after malloc_trim. A process running `nft` would hand it back at its exit.
TRIM_ABOVE = 256 * 1024  # bytes of text


@functools.cache
def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("nftables") or "libnftables.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    return lib


def available() -> bool:
    """Whether libnftables can be loaded here."""
    return _library() is not None


class Context:
    """One libnftables context on its own thread, in ``netns`` if given.

    :meth:`runner` has the :data:`backend.Runner` signature, so a backend takes it in place of
    running ``nft -f -``."""

    def __init__(self, *, netns: str | None = None) -> None:
        lib = _library()
        if lib is None:
            raise OSError("libnftables.so.1 not found: install the libnftables1 package")
        self._lib = lib
        self._netns = netns
        self._ctx: int | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="libnft")

    async def runner(self, argv: Sequence[str], text: str) -> None:
        """Apply ``text`` in one transaction (``argv`` is ignored: it names the command the
        text would be piped to)."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._run, text)

    def _run(self, text: str) -> None:
        if self._ctx is None:
            self._ctx = self._open()
        try:
            if self._lib.nft_run_cmd_from_buffer(self._ctx, text.encode()) != 0:
                err = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
                raise backend.ApplyError(f"nft: {err.decode(errors='replace').strip()[:2000]}")
        finally:
            if len(text) > TRIM_ABOVE:
                _trim_heap()

    def _open(self) -> int:
        if self._netns:
            _enter_netns(self._netns)
        ctx = self._lib.nft_ctx_new(0)
        if not ctx:
            raise backend.ApplyError("nft: cannot create a libnftables context")
        self._lib.nft_ctx_buffer_output(ctx)  # never print to our stdout
        self._lib.nft_ctx_buffer_error(ctx)
        return int(ctx)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._free)
        self._thread.shutdown(wait=False)

    def _free(self) -> None:
        if self._ctx is not None:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None)


def _trim_heap() -> None:
    """Give the C heap's free memory back to the system (glibc; elsewhere a no-op)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _enter_netns(name: str) -> None:
    """Move the calling thread (only it) into the named network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise backend.ApplyError(f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)
