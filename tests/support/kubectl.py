"""Run the real kubectl (v1.32, on PATH or unpacked into the venv by `make test`) against a
started kybern server, with a deadline on every call."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 60.0


def binary() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl v1.32 is not on PATH: run `make test` (it installs one)")
    return found


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Kubectl:
    kubeconfig: Path

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> Result:
        """kubectl ARGS...; raises AssertionError with both streams when check and it fails."""
        environment = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **(env or {})}
        done = subprocess.run(
            [binary(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=environment,
            check=False,
        )
        result = Result(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}{done.stdout}"
            )
        return result
