"""The process runtime under uvloop (what `kybern server` runs on): uvloop leaks descriptors
into children and runs preexec_fn before setting up stdio, so start, exec (with and without a
TTY), attach and exec timeouts are checked on it too."""

from __future__ import annotations

from pathlib import Path

import pytest

from kybern.runtime import cri, registry
from kybern.runtime.process import create

uvloop = pytest.importorskip("uvloop")
pytestmark = pytest.mark.timeout(30)


async def scenario(root: Path) -> None:
    rt = create(registry.Options(root=root / "rt"))
    await rt.start()
    sandbox_config = cri.PodSandboxConfig(metadata=cri.PodMeta("p", "ns", "uid"))
    sandbox = await rt.run_pod_sandbox(sandbox_config)
    config = cri.ContainerConfig(
        metadata=cri.ContainerMeta("c"),
        image="x",
        command=("cat",),
        stdin=True,
        log_path=str(root / "c.log"),
    )
    cid = await rt.create_container(sandbox, config, sandbox_config)
    await rt.start_container(cid)
    assert (await rt.exec_sync(cid, ["sh", "-c", "echo hi; exit 3"])) == cri.ExecResult(
        3, b"hi\n", b""
    )
    session = await rt.exec(cid, ["sh", "-c", "read x; stty size"], tty=True, stdin=True)
    await session.resize(cri.TerminalSize(width=80, height=24))
    await session.write_stdin(b"x\n")
    output = b""
    while chunk := await session.read_stdout():
        output += chunk
    assert b"24 80" in output
    assert await session.wait() == 0
    await session.close()
    with pytest.raises(TimeoutError):
        await rt.exec_sync(cid, ["sleep", "30"], kill_after=0.2)
    attached = await rt.attach(cid, tty=False, stdin=True)
    await attached.write_stdin(b"yo\n")
    assert await attached.read_stdout() == b"yo\n"
    await attached.close_stdin()
    assert await attached.wait() == 0
    await attached.close()
    await rt.remove_pod_sandbox(sandbox)


def test_runtime_on_uvloop(tmp_path: Path) -> None:
    uvloop.run(scenario(tmp_path))
