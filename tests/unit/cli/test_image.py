"""``kybern image`` through its parser and handler (the lead wires it into ``kybern``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kybern.cli import image
from kybern.runtime.images import store
from kybern.testing import images


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    if not images.busybox_available():
        pytest.skip("busybox-static is not installed")
    images.import_busybox(store.ImageStore(store.default_root(tmp_path)))
    return tmp_path


def kybern_image(data_dir: Path, *args: str) -> int:
    return image.main(["image", args[0], "--data-dir", str(data_dir), *args[1:]])


def test_ls_tag_inspect_rm_gc(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kybern_image(data_dir, "tag", "busybox", "127.0.0.1:5000/bb:v1") == 0
    assert kybern_image(data_dir, "ls") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["127.0.0.1:5000/bb", "v1"],
        ["docker.io/library/busybox", "latest"],
    ]
    assert kybern_image(data_dir, "inspect", "busybox") == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["Config"]["Cmd"] == ["sh"]
    assert doc["RepoTags"] == ["127.0.0.1:5000/bb:v1", "docker.io/library/busybox:latest"]
    assert kybern_image(data_dir, "rm", doc["Id"]) == 0
    assert "Untagged: docker.io/library/busybox:latest" in capsys.readouterr().out
    assert kybern_image(data_dir, "gc") == 0
    assert capsys.readouterr().out.startswith("removed 3 blobs and 1 snapshots")


def test_save_rm_load(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bb.tar"
    assert kybern_image(data_dir, "save", "-o", str(out), "--format", "oci-archive", "busybox") == 0
    assert kybern_image(data_dir, "rm", "busybox") == 0
    assert kybern_image(data_dir, "load", "-i", str(out)) == 0
    assert "Loaded image: docker.io/library/busybox:latest" in capsys.readouterr().out


def test_errors_are_one_line(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kybern_image(data_dir, "inspect", "nothing") == 1
    assert capsys.readouterr().err == "error: image 'nothing' not found\n"
    assert kybern_image(data_dir, "pull", "Bad/Name") == 1
    assert "invalid reference format" in capsys.readouterr().err
    assert kybern_image(data_dir, "load", "-i", str(data_dir / "missing.tar")) == 1
    assert "cannot read archive" in capsys.readouterr().err
