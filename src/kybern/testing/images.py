"""Build small OCI images for tests and benchmarks, without a registry or network.

:func:`import_busybox` turns the host's Debian ``busybox-static`` (``/bin/busybox``) into a
one-layer image (the binary plus one symlink per applet from ``busybox --list-full``, and the
usual top-level directories) with an OCI config whose ``Cmd`` is ``["sh"]``, and imports it into
an image store. The tar is deterministic (fixed times, sorted entries, gzip without a
timestamp), so the image id is the same on every run of the same busybox build.
:func:`build_image` does the same for any list of layer tars (see :func:`tar_layer`).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kybern.runtime.images import digest as digests
from kybern.runtime.images import mediatypes, model, reference, store

BUSYBOX = Path("/bin/busybox")
BUSYBOX_REF = "docker.io/library/busybox:latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MTIME = 1_700_000_000  # fixed, so layer digests are reproducible
_DIRS = (
    "bin",
    "dev",
    "etc",
    "home",
    "proc",
    "root",
    "sbin",
    "sys",
    "tmp",
    "usr",
    "usr/bin",
    "usr/sbin",
    "var",
    "var/www",
)


@dataclass(frozen=True)
class Entry:
    """One tar entry for :func:`tar_layer`: ``kind`` is file, dir, symlink, hardlink or fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""  # symlink or hard link target
    uid: int = 0
    gid: int = 0


def busybox_available() -> bool:
    return BUSYBOX.is_file()


def tar_layer(entries: list[Entry]) -> bytes:
    """An uncompressed, deterministic layer tar of ``entries`` (in the order given)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mtime, info.mode, info.uid, info.gid = _MTIME, e.mode, e.uid, e.gid
            info.type = {
                "file": tarfile.REGTYPE,
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chardev": tarfile.CHRTYPE,
            }[e.kind]
            info.linkname = e.target
            info.size = len(e.data) if e.kind == "file" else 0
            tar.addfile(info, io.BytesIO(e.data) if e.kind == "file" else None)
    return out.getvalue()


def build_image(
    images: store.ImageStore,
    name: str,
    layers: list[bytes],
    *,
    config: dict[str, Any] | None = None,
    compress: bool = True,
) -> model.ImageRecord:
    """Store an image of the uncompressed layer tars ``layers`` (bottom first) as ``name``."""
    descriptors, diff_ids = [], []
    for tar in layers:
        diff_ids.append(digests.of_bytes(tar))
        blob = _gzip(tar) if compress else tar
        digest = images.layout.write_blob(blob)
        media_type = mediatypes.layer_type("gzip" if compress else "none")
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(blob)})
    os_name, arch = images.platform
    config_doc = {
        "architecture": arch,
        "os": os_name,
        "config": config if config is not None else {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "kybern.testing.images"} for _ in layers],
    }
    config_data = json.dumps(config_doc, sort_keys=True).encode()
    config_digest = images.layout.write_blob(config_data)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {
            "mediaType": mediatypes.OCI_CONFIG,
            "digest": config_digest,
            "size": len(config_data),
        },
        "layers": descriptors,
    }
    top = images.layout.write_blob(json.dumps(manifest, sort_keys=True).encode())
    images.record(top)  # unpack before naming, as a pull does
    images.set_name(reference.normalize(name), top)
    return images.record(top)


@functools.lru_cache(maxsize=8)
def _gzip(tar: bytes) -> bytes:
    # Cached: tests import the same busybox layer into many stores.
    return gzip.compress(tar, compresslevel=6, mtime=0)


@functools.cache
def busybox_layer() -> bytes:
    """The busybox root file system as an uncompressed layer tar (cached per process)."""
    applets = subprocess.run(
        [str(BUSYBOX), "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    entries = [Entry(d, "dir", mode=0o1777 if d == "tmp" else 0o755) for d in _DIRS]
    entries.append(Entry("bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755))
    entries.append(
        Entry(
            "etc/passwd",
            data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        )
    )
    entries.append(Entry("etc/group", data=b"root:x:0:\nnobody:x:65534:\n"))
    entries.extend(
        Entry(applet, "symlink", mode=0o777, target="/bin/busybox")
        for applet in sorted(set(applets) - {"bin/busybox"})
    )
    return tar_layer(entries)


def import_busybox(images: store.ImageStore, name: str = BUSYBOX_REF) -> model.ImageRecord:
    """The busybox image in ``images`` under ``name`` (built on first use)."""
    if shutil.which(str(BUSYBOX)) is None:
        raise FileNotFoundError(f"{BUSYBOX} not found: install Debian busybox-static")
    return build_image(images, name, [busybox_layer()])
