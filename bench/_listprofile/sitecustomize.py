"""Loaded at start-up by a server that ``bench_list.py --profile`` starts (this directory goes
on its PYTHONPATH): SIGUSR1 starts cProfile on the main thread (the event loop), SIGUSR2 stops
it and writes the stats to $KYBERN_BENCH_PROFILE. Does nothing without the variable; the
server's code is not touched."""

import cProfile
import os
import signal

_PATH = os.environ.get("KYBERN_BENCH_PROFILE")

if _PATH:
    _profiler = cProfile.Profile()

    def _start(signum: int, frame: object) -> None:
        _profiler.enable()

    def _stop(signum: int, frame: object) -> None:
        _profiler.disable()
        _profiler.dump_stats(_PATH)

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
