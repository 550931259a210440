"""An overlay upper directory as an OCI layer: overlay whiteouts -> ``.wh.`` entries, opaque
directories -> ``.wh..wh..opq``, attributes and hard links kept, skipped mount points.

Without root, whiteouts and opaque directories are stand-ins recognised by test ``Markers``;
with root the real overlay forms (char device 0/0, ``trusted.overlay.opaque``) are used too."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from kybern.runtime.images import unpack
from kybern.runtime.images.build import layerdiff

# Stand-ins: an empty file of mode 000 is a whiteout, a directory holding ".opaque" is opaque.
FAKE = layerdiff.Markers(
    whiteout=lambda _p, st: (
        stat.S_ISREG(st.st_mode) and st.st_size == 0 and stat.S_IMODE(st.st_mode) == 0
    ),
    opaque=lambda p: (p / ".opaque").exists(),
)


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


@pytest.fixture
def upper(tmp_path: Path) -> Path:
    root = tmp_path / "upper"
    (root / "etc" / "app").mkdir(parents=True)
    (root / "etc" / "app" / "conf").write_text("x=1")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_text("#!")
    (root / "bin" / "tool").chmod(0o755)
    os.link(root / "bin" / "tool", root / "bin" / "tool2")
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "proc").mkdir()
    return root


def test_files_dirs_links_in_sorted_order(upper: Path) -> None:
    data, count = layerdiff.to_bytes(upper, markers=FAKE, skip=frozenset({"proc"}))
    got = members(data)
    assert list(got) == ["bin", "bin/sh", "bin/tool", "bin/tool2", "etc", "etc/app", "etc/app/conf"]
    assert count == len(got)
    assert got["bin/tool"].mode & 0o777 == 0o755
    assert got["bin/sh"].issym()
    assert got["bin/sh"].linkname == "busybox"
    assert got["bin/tool2"].islnk()
    assert got["bin/tool2"].linkname == "bin/tool"


def test_whiteouts_and_opaque_dirs_with_stand_ins(upper: Path) -> None:
    deleted = upper / "etc" / "old"
    deleted.touch()
    deleted.chmod(0)
    (upper / "etc" / "app" / ".opaque").touch()
    data, _ = layerdiff.to_bytes(upper, markers=FAKE, skip=frozenset({"etc/app/.opaque"}))
    got = members(data)
    assert "etc/.wh.old" in got
    assert "etc/old" not in got
    assert got["etc/.wh.old"].isreg()
    assert got["etc/.wh.old"].size == 0
    assert "etc/app/.wh..wh..opq" in got
    names = list(got)
    assert names.index("etc/app") < names.index("etc/app/.wh..wh..opq")


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts need CAP_MKNOD and trusted xattrs")
def test_real_overlay_markers(upper: Path) -> None:
    os.mknod(upper / "etc" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    os.setxattr(upper / "etc" / "app", unpack.OPAQUE_XATTR, b"y")
    os.setxattr(upper / "etc" / "app", "trusted.overlay.origin", b"zz")
    got = members(layerdiff.to_bytes(upper)[0])
    assert "etc/.wh.gone" in got
    assert "etc/gone" not in got
    assert "etc/app/.wh..wh..opq" in got
    assert not any("overlay" in k for k in got["etc/app"].pax_headers)


def test_round_trip_through_unpack(upper: Path, tmp_path: Path) -> None:
    data, _ = layerdiff.to_bytes(upper, markers=FAKE)
    blob = tmp_path / "layer.tar"
    blob.write_bytes(data)
    unpack.unpack(blob, tmp_path / "out", as_root=False)
    assert (tmp_path / "out" / "etc" / "app" / "conf").read_text() == "x=1"
    assert os.readlink(tmp_path / "out" / "bin" / "sh") == "busybox"
