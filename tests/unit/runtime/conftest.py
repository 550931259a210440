"""Fixtures for the process runtime tests: a started runtime over a temporary root, a sandbox,
and helpers that wait on conditions with deadlines (never fixed sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kybern.runtime import cri, registry
from kybern.runtime.process import ProcessRuntime, create
from tests.support.waiting import eventually, log_text

__all__ = ["Pod", "eventually", "log_text"]


@dataclass
class Pod:
    rt: ProcessRuntime
    sandbox_id: str
    config: cri.PodSandboxConfig
    logs: Path
    count: list[int] = field(default_factory=lambda: [0])

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

    async def run(self, *command: str, **options: Any) -> str:
        container_id = await self.create(*command, **options)
        await self.rt.start_container(container_id)
        return container_id

    def log(self, container_id: str) -> str:
        return log_text(Path(self.rt.containers[container_id].log_path))

    async def wait_log(self, container_id: str, text: str, within: float = 10.0) -> str:
        async def check() -> str:
            got = self.log(container_id)
            return got if text in got else ""

        return str(await eventually(check, within))

    async def wait_exit(self, container_id: str, within: float = 10.0) -> cri.ContainerStatus:
        async def check() -> cri.ContainerStatus | None:
            status = await self.rt.container_status(container_id)
            return status if status.state == cri.ContainerState.EXITED else None

        result: cri.ContainerStatus = await eventually(check, within)
        return result


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    rt = create(registry.Options(root=tmp_path / "rt", node_ip="10.1.2.3"))
    await rt.start()
    yield rt
    for status in await rt.list_containers():  # leave no process behind
        await rt.remove_container(status.id)
    await rt.close()


@pytest.fixture
async def pod(runtime: ProcessRuntime, tmp_path: Path) -> Pod:
    config = cri.PodSandboxConfig(metadata=cri.PodMeta("web", "default", "uid-1"), hostname="web")
    sandbox_id = await runtime.run_pod_sandbox(config)
    return Pod(runtime, sandbox_id, config, tmp_path / "logs")
