"""Images against a real registry (Debian ``docker-registry`` on 127.0.0.1): push the busybox
image, pull it into another store, verify digests, refuse tampered blobs, and move images
through both archive formats and back into the registry."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from kybern.cli import image as image_cli
from kybern.runtime.images import archive, errors, model, reference, store, transfer
from kybern.testing import images, registry

pytestmark = pytest.mark.skipif(
    not (registry.available() and images.busybox_available()),
    reason="needs Debian docker-registry and busybox-static (scripts/install-system-deps.sh)",
)


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="module")
def host(registry_dir: Path) -> Iterator[str]:
    with registry.running(registry_dir) as h:
        yield h


@pytest.fixture
def source(tmp_path: Path) -> store.ImageStore:
    images_ = store.ImageStore(tmp_path / "source")
    images.import_busybox(images_)
    return images_


def manifest_digest(host: str, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{host}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return str(resp.headers["Docker-Content-Digest"])


async def test_push_then_pull_into_another_store(
    source: store.ImageStore, host: str, tmp_path: Path
) -> None:
    built = source.get("busybox")
    assert built is not None
    target = reference.parse(f"{host}/library/busybox:1.35")
    pushed = await transfer.push(source, "busybox", target)
    assert manifest_digest(host, "library/busybox", "1.35") == pushed

    other = store.ImageStore(tmp_path / "other")
    progress: dict[str, int] = {}
    pulled = await other.ensure(str(target), progress=lambda w, d, t: progress.__setitem__(w, d))
    assert pulled.id == built.id
    assert pulled.repo_digests == (f"{host}/library/busybox@{pushed}",)
    assert (pulled.layers[0] / "usr/sbin/httpd").is_symlink()
    assert set(progress) == {
        built.id,
        *(d for d in other.layout.all_blobs() if d not in (built.id, pushed)),
    }
    again = await other.ensure(str(target), policy=model.PullPolicy.ALWAYS)
    assert again == pulled


def test_cli_push_and_pull(source: store.ImageStore, host: str, tmp_path: Path) -> None:
    data_dir = source.root.parent / "cli"
    images.import_busybox(store.ImageStore(store.default_root(data_dir)))
    name = f"{host}/cli/busybox:v1"
    assert (
        image_cli.main(["image", "push", "-q", "--data-dir", str(data_dir), "busybox", name]) == 0
    )
    pulled_dir = tmp_path / "pulled"
    assert image_cli.main(["image", "pull", "-q", "--data-dir", str(pulled_dir), name]) == 0
    record = store.ImageStore(store.default_root(pulled_dir)).get(name)
    assert record is not None
    assert record.config.cmd == ("sh",)


async def test_tampered_blob_is_refused(
    source: store.ImageStore, host: str, registry_dir: Path, tmp_path: Path
) -> None:
    built = images.build_image(
        source, "tamper:v1", [images.tar_layer([images.Entry("x", data=b"honest")])]
    )
    await transfer.push(source, "tamper:v1", reference.parse(f"{host}/tamper:v1"))
    manifest = json.loads(source.layout.read_blob(source.resolve("tamper:v1") or ""))
    blob = registry.blob_file(registry_dir, manifest["layers"][0]["digest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    other = store.ImageStore(tmp_path / "other")
    with pytest.raises(errors.PullError, match="expected sha256:"):
        await other.ensure(f"{host}/tamper:v1")
    assert other.get(built.id) is None
    assert other.list() == []


@pytest.mark.parametrize("fmt", archive.FORMATS)
async def test_archive_round_trip_back_into_the_registry(
    source: store.ImageStore, host: str, tmp_path: Path, fmt: str
) -> None:
    tarball = tmp_path / "busybox.tar"
    archive.save(source, ["busybox"], tarball, fmt=fmt)
    offline = store.ImageStore(tmp_path / "offline")
    assert archive.load(offline, tarball) == ["docker.io/library/busybox:latest"]
    target = reference.parse(f"{host}/from-{fmt}/busybox:v1")
    await transfer.push(offline, "busybox", target)
    pulled = await store.ImageStore(tmp_path / "pulled").ensure(str(target))
    assert pulled.id == (source.get("busybox") or pulled).id


async def test_push_to_another_repository_mounts_blobs(source: store.ImageStore, host: str) -> None:
    first = reference.parse(f"{host}/mount/first:v1")
    await transfer.push(source, "busybox", first)
    source.tag("busybox", str(first))
    calls: list[tuple[str, str, int]] = []

    async def record(_session: object, _ctx: object, params: aiohttp.TraceRequestEndParams) -> None:
        calls.append((params.method, str(params.url), params.response.status))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(record)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        second = reference.parse(f"{host}/mount/second:v1")
        digest = await transfer.push(source, str(first), second, session=session)
    assert manifest_digest(host, "mount/second", "v1") == digest
    mounts = [status for method, url, status in calls if method == "POST" and "mount=" in url]
    assert mounts == [201, 201]  # config and layer mounted from mount/first
    assert not [url for method, url, _ in calls if method == "PUT" and "/blobs/" in url]
