"""The kubelet against an in-process API server, with the fake runtime and a fake clock.

Time only moves when a test advances the FakeClock, so restart backoff (10 s, 20 s ...) and
grace periods are checked to the second without waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kybern import client as kclient
from kybern.apiserver import server
from kybern.kubelet import agent as agent_
from kybern.runtime import cri, fake

T = TypeVar("T")
Obj = dict[str, Any]
NODE = "node-1"


@dataclass
class Env:
    api: server.APIServer
    client: kclient.Client
    clock: kclient.FakeClock
    runtime: fake.FakeRuntime
    tmp_path: Path
    agent: agent_.Agent | None = None
    task: asyncio.Task[None] | None = None
    informers: kclient.SharedInformerFactory | None = None

    async def start_agent(self, **options: Any) -> agent_.Agent:
        transport = kclient.InProcessTransport(self.api.local_api())
        self.informers = kclient.SharedInformerFactory(kclient.Client(transport), clock=self.clock)
        config = agent_.Config(
            node_name=NODE,
            data_dir=self.tmp_path / "agent",
            node_ip="192.0.2.10",
            runtime_name="fake",
            **options,
        )
        self.agent = agent_.Agent(self.client, self.informers, self.runtime, config)
        self.task = asyncio.create_task(self.agent.run())
        async with asyncio.timeout(10):
            await self.agent.ready.wait()
        return self.agent

    async def stop_agent(self) -> None:
        assert self.task is not None
        assert self.informers is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.informers.stop()
        self.task = None

    async def pod(self, name: str) -> Obj | None:
        try:
            return await self.client.get("v1", "Pod", name, namespace="default")
        except kclient.NotFound:
            return None

    async def until(
        self, cond: Callable[[], Awaitable[T | None]], *, step: float = 1.0, limit: float = 400.0
    ) -> T:
        """Advance the fake clock ``step`` at a time until ``cond`` holds (within ``limit``
        fake seconds), letting the agent work in between."""
        start = self.clock.monotonic()
        while self.clock.monotonic() - start <= limit:
            for _ in range(4):
                result = await cond()
                if result:
                    return result
                await asyncio.sleep(0.005)
            self.clock.advance(step)
        raise AssertionError(f"condition not met within {limit} fake seconds")

    async def status_of(self, name: str, pred: Callable[[Obj], bool]) -> Obj | None:
        pod = await self.pod(name)
        return pod if pod is not None and pred(pod.get("status") or {}) else None


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    api = server.APIServer(server.Config(data_dir=tmp_path / "api", port=0, tls=False))
    await api.start()
    clock = kclient.FakeClock(wall=kclient.clock.RealClock().now())
    client = kclient.Client(kclient.InProcessTransport(api.local_api()))
    e = Env(api, client, clock, fake.FakeRuntime(clock=clock), tmp_path)
    try:
        await e.start_agent()
        yield e
    finally:
        if e.task is not None:
            await e.stop_agent()
        await api.stop()


def pod(name: str, *, restart: str = "Always", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": restart,
            "containers": spec.pop("containers", [{"name": "app", "image": "busybox:1.36"}]),
            **spec,
        },
    }


def state_of(status: Obj, name: str = "app", field: str = "") -> Obj:
    fields = [field] if field else ["containerStatuses", "initContainerStatuses"]
    for s in (s for f in fields for s in status.get(f) or []):
        if s["name"] == name:
            return dict(s)
    return {}


def waiting_reason(status: Obj, name: str = "app") -> str:
    return str(((state_of(status, name).get("state") or {}).get("waiting") or {}).get("reason"))


def running(status: Obj, name: str = "app") -> bool:
    return "running" in (state_of(status, name).get("state") or {})


async def test_node_registers_with_lease_and_machine_capacity(env: Env) -> None:
    node = await env.client.get("v1", "Node", NODE)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == NODE
    assert labels["kubernetes.io/os"] == "linux"
    capacity = node["status"]["capacity"]
    assert int(capacity["cpu"]) >= 1
    assert capacity["pods"] == "110"
    assert capacity["memory"].endswith("Ki")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    lease = await env.client.get(
        "coordination.k8s.io/v1", "Lease", NODE, namespace="kube-node-lease"
    )
    assert lease["spec"]["holderIdentity"] == NODE


async def test_pod_runs_then_succeeds(env: Env) -> None:
    await env.client.create(pod("job", restart="Never"))
    status = await env.until(lambda: env.status_of("job", running))
    assert status["status"]["phase"] == "Running"
    app = state_of(status["status"])
    assert app["containerID"].startswith("fake://")
    assert app["imageID"].startswith("sha256:")
    assert app["ready"]
    assert app["started"]
    assert app["restartCount"] == 0
    conditions = {c["type"]: c["status"] for c in status["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert conditions["PodReadyToStartContainers"] == "True"
    assert status["status"]["podIP"].startswith("10.88.0.")
    assert status["status"]["hostIP"] == "192.0.2.10"
    (container,) = env.runtime.running("app")
    env.runtime.exit(container.id, 0)
    done = await env.until(lambda: env.status_of("job", lambda s: s.get("phase") == "Succeeded"))
    terminated = state_of(done["status"])["state"]["terminated"]
    assert terminated["reason"] == "Completed"
    assert terminated["exitCode"] == 0
    ready = next(c for c in done["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "PodCompleted"


async def test_failed_container_with_never_fails_the_pod(env: Env) -> None:
    await env.client.create(pod("bad", restart="Never"))
    await env.until(lambda: env.status_of("bad", running))
    env.runtime.exit(env.runtime.running("app")[0].id, 3)
    done = await env.until(lambda: env.status_of("bad", lambda s: s.get("phase") == "Failed"))
    terminated = state_of(done["status"])["state"]["terminated"]
    assert terminated == {**terminated, "reason": "Error", "exitCode": 3}


async def test_init_containers_run_in_order(env: Env) -> None:
    inits = [{"name": "one", "image": "busybox"}, {"name": "two", "image": "busybox"}]
    await env.client.create(pod("init", initContainers=inits))

    async def init_running(name: str) -> Obj | None:
        p = await env.pod("init")
        return (
            p
            if p and running(p.get("status") or {}, name) and p["status"]["phase"] == "Pending"
            else None
        )

    first = await env.until(lambda: init_running("one"))
    assert state_of(first["status"], "two", "initContainerStatuses")["state"] == {
        "waiting": {"reason": "PodInitializing"}
    }
    assert state_of(first["status"])["state"] == {"waiting": {"reason": "PodInitializing"}}
    initialized = next(c for c in first["status"]["conditions"] if c["type"] == "Initialized")
    assert initialized["message"] == "containers with incomplete status: [one two]"
    assert not env.runtime.by_name("two")
    env.runtime.exit(env.runtime.running("one")[0].id, 0)
    await env.until(lambda: init_running("two"))
    assert not env.runtime.by_name("app")
    env.runtime.exit(env.runtime.running("two")[0].id, 0)
    done = await env.until(lambda: env.status_of("init", running))
    assert done["status"]["phase"] == "Running"
    inits_status = done["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits_status] == ["Completed", "Completed"]
    assert all(s["ready"] for s in inits_status)


async def test_failing_init_container_with_never_fails_pod(env: Env) -> None:
    await env.client.create(
        pod("initfail", restart="Never", initContainers=[{"name": "one", "image": "x"}])
    )
    await env.until(lambda: env.status_of("initfail", lambda s: running(s, "one")))
    env.runtime.exit(env.runtime.running("one")[0].id, 1)
    await env.until(lambda: env.status_of("initfail", lambda s: s.get("phase") == "Failed"))
    assert not env.runtime.by_name("app")


async def test_restart_backoff_and_crash_loop(env: Env) -> None:
    await env.client.create(pod("crash"))
    await env.until(lambda: env.status_of("crash", running))

    def restarted(count: int) -> Callable[[], Awaitable[Obj | None]]:
        return lambda: env.status_of(
            "crash", lambda s: running(s) and state_of(s)["restartCount"] == count
        )

    # first failure: restarted at once (next PLEG relist)
    env.runtime.exit(env.runtime.running("app")[0].id, 1)
    first = await env.until(restarted(1))
    last = state_of(first["status"])["lastState"]["terminated"]
    assert last["exitCode"] == 1
    assert last["reason"] == "Error"
    for count, wait in ((2, 10), (3, 20), (4, 40)):
        env.runtime.exit(env.runtime.running("app")[0].id, 1)
        exited_at = env.clock.monotonic()
        looping = await env.until(
            lambda: env.status_of(
                "crash",
                lambda s: waiting_reason(s) == "CrashLoopBackOff",
            )
        )
        waiting = state_of(looping["status"])["state"]["waiting"]
        uid = looping["metadata"]["uid"]
        assert waiting["message"] == (
            f"back-off {wait}s restarting failed container=app pod=crash_default({uid})"
        )
        assert state_of(looping["status"])["lastState"]["terminated"]["exitCode"] == 1
        assert looping["status"]["phase"] == "Running"
        await env.until(restarted(count))
        took = env.clock.monotonic() - exited_at
        assert wait <= took <= wait + 2, (count, took)


async def test_on_failure_does_not_restart_success(env: Env) -> None:
    await env.client.create(pod("onf", restart="OnFailure"))
    await env.until(lambda: env.status_of("onf", running))
    env.runtime.exit(env.runtime.running("app")[0].id, 2)
    await env.until(
        lambda: env.status_of("onf", lambda s: running(s) and state_of(s)["restartCount"] == 1)
    )
    env.runtime.exit(env.runtime.running("app")[0].id, 0)
    await env.until(lambda: env.status_of("onf", lambda s: s.get("phase") == "Succeeded"))


async def test_errors_are_reported_as_waiting_reasons(env: Env) -> None:
    env.runtime.pull_errors["nope:1"] = "manifest unknown"
    await env.client.create(pod("pull", containers=[{"name": "app", "image": "nope:1"}]))
    first = await env.until(
        lambda: env.status_of(
            "pull",
            lambda s: waiting_reason(s) == "ErrImagePull",
        )
    )
    assert "manifest unknown" in state_of(first["status"])["state"]["waiting"]["message"]
    await env.until(
        lambda: env.status_of(
            "pull",
            lambda s: waiting_reason(s) == "ImagePullBackOff",
        )
    )
    env.runtime.pull_errors.clear()
    await env.until(lambda: env.status_of("pull", running))
    await env.client.create(
        pod(
            "cfg",
            containers=[
                {
                    "name": "app",
                    "image": "busybox",
                    "env": [
                        {
                            "name": "X",
                            "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}},
                        }
                    ],
                }
            ],
        )
    )
    cfg = await env.until(
        lambda: env.status_of(
            "cfg",
            lambda s: waiting_reason(s) == "CreateContainerConfigError",
        )
    )
    assert cfg["status"]["phase"] == "Pending"


async def test_deletion_waits_grace_period_then_kills(env: Env) -> None:
    env.runtime.ignore_sigterm.add("stubborn")
    spec = pod(
        "del",
        containers=[{"name": "stubborn", "image": "busybox"}],
        terminationGracePeriodSeconds=30,
    )
    await env.client.create(spec)
    await env.until(lambda: env.status_of("del", lambda s: running(s, "stubborn")))
    await env.client.delete("v1", "Pod", "del", namespace="default", grace_period_seconds=20)
    started = env.clock.monotonic()
    await env.until(lambda: _true(env.runtime.count("stop_container") >= 1))
    assert env.runtime.running("stubborn"), "SIGTERM is ignored: still running"
    await env.until(lambda: _true(not env.runtime.running("stubborn")))
    took = env.clock.monotonic() - started
    assert 20 <= took <= 23, took
    assert ("kill_container", "stubborn") in env.runtime.calls
    await env.until(lambda: _none(env.pod("del")))


async def test_graceful_container_stops_at_sigterm(env: Env) -> None:
    await env.client.create(pod("quick"))
    await env.until(lambda: env.status_of("quick", running))
    await env.client.delete("v1", "Pod", "quick", namespace="default")
    await env.until(lambda: _none(env.pod("quick")), limit=5)
    assert ("kill_container", "app") not in env.runtime.calls
    await env.until(lambda: _true(not env.runtime.sandboxes))


async def test_restarted_agent_adopts_running_containers(env: Env) -> None:
    await env.client.create(pod("keep"))
    await env.until(lambda: env.status_of("keep", running))
    env.runtime.exit(env.runtime.running("app")[0].id, 1)
    await env.until(
        lambda: env.status_of("keep", lambda s: running(s) and state_of(s)["restartCount"] == 1)
    )
    before = env.runtime.running("app")[0].id
    creates = env.runtime.count("create_container")
    await env.stop_agent()
    assert env.runtime.running("app")[0].id == before, "stopping the agent keeps pods running"
    await env.start_agent()
    env.clock.advance(1)
    for _ in range(20):
        await asyncio.sleep(0.01)
    await env.until(
        lambda: _true(env.agent is not None and env.agent.workers.runs(_uid(env, "keep")) > 0)
    )
    env.clock.advance(15)
    await asyncio.sleep(0.05)
    assert env.runtime.count("create_container") == creates
    assert env.runtime.running("app")[0].id == before
    status = await env.status_of("keep", lambda s: state_of(s)["restartCount"] == 1 and running(s))
    assert status is not None


async def test_restarted_agent_reports_a_ready_pod_ready_again(env: Env) -> None:
    # After a restart readiness starts unknown (not ready) until the probe passes again. The
    # race this guards against (the probe passing before the not-ready write comes back on the
    # watch) shows with real timing in tests/compat/test_oci_e2e.py's agent restart test.
    container = {
        "name": "app",
        "image": "busybox",
        "readinessProbe": {"exec": {"command": ["ready-check"]}, "periodSeconds": 5},
    }
    env.runtime.exec_results["ready-check"] = cri.ExecResult(0, b"", b"")
    await env.client.create(pod("ready", containers=[container]))
    await env.until(lambda: env.status_of("ready", lambda s: state_of(s).get("ready") is True))
    await env.stop_agent()
    await env.start_agent()
    ready = await env.until(
        lambda: env.status_of(
            "ready",
            lambda s: (
                state_of(s).get("ready") is True and conds_of_status(s).get("Ready") == "True"
            ),
        ),
        limit=60,
    )
    assert ready is not None


def conds_of_status(status: Obj) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status.get("conditions") or []}


async def test_api_server_outage_leaves_pods_running(env: Env) -> None:
    await env.client.create(pod("steady"))
    await env.until(lambda: env.status_of("steady", running))
    (container,) = env.runtime.running("app")
    calls = len(env.runtime.calls)
    await env.api.stop()
    env.clock.advance(60)
    for _ in range(60):
        env.clock.advance(1)
        await asyncio.sleep(0.002)
    assert env.runtime.running("app") == [container]
    stops = [c for c in env.runtime.calls[calls:] if c[0].startswith(("stop", "remove"))]
    assert stops == []
    # the agent still looks after its pods: a crash during the outage is restarted
    env.runtime.exit(container.id, 1)
    await env.until(lambda: _true(len(env.runtime.running("app")) == 1), limit=5)
    (again,) = env.runtime.running("app")
    assert again.config.metadata.attempt == 1


async def _poll(cond: Callable[[], Awaitable[T | None]], *, within: float) -> T:
    """Real-time polling (for the real runtime) with a deadline."""
    async with asyncio.timeout(within):
        while True:
            result = await cond()
            if result:
                return result
            await asyncio.sleep(0.05)


async def _true(value: bool) -> bool:
    return value


async def _none(awaitable: Awaitable[Obj | None]) -> bool:
    return await awaitable is None


def _uid(env: Env, name: str) -> str:
    assert env.agent is not None
    pod = env.agent.pods.store.get_by_name(name, "default")
    return str((pod or {}).get("metadata", {}).get("uid", ""))


async def test_process_runtime_runs_a_python_container(tmp_path: Path) -> None:
    """Smoke test with a real runtime: `python3 -c` as a container, to Succeeded, with logs."""
    import sys

    from kybern.runtime import registry

    api = server.APIServer(server.Config(data_dir=tmp_path / "api", port=0, tls=False))
    await api.start()
    client = kclient.Client(kclient.InProcessTransport(api.local_api()))
    informers = kclient.SharedInformerFactory(client)
    runtime = registry.create("process", registry.Options(root=tmp_path / "runtime"))
    config = agent_.Config(node_name=NODE, data_dir=tmp_path / "agent", runtime_name="process")
    agent = agent_.Agent(client, informers, runtime, config)
    task = asyncio.create_task(agent.run())
    try:
        script = "import os; print('hello from', os.environ['GREETING'])"
        container = {
            "name": "app",
            "image": "python",
            "imagePullPolicy": "IfNotPresent",
            "command": [sys.executable, "-c", script],
            "env": [{"name": "GREETING", "value": "kybern"}],
        }
        await client.create(pod("py", restart="Never", containers=[container]))

        async def succeeded() -> Obj | None:
            try:
                got = await client.get("v1", "Pod", "py", namespace="default")
            except kclient.NotFound:
                return None
            return got if (got.get("status") or {}).get("phase") == "Succeeded" else None

        done = await _poll(succeeded, within=20)
        terminated = state_of(done["status"])["state"]["terminated"]
        assert terminated["exitCode"] == 0
        assert terminated["reason"] == "Completed"
        assert state_of(done["status"])["containerID"].startswith("process://")
        ref = agent.container("default", "py", "app")
        assert ref is not None
        assert b"hello from kybern" in ref.log_path.read_bytes()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await informers.stop()
        await api.stop()


async def test_readiness_and_liveness_probes(env: Env) -> None:
    env.runtime.exec_results["ready-check"] = cri.ExecResult(1, b"", b"not yet")
    container = {
        "name": "app",
        "image": "busybox",
        "readinessProbe": {"exec": {"command": ["ready-check"]}, "periodSeconds": 5},
        "livenessProbe": {
            "exec": {"command": ["alive-check"]},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
    }
    await env.client.create(pod("probed", containers=[container]))

    def ready_is(value: bool) -> Callable[[], Awaitable[Obj | None]]:
        return lambda: env.status_of(
            "probed", lambda s: running(s) and state_of(s)["ready"] is value
        )

    unready = await env.until(ready_is(False))
    assert conds_of(unready)["Ready"] == "False"
    env.runtime.exec_results["ready-check"] = cri.ExecResult(0, b"", b"")
    ready = await env.until(ready_is(True))
    assert conds_of(ready)["Ready"] == "True"
    env.runtime.exec_results["alive-check"] = cri.ExecResult(1, b"", b"dead")
    restarted = await env.until(
        lambda: env.status_of("probed", lambda s: state_of(s)["restartCount"] == 1 and running(s))
    )
    assert state_of(restarted["status"])["lastState"]["terminated"]["exitCode"] == fake.SIGTERM_EXIT


def conds_of(pod: Obj) -> dict[str, str]:
    return {c["type"]: c["status"] for c in pod["status"]["conditions"]}


async def test_static_pod_runs_from_file_and_is_mirrored(env: Env) -> None:
    manifests = env.tmp_path / "manifests"
    manifests.mkdir()
    manifest = manifests / "web.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n"
        "spec:\n  containers: [{name: app, image: busybox}]\n"
    )
    await env.stop_agent()
    await env.start_agent(pod_manifest_path=manifests)
    mirror = await env.until(lambda: env.status_of(f"web-{NODE}", running))
    annotations = mirror["metadata"]["annotations"]
    assert annotations["kubernetes.io/config.mirror"] == annotations["kubernetes.io/config.hash"]
    assert mirror["metadata"]["ownerReferences"][0]["kind"] == "Node"
    assert len(env.runtime.running("app")) == 1
    # deleting the mirror does not stop the static pod; the mirror comes back
    await env.client.delete("v1", "Pod", f"web-{NODE}", namespace="default", grace_period_seconds=0)
    await env.until(lambda: env.status_of(f"web-{NODE}", running))
    assert len(env.runtime.running("app")) == 1
    manifest.unlink()
    await env.until(lambda: _none(env.pod(f"web-{NODE}")))
    assert env.runtime.running("app") == []


async def test_startup_probe_gates_started(env: Env) -> None:
    env.runtime.exec_results["boot-check"] = cri.ExecResult(1, b"", b"")
    container = {
        "name": "app",
        "image": "busybox",
        "startupProbe": {
            "exec": {"command": ["boot-check"]},
            "periodSeconds": 5,
            "failureThreshold": 100,
        },
    }
    await env.client.create(pod("slow", containers=[container]))
    booting = await env.until(lambda: env.status_of("slow", running))
    assert state_of(booting["status"])["started"] is False
    assert state_of(booting["status"])["ready"] is False
    env.runtime.exec_results["boot-check"] = cri.ExecResult(0, b"", b"")
    await env.until(lambda: env.status_of("slow", lambda s: state_of(s).get("started") is True))
    assert state_of((await env.pod("slow") or {})["status"])["restartCount"] == 0


async def test_lease_and_node_status_are_renewed_every_10s(env: Env) -> None:
    assert env.agent is not None
    beat = env.agent.heartbeat
    renewals, updates = beat.lease_renewals, beat.status_updates
    for _ in range(9):
        env.clock.advance(1)
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert beat.lease_renewals == renewals  # not before the period
    env.clock.advance(1)  # the tenth fake second, and not one more ...
    # ... then as long as the writes take in real time on a loaded machine
    await _poll(lambda: _true(beat.lease_renewals > renewals), within=10)
    await _poll(lambda: _true(beat.status_updates > updates), within=10)
    lease = await env.client.get(
        "coordination.k8s.io/v1", "Lease", NODE, namespace="kube-node-lease"
    )
    renewed = datetime.datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))
    assert abs((renewed - env.clock.now()).total_seconds()) <= 2


async def test_pod_lookup_for_the_kubelet_server(env: Env) -> None:
    assert env.agent is not None
    lookup = agent_.lookup(env.agent)
    two = [{"name": "a", "image": "x", "tty": True}, {"name": "b", "image": "x"}]
    await env.client.create(pod("two", containers=two))
    await env.until(lambda: env.status_of("two", lambda s: running(s, "a") and running(s, "b")))
    ref = lookup.container("default", "two", "a")
    assert ref is not None
    assert ref.running
    assert ref.tty
    assert ref.previous_log_path is None
    assert ref.log_path.name == "0.log"
    assert lookup.container("default", "two", "") is None  # several containers: name one
    assert lookup.container_names("default", "two") == ["a", "b"]
    assert lookup.sandbox("default", "two") == ref.sandbox_id
    assert lookup.container("default", "nope", "a") is None
    assert lookup.sandbox("default", "two", uid="other") is None
    env.runtime.exit(ref.container_id, 1)
    await env.until(
        lambda: env.status_of(
            "two", lambda s: state_of(s, "a")["restartCount"] == 1 and running(s, "a")
        )
    )
    after = lookup.container("default", "two", "a")
    assert after is not None
    assert after.previous_log_path == ref.log_path
    assert after.log_path.name == "1.log"


async def test_second_delete_with_shorter_grace_kills_sooner(env: Env) -> None:
    env.runtime.ignore_sigterm.add("stubborn")
    spec = pod("hurry", containers=[{"name": "stubborn", "image": "busybox"}])
    await env.client.create(spec)
    await env.until(lambda: env.status_of("hurry", lambda s: running(s, "stubborn")))
    await env.client.delete("v1", "Pod", "hurry", namespace="default", grace_period_seconds=60)
    started = env.clock.monotonic()
    await env.until(lambda: _true(env.runtime.count("stop_container") >= 1))
    env.clock.advance(5)
    await env.client.delete("v1", "Pod", "hurry", namespace="default", grace_period_seconds=10)
    await env.until(lambda: _true(not env.runtime.running("stubborn")))
    took = env.clock.monotonic() - started
    assert 10 <= took <= 13, took
    await env.until(lambda: _none(env.pod("hurry")))


async def test_configmap_volume_updates_in_place_when_the_configmap_changes(env: Env) -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default"},
        "data": {"mode": "first"},
    }
    await env.client.create(config_map)
    volume = {"name": "cfg", "configMap": {"name": "settings"}}
    container = {
        "name": "app",
        "image": "busybox:1.36",
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}],
    }
    await env.client.create(pod("reader", volumes=[volume], containers=[container]))
    await env.until(lambda: env.status_of("reader", running))
    (mounted,) = [
        m for m in env.runtime.running("app")[0].config.mounts if m.container_path == "/etc/cfg"
    ]
    mode = Path(mounted.host_path) / "mode"
    assert mode.read_text() == "first"
    config_map["data"] = {"mode": "second"}
    await env.client.update(config_map)
    # no clock movement needed: the ConfigMap watch triggers the pod's sync
    await _poll(lambda: _true(mode.read_text() == "second"), within=5)


async def test_own_status_write_coming_back_does_not_sync_again(env: Env) -> None:
    """kubelet's RECONCILE: the watch event of the agent's own status write needs no sync;
    a change of anything else (a label) does."""
    assert env.agent is not None
    agent = env.agent
    await env.client.create(pod("quiet"))
    written = await env.until(lambda: env.status_of("quiet", running))
    uid = written["metadata"]["uid"]
    rv = written["metadata"]["resourceVersion"]

    async def echoed() -> bool:
        seen = agent.known.get(uid) or {}
        return bool(seen.get("metadata", {}).get("resourceVersion") == rv)

    await _poll(echoed, within=5)
    for _ in range(20):
        await asyncio.sleep(0)
    await _poll(lambda: _true(not agent.workers.busy(uid)), within=5)
    runs = agent.workers.runs(uid)
    assert runs == 1  # the sync that started it; not one more for the status it wrote
    written["metadata"]["labels"] = {"tier": "web"}
    await env.client.update(written)
    await _poll(lambda: _true(agent.workers.runs(uid) > runs), within=5)


async def test_pods_created_together_all_run(env: Env) -> None:
    """More pods than sync slots at once: every one starts, and its status is written."""
    for i in range(24):
        await env.client.create(pod(f"many-{i}"))

    async def all_running() -> bool:
        pods = await env.client.list("v1", "Pod", namespace="default")
        return len(pods["items"]) == 24 and all(
            running(p.get("status") or {}) for p in pods["items"]
        )

    await env.until(all_running, step=0.0)
    assert len(env.runtime.running("app")) == 24
