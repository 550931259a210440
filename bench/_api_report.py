"""The "## API server" section of bench/RESULTS.md, rendered from bench_api's results:
targets with pass/miss first, then one table per scenario."""

from __future__ import annotations

from typing import Any

import _etcd
import _report
from _report import mib, table

HEADING = "## API server"
MIB = 2**20


def verdict(ok: bool) -> str:
    return "pass" if ok else "**miss**"


def num(cell: str) -> float:
    return float(cell.replace(",", "")) if cell not in ("-", "") else float("nan")


def find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return {}


def target_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    paced = results["paced"]
    p99 = paced["p99"] * 1000
    rows.append(
        {
            "target": "mutating p99 <= 20 ms at 200 writes/s (open loop)",
            "measured": f"p99 {p99:.1f} ms at {paced['achieved']:.0f} writes/s "
            f"({len(paced['errors'])} errors)",
            "result": verdict(p99 <= 20 and not paced["errors"] and paced["achieved"] >= 190),
        }
    )
    for kind in ("ConfigMap", "Pod"):
        row = find(results["create"], kind=kind, clients=64)
        rows.append(
            {
                "target": f">= 2,000 creates/s with 64 clients ({kind}s)",
                "measured": f"{row['ops/s']}/s (p99 {row['p99 ms']} ms)",
                "result": verdict(num(row["ops/s"]) >= 2000 and not row["errors"]),
            }
        )
    for kind in ("ConfigMap", "Pod"):
        one = find(results["get"], kind=kind, clients=1)
        others = ", ".join(
            f"{c} clients {find(results['get'], kind=kind, clients=c)['p99 ms']} ms"
            for c in (16, 64)
        )
        rows.append(
            {
                "target": f"GET p99 <= 5 ms ({kind}, judged at 1 client)",
                "measured": f"{one['p99 ms']} ms at {one['ops/s']}/s; ({others})",
                "result": verdict(num(one["p99 ms"]) <= 5),
            }
        )
    rows += [
        {
            "target": f"LIST 3,000 pods <= 300 ms ({row['mode']}, median)",
            "measured": f"p50 {row['p50 ms']} ms, max {row['max ms']} ms",
            "result": verdict(num(row["p50 ms"]) <= 300),
        }
        for row in results["list3000"][:2]
    ]
    many = max(row["watchers"] for row in results["watch"])
    rows += [
        {
            "target": f"watch delivery p99 <= 50 ms with {many:,} watchers "
            f"(server RSS {row['server RSS MiB']} MiB)",
            "measured": f"p99 {row['p99 ms']} ms from send ({row['p99 from ack']} ms from ack), "
            f"{row['missing']} missing",
            "result": verdict(num(row["p99 ms"]) <= 50 and not row["missing"]),
        }
        for row in results["watch"]
        if row["watchers"] == many
    ]
    idle = results["startup"]["rss_idle"]
    rows.append(
        {
            "target": "idle RSS after start <= 80 MiB",
            "measured": f"{mib(idle)} MiB",
            "result": verdict(idle <= 80 * MIB),
        }
    )
    rows.append(
        {
            "target": "RSS after 3,000 pods (no target)",
            "measured": f"{mib(results['rss_pods'])} MiB",
            "result": "-",
        }
    )
    return rows


def etcd_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for put in results["etcd"]:
        ours = find(results["create"], kind=put["kind"], clients=put["clients"])
        ratio = num(ours["ops/s"]) / num(put["ops/s"]) if ours else float("nan")
        rows.append(
            {
                "kind": put["kind"],
                "clients": put["clients"],
                "value bytes": put["value bytes"],
                "etcd puts/s": put["ops/s"],
                "etcd p99 ms": put["p99 ms"],
                "kybern creates/s": ours.get("ops/s", "-"),
                "kybern p99 ms": ours.get("p99 ms", "-"),
                "ratio": f"{ratio:.2f}",
                "etcd CPU": put["server CPU"],
                "client CPU": put["client CPU"],
                "other CPU": put["other CPU"],
            }
        )
    return rows


def gc_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Server GC pauses >= 1 ms per scenario, from bench/_gcprobe's log."""
    pauses = []
    for line in results["gc"].splitlines():
        t, gen, pause, _collected = line.split()
        pauses.append((float(t), int(gen), float(pause)))
    rows = []
    for name, t0, t1 in results["phases"]:
        inside = [(gen, p) for t, gen, p in pauses if t0 <= t <= t1]
        rows.append(
            {
                "scenario": name,
                "seconds": f"{t1 - t0:.1f}",
                "pauses >= 1 ms": len(inside),
                "of them gen 2": sum(1 for gen, _ in inside if gen == 2),
                "total ms": f"{sum(p for _, p in inside) * 1000:.0f}",
                "max ms": f"{max((p for _, p in inside), default=0) * 1000:.1f}",
            }
        )
    return rows


def disturbed(results: dict[str, Any], threshold: float = 0.3) -> tuple[int, int]:
    """(rows run while other processes used >= ``threshold`` cores, rows with a CPU column)."""
    rows = [
        *results["create"],
        *results["get"],
        *results["list"],
        *results["list3000"],
        *results["watch"],
        *results["etcd"],
    ]
    busy = sum(1 for row in rows if num(row.get("other CPU", "0")) >= threshold)
    return busy, len(rows)


def render(results: dict[str, Any], *, plan: Any, command: str, quick: bool) -> str:
    startup = results["startup"]
    busy, total = disturbed(results)
    parts = [
        HEADING,
        "",
        f"Command: `{command}`{' (QUICK smoke run: short runs, numbers are rough)' if quick else ''}  ",
        f"Date: {_report.now()}; whole API benchmark {results['elapsed']:.0f} s  ",
        f"Machine: {_report.machine()}  ",
        f"Server: `kybern server --disable-scheduler --disable-controller-manager` (the API "
        f"server and store alone; sqlite, uvloop) started fresh in a temp data dir on "
        f"127.0.0.1, HTTPS, admin client certificate. Client: aiohttp (uvloop), one process, one "
        f"keep-alive TLS connection per client; watches read by a bare asyncio protocol. "
        f"etcd: {_etcd.version()}, single member, temp data dir, same machine, run after the "
        f"server stopped.  ",
        "CPU columns: cores used during the run (1.00 = one core) by the server process (all "
        "threads), by the load generator, and by everything else on the machine (other work "
        "sharing it; when that is high, the row is disturbed). On 2 cores they all compete.  ",
        f"Rows run while other processes used >= 0.3 cores: {busy} of {total} (see 'other "
        "CPU'; those numbers are disturbed: re-run on a quiet machine to compare).",
        "",
        "### Targets",
        "",
        table(target_rows(results)),
        "",
        "### Start-up and memory",
        "",
        f"Ready (/readyz) {startup['ready_s'] * 1000:.0f} ms after spawn; VmRSS at ready "
        f"{mib(startup['rss_ready'])} MiB, after 2 s idle {mib(startup['rss_idle'])} MiB, after "
        f"{plan.list_pods:,} pods {mib(results['rss_pods'])} MiB, after all create runs "
        f"{mib(results['rss_after_creates'])} MiB, at the end {mib(results['rss_end'])} MiB.",
        "",
        "Server cyclic-GC pauses of 1 ms or more (gc.callbacks via bench/_gcprobe; a pause "
        "stops the event loop, so it lands on every request in flight):",
        "",
        table(gc_rows(results)),
        "",
        "### Create (closed loop: each client sends its next create when the last is answered)",
        "",
        table(results["create"]),
        "",
        "### etcd raw put vs our create, same concurrency (ratio = kybern creates/s / etcd puts/s)",
        "",
        table(etcd_rows(results)) if results["etcd"] else "etcd not installed: skipped.",
        "",
        f"### GET of single objects ({plan.read_seconds:g} s per row; 100 objects per namespace)",
        "",
        table(results["get"]),
        "",
        "### LIST of a 100-object namespace",
        "",
        table(results["list"]),
        "",
        f"### LIST of {plan.list_pods:,} pods in one namespace (one client, sequential, time "
        "to the last byte incl. parsing each page for its continue token)",
        "",
        table(results["list3000"]),
        "",
        f"### Watch delivery (ConfigMap creates at {plan.watch_rate:g}/s; latency = arrival at "
        "each watcher - send of the create; 'from ack' = - its 201)",
        "",
        f"The first {plan.many_watchers:,}-watcher run comes early (3,000 pods in the store), "
        "the others after the create runs (~100,000 objects in memory: longer GC pauses).",
        "",
        table(results["watch"]),
        "",
        f"### Paced mutating load: {plan.paced_rate:g} writes/s open loop for "
        f"{plan.paced_seconds:g} s, up to 64 connections (latency from the scheduled send time)",
        "",
        table(results["paced"]["rows"]),
        "",
        f"Writes started at {results['paced']['achieved']:.1f}/s; server CPU "
        f"{results['paced']['cpu']['server CPU']}, client CPU {results['paced']['cpu']['client CPU']}; "
        f"errors: {len(results['paced']['errors'])}"
        + (f" (first: `{results['paced']['errors'][0]}`)" if results["paced"]["errors"] else ""),
        "",
    ]
    return "\n".join(parts)
