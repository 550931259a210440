"""COPY/ADD planning: sources, wildcards, directories, destinations, .dockerignore, owners,
archives, parents; the cache digest of the copied content; the layer tar."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from kybern.runtime.images.build import cache, context, ignore
from kybern.runtime.images.build.errors import BuildError


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "src" / "main.py").write_text("main")
    (root / "src" / "pkg" / "mod.py").write_text("mod")
    (root / "link").symlink_to("a.txt")
    return root


def no_image(_rel: str) -> os.stat_result | None:
    return None


def image_with(dirs: dict[str, os.stat_result]) -> context.StatLookup:
    return dirs.get


def plan(ctx: Path, sources: list[str], dest: str, **kw: object) -> list[context.Item]:
    tree = context.Tree(ctx, ignore.load(ctx))
    options: dict[str, object] = {"owner": None, "chmod": None, "lookup": no_image}
    options.update(kw)
    return context.plan(tree, sources, dest, **options)  # type: ignore[arg-type]


def names(items: list[context.Item]) -> list[tuple[str, str]]:
    return [(i.name, i.kind) for i in items]


class TestPlan:
    def test_single_file_to_file_with_parents(self, ctx: Path) -> None:
        items = plan(ctx, ["run.sh"], "/opt/app/start")
        assert names(items) == [("opt", "dir"), ("opt/app", "dir"), ("opt/app/start", "file")]
        assert items[-1].mode == 0o755
        assert (items[0].uid, items[0].mode) == (0, 0o755)

    def test_file_into_directory(self, ctx: Path) -> None:
        assert names(plan(ctx, ["a.txt"], "/dst/"))[-1] == ("dst/a.txt", "file")

    def test_existing_directory_destination(self, ctx: Path) -> None:
        tmp = os.stat(ctx)
        items = plan(ctx, ["a.txt"], "/tmp", lookup=image_with({"tmp": tmp}))
        assert names(items) == [("tmp", "dir"), ("tmp/a.txt", "file")]
        assert items[0].mode == stat.S_IMODE(tmp.st_mode)  # the image's directory kept as is

    def test_directory_contents_not_the_directory(self, ctx: Path) -> None:
        assert names(plan(ctx, ["src"], "/app")) == [
            ("app", "dir"),
            ("app/main.py", "file"),
            ("app/pkg", "dir"),
            ("app/pkg/mod.py", "file"),
        ]

    def test_wildcards_and_several_sources(self, ctx: Path) -> None:
        assert names(plan(ctx, ["*.txt"], "/d/")) == [
            ("d", "dir"),
            ("d/a.txt", "file"),
            ("d/b.txt", "file"),
        ]
        with pytest.raises(BuildError, match="must be a directory and end with a /"):
            plan(ctx, ["a.txt", "b.txt"], "/d")

    def test_symlinks_copied_as_links(self, ctx: Path) -> None:
        item = plan(ctx, ["link"], "/l")[-1]
        assert (item.kind, item.target) == ("symlink", "a.txt")

    def test_dockerignore(self, ctx: Path) -> None:
        (ctx / ".dockerignore").write_text("src/pkg\n*.sh\n")
        assert ("app/pkg/mod.py", "file") not in names(plan(ctx, ["src"], "/app"))
        with pytest.raises(BuildError, match="not found in the build context"):
            plan(ctx, ["run.sh"], "/x")
        assert "x/run.sh" not in [n for n, _ in names(plan(ctx, ["."], "/x/"))]

    def test_missing_source_and_escape(self, ctx: Path) -> None:
        with pytest.raises(BuildError, match="'nope' not found"):
            plan(ctx, ["nope"], "/x")
        with pytest.raises(BuildError, match="outside the build context"):
            plan(ctx, ["../etc/passwd"], "/x")

    def test_owner_and_chmod(self, ctx: Path) -> None:
        items = plan(ctx, ["a.txt"], "/new/a", owner=context.Owner(7, 8), chmod=0o600)
        assert [(i.uid, i.gid) for i in items] == [(7, 8), (7, 8)]
        assert items[-1].mode == 0o600


class TestArchives:
    def make_tar(self, ctx: Path, name: str, mode: str) -> None:
        with tarfile.open(ctx / name, mode) as tar:  # type: ignore[call-overload]
            for entry, data in (("d", None), ("d/f", b"in tar")):
                info = tarfile.TarInfo(entry)
                if data is None:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    info.size, info.uid = len(data), 5
                    tar.addfile(info, io.BytesIO(data))

    @pytest.mark.parametrize(
        ("name", "mode"), [("x.tar", "w"), ("x.tgz", "w:gz"), ("x.tar.xz", "w:xz")]
    )
    def test_add_extracts_local_archives(self, ctx: Path, name: str, mode: str) -> None:
        self.make_tar(ctx, name, mode)
        items = plan(ctx, [name], "/data/", extract_archives=True)
        assert names(items) == [("data", "dir"), ("data/d", "dir"), ("data/d/f", "file")]
        assert (items[-1].data, items[-1].uid) == (b"in tar", 5)

    def test_copy_does_not_extract(self, ctx: Path) -> None:
        self.make_tar(ctx, "x.tar", "w")
        assert names(plan(ctx, ["x.tar"], "/data/")) == [("data", "dir"), ("data/x.tar", "file")]

    def test_unsafe_archive_refused(self, ctx: Path) -> None:
        with tarfile.open(ctx / "bad.tar", "w") as tar:
            info = tarfile.TarInfo("../escape")
            tar.addfile(info, io.BytesIO(b""))
        with pytest.raises(BuildError, match="escapes"):
            plan(ctx, ["bad.tar"], "/d/", extract_archives=True)


class TestCacheInputs:
    def test_digest_follows_content_mode_and_owner_not_times(self, ctx: Path) -> None:
        first = context.digest(plan(ctx, ["src"], "/app"))
        os.utime(ctx / "src" / "main.py", (1, 1))
        assert context.digest(plan(ctx, ["src"], "/app")) == first
        (ctx / "src" / "main.py").write_text("changed")
        changed = context.digest(plan(ctx, ["src"], "/app"))
        assert changed != first
        (ctx / "src" / "main.py").chmod(0o700)
        assert context.digest(plan(ctx, ["src"], "/app")) != changed
        owned = plan(ctx, ["src"], "/app", owner=context.Owner(1, 1))
        assert context.digest(owned) != context.digest(plan(ctx, ["src"], "/app"))

    def test_step_keys_chain(self) -> None:
        base = cache.base_key("sha256:" + "a" * 64)
        one = cache.step_key(base, "RUN x", "env")
        assert one == cache.step_key(base, "RUN x", "env")
        assert one != cache.step_key(base, "RUN y", "env")
        assert one != cache.step_key(base, "RUN x", "other env")
        assert one != cache.step_key(cache.base_key(""), "RUN x", "env")
        assert cache.step_key(one, "COPY", "d1") != cache.step_key(one, "COPY", "d2")

    def test_cache_store_round_trip(self, tmp_path: Path) -> None:
        c = cache.Cache(tmp_path)
        key = cache.step_key(cache.base_key(""), "RUN x")
        assert c.get(key) is None
        entry = cache.Entry("sha256:" + "1" * 64, "sha256:" + "2" * 64, 10, "m")
        c.put(key, entry)
        assert c.get(key) == entry


def test_write_tar(ctx: Path) -> None:
    items = plan(ctx, ["src", "link"], "/app/", owner=context.Owner(3, 4))
    with tarfile.open(fileobj=io.BytesIO(context.write_tar(items))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == [i.name for i in items]
        assert tar.extractfile(members["app/main.py"]).read() == b"main"  # type: ignore[union-attr]
        assert members["app/link"].issym()
        assert (members["app/pkg"].uid, members["app/pkg"].gid) == (3, 4)
