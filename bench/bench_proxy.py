"""Service proxy rule sync time: 1,000 and 10,000 services, a full sync and one-service changes.

Each service has one port and two ready endpoints. "full" is computing the rule set from the
Service and EndpointSlice objects, rendering it and applying it (a fresh table); "one change"
is what the proxier does when one EndpointSlice changes: recompute that service's ports,
diff, render the partial update and apply it (``--changes`` times, each a different service).
As root the rules are applied with ``nft -f`` / ``iptables-restore`` in a scratch network
namespace created and removed here; otherwise (or with ``--render-only``) only computing and
rendering is timed. The iptables backend is measured at 1,000 services unless
``--iptables-sizes`` says otherwise (iptables-nft needs minutes per 10,000-service restore).

``--write`` replaces the "## Service proxy" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import _report

from kybern.proxy import backend, iptables, libnft, nftables, rules

Obj = dict[str, Any]
HEADING = "## Service proxy"


def objects(n: int, generation: int = 0) -> tuple[list[Obj], list[Obj]]:
    services, slices = [], []
    for i in range(n):
        name = f"svc-{i}"
        vip = f"10.43.{i // 250}.{i % 250 + 1}"
        services.append(
            {
                "metadata": {"namespace": "bench", "name": name},
                "spec": {
                    "clusterIP": vip,
                    "clusterIPs": [vip],
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                },
            }
        )
        slices.append(slice_for(name, i, generation))
    return services, slices


def slice_for(name: str, i: int, generation: int) -> Obj:
    base = 100 + generation % 150  # a change never repeats the last state
    ips = [f"10.{base}.{(i // 250) % 250}.{i % 250 + 1}", f"10.99.{(i // 250) % 250}.{i % 250 + 1}"]
    return {
        "metadata": {
            "namespace": "bench",
            "name": f"{name}-x",
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": True}, "nodeName": "n1"} for ip in ips
        ],
    }


async def measure(
    mode: str, n: int, changes: int, *, netns: str | None, via: str
) -> dict[str, str]:
    services, slices = objects(n)
    runner: backend.Runner | None = backend.run_command if netns else _no_apply
    if netns and via == "libnftables":
        runner = None  # the backend's default: an in-process libnftables context
    reader: backend.Reader = backend.read_command if netns else _no_read
    be: backend.TransactionalBackend = (
        nftables.NftablesBackend(netns=netns, runner=runner)
        if mode == "nftables"
        else iptables.IptablesBackend(netns=netns, runner=runner, reader=reader)
    )
    t0 = time.perf_counter()
    ruleset = rules.compute(services, slices, node_name="n1", cluster_cidr="10.0.0.0/8")
    await be.sync(ruleset)
    full = time.perf_counter() - t0
    times = []
    for c in range(changes):
        i = (c * 7919) % n
        t0 = time.perf_counter()
        ports = dict(ruleset.services)
        for sp in rules.service_ports(
            services[i], [slice_for(f"svc-{i}", i, c + 1)], node_name="n1"
        ):
            ports[sp.key] = sp
        ruleset = rules.RuleSet(node_name="n1", cluster_cidr="10.0.0.0/8", services=ports)
        result = await be.sync(ruleset)
        times.append(time.perf_counter() - t0)
        assert result == "partial", result
    if netns:
        await be.cleanup()
    await be.close()
    return {
        "backend": mode,
        "applied with": via if netns else "render only",
        "services": f"{n:,}",
        "full sync (ms)": _report.ms(full),
        "one change p50 (ms)": _report.ms(_report.percentile(times, 0.5)),
        "one change p99 (ms)": _report.ms(_report.percentile(times, 0.99)),
        "changes": str(changes),
    }


async def _no_apply(argv: Any, text: str) -> None:
    return None


async def _no_read(argv: Any) -> str:
    return ""


def scratch_netns() -> str | None:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"):
        return None
    name = f"kybern-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


async def main_async(args: argparse.Namespace, netns: str | None) -> list[dict[str, str]]:
    rows = []
    # "nft -f": the nft command per sync, the baseline for the in-process context.
    nft_via = ["libnftables", "nft -f"] if libnft.available() else ["nft -f"]
    plan = [("nftables", n, via) for n in args.sizes for via in nft_via]
    plan += [("iptables", n, "iptables-restore") for n in args.iptables_sizes]
    for mode, n, via in plan:
        print(f"{mode} {n} services via {via} ...", file=sys.stderr, flush=True)
        rows.append(await measure(mode, n, args.changes, netns=netns, via=via))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--iptables-sizes", type=int, nargs="*", default=[1000])
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="(default) leave RESULTS.md")
    args = parser.parse_args()
    if args.changes > 149:
        parser.error("--changes: at most 149")
    netns = None if args.render_only else scratch_netns()
    try:
        rows = asyncio.run(main_async(args, netns))
    finally:
        if netns:
            subprocess.run(["ip", "netns", "del", netns], check=False)
    text = _report.table(rows)
    print(text)
    if args.write and not args.no_write:
        section = (
            f"{HEADING}\n\n{_report.machine()}; {_report.now()}; "
            f"`python bench/bench_proxy.py {' '.join(sys.argv[1:])}`\n\n"
            "Rule sync time (bench/bench_proxy.py): each service has one port and two "
            "endpoints. *full*: compute the rule set from the objects, render, apply a fresh "
            "table; *one change*: one EndpointSlice changed, recompute that service, diff, "
            "render the partial update and apply it (what the proxier does per sync). "
            "Applied in a scratch network namespace with *libnftables* (the backend's "
            "default: one in-process context), with the `nft -f` command per sync (the "
            "baseline, as before), or with `iptables-restore --noflush`. Target: one change p99 <= 100 ms at 10,000 services.\n\n"
            f"{text}\n"
        )
        _report.write_section(HEADING, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
