"""The oci runtime against real runc (root only): logs, exit codes, SIGTERM through tini,
OOMKilled, cgroup limits, exec, pods sharing localhost and volumes, PID 1, hostname, adoption
after an agent restart, and cleanup leaving no mounts, cgroups or namespaces behind.

Images come from a fake image service serving one layer built from the host's busybox-static.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tarfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kybern.network import cni, netns
from kybern.network import config as network_config
from kybern.runtime import cri, registry
from kybern.runtime.images import model
from kybern.runtime.oci import OciRuntime, cgroups
from tests.support import waiting
from tests.support.waiting import log_text

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="real containers need root"),
    pytest.mark.skipif(
        shutil.which("runc") is None or not os.path.exists("/bin/busybox"),
        reason="needs runc and busybox-static",
    ),
    pytest.mark.timeout(60),
]


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 15.0) -> Any:
    return await waiting.eventually(check, within)


def busybox_layer(directory: Path) -> Path:
    """A busybox root file system: /bin/busybox plus one symlink per applet, /etc files."""
    layer = directory / "layer"
    (layer / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", layer / "bin" / "busybox")
    applets = subprocess.run(
        ["/bin/busybox", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (layer / "bin" / applet).symlink_to("busybox")
    for d in ("etc", "tmp", "proc", "sys", "dev", "root"):
        (layer / d).mkdir(exist_ok=True)
    (layer / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n"
    )
    (layer / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    return layer


@dataclass
class FakeImages:
    records: dict[str, model.ImageRecord] = field(default_factory=dict)

    async def ensure(self, reference: str, **_: Any) -> model.ImageRecord:
        return self.records[reference]

    def get(self, reference: str) -> model.ImageRecord | None:
        return self.records.get(reference)

    def list(self) -> list[model.ImageRecord]:
        return list(self.records.values())

    async def remove(self, reference: str) -> None:
        self.records.pop(reference, None)


@dataclass
class Pod:
    rt: OciRuntime
    sandbox_id: str
    config: cri.PodSandboxConfig
    logs: Path
    count: list[int] = field(default_factory=lambda: [0])

    async def run(self, *command: str, **options: Any) -> str:
        cid = await self.create(*command, **options)
        await self.rt.start_container(cid)
        return cid

    async def create(self, *command: str, **options: Any) -> str:
        self.count[0] += 1
        config = cri.ContainerConfig(
            metadata=cri.ContainerMeta(options.pop("name", f"c{self.count[0]}")),
            image="busybox",
            command=command,
            log_path=str(self.logs / f"c{self.count[0]}.log"),
            **options,
        )
        return await self.rt.create_container(self.sandbox_id, config, self.config)

    async def exited(self, cid: str, within: float = 15.0) -> cri.ContainerStatus:
        async def check() -> cri.ContainerStatus | None:
            status = await self.rt.container_status(cid)
            return status if status.state == cri.ContainerState.EXITED else None

        result: cri.ContainerStatus = await eventually(check, within)
        return result

    def log(self, cid: str) -> str:
        return log_text(Path(self.rt.containers[cid].log_path))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> FakeImages:
    layer = busybox_layer(tmp_path_factory.mktemp("image"))
    record = model.ImageRecord(
        id="sha256:" + "b" * 64,
        references=("docker.io/library/busybox:latest",),
        repo_digests=(),
        config=model.ImageConfig(cmd=("sh",), env=("PATH=/bin",)),
        layers=(layer,),
    )
    return FakeImages({"busybox": record})


@pytest.fixture
async def rt(images: FakeImages) -> AsyncIterator[OciRuntime]:
    root = Path(f"/tmp/kyb-oci-{uuid.uuid4().hex[:8]}")  # short: unix socket paths are limited
    runtime = OciRuntime(registry.Options(root=root), images=images)
    await runtime.start()
    yield runtime
    for sandbox in await runtime.list_pod_sandboxes():
        await runtime.remove_pod_sandbox(sandbox.id)
    shutil.rmtree(root, ignore_errors=True)


async def new_pod(rt: OciRuntime, tmp_path: Path, name: str = "web", **options: Any) -> Pod:
    uid = uuid.uuid4().hex
    config = cri.PodSandboxConfig(
        metadata=cri.PodMeta(name=name, namespace="default", uid=uid), **options
    )
    sandbox_id = await rt.run_pod_sandbox(config)
    return Pod(rt, sandbox_id, config, tmp_path / "logs")


@pytest.fixture
async def pod(rt: OciRuntime, tmp_path: Path) -> Pod:
    return await new_pod(rt, tmp_path)


def mounts_text() -> str:
    return Path("/proc/self/mountinfo").read_text()


class TestRun:
    async def test_logs_and_exit_code(self, pod: Pod) -> None:
        cid = await pod.run("sh", "-c", "echo hello; echo oops >&2; exit 3")
        status = await pod.exited(cid)
        assert (status.exit_code, status.reason) == (3, "Error")
        assert pod.log(cid) in ("hello\noops\n", "oops\nhello\n")

    async def test_image_cmd_when_no_command(self, pod: Pod) -> None:
        cid = await pod.run(args=("echo", "from-args"))
        assert (await pod.exited(cid)).exit_code == 0
        assert "from-args" in pod.log(cid)

    async def test_pid1_is_tini_and_hostname_is_pod_name(self, pod: Pod) -> None:
        cid = await pod.run("sh", "-c", "cat /proc/1/comm; hostname; cat /etc/hostname")
        assert (await pod.exited(cid)).reason == "Completed"
        assert pod.log(cid).split() == ["tini", "web", "web"]

    async def test_sigterm_reaches_the_app(self, pod: Pod) -> None:
        cid = await pod.run(
            "sh", "-c", "trap 'echo bye; exit 7' TERM; echo ready; while true; do sleep 0.1; done"
        )

        async def trapping() -> bool:  # the shell has set its trap
            return "ready" in pod.log(cid)

        await eventually(trapping)
        await pod.rt.stop_container(cid, 10)
        status = await pod.rt.container_status(cid)
        assert status.exit_code == 7
        assert "bye" in pod.log(cid)

    async def test_oom_killed(self, pod: Pod) -> None:
        limit = cri.Resources(memory_limit_bytes=32 * 1024 * 1024)
        hog = "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived"
        cid = await pod.run("sh", "-c", hog, resources=limit)
        status = await pod.exited(cid, 30)
        assert status.reason == "OOMKilled"
        assert status.exit_code == 137

    async def test_cpu_limit_in_cgroup(self, pod: Pod) -> None:
        res = cri.Resources(cpu_shares=204, cpu_quota=20_000, cpu_period=100_000, pids_limit=64)
        cid = await pod.run("sleep", "30", resources=res)
        await eventually(lambda: _running(pod, cid))
        path = pod.rt.containers[cid].cgroups_path
        if cgroups.is_v2():
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            assert (base / "cpu.max").read_text().split() == ["20000", "100000"]
        else:
            cpu = Path("/sys/fs/cgroup/cpu") / path.lstrip("/")
            assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "20000"
            assert (cpu / "cpu.shares").read_text().strip() == "204"
            pids = Path("/sys/fs/cgroup/pids") / path.lstrip("/") / "pids.max"
            assert pids.read_text().strip() == "64"
        stats = await pod.rt.container_stats(cid)
        assert stats.memory_working_set_bytes > 0

    async def test_host_network_pod(self, rt: OciRuntime, tmp_path: Path) -> None:
        pod = await new_pod(rt, tmp_path, "hostnet", host_network=True)
        assert (await rt.pod_sandbox_status(pod.sandbox_id)).ip == rt.options.node_ip
        cid = await pod.run("sh", "-c", "hostname; ls /sys/class/net")
        assert (await pod.exited(cid)).exit_code == 0
        lines = pod.log(cid).split()
        assert lines[0] == socket.gethostname()
        assert len(lines) > 2  # the host's interfaces, not just lo


class TestExec:
    async def test_exec_sync_exit_code_and_output(self, pod: Pod) -> None:
        cid = await pod.run("sleep", "30")
        await eventually(lambda: _running(pod, cid))
        result = await pod.rt.exec_sync(cid, ["sh", "-c", "echo in; hostname; exit 4"])
        assert result.exit_code == 4
        assert result.stdout.split() == [b"in", b"web"]

    async def test_exec_timeout_kills_the_command_in_the_container(self, pod: Pod) -> None:
        cid = await pod.run("sleep", "30")
        await eventually(lambda: _running(pod, cid))
        with pytest.raises(TimeoutError):
            await pod.rt.exec_sync(cid, ["sleep", "77"], kill_after=0.3)

        async def gone() -> bool:
            result = await pod.rt.exec_sync(cid, ["ps"])
            return b"sleep 77" not in result.stdout

        assert await eventually(gone)

    async def test_tty_exec(self, pod: Pod) -> None:
        cid = await pod.run("sleep", "30")
        await eventually(lambda: _running(pod, cid))
        session = await pod.rt.exec(
            cid, ["sh", "-c", "tty; echo x-$((2+2))"], tty=True, stdin=False
        )
        out = b""
        while chunk := await session.read_stdout():
            out += chunk
        assert await session.wait() == 0
        assert b"/dev/pts/" in out
        assert b"x-4" in out

    async def test_attach_to_a_tty_container(self, pod: Pod) -> None:
        cid = await pod.run("sh", tty=True, stdin=True)
        await eventually(lambda: _running(pod, cid))
        session = await pod.rt.attach(cid, tty=True, stdin=True)
        await session.write_stdin(b"echo attached-$((1+2))\n")
        out = b""
        while b"attached-3" not in out:
            out += await session.read_stdout()
        await session.close()
        assert "attached-3" in pod.log(cid)


class TestPod:
    async def test_two_containers_share_localhost_and_empty_dir(
        self, pod: Pod, tmp_path: Path
    ) -> None:
        volume = tmp_path / "shared"
        volume.mkdir()
        mount = (cri.Mount(container_path="/data", host_path=str(volume)),)
        server = await pod.run(
            "sh", "-c", "echo -e 'HTTP/1.0 200 OK\\r\\n\\r\\nhi' > /data/r; nc -l -p 8080 < /data/r",
            mounts=mount,
        )  # fmt: skip
        await eventually(lambda: _running(pod, server))
        client = await pod.run(
            "sh", "-c", "until nc 127.0.0.1 8080 > /data/got; do sleep 0.1; done", mounts=mount
        )
        await pod.exited(client)
        assert "hi" in (volume / "got").read_text()

    async def test_port_forward_into_the_pod(self, pod: Pod) -> None:
        cid = await pod.run("sh", "-c", "echo pong | nc -l -p 9000")
        await eventually(lambda: _running(pod, cid))

        async def read() -> bytes:
            try:
                stream = await pod.rt.port_forward(pod.sandbox_id, 9000)
            except cri.RuntimeError_:
                return b""
            data = await stream.read()
            await stream.close()
            return data

        assert b"pong" in await eventually(read)


@pytest.fixture
async def cni_rt(images: FakeImages, tmp_path: Path) -> AsyncIterator[OciRuntime]:
    """A runtime whose pods are attached by the real CNI plugins to a test bridge."""
    if not any(d.joinpath("bridge").exists() for d in network_config.PLUGIN_DIRS):
        pytest.skip("containernetworking-plugins is not installed")
    cfg = network_config.NetworkConfig.from_pod_cidr(
        "10.251.7.0/24", tmp_path / "cni", bridge="kybtest0"
    )
    root = Path(f"/tmp/kyb-oci-{uuid.uuid4().hex[:8]}")
    runtime = OciRuntime(
        registry.Options(root=root), images=images, network=cni.PodNetwork.from_config(cfg)
    )
    await runtime.start()
    yield runtime
    for sandbox in await runtime.list_pod_sandboxes():
        await runtime.remove_pod_sandbox(sandbox.id)
    shutil.rmtree(root, ignore_errors=True)
    proc = await asyncio.create_subprocess_exec("ip", "link", "del", "kybtest0")
    await proc.wait()


class TestNetwork:
    async def test_pods_reach_each_other_by_pod_ip(
        self, cni_rt: OciRuntime, tmp_path: Path
    ) -> None:
        server = await new_pod(cni_rt, tmp_path, "server")
        client = await new_pod(cni_rt, tmp_path, "client")
        ip = cni_rt.sandboxes[server.sandbox_id].ip
        assert ip.startswith("10.251.7.")
        await server.run("sh", "-c", "echo hello-net | nc -l -p 8080")
        cid = await client.run(
            "sh", "-c", f"until nc {ip} 8080; do sleep 0.1; done; grep client /etc/hosts"
        )
        assert (await client.exited(cid)).exit_code == 0
        assert "hello-net" in client.log(cid)
        assert f"{cni_rt.sandboxes[client.sandbox_id].ip}\tclient" in client.log(cid)


def docker_archive(directory: Path, base: Path) -> Path:
    """A two-layer docker-archive: busybox, then a layer that adds /hello and deletes
    /etc/group (a whiteout), with ENTRYPOINT and ENV in its config."""
    top = directory / "top"
    (top / "etc").mkdir(parents=True)
    (top / "hello").write_text("from-layer-2\n")
    (top / "etc" / ".wh.group").write_text("")
    layers = []
    for i, tree in enumerate((base, top)):
        out = directory / f"layer{i}.tar"
        with tarfile.open(out, "w") as tar:
            for child in sorted(tree.iterdir()):
                tar.add(child, arcname=child.name)
        layers.append(out)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["sh", "-c"], "Env": ["PATH=/bin", "GREETING=img"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for p in layers],
        },
    }
    (directory / "config.json").write_text(json.dumps(config))
    manifest = [
        {
            "Config": "config.json",
            "RepoTags": ["kybern.test/bb:1"],
            "Layers": [p.name for p in layers],
        }
    ]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    archive = directory / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("manifest.json", "config.json", *(p.name for p in layers)):
            tar.add(directory / name, arcname=name)
    return archive


class TestImageStore:
    async def test_an_image_loaded_into_the_store_runs(self, tmp_path: Path) -> None:
        from kybern.runtime.images import archive, store

        base = busybox_layer(tmp_path / "base")
        tarball = docker_archive(tmp_path, base)
        images = store.ImageStore(tmp_path / "images")
        await asyncio.to_thread(archive.load, images, tarball)
        root = Path(f"/tmp/kyb-oci-{uuid.uuid4().hex[:8]}")
        rt = OciRuntime(registry.Options(root=root), images=images)
        await rt.start()
        try:
            image_id = await rt.pull_image("kybern.test/bb:1")
            assert (await rt.image_status("kybern.test/bb:1")) is not None
            pod = await new_pod(rt, tmp_path)
            cid = await rt.create_container(
                pod.sandbox_id,
                cri.ContainerConfig(
                    metadata=cri.ContainerMeta("app"),
                    image="kybern.test/bb:1",
                    args=(
                        "cat /hello; echo $GREETING; ls /etc/group 2>/dev/null || echo no-group",
                    ),
                    log_path=str(tmp_path / "app.log"),
                ),
                pod.config,
            )
            await rt.start_container(cid)
            status = await pod.exited(cid)
            assert status.image_ref == image_id
            assert log_text(tmp_path / "app.log").split() == ["from-layer-2", "img", "no-group"]
        finally:
            for sandbox in await rt.list_pod_sandboxes():
                await rt.remove_pod_sandbox(sandbox.id)
            shutil.rmtree(root, ignore_errors=True)


class TestRestartAndCleanup:
    async def test_adoption_after_agent_restart(self, pod: Pod, images: FakeImages) -> None:
        cid = await pod.run("sh", "-c", "sleep 1; echo done")
        await eventually(lambda: _running(pod, cid))
        fresh = OciRuntime(registry.Options(root=pod.rt.options.root), images=images)
        await fresh.start()
        assert [s.id for s in await fresh.list_pod_sandboxes()] == [pod.sandbox_id]
        assert (await fresh.container_status(cid)).state == cri.ContainerState.RUNNING
        again = Pod(fresh, pod.sandbox_id, pod.config, pod.logs)
        status = await again.exited(cid)
        assert status.exit_code == 0
        assert "done" in again.log(cid)

    async def test_remove_leaves_nothing_behind(self, rt: OciRuntime, tmp_path: Path) -> None:
        pod = await new_pod(rt, tmp_path, share_process_namespace=True)
        cid = await pod.run("sleep", "30")
        await eventually(lambda: _running(pod, cid))
        record = rt.sandboxes[pod.sandbox_id]
        cgroup = record.cgroup_parent
        assert cgroups.directories(cgroup)
        await rt.remove_pod_sandbox(pod.sandbox_id)
        assert rt.paths.root.as_posix() not in mounts_text()
        assert Path(record.netns).name not in netns.names()
        assert cgroups.directories(cgroup) == []
        assert cid not in rt._driver().known()


async def _running(pod: Pod, cid: str) -> bool:
    return (await pod.rt.container_status(cid)).state == cri.ContainerState.RUNNING
