"""Loaded at start-up by a server the API benchmark starts (this directory goes on its
PYTHONPATH): logs every cyclic-GC collection of at least 1 ms to $KYBERN_BENCH_GC_LOG as
``<CLOCK_MONOTONIC seconds> <generation> <pause seconds> <objects collected>``, so the
benchmark can show the pauses of each scenario. Does nothing without the variable; the
server's code is not touched."""

import gc
import os
import time

_PATH = os.environ.get("KYBERN_BENCH_GC_LOG")

if _PATH:
    _log = open(_PATH, "a", buffering=1)  # noqa: SIM115  # open for the process' lifetime
    _start = [0.0]

    def _on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            _start[0] = time.monotonic()
            return
        pause = time.monotonic() - _start[0]
        if pause >= 0.001:
            _log.write(f"{_start[0]:.6f} {info['generation']} {pause:.6f} {info['collected']}\n")

    gc.callbacks.append(_on_gc)
