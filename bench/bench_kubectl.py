"""Wall time of the real kubectl against a fresh ``kybern server`` (issue 3, "Measure").

Run: ``python bench/bench_kubectl.py`` (prints markdown tables), ``--write`` to replace the
"## kubectl wall time" section of bench/RESULTS.md (other sections are kept; ``--no-write``
wins over ``--write``), ``--quick`` for a smoke run with 50 objects and 500 pods.

Scenarios:

- apply: a manifest set of 200 objects (ConfigMaps, Secrets, Services, Deployments,
  ServiceAccounts, Roles, RoleBindings, CronJobs, Jobs), written as multi-document YAML files
  (5 objects per file) into a temp dir and applied with ``kubectl apply -f DIR -n NS``:
  first apply (all created; cold kubectl cache), second apply (all unchanged), third apply
  after changing 20 of them (labels; Deployment images, ConfigMap and Secret data, CronJob
  schedules), an unchanged apply with a cold cache again, a create into another fresh namespace
  with a warm cache, and ``kubectl apply --server-side`` into a fresh namespace (create,
  unchanged, changed). Applies change state, so each phase runs once per sequence; the whole
  sequence runs 3 times on fresh namespaces (and a fresh cache dir) and the median is reported.
- get: 3,000 pods in 10 namespaces, created beforehand over HTTPS with aiohttp (admin client
  certificate; not timed here), then ``kubectl get pods -A`` with the default table,
  ``-o wide`` and ``-o name``; 5 runs each with a fresh (cold) cache dir and 5 with a warm one,
  median and min reported.

The server is started with ``--disable-scheduler --disable-controller-manager`` so only the API
server is measured; the apply sequence is run again against a second fresh server with the full
control plane (controllers create ReplicaSets, Pods and Jobs in the background) for comparison.

Each timing is ``time.perf_counter`` around ``subprocess.run`` of kubectl with KUBECONFIG set
to the server's admin kubeconfig and ``--cache-dir`` pointing at a temp dir: a fresh one means
kubectl fetches discovery and the OpenAPI documents (validation) in that run ("cold"), a reused
one means it reads them from its disk cache ("warm"). The times include kubectl's own start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # bench/ is sys.path[0]

import _client
import _report
from _report import progress, table

from kybern.testing import server_process

HEADING = "## kubectl wall time"
API_ONLY_ARGS = ["--disable-scheduler", "--disable-controller-manager", "--disable-agent"]
SEQUENCES = 3
GET_REPEATS = 5
PER_FILE = 5
POD_NAMESPACES = 10
POD_CLIENTS = 16
TIMEOUT = 600.0

# Share of each kind in the manifest set (adds up to 200).
MIX = {
    "ConfigMap": 50,
    "Secret": 25,
    "Service": 30,
    "Deployment": 30,
    "ServiceAccount": 20,
    "Role": 15,
    "RoleBinding": 15,
    "CronJob": 8,
    "Job": 7,
}
# Which objects the third apply changes: taken round-robin over these kinds.
CHANGE_ORDER = ("Deployment", "ConfigMap", "Service", "Secret", "CronJob", "ServiceAccount")


@dataclass(frozen=True)
class Plan:
    objects: int
    changes: int
    pods: int


FULL = Plan(objects=200, changes=20, pods=3000)
QUICK = Plan(objects=50, changes=5, pods=500)


# -- the manifest set --------------------------------------------------------------------------


def kind_counts(total: int) -> dict[str, int]:
    counts = {kind: max(1, round(n * total / 200)) for kind, n in MIX.items()}
    counts["ConfigMap"] += total - sum(counts.values())
    return counts


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def make_object(kind: str, i: int) -> dict[str, Any]:
    app = f"app-{i:03d}"
    meta: dict[str, Any] = {"name": f"{kind.lower()}-{i:03d}", "labels": {"app": app}}
    if kind == "ConfigMap":
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "data": {
                "LOG_LEVEL": "info",
                "settings.yaml": f"listen: 0.0.0.0:8080\nworkers: {i % 8 + 1}\n",
            },
        }
    if kind == "Secret":
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "type": "Opaque",
            "data": {"username": b64(f"user-{i}"), "password": b64(f"s3cret-{i:04d}")},
        }
    if kind == "Service":
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "selector": {"app": app},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
                ],
            },
        }
    if kind == "Deployment":
        return {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "replicas": i % 3 + 1,
                "selector": {"matchLabels": {"app": app}},
                "template": {
                    "metadata": {"labels": {"app": app}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.25",
                                "ports": [{"containerPort": 8080, "name": "http"}],
                                "env": [{"name": "APP", "value": app}],
                                "envFrom": [{"configMapRef": {"name": f"configmap-{i:03d}"}}],
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "64Mi"},
                                    "limits": {"memory": "128Mi"},
                                },
                                "readinessProbe": {
                                    "httpGet": {"path": "/healthz", "port": 8080},
                                    "periodSeconds": 10,
                                },
                            }
                        ]
                    },
                },
            },
        }
    if kind == "ServiceAccount":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta}
    if kind == "Role":
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps", "secrets"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
            ],
        }
    if kind == "RoleBinding":
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": f"role-{i:03d}",
            },
            "subjects": [{"kind": "ServiceAccount", "name": f"serviceaccount-{i:03d}"}],
        }
    pod_spec = {
        "restartPolicy": "Never" if kind == "Job" else "OnFailure",
        "containers": [{"name": "task", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
    }
    job_spec = {"backoffLimit": 2, "template": {"spec": pod_spec}}
    if kind == "Job":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": job_spec}
    assert kind == "CronJob", kind
    return {
        "apiVersion": "batch/v1",
        "kind": kind,
        "metadata": meta,
        "spec": {"schedule": f"{i % 60} 3 * * *", "jobTemplate": {"spec": job_spec}},
    }


def manifest_set(total: int) -> list[dict[str, Any]]:
    """``total`` objects, kinds interleaved (each file holds a mix)."""
    by_kind = {
        kind: [make_object(kind, i) for i in range(n)] for kind, n in kind_counts(total).items()
    }
    objects: list[dict[str, Any]] = []
    while any(by_kind.values()):
        objects.extend(queue.pop(0) for queue in by_kind.values() if queue)
    return objects


def change(objects: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """A copy of ``objects`` with ``n`` of them changed (round-robin over CHANGE_ORDER)."""
    changed = json.loads(json.dumps(objects))
    queues = {kind: [o for o in changed if o["kind"] == kind] for kind in CHANGE_ORDER}
    done = 0
    while done < n and any(queues.values()):
        for kind in CHANGE_ORDER:
            if done == n or not queues[kind]:
                continue
            obj = queues[kind].pop(0)
            obj["metadata"]["labels"]["revision"] = "2"
            if kind == "Deployment":
                obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
            elif kind == "ConfigMap":
                obj["data"]["LOG_LEVEL"] = "debug"
            elif kind == "Secret":
                obj["data"]["password"] = b64("rotated")
            elif kind == "CronJob":
                obj["spec"]["schedule"] = "30 4 * * *"
            done += 1
    return changed


def write_dir(directory: Path, objects: list[dict[str, Any]]) -> int:
    directory.mkdir(parents=True)
    files = 0
    for start in range(0, len(objects), PER_FILE):
        chunk = objects[start : start + PER_FILE]
        (directory / f"part-{files:03d}.yaml").write_text(
            yaml.safe_dump_all(chunk, sort_keys=False)
        )
        files += 1
    return files


# -- running kubectl ---------------------------------------------------------------------------


@dataclass
class Kubectl:
    kubeconfig: Path
    binary: str = field(default_factory=lambda: shutil.which("kubectl") or "kubectl")

    def run(self, *args: str, cache: Path) -> tuple[float, str]:
        """Wall time of one kubectl call (which must succeed) and its stdout."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        argv = [self.binary, "--cache-dir", str(cache), *args]
        t0 = time.perf_counter()
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
        )
        took = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
            )
        return took, done.stdout


def outcome(stdout: str) -> str:
    """'200 created', '180 unchanged, 20 configured', ... from kubectl apply's output."""
    counts = Counter(line.rsplit(" ", 1)[-1] for line in stdout.splitlines() if line.strip())
    return ", ".join(f"{n} {word}" for word, n in counts.most_common())


# Phases of one apply sequence: (label, server-side, namespace key, manifest dir, cache).
PHASES = (
    ("apply: create", False, "a", "base", "cold"),
    ("apply: unchanged", False, "a", "base", "warm"),
    ("apply: {changes} changed", False, "a", "changed", "warm"),
    ("apply: unchanged, cold cache", False, "a", "changed", "cold"),
    ("apply: create, warm cache", False, "b", "base", "warm"),
    ("apply --server-side: create", True, "c", "base", "warm"),
    ("apply --server-side: unchanged", True, "c", "base", "warm"),
    ("apply --server-side: {changes} changed", True, "c", "changed", "warm"),
)


def apply_sequences(
    kubectl: Kubectl, dirs: dict[str, Path], tmp: Path, plan: Plan, tag: str
) -> dict[str, list[tuple[float, str]]]:
    """Run the apply sequence SEQUENCES times on fresh namespaces; phase -> [(seconds, outcome)]."""
    results: dict[str, list[tuple[float, str]]] = {}
    for seq in range(SEQUENCES):
        warm = Path(tempfile.mkdtemp(prefix=f"cache-{tag}-{seq}-", dir=tmp))
        namespaces = {key: f"{tag}-{seq}-{key}" for key in ("a", "b", "c")}
        for ns in namespaces.values():  # not timed
            kubectl.run("create", "namespace", ns, cache=warm)
        shutil.rmtree(warm)  # the first timed apply starts without a cache
        for label, server_side, key, which, cache_kind in PHASES:
            cache = warm
            if cache_kind == "cold" and warm.exists():
                cache = Path(tempfile.mkdtemp(prefix="cache-cold-", dir=tmp))
            args = ["apply", "-n", namespaces[key], "-f", str(dirs[which])]
            if server_side:
                args.insert(1, "--server-side")
            took, out = kubectl.run(*args, cache=cache)
            name = label.format(changes=plan.changes)
            results.setdefault(name, []).append((took, outcome(out)))
            progress(
                f"  {tag} #{seq + 1} {name} ({cache_kind} cache): {took:.2f} s, {outcome(out)}"
            )
    return results


# -- pods for get ------------------------------------------------------------------------------


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{i:05d}", "labels": {"app": f"app-{i % 50:02d}"}},
        "spec": {
            "nodeName": f"node-{i % 20:02d}",
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.25",
                    "ports": [{"containerPort": 8080}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ],
        },
    }


async def create_pods(creds: _client.Credentials, total: int) -> float:
    """POST ``total`` pods spread over POD_NAMESPACES namespaces; returns seconds taken."""
    clients = [_client.session(creds) for _ in range(POD_CLIENTS)]
    try:
        for n in range(POD_NAMESPACES):
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"pods-{n}"}}
            await _client.request(clients[0], "POST", "/api/v1/namespaces", body, expect=201)
        t0 = time.perf_counter()

        async def worker(w: int) -> None:
            for i in range(w, total, POD_CLIENTS):
                path = f"/api/v1/namespaces/pods-{i % POD_NAMESPACES}/pods"
                await _client.request(clients[w], "POST", path, pod(i), expect=201)

        await asyncio.gather(*(worker(w) for w in range(POD_CLIENTS)))
        return time.perf_counter() - t0
    finally:
        await asyncio.gather(*(c.close() for c in clients))


GETS = (
    ("get pods -A", ["get", "pods", "-A"], 1),
    ("get pods -A -o wide", ["get", "pods", "-A", "-o", "wide"], 1),
    ("get pods -A -o name", ["get", "pods", "-A", "-o", "name"], 0),
)


def get_timings(kubectl: Kubectl, tmp: Path, pods: int) -> list[dict[str, Any]]:
    rows = []
    warm = Path(tempfile.mkdtemp(prefix="cache-get-", dir=tmp))
    kubectl.run("get", "pods", "-A", "-o", "name", cache=warm)  # fill the warm cache
    for label, args, header in GETS:
        for cache_kind in ("cold", "warm"):
            times = []
            for _ in range(GET_REPEATS):
                cache = warm
                if cache_kind == "cold":
                    cache = Path(tempfile.mkdtemp(prefix="cache-cold-", dir=tmp))
                took, out = kubectl.run(*args, cache=cache)
                lines = len(out.splitlines()) - header
                if lines != pods:
                    raise RuntimeError(f"kubectl {label}: {lines} rows, expected {pods}")
                times.append(took)
            progress(f"  {label} ({cache_kind} cache): " + ", ".join(f"{t:.2f}" for t in times))
            rows.append(
                {
                    "command": f"`kubectl {label}`",
                    "kubectl cache": cache_kind,
                    "rows": f"{lines:,}",
                    "median s": f"{statistics.median(times):.2f}",
                    "min s": f"{min(times):.2f}",
                    "max s": f"{max(times):.2f}",
                }
            )
    return rows


# -- the whole run ------------------------------------------------------------------------------


def start_server(data_dir: Path, extra_args: list[str]) -> server_process.ServerProcess:
    return server_process.ServerProcess(data_dir=data_dir, extra_args=extra_args).start(60)


def run_all(tmp: Path, plan: Plan) -> dict[str, Any]:
    objects = manifest_set(plan.objects)
    dirs = {"base": tmp / "manifests", "changed": tmp / "manifests-changed"}
    files = write_dir(dirs["base"], objects)
    write_dir(dirs["changed"], change(objects, plan.changes))
    results: dict[str, Any] = {
        "files": files,
        "kinds": Counter(o["kind"] for o in objects),
    }

    progress("server: API server only (--disable-scheduler --disable-controller-manager)")
    server = start_server(tmp / "server-api", API_ONLY_ARGS)
    try:
        kubectl = Kubectl(server.kubeconfig)
        results["apply_api"] = apply_sequences(kubectl, dirs, tmp, plan, "api")
        progress(f"creating {plan.pods:,} pods through the API ({POD_CLIENTS} connections)")
        creds = _client.load_credentials(server.data_dir, server.url)
        took = asyncio.run(create_pods(creds, plan.pods))
        results["pods_created"] = (plan.pods, took)
        progress(f"  {plan.pods:,} pods in {took:.1f} s")
        results["get"] = get_timings(kubectl, tmp, plan.pods)
    finally:
        server.stop()

    progress("server: full control plane")
    server = start_server(tmp / "server-full", ["--disable-agent"])  # control plane, no node
    try:
        results["apply_full"] = apply_sequences(Kubectl(server.kubeconfig), dirs, tmp, plan, "full")
    finally:
        server.stop()
    return results


# -- report -------------------------------------------------------------------------------------


def summary(runs: list[tuple[float, str]]) -> str:
    times = [t for t, _ in runs]
    return f"{statistics.median(times):.2f} ({min(times):.2f}-{max(times):.2f})"


def apply_rows(results: dict[str, Any], plan: Plan) -> list[dict[str, str]]:
    cache = {label.format(changes=plan.changes): c for label, *_, c in PHASES}
    rows = []
    for name, runs in results["apply_api"].items():
        full = results["apply_full"].get(name, [])
        outcomes = sorted({o for _, o in runs} | {o for _, o in full})
        rows.append(
            {
                "phase": name,
                "kubectl cache": cache[name],
                "kubectl output": "; ".join(outcomes),
                "API server only: median s (min-max)": summary(runs),
                "full control plane: median s (min-max)": summary(full) if full else "-",
            }
        )
    return rows


def kubectl_version() -> str:
    try:
        done = subprocess.run(
            ["kubectl", "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return str(json.loads(done.stdout)["clientVersion"]["gitVersion"])
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return "unknown"


def render(results: dict[str, Any], *, plan: Plan, command: str, machine: str) -> str:
    kinds = ", ".join(f"{n} {kind}s" for kind, n in results["kinds"].items())
    pods, took = results["pods_created"]
    quick = " (**--quick smoke run: rough numbers**)" if plan != FULL else ""
    lines = [
        HEADING,
        "",
        f"Command: `{command}`{quick}  ",
        f"Date: {_report.now()}; whole benchmark {results['elapsed']:.0f} s  ",
        f"Machine: {machine}; kubectl {kubectl_version()}  ",
        "Server: a fresh `kybern server` (sqlite) in a temp data dir on 127.0.0.1, HTTPS, admin "
        "client certificate from its kubeconfig; started with `--disable-scheduler "
        "--disable-controller-manager`, so only the API server is measured, except the "
        "'full control plane' column: a second fresh server with no extra args (controllers "
        "create ReplicaSets, Pods and Jobs in the background while kubectl runs).  ",
        "Timing: `time.perf_counter` around `subprocess.run` of kubectl (KUBECONFIG set), so "
        "kubectl's own start-up is included. kubectl's `--cache-dir` is a fresh temp dir for "
        "'cold' runs (discovery and the OpenAPI documents for validation are fetched in that run) "
        "and a reused one for 'warm' runs.",
        "",
        f"### kubectl apply -f DIR ({plan.objects} objects in {results['files']} YAML files, "
        f"{PER_FILE} per file: {kinds})",
        "",
        "Each phase changes state, so it runs once per sequence; the sequence runs "
        f"{SEQUENCES} times on fresh namespaces with a fresh cache dir (median, min-max of the "
        f"{SEQUENCES}). Phases in order: create into an empty namespace (first kubectl run of "
        f"the sequence), unchanged re-apply, re-apply with {plan.changes} objects changed "
        "(labels; Deployment image, ConfigMap/Secret data, CronJob schedule), the same unchanged "
        "with a fresh cache dir, a create into a second empty namespace with the warm cache, "
        "then server-side apply (create, unchanged, changed) into a third empty namespace.",
        "",
        table(apply_rows(results, plan)),
        "",
        f"### kubectl get pods -A over {pods:,} pods ({POD_NAMESPACES} namespaces, API server only)",
        "",
        f"Pods created beforehand over HTTPS with aiohttp ({POD_CLIENTS} connections, "
        f"{pods / took:,.0f} pods/s; not part of the timings); pending, `spec.nodeName` set to "
        f"20 node names so `-o wide` has a NODE column. {GET_REPEATS} runs per row; 'cold' = a "
        "fresh cache dir for every run. kubectl pages the list (`--chunk-size` 500); the default "
        "and `-o wide` ask for server-side Table rows, `-o name` for the full objects.",
        "",
        table(results["get"]),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 objects and 500 pods")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--dir", type=Path, default=None, help="where to put temp dirs")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    command = shlex.join(["python", "bench/bench_kubectl.py", *sys.argv[1:]])
    machine = _report.machine()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="kybern-bench-kubectl-") as tmp:
        t0 = time.perf_counter()
        results = run_all(Path(tmp), plan)
        results["elapsed"] = time.perf_counter() - t0
    section = render(results, plan=plan, command=command, machine=machine)
    print(section)
    if args.write and not args.no_write:
        _report.write_section(HEADING, section)
        print(f"(written to {_report.RESULTS})")


if __name__ == "__main__":
    main()
