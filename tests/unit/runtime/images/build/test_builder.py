"""The builder without containers (no root needed): FROM local images, scratch and earlier
stages, ARG scoping and --build-arg, COPY layers and their cache, the committed config and
history, and errors that name the Dockerfile line. RUN is covered by the root integration
tests (tests/integration/test_image_build.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kybern.runtime.images import errors, store
from kybern.runtime.images.build import builder
from kybern.runtime.images.build.errors import BuildError
from kybern.testing import images


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "app.txt").write_text("v1")
    return root


def build(s: store.ImageStore, ctx: Path, dockerfile: str, **kw: object) -> str:
    (ctx / "Dockerfile").write_text(dockerfile)
    out = io.StringIO()
    builder.build(s, builder.Options(context=ctx, tags=["t:1"], out=out, **kw))  # type: ignore[arg-type]
    return out.getvalue()


def config(s: store.ImageStore) -> dict[str, object]:
    record = s.get("t:1")
    assert record is not None
    return record.config.raw


def test_from_scratch_copy_and_metadata(image_store: store.ImageStore, ctx: Path) -> None:
    out = build(image_store, ctx, 'FROM scratch\nCOPY app.txt /srv/\nENV A=1\nCMD ["/x"]\n')
    assert "STEP 2/4: COPY app.txt /srv/" in out
    raw = config(image_store)
    assert raw["config"] == {"Env": ["A=1"], "Cmd": ["/x"]}
    assert len(raw["rootfs"]["diff_ids"]) == 1  # type: ignore[index]
    record = image_store.get("t:1")
    assert record is not None
    assert (record.layers[0] / "srv" / "app.txt").read_text() == "v1"
    assert [h.get("empty_layer", False) for h in raw["history"]] == [False, True, True]  # type: ignore[attr-defined]


def test_copy_cache_hit_and_miss(image_store: store.ImageStore, ctx: Path) -> None:
    dockerfile = "FROM scratch\nCOPY app.txt /a\nLABEL x=y\nCOPY app.txt /b\n"
    assert "Using cache" not in build(image_store, ctx, dockerfile)
    assert build(image_store, ctx, dockerfile).count("--> Using cache") == 2
    assert "Using cache" not in build(image_store, ctx, dockerfile, no_cache=True)
    (ctx / "app.txt").write_text("v2")
    assert "Using cache" not in build(image_store, ctx, dockerfile)


def test_a_changed_metadata_step_invalidates_later_layers(
    image_store: store.ImageStore, ctx: Path
) -> None:
    build(image_store, ctx, "FROM scratch\nENV A=1\nCOPY app.txt /a\n")
    assert "Using cache" not in build(image_store, ctx, "FROM scratch\nENV A=2\nCOPY app.txt /a\n")


def test_args_global_stage_and_build_args(image_store: store.ImageStore, ctx: Path) -> None:
    layer = images.tar_layer([images.Entry("etc", "dir")])
    for version in ("6", "7"):
        images.build_image(
            image_store, f"base:{version}", [layer], config={"Labels": {"base": version}}
        )
    dockerfile = "ARG V=6\nARG DIR\nFROM base:$V\nARG V\nARG DIR=/d\nLABEL v=$V dir=$DIR\n"
    build(image_store, ctx, dockerfile)
    assert config(image_store)["config"]["Labels"] == {"base": "6", "v": "6", "dir": "/d"}  # type: ignore[index]
    out = build(image_store, ctx, dockerfile, build_args={"V": "7", "UNUSED": "x"})
    assert "were not consumed" in out
    assert config(image_store)["config"]["Labels"] == {"base": "7", "v": "7", "dir": "/d"}  # type: ignore[index]


def test_from_local_image_inherits_config_and_history(
    image_store: store.ImageStore, busybox: object, ctx: Path
) -> None:
    build(image_store, ctx, 'FROM busybox\nENTRYPOINT ["/bin/sh"]\n')
    raw = config(image_store)
    assert raw["config"]["Entrypoint"] == ["/bin/sh"]  # type: ignore[index]
    assert "Cmd" not in raw["config"]  # type: ignore[operator]  # inherited CMD reset
    assert raw["config"]["Env"]  # type: ignore[index]
    assert len(raw["history"]) == 2  # type: ignore[arg-type]


def test_stage_as_base_and_target(image_store: store.ImageStore, ctx: Path) -> None:
    dockerfile = (
        "FROM scratch AS one\nCOPY app.txt /a\nFROM one AS two\nLABEL s=two\nFROM scratch\n"
    )
    build(image_store, ctx, dockerfile, target="two")
    raw = config(image_store)
    assert raw["config"] == {"Labels": {"s": "two"}}
    assert len(raw["rootfs"]["diff_ids"]) == 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("dockerfile", "line", "message"),
    [
        ("FROM scratch\n\nCOPY missing /x\n", 3, "'missing' not found"),
        ("FROM scratch\nADD http://example.com/f /f\n", 2, "URL is not supported"),
        ("FROM scratch\nCOPY --chown=ghost app.txt /x\n", 2, "unable to find user ghost"),
        ("FROM scratch\nCOPY --from=nowhere /a /b\n", 2, "no such build stage"),
        ("FROM scratch\nLABEL a=${B:?is required}\n", 2, "B: is required"),
        ("FROM scratch\nCOPY onlyone\n", 2, "at least two arguments"),
        ("FROM scratch\nBOGUS x\n", 2, "unknown instruction"),
    ],
)
def test_errors_name_the_line(
    image_store: store.ImageStore, ctx: Path, dockerfile: str, line: int, message: str
) -> None:
    with pytest.raises(BuildError, match=message) as info:
        build(image_store, ctx, dockerfile)
    assert info.value.line == line


def test_bad_tag_refused_before_building(image_store: store.ImageStore, ctx: Path) -> None:
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(errors.InvalidReference):
        builder.build(
            image_store, builder.Options(context=ctx, tags=["UPPER CASE"], out=io.StringIO())
        )
