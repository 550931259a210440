"""Run Debian's ``docker-registry`` (distribution 2.8) on a free 127.0.0.1 port, for tests and
benchmarks that pull and push: ``with running(tmp_dir) as host: ...`` yields ``127.0.0.1:PORT``.
Storage is a filesystem directory under ``tmp_dir`` (``storage_dir`` finds a blob's file)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

BINARY = "docker-registry"

CONFIG = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def available() -> bool:
    return shutil.which(BINARY) is not None


def blob_file(tmp_dir: Path, digest: str) -> Path:
    """Where the registry started in ``tmp_dir`` keeps a blob's content."""
    hex_ = digest.removeprefix("sha256:")
    return tmp_dir / "storage/docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(tmp_dir: Path, *, timeout: float = 15.0) -> Iterator[str]:
    port = _free_port()
    config = tmp_dir / "registry.yml"
    config.write_text(CONFIG.format(root=tmp_dir / "storage", port=port))
    log = (tmp_dir / "registry.log").open("wb")
    proc = subprocess.Popen([BINARY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}/v2/", timeout, tmp_dir / "registry.log")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"docker-registry exited with {proc.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.02)  # polling for readiness, bounded by the deadline
    raise RuntimeError(f"docker-registry did not answer {url} within {timeout}s")
