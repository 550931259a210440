"""``make bench``: run every benchmark in bench/ and update bench/RESULTS.md.

Each benchmark is a script that runs in its own process and, unless told not to, replaces
its own ``## ...`` section of bench/RESULTS.md (other sections are kept):

- bench_storage.py -> "## Storage (sqlite backend)" (the storage backend alone)
- bench_api.py     -> "## API server" (a real ``kybern server`` over HTTPS, and etcd)
- bench_kubectl.py -> "## kubectl wall time" (the real kubectl's apply and get against a server)
- bench_agent.py   -> "## Node agent (process runtime)" (pod startup latency, agent RSS, node
  Ready after `kybern server` start)
- bench_oci.py     -> "## Real containers (oci runtime)" (pod startup with runc and CNI against
  bare runc + CNI, 100 pods at once; root only)
- bench_dns.py     -> "## Cluster DNS" (queries/s and p99 latency: service names, cached forwarded names)
- bench_proxy.py   -> "## Service proxy" (rule sync time at 1,000 and 10,000 services)
- bench_scale.py   -> "## Scale ..." (10,000-replica Deployment on 1,000 simulated nodes;
  RSS and read latency with 5,000 nodes and 150,000 pods)
- bench_list.py    -> "## LIST at scale" (paginated LISTs and watch fan-out with 150,000 pods)
- bench_scheduler.py prints its table (pods/s through the full scheduling cycle on in-memory
  nodes); its numbers are copied into the "## Scheduler" section by hand

``--quick`` runs short smoke versions and leaves RESULTS.md alone (their numbers are too rough
to record). Progress goes to stderr while the benchmarks run; a summary comes at the end.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    full_args: tuple[str, ...]
    quick_args: tuple[str, ...]


BENCHMARKS = (
    Benchmark("storage", "bench_storage.py", (), ("--scale", "0.1", "--no-write")),
    Benchmark("api", "bench_api.py", (), ("--quick", "--no-write")),
    Benchmark("scheduler", "bench_scheduler.py", (), ("--pods", "2000", "--nodes", "500")),
    Benchmark(
        "scheduler-mixed",
        "bench_scheduler.py",
        ("--mixed",),
        ("--mixed", "--pods", "2000", "--nodes", "500"),
    ),
    Benchmark("kubectl", "bench_kubectl.py", ("--write",), ()),
    Benchmark("agent", "bench_agent.py", ("--write",), ("--quick",)),
    Benchmark("oci", "bench_oci.py", ("--write",), ("--quick",)),  # root and runc
    Benchmark("dns", "bench_dns.py", ("--write",), ("--quick",)),
    Benchmark(
        "proxy",
        "bench_proxy.py",
        ("--write",),
        ("--sizes", "1000", "--iptables-sizes", "--changes", "20"),
    ),
    Benchmark(
        "scale",
        "bench_scale.py",
        ("--write",),
        ("--only", "deployment", "--nodes", "100", "--replicas", "1000"),
    ),
    Benchmark("service-path", "bench_service_throughput.py", ("--write",), ("--quick",)),
    Benchmark("list", "bench_list.py", ("--write",), ("--pods", "20000", "--reps", "1")),
)


def run_one(bench: Benchmark, *, quick: bool, write: bool, command: str) -> tuple[int, float]:
    args = list(bench.quick_args if quick else bench.full_args)
    if not write and "--no-write" not in args:
        args.append("--no-write")
    if bench.name == "api":
        args += ["--command", command]
    argv = [sys.executable, str(BENCH_DIR / bench.script), *args]
    print(f"\n=== {bench.name}: {shlex.join(argv)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    code = subprocess.run(argv, cwd=BENCH_DIR.parent, check=False).returncode
    return code, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke runs, no RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument(
        "--only", action="append", choices=[b.name for b in BENCHMARKS], help="run only these"
    )
    args = parser.parse_args()
    command = shlex.join(["python", "bench/run.py", *sys.argv[1:]])
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    summary = []
    for bench in chosen:
        if not (BENCH_DIR / bench.script).exists():
            summary.append((bench.name, "absent", 0.0))
            continue
        code, took = run_one(bench, quick=args.quick, write=not args.no_write, command=command)
        summary.append((bench.name, "ok" if code == 0 else f"FAILED (exit {code})", took))
    print("\n=== summary", file=sys.stderr)
    for name, status, took in summary:
        print(f"  {name:10} {status:20} {took:6.0f} s", file=sys.stderr)
    if not args.quick and not args.no_write:
        print(f"  results in {BENCH_DIR / 'RESULTS.md'}", file=sys.stderr)
    return 0 if all(s in ("ok", "absent") for _, s, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
