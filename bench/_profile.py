"""``bench_api.py --profile [create|watch]``: where the server spends its time.

Starts a fresh server, attaches ``py-spy record --threads`` (raw collapsed stacks) to it and
runs the 64-client ConfigMap and Pod create loops (``create``) or the 1,000-watcher delivery
run (``watch``); then prints, per server thread, the share
of samples and the top functions by self time and by cumulative time (a function counted once
per sample however deep it recurses; frames on (nearly) every stack of the thread, such as
the event loop's own ``run``, are left out). Percentages are of the wall-clock samples: 100%
of a thread is that thread busy for the whole run. py-spy leaves out idle samples; a
thread blocked on its work queue (leaf ``_worker`` of a thread pool, the sqlite writer's
``_next_batch``) is counted as idle too. ``--native`` adds C frames (uvloop, ssl, libc).
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _load
import _report
from _report import progress

TOP = 15
RATE = 200  # samples per second
_LINE = re.compile(r":\d+\)$")
_THREAD = re.compile(r"^thread \(\d+\): ")
_ROOT = Path(__file__).resolve().parents[1]
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py", "Writer._next_batch (kybern/storage/")


def py_spy() -> str:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    return exe


def frame_name(frame: str) -> str:
    """'create (kybern/apiserver/handlers/create.py:42)' -> without the line number."""
    return _LINE.sub(")", frame).replace(str(_ROOT), "")


Stacks = dict[str, list[tuple[list[str], int]]]


def parse(raw: str) -> Stacks:
    """Raw collapsed stacks -> {thread name: [(frames root first, samples)]}."""
    threads: Stacks = collections.defaultdict(list)
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        head, *frames = stack.split(";")
        frames = [frame_name(f) for f in frames]
        if frames and frames[-1].startswith(IDLE_LEAVES):
            continue  # a thread blocked on its work queue that py-spy did not see as idle
        threads[_THREAD.sub("", head)].append((frames, int(count)))
    return threads


def thread_tables(stacks: list[tuple[list[str], int]], samples: int, top: int) -> tuple[Any, Any]:
    self_t: collections.Counter[str] = collections.Counter()
    cum_t: collections.Counter[str] = collections.Counter()
    busy = sum(n for _, n in stacks)
    for frames, n in stacks:
        self_t[frames[-1] if frames else "?"] += n
        for f in set(frames):
            cum_t[f] += n
    wrappers = {f for f, n in cum_t.items() if n >= 0.98 * busy}

    def rows(counter: collections.Counter[str], label: str) -> list[dict[str, str]]:
        return [
            {label: f"{100 * n / samples:.1f}%", "function (file)": f"`{f}`"}
            for f, n in counter.most_common()
            if f not in wrappers or label == "self"
        ][:top]

    return rows(self_t, "self"), rows(cum_t, "cumulative")


def report(raw: str, seconds: float) -> str:
    threads = parse(raw)
    samples = int(seconds * RATE)
    busy = {name: sum(n for _, n in st) for name, st in threads.items()}
    parts = [
        f"Wall-clock samples per thread: {samples} ({seconds:.1f} s at {RATE} Hz)",
        "",
        _report.table(
            [
                {"thread": name, "busy": f"{100 * n / samples:.1f}%"}
                for name, n in sorted(busy.items(), key=lambda kv: -kv[1])
            ]
        ),
    ]
    for name, n in sorted(busy.items(), key=lambda kv: -kv[1]):
        top = TOP if name == "MainThread" else 5
        if n < 0.02 * samples:
            continue
        self_rows, cum_rows = thread_tables(threads[name], samples, top)
        parts += ["", f"#### {name}: top {top} by self time", "", _report.table(self_rows)]
        parts += ["", f"#### {name}: top {top} by cumulative time", "", _report.table(cum_rows)]
    return "\n".join(parts)


def main(workdir: Path, plan: Any, api: Any, *, scenario: str, native: bool = False) -> None:
    """``api`` is the bench_api module (passed in: it usually runs as ``__main__``)."""
    server, _ = api.start_server(workdir)
    out = workdir / "profile.raw"
    try:
        assert server.process is not None
        argv = [py_spy(), "record", "-p", str(server.process.pid), "-r", str(RATE), "--threads"]
        argv += ["--native"] if native else []
        spy = subprocess.Popen([*argv, "--format", "raw", "-o", str(out)])
        time.sleep(1.0)  # attach
        t0 = time.perf_counter()
        bench = api.Bench(server, plan)
        if scenario == "watch":
            rows = api.run_loop(profile_watch(bench))
        else:
            rows = api.run_loop(profile_creates(api, bench, plan.create_seconds[64]))
        spy.send_signal(signal.SIGINT)  # py-spy writes its output and exits
        spy.wait(30)
        seconds = time.perf_counter() - t0 + 1.0
    finally:
        server.stop()
    print(f"\n### Profile of the {scenario} scenario under py-spy (slower than unprofiled)\n")
    print(_report.table(rows))
    print()
    print(report(out.read_text(), seconds))
    keep = Path(tempfile.gettempdir(), "kybern-profile.raw")
    shutil.copy(out, keep)
    print(f"\n(raw stacks kept in {keep}: collapsed stacks, e.g. for flamegraph.pl)")


async def profile_creates(api: Any, bench: Any, seconds: float) -> list[dict[str, Any]]:
    rows = []
    for kind in api.KINDS:
        progress(f"profile: create {kind}, 64 clients, {seconds:g}s")
        ns = f"profile-{kind.lower()}"
        async with _load.sessions(bench.creds, 64) as clients:
            await bench.namespace(clients[0], ns)
            run = await _load.closed_loop(
                clients, bench.create_op(kind, ns), pid=bench.pid, seconds=seconds
            )
        rows.append(run.row(kind=kind, clients=64))
    return rows


async def profile_watch(bench: Any) -> list[dict[str, Any]]:
    progress(f"profile: {bench.plan.many_watchers} watchers")
    await bench.watches((bench.plan.many_watchers,))
    return list(bench.results["watch"])
