"""``kybern image build`` for real (root only: RUN runs in runc/crun over an overlay).

Builds on the busybox image made from the host's busybox-static: RUN that creates and deletes
files, COPY --chown, ADD of a local tar, ENV/WORKDIR/USER/ENTRYPOINT/CMD; checks the config,
the layer cache (full reuse, partial rebuild after a change, --no-cache), runs the result under
the oci runtime, pushes it to a local registry and pulls it elsewhere, multi-stage COPY --from,
and FROM scratch with a static binary.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kybern.cli import image as image_cli
from kybern.runtime import cri, crilog, registry
from kybern.runtime.images import reference, store, transfer
from kybern.runtime.images.build import builder
from kybern.runtime.images.build.errors import BuildError
from kybern.runtime.oci import OciRuntime
from kybern.testing import images
from kybern.testing import registry as test_registry

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="RUN needs root (overlay mounts, runc)"),
    pytest.mark.skipif(
        (shutil.which("runc") is None and shutil.which("crun") is None)
        or not images.busybox_available(),
        reason="needs runc or crun and busybox-static",
    ),
    pytest.mark.timeout(60),
]

DOCKERFILE = """\
FROM busybox
ARG GREETING=hello
ENV APP_HOME=/app \\
    MODE="production build"
WORKDIR $APP_HOME
RUN echo "$GREETING from run" > /greeting && mkdir -p /var/junk && rm -rf /var/www \\
    && touch /tmp/made-by-run && rm -rf /usr/sbin && mkdir /usr/sbin && touch /usr/sbin/mine
COPY --chown=nobody:nobody config.txt ./
ADD bundle.tar /opt/bundle/
RUN cat /app/config.txt > /app/copied-at-build
USER nobody
ENTRYPOINT ["sh", "-c"]
CMD ["cat /greeting /app/config.txt; id -u; pwd; echo $MODE"]
"""


def write_tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def images_store(tmp_path: Path) -> store.ImageStore:
    s = store.ImageStore(tmp_path / "images")
    images.import_busybox(s)
    return s


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "config.txt").write_text("config v1\n")
    (root / "ignored.txt").write_text("secret")
    (root / ".dockerignore").write_text("ignored.txt\n")
    write_tar(root / "bundle.tar", {"lib/data.txt": b"from the tar\n"})
    return root


def build(s: store.ImageStore, ctx: Path, *tags: str, **kw: object) -> tuple[str, builder.Builder]:
    out = io.StringIO()
    b = builder.Builder(s, builder.Options(context=ctx, tags=list(tags), out=out, **kw))  # type: ignore[arg-type]
    b.build()
    return out.getvalue(), b


def read_layer(s: store.ImageStore, digest: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(s.layout.blob_path(digest)) as tar:
        return {m.name: m for m in tar.getmembers()}


class TestBuild:
    def test_config_layers_and_history(self, images_store: store.ImageStore, ctx: Path) -> None:
        out, _ = build(images_store, ctx, "app:v1", "app:latest")
        assert "STEP 1/11: FROM busybox" in out
        assert "STEP 5/11: RUN echo" in out
        record = images_store.get("app:v1")
        assert record is not None
        assert set(record.references) == {
            "docker.io/library/app:v1",
            "docker.io/library/app:latest",
        }
        config = record.config
        assert config.entrypoint == ("sh", "-c")
        assert config.cmd == ("cat /greeting /app/config.txt; id -u; pwd; echo $MODE",)
        assert "APP_HOME=/app" in config.env
        assert "MODE=production build" in config.env
        assert (config.working_dir, config.user) == ("/app", "nobody")
        assert len(record.layers) == 5  # busybox + RUN + COPY + ADD + RUN
        history = config.raw["history"]
        assert len([h for h in history if not h.get("empty_layer")]) == 5
        assert len(config.raw["rootfs"]["diff_ids"]) == 5

    def test_layer_contents(self, images_store: store.ImageStore, ctx: Path) -> None:
        build(images_store, ctx, "app:v1")
        top = images_store.resolve("app:v1")
        assert top is not None
        layers = [d["digest"] for d in images_store.manifest_for(top)["layers"]]
        run_layer = read_layer(images_store, layers[1])
        assert "var/.wh.www" in run_layer  # deletion of a lower layer's directory
        assert "usr/sbin/.wh..wh..opq" in run_layer  # a directory replaced: opaque
        assert "usr/sbin/mine" in run_layer
        assert {"greeting", "tmp/made-by-run", "var/junk", "app"} <= set(run_layer)
        assert not {"proc", "sys", "dev"} & set(run_layer)  # runc's mount points left out
        copy_layer = read_layer(images_store, layers[2])
        member = copy_layer["app/config.txt"]
        assert (member.uid, member.gid) == (65534, 65534)
        assert "app/ignored.txt" not in copy_layer
        add_layer = read_layer(images_store, layers[3])
        assert add_layer["opt/bundle/lib/data.txt"].size == len(b"from the tar\n")

    def test_rebuild_is_fully_cached_and_a_change_rebuilds_later_steps(
        self, images_store: store.ImageStore, ctx: Path
    ) -> None:
        first, _ = build(images_store, ctx, "app:v1")
        assert "Using cache" not in first
        again, _ = build(images_store, ctx, "app:v1")
        assert again.count("--> Using cache") == 4
        (ctx / "config.txt").write_text("config v2\n")
        changed, _ = build(images_store, ctx, "app:v1")
        steps = changed.split("STEP ")
        assert "Using cache" in steps[5]  # the first RUN
        assert "Using cache" not in steps[6]  # COPY of the changed file
        assert "Using cache" not in steps[7]
        assert "Using cache" not in steps[8]
        fresh, _ = build(images_store, ctx, "app:v1", no_cache=True)
        assert "Using cache" not in fresh

    def test_build_args_change_the_run_step(
        self, images_store: store.ImageStore, ctx: Path
    ) -> None:
        build(images_store, ctx, "app:v1")
        out, _ = build(images_store, ctx, "app:v2", build_args={"GREETING": "hi"})
        assert out.split("STEP ")[5].count("Using cache") == 0
        record = images_store.get("app:v2")
        assert record is not None
        assert (record.layers[1] / "greeting").read_text() == "hi from run\n"

    def test_failing_run_names_its_line(
        self, images_store: store.ImageStore, tmp_path: Path
    ) -> None:
        (tmp_path / "Dockerfile").write_text("FROM busybox\n\nRUN echo visible; exit 3\n")
        out = io.StringIO()
        with pytest.raises(BuildError, match="returned a non-zero code: 3") as info:
            builder.build(images_store, builder.Options(context=tmp_path, out=out))
        assert info.value.line == 3
        assert "visible" in out.getvalue()  # RUN output streamed

    def test_add_url_refused(self, images_store: store.ImageStore, tmp_path: Path) -> None:
        (tmp_path / "Dockerfile").write_text("FROM busybox\nADD https://example.com/x /x\n")
        with pytest.raises(BuildError, match="URL is not supported") as info:
            builder.build(images_store, builder.Options(context=tmp_path, out=io.StringIO()))
        assert info.value.line == 2

    def test_multi_stage_copy_from_and_target(
        self, images_store: store.ImageStore, tmp_path: Path
    ) -> None:
        (tmp_path / "Dockerfile").write_text(
            "FROM busybox AS builder\nRUN mkdir /out && echo artifact > /out/a\n"
            "FROM busybox\nCOPY --from=builder /out/a /a\nRUN test -f /a && ! test -d /out\n"
        )
        build(images_store, tmp_path, "multi:1")
        record = images_store.get("multi:1")
        assert record is not None
        assert (record.layers[-2] / "a").read_text() == "artifact\n"
        build(images_store, tmp_path, "multi:builder", target="builder")
        stage = images_store.get("multi:builder")
        assert stage is not None
        assert len(stage.layers) == 2

    def test_cli(self, tmp_path: Path, ctx: Path, capsys: pytest.CaptureFixture[str]) -> None:
        data = tmp_path / "data"
        images.import_busybox(store.ImageStore(store.default_root(data)))
        argv = [
            "image",
            "build",
            "--data-dir",
            str(data),
            "-t",
            "cli:1",
            "--build-arg",
            "GREETING=yo",
            str(ctx),
        ]
        assert image_cli.main(argv) == 0
        assert "Successfully tagged docker.io/library/cli:1" in capsys.readouterr().out
        assert (
            image_cli.main(["image", "build", "--data-dir", str(data), str(tmp_path / "none")]) == 1
        )
        assert "cannot read the Dockerfile" in capsys.readouterr().err


# --- running, pushing, scratch -----------------------------------------------------------


@pytest.fixture
async def runtime(images_store: store.ImageStore) -> AsyncIterator[OciRuntime]:
    root = Path(f"/tmp/kyb-build-{uuid.uuid4().hex[:8]}")  # short: unix socket paths are limited
    rt = OciRuntime(registry.Options(root=root), images=images_store)
    await rt.start()
    yield rt
    for sandbox in await rt.list_pod_sandboxes():
        await rt.remove_pod_sandbox(sandbox.id)
    shutil.rmtree(root, ignore_errors=True)


async def run_image(rt: OciRuntime, image: str, logs: Path) -> str:
    """Run ``image``'s own entrypoint/cmd in a new pod; its output once it exited 0."""
    sandbox_config = cri.PodSandboxConfig(
        metadata=cri.PodMeta(name="b", namespace="default", uid=uuid.uuid4().hex)
    )
    sandbox = await rt.run_pod_sandbox(sandbox_config)
    log = logs / f"{uuid.uuid4().hex}.log"
    config = cri.ContainerConfig(metadata=cri.ContainerMeta("c"), image=image, log_path=str(log))
    cid = await rt.create_container(sandbox, config, sandbox_config)
    await rt.start_container(cid)
    deadline = time.monotonic() + 15
    while (status := await rt.container_status(cid)).state != cri.ContainerState.EXITED:
        assert time.monotonic() < deadline, "the container did not exit"
        await asyncio.sleep(0.02)
    text = log_text(log)
    assert status.exit_code == 0, text
    return text


def log_text(path: Path) -> str:
    out = []
    for line in path.read_bytes().splitlines():
        entry = crilog.parse_line(line)
        assert entry is not None
        out.append(entry.content + (b"" if entry.partial else b"\n"))
    return b"".join(out).decode()


async def test_built_image_runs(
    images_store: store.ImageStore, ctx: Path, runtime: OciRuntime, tmp_path: Path
) -> None:
    await asyncio.to_thread(build, images_store, ctx, "app:v1")
    out = await run_image(runtime, "app:v1", tmp_path)
    assert out.split("\n")[:5] == [
        "hello from run",
        "config v1",
        "65534",
        "/app",
        "production build",
    ]


async def test_from_scratch_with_a_static_binary(
    images_store: store.ImageStore, tmp_path: Path, runtime: OciRuntime
) -> None:
    ctx = tmp_path / "scratch"
    ctx.mkdir()
    shutil.copy2("/bin/busybox", ctx / "busybox")
    (ctx / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "mkdir", "/made"]\n'
        'ENTRYPOINT ["/bin/busybox"]\nCMD ["sh", "-c", "/bin/busybox ls / | /bin/busybox grep made"]\n'
    )
    await asyncio.to_thread(build, images_store, ctx, "static:1")
    record = images_store.get("static:1")
    assert record is not None
    assert len(record.layers) == 2
    assert (await run_image(runtime, "static:1", tmp_path)).strip() == "made"


@pytest.fixture
def registry_host(tmp_path: Path) -> Iterator[str]:
    if not test_registry.available():
        pytest.skip("needs Debian docker-registry")
    with test_registry.running(tmp_path) as host:
        yield host


async def test_push_and_pull_into_another_store(
    images_store: store.ImageStore, ctx: Path, registry_host: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(build, images_store, ctx, "app:v1")
    target = reference.parse(f"{registry_host}/team/app:v1")
    await transfer.push(images_store, "app:v1", target)
    other = store.ImageStore(tmp_path / "other")
    pulled = await transfer.pull(other, target)
    built = images_store.get("app:v1")
    assert built is not None
    assert pulled.id == built.id
    assert (pulled.layers[-1] / "app" / "copied-at-build").read_text() == "config v1\n"
