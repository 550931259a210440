"""``api.py --profile``: where the server spends its time on the create path.

Starts a fresh server, attaches ``py-spy record`` (raw collapsed stacks) to it and runs the
64-client ConfigMap and Pod create loops; then prints the top functions by self time and by
cumulative time (a function counted once per sample however deep it recurses). The numbers
are percentages of the samples in which the server was busy (py-spy drops idle samples).
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _report
from _report import progress

TOP = 15
NATIVE: list[str] = []
_LINE = re.compile(r":\d+\)$")


def py_spy() -> str:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    return exe


def frame_name(frame: str) -> str:
    """'create (kybern/apiserver/handlers/create.py:42)' -> without the line number."""
    name = _LINE.sub(")", frame)
    return name.replace(str(Path(sys.prefix)), "<venv>").replace(
        str(Path(__file__).resolve().parents[1]), ""
    )


def top_tables(raw: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    self_t: collections.Counter[str] = collections.Counter()
    cum_t: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ")]  # py-spy's thread label
        if not frames:
            continue
        total += n
        self_t[frames[-1]] += n
        for f in set(frames):
            cum_t[f] += n

    def rows(counter: collections.Counter[str], label: str) -> list[dict[str, Any]]:
        return [
            {label: f"{100 * n / total:.1f}%", "function (file)": f"`{f}`"}
            for f, n in counter.most_common(TOP)
        ]

    return rows(self_t, "self"), rows(cum_t, "cumulative"), total


def main(workdir: Path, plan: Any, api: Any) -> None:
    """``api`` is the bench_api module (passed in: it usually runs as ``__main__``)."""
    server, _ = api.start_server(workdir)
    out = workdir / "profile.raw"
    try:
        assert server.process is not None
        pid = server.process.pid
        seconds = plan.create_seconds[64]
        spy = subprocess.Popen(
            [py_spy(), "record", "-p", str(pid), "-r", "200", "--threads", *NATIVE]
            + ["--format", "raw", "-o", str(out)]
        )
        time.sleep(1.0)  # attach
        bench = api.Bench(server, plan)
        rows = api.run_loop(profile_creates(api, bench, seconds))
        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
        spy.wait(30)
    finally:
        server.stop()
    shutil.copy(out, "/tmp/kybern-profile.raw")
    self_rows, cum_rows, total = top_tables(out.read_text())
    print("\n### Create path, 64 clients (under py-spy; throughput is lower than unprofiled)\n")
    print(_report.table(rows))
    print(f"\n{total} busy samples at 200 Hz\n\n#### Top {TOP} by self time\n")
    print(_report.table(self_rows))
    print(f"\n#### Top {TOP} by cumulative time\n")
    print(_report.table(cum_rows))


async def profile_creates(api: Any, bench: Any, seconds: float) -> list[dict[str, Any]]:
    rows = []
    for kind in api.KINDS:
        progress(f"profile: create {kind}, 64 clients, {seconds:g}s")
        ns = f"profile-{kind.lower()}"
        async with api.sessions(bench.creds, 64) as clients:
            await api.warm_up(clients)
            await bench.namespace(clients[0], ns)
            run = await api.closed_loop(
                clients, bench.create_op(kind, ns), pid=bench.pid, seconds=seconds
            )
        rows.append(run.row(kind=kind, clients=64))
    return rows
