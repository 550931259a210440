"""Drives the process runtime in a separate process (run by test_nonroot.py as ``nobody``).

Usage: ``python nonroot_agent.py <root>``; prints one JSON object with what it observed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from kybern.runtime import cri, registry
from kybern.runtime.process import create


async def main(root: Path) -> dict[str, object]:
    rt = create(registry.Options(root=root / "rt"))
    await rt.start()
    config = cri.PodSandboxConfig(metadata=cri.PodMeta("p", "ns", "uid"))
    sandbox = await rt.run_pod_sandbox(config)
    volume = root / "volume"
    volume.mkdir()
    (volume / "file").write_text("hello\n")

    def container(
        name: str, *command: str, mounts: tuple[cri.Mount, ...] = ()
    ) -> cri.ContainerConfig:
        log = str(root / "logs" / f"{name}.log")
        return cri.ContainerConfig(
            metadata=cri.ContainerMeta(name),
            image="x",
            command=command,
            log_path=log,
            mounts=mounts,
        )

    mount = cri.Mount(container_path="/kybern-nobody/data", host_path=str(volume), readonly=True)
    plain = await rt.create_container(sandbox, container("plain", "sleep", "60"), config)
    mounted = await rt.create_container(
        sandbox, container("mounted", "sleep", "60", mounts=(mount,)), config
    )
    for cid in (plain, mounted):
        await rt.start_container(cid)
    seen = await rt.exec_sync(mounted, ["sh", "-c", "id -u; cat /kybern-nobody/data/file"])
    readonly = await rt.exec_sync(mounted, ["sh", "-c", "echo x > /kybern-nobody/data/new"])
    whoami = await rt.exec_sync(plain, ["id", "-u"])
    await rt.stop_container(plain, 5)
    stopped = await rt.container_status(plain)
    await rt.remove_pod_sandbox(sandbox)
    return {
        "uid": os.getuid(),
        "plain_uid": whoami.stdout.decode().strip(),
        "mounted_output": seen.stdout.decode(),
        "mounted_error": seen.stderr.decode(),
        "readonly_exit": readonly.exit_code,
        "stopped_exit": stopped.exit_code,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))
