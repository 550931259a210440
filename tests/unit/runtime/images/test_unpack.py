"""Layer unpacking: content, whiteouts in both forms, diffID verification, refusals."""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kybern.runtime.images import digest, errors, unpack
from kybern.testing.images import Entry, tar_layer

ROOT = os.geteuid() == 0


def blob(tmp_path: Path, entries: list[Entry], *, compression: str = "gzip") -> tuple[Path, str]:
    tar = tar_layer(entries)
    path = tmp_path / "layer.blob"
    if compression == "gzip":
        path.write_bytes(gzip.compress(tar))
    elif compression == "zstd":
        path.write_bytes(
            subprocess.run(["zstd", "-c"], input=tar, capture_output=True, check=True).stdout
        )
    else:
        path.write_bytes(tar)
    return path, digest.of_bytes(tar)


class TestContent:
    @pytest.mark.parametrize("compression", ["gzip", "none", "zstd"])
    def test_files_dirs_links_and_modes(self, tmp_path: Path, compression: str) -> None:
        if compression == "zstd" and shutil.which("zstd") is None:
            pytest.skip("zstd is not installed")
        layer, diff_id = blob(
            tmp_path,
            [
                Entry("etc", "dir", mode=0o755),
                Entry("etc/motd", data=b"hello\n", mode=0o640),
                Entry("bin/tool", data=b"#!/bin/sh\n", mode=0o755),
                Entry("bin/alias", "symlink", target="/bin/tool"),
                Entry("bin/hard", "hardlink", target="bin/tool"),
                Entry("ro", "dir", mode=0o555),
                Entry("ro/file", data=b"x"),
                Entry("run/pipe", "fifo"),
            ],
            compression=compression,
        )
        dest = tmp_path / "fs"
        result = unpack.unpack(layer, dest, expected_diff_id=diff_id)
        assert result.diff_id == diff_id
        assert (dest / "etc/motd").read_bytes() == b"hello\n"
        assert stat.S_IMODE((dest / "etc/motd").stat().st_mode) == 0o640
        assert os.readlink(dest / "bin/alias") == "/bin/tool"
        assert (dest / "bin/hard").stat().st_ino == (dest / "bin/tool").stat().st_ino
        assert stat.S_IMODE((dest / "ro").stat().st_mode) == 0o555
        assert stat.S_ISFIFO((dest / "run/pipe").lstat().st_mode)
        assert result.size == len(b"hello\n") + len(b"#!/bin/sh\n") + 1

    def test_later_entry_replaces_earlier(self, tmp_path: Path) -> None:
        layer, _ = blob(tmp_path, [Entry("a", data=b"1"), Entry("a", "symlink", target="b")])
        unpack.unpack(layer, tmp_path / "fs")
        assert os.readlink(tmp_path / "fs/a") == "b"

    def test_diff_id_of(self, tmp_path: Path) -> None:
        layer, diff_id = blob(tmp_path, [Entry("a", data=b"1")])
        assert unpack.diff_id_of(layer) == diff_id


class TestWhiteouts:
    ENTRIES = [
        Entry("etc", "dir"),
        Entry("etc/.wh.gone"),
        Entry("var", "dir"),
        Entry("var/.wh..wh..opq"),
        Entry("var/new", data=b"n"),
    ]

    @pytest.mark.skipif(not ROOT, reason="overlay whiteouts need root (mknod, trusted.* xattrs)")
    def test_overlay_form_as_root(self, tmp_path: Path) -> None:
        layer, _ = blob(tmp_path, self.ENTRIES)
        result = unpack.unpack(layer, tmp_path / "fs", as_root=True)
        gone = (tmp_path / "fs/etc/gone").lstat()
        assert result.whiteouts == "overlay"
        assert stat.S_ISCHR(gone.st_mode)
        assert gone.st_rdev == os.makedev(0, 0)
        assert not (tmp_path / "fs/etc/.wh.gone").exists()
        assert os.getxattr(tmp_path / "fs/var", unpack.OPAQUE_XATTR) == b"y"
        assert (tmp_path / "fs/var/new").read_bytes() == b"n"

    def test_oci_form_without_root(self, tmp_path: Path) -> None:
        layer, _ = blob(tmp_path, self.ENTRIES)
        result = unpack.unpack(layer, tmp_path / "fs", as_root=False)
        assert result.whiteouts == "oci"
        assert (tmp_path / "fs/etc/.wh.gone").is_file()
        assert (tmp_path / "fs/var/.wh..wh..opq").is_file()
        assert not (tmp_path / "fs/etc/gone").exists()


class TestRefusals:
    @pytest.mark.parametrize(
        "entries",
        [
            [Entry("../escape", data=b"x")],
            [Entry("a/../../escape", data=b"x")],
            [Entry("/etc/passwd", data=b"x")],
            [Entry("link", "symlink", target="/tmp"), Entry("link/owned", data=b"x")],
            [Entry("link", "symlink", target=".."), Entry("link/owned", data=b"x")],
            [Entry("hard", "hardlink", target="/etc/passwd")],
            [Entry("hard", "hardlink", target="../outside")],
            [Entry("hard", "hardlink", target="not-in-layer")],
            [Entry("dev/null", "chardev")],
            [Entry(".wh...", data=b"")],
        ],
        ids=[
            "dotdot",
            "nested-dotdot",
            "absolute",
            "through-abs-symlink",
            "through-rel-symlink",
            "hardlink-absolute",
            "hardlink-dotdot",
            "hardlink-missing",
            "device-node",
            "whiteout-dotdot",
        ],
    )
    def test_refused(self, tmp_path: Path, entries: list[Entry]) -> None:
        outside = tmp_path / "outside"
        outside.write_text("keep")
        layer, _ = blob(tmp_path, entries)
        with pytest.raises(errors.UnsafeLayer):
            unpack.unpack(layer, tmp_path / "fs" / "root")
        assert outside.read_text() == "keep"
        assert not (tmp_path / "escape").exists()

    def test_diff_id_mismatch(self, tmp_path: Path) -> None:
        layer, _ = blob(tmp_path, [Entry("a", data=b"1")])
        with pytest.raises(errors.DigestMismatch):
            unpack.unpack(layer, tmp_path / "fs", expected_diff_id="sha256:" + "0" * 64)

    def test_garbage_is_not_a_layer(self, tmp_path: Path) -> None:
        path = tmp_path / "blob"
        path.write_bytes(gzip.compress(b"not a tar at all" * 100))
        with pytest.raises(errors.UnsafeLayer):
            unpack.unpack(path, tmp_path / "fs")
