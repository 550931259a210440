"""Volumes in the process runtime: bind mounts in a private mount namespace, read-only binds,
mount points missing on the host (new root or shadowed parent, never created on the host), and
exec entering the container's namespace."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from kybern.runtime import cri
from tests.unit.runtime.conftest import Pod

pytestmark = pytest.mark.timeout(30)


def _namespaces_work() -> bool:
    flags = ["-m"] if os.geteuid() == 0 else ["-U", "-m"]
    return subprocess.run(["unshare", *flags, "true"], capture_output=True).returncode == 0


requires_namespaces = pytest.mark.skipif(
    not _namespaces_work(), reason="this kernel refuses mount namespaces (unshare -m failed)"
)


def _exists(path: str) -> bool:
    return os.path.exists(path)


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    path = tmp_path / "volume"
    path.mkdir()
    (path / "file").write_text("from the volume\n")
    return path


@requires_namespaces
class TestBinds:
    async def test_missing_top_level_mount_point(self, pod: Pod, volume: Path) -> None:
        top = f"/kybern-test-{uuid.uuid4().hex[:8]}"
        mount = cri.Mount(container_path=f"{top}/data", host_path=str(volume))
        cid = await pod.run(
            "sh",
            "-c",
            f"cat {top}/data/file && echo new > {top}/data/new && ls /proc/self >/dev/null && echo ok",
            mounts=(mount,),
        )
        status = await pod.wait_exit(cid)
        assert pod.log(cid) == "from the volume\nok\n", status
        assert (volume / "new").read_text() == "new\n"
        assert not _exists(top)  # nothing created on the host

    async def test_readonly(self, pod: Pod, volume: Path) -> None:
        mount = cri.Mount(container_path="/kybern-ro", host_path=str(volume), readonly=True)
        cid = await pod.run(
            "sh", "-c", "cat /kybern-ro/file; echo x > /kybern-ro/new", mounts=(mount,)
        )
        status = await pod.wait_exit(cid)
        assert status.exit_code != 0
        assert "Read-only file system" in pod.log(cid)
        assert not (volume / "new").exists()

    async def test_shadowed_parent_keeps_its_contents(
        self, pod: Pod, volume: Path, tmp_path: Path
    ) -> None:
        base = tmp_path / "base"
        base.mkdir()
        (base / "keep.txt").write_text("kept\n")
        mount = cri.Mount(container_path=str(base / "vol"), host_path=str(volume))
        cid = await pod.run("sh", "-c", f"cat {base}/keep.txt {base}/vol/file", mounts=(mount,))
        await pod.wait_exit(cid)
        assert pod.log(cid) == "kept\nfrom the volume\n"
        assert sorted(p.name for p in base.iterdir()) == ["keep.txt"]

    async def test_existing_mount_point_is_covered(
        self, pod: Pod, volume: Path, tmp_path: Path
    ) -> None:
        target = tmp_path / "target"
        target.mkdir()
        (target / "hidden").write_text("host\n")
        mount = cri.Mount(container_path=str(target), host_path=str(volume))
        cid = await pod.run("ls", str(target), mounts=(mount,))
        await pod.wait_exit(cid)
        assert pod.log(cid) == "file\n"

    async def test_file_and_nested_mounts(self, pod: Pod, volume: Path, tmp_path: Path) -> None:
        config = tmp_path / "app.conf"
        config.write_text("key=value\n")
        inner = tmp_path / "inner"
        inner.mkdir()
        (inner / "deep").write_text("deep\n")
        mounts = (
            cri.Mount(container_path="/kybern-etc/app.conf", host_path=str(config), readonly=True),
            cri.Mount(container_path="/kybern-data", host_path=str(volume)),
            cri.Mount(container_path="/kybern-data/sub", host_path=str(inner)),
        )
        cid = await pod.run(
            "sh",
            "-c",
            "cat /kybern-etc/app.conf /kybern-data/file /kybern-data/sub/deep",
            mounts=mounts,
        )
        await pod.wait_exit(cid)
        assert pod.log(cid) == "key=value\nfrom the volume\ndeep\n"
        assert (volume / "sub").is_dir()  # the nested mount point is made inside the volume

    async def test_exec_sees_the_volume(self, pod: Pod, volume: Path) -> None:
        mount = cri.Mount(container_path="/kybern-exec", host_path=str(volume))
        cid = await pod.run("sleep", "60", mounts=(mount,), envs=(("X", "y"),))
        result = await pod.rt.exec_sync(cid, ["sh", "-c", "cat /kybern-exec/file; echo $X; pwd"])
        assert result.exit_code == 0, result
        assert (
            result.stdout
            == f"from the volume\ny\n{pod.rt.paths.pod_dir(pod.sandbox_id)}\n".encode()
        )

    async def test_missing_source(self, pod: Pod, tmp_path: Path) -> None:
        mount = cri.Mount(container_path="/kybern-x", host_path=str(tmp_path / "absent"))
        cid = await pod.create("true", mounts=(mount,))
        with pytest.raises(cri.RuntimeError_, match="does not exist"):
            await pod.rt.start_container(cid)


async def test_no_namespace_needed_without_mounts(pod: Pod) -> None:
    cid = await pod.run("readlink", "/proc/self/ns/mnt")
    await pod.wait_exit(cid)
    assert pod.log(cid).strip() == os.readlink("/proc/self/ns/mnt")


@requires_namespaces
async def test_termination_message_file_with_volumes(
    pod: Pod, volume: Path, tmp_path: Path
) -> None:
    message = tmp_path / "termination-log"
    message.write_text("")
    cid = await pod.run(
        "sh",
        "-c",
        "echo goodbye > /dev/termination-log && echo hi > /dev/null",
        mounts=(cri.Mount(container_path="/kybern-tm", host_path=str(volume)),),
        termination_message_path="/dev/termination-log",
        termination_message_host_path=str(message),
    )
    assert (await pod.wait_exit(cid)).exit_code == 0, pod.log(cid)
    assert message.read_text() == "goodbye\n"
