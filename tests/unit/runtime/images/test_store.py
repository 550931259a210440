"""The image store: names, ids, records, snapshots shared between stores, pull policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kybern.runtime.images import errors, mediatypes, model, store
from kybern.testing import images
from kybern.testing.images import Entry, tar_layer


class TestNames:
    def test_get_by_name_id_prefix_and_repo_digest(
        self, image_store: store.ImageStore, busybox: model.ImageRecord
    ) -> None:
        assert busybox.references == ("docker.io/library/busybox:latest",)
        assert image_store.get("busybox") == busybox
        assert image_store.get(busybox.id) == busybox
        assert image_store.get(busybox.id.removeprefix("sha256:")[:12]) == busybox
        assert image_store.get(busybox.repo_digests[0]) == busybox
        assert image_store.get("busybox:other") is None
        assert image_store.get("nothing-like-it") is None

    def test_tag_untag_and_list(
        self, image_store: store.ImageStore, busybox: model.ImageRecord
    ) -> None:
        image_store.tag("busybox", "127.0.0.1:5000/tools/bb:v1")
        (record,) = image_store.list()
        assert record.references == (
            "127.0.0.1:5000/tools/bb:v1",
            "docker.io/library/busybox:latest",
        )
        assert len(record.repo_digests) == 2
        assert image_store.untag("busybox") == ["docker.io/library/busybox:latest"]
        assert image_store.get("busybox") is None
        assert image_store.untag(busybox.id) == ["127.0.0.1:5000/tools/bb:v1"]
        assert image_store.list() == []
        with pytest.raises(errors.ImageNotPresent):
            image_store.untag("busybox")

    def test_index_json_is_an_oci_layout(
        self, image_store: store.ImageStore, busybox: model.ImageRecord
    ) -> None:
        index = json.loads((image_store.root / "index.json").read_text())
        (entry,) = index["manifests"]
        assert entry["annotations"][mediatypes.REF_NAME] == "docker.io/library/busybox:latest"
        assert json.loads((image_store.root / "oci-layout").read_text()) == {
            "imageLayoutVersion": "1.0.0"
        }
        blob = image_store.root / "blobs/sha256" / entry["digest"].removeprefix("sha256:")
        assert json.loads(blob.read_bytes())["config"]["digest"] == busybox.id


class TestRecords:
    def test_config_layers_and_busybox_contents(self, busybox: model.ImageRecord) -> None:
        assert busybox.config.cmd == ("sh",)
        assert any(e.startswith("PATH=") for e in busybox.config.env)
        (layer,) = busybox.layers
        for applet in ("bin/sh", "usr/sbin/httpd", "usr/bin/wget", "usr/bin/nc"):
            assert (layer / applet).is_symlink()
        assert (layer / "bin/busybox").stat().st_size > 100_000
        assert busybox.size > 0

    def test_two_layers_bottom_first(self, image_store: store.ImageStore) -> None:
        bottom = tar_layer([Entry("a", data=b"bottom")])
        top = tar_layer([Entry("b", data=b"top")])
        record = images.build_image(
            image_store, "two:layers", [bottom, top], config={"Entrypoint": ["/a"]}
        )
        assert [(p / n).exists() for p, n in zip(record.layers, "ab", strict=True)] == [True, True]
        assert record.config.entrypoint == ("/a",)

    def test_a_second_store_on_the_same_root_reuses_snapshots(
        self, image_store: store.ImageStore, busybox: model.ImageRecord
    ) -> None:
        marker = busybox.layers[0].parent / "meta.json"
        before = marker.stat().st_mtime_ns
        other = store.ImageStore(image_store.root)
        assert other.get("busybox") == busybox
        assert marker.stat().st_mtime_ns == before

    def test_snapshot_with_wrong_diff_id_is_refused_and_not_kept(
        self, image_store: store.ImageStore
    ) -> None:
        layer = tar_layer([Entry("a", data=b"1")])
        digest = image_store.layout.write_blob(layer)
        with pytest.raises(errors.DigestMismatch):
            image_store.snapshot(digest, "sha256:" + "0" * 64)
        assert [p.name for p in image_store.layout.snapshots_dir.iterdir()] == []


class TestPolicies:
    async def test_never_and_absent(self, image_store: store.ImageStore) -> None:
        with pytest.raises(errors.ImageNotPresent, match="pull policy of Never"):
            await image_store.ensure("busybox", policy=model.PullPolicy.NEVER)

    async def test_present_images_need_no_registry(
        self, image_store: store.ImageStore, busybox: model.ImageRecord
    ) -> None:
        for policy in (model.PullPolicy.NEVER, model.PullPolicy.IF_NOT_PRESENT):
            assert await image_store.ensure("busybox:latest", policy=policy) == busybox

    async def test_invalid_name(self, image_store: store.ImageStore) -> None:
        with pytest.raises(errors.InvalidReference):
            await image_store.ensure("Busybox")

    async def test_unreachable_registry_is_a_pull_error(
        self, image_store: store.ImageStore, tmp_path: Path
    ) -> None:
        from kybern.runtime.images import registry

        registry.RETRIES, saved = 0, registry.RETRIES
        try:
            with pytest.raises(errors.PullError, match="failed to pull"):
                await image_store.ensure("127.0.0.1:1/nothing:v1", policy=model.PullPolicy.ALWAYS)
        finally:
            registry.RETRIES = saved


def test_choose_platform() -> None:
    index = {
        "manifests": [
            {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    }
    assert store.choose_platform(index, ("linux", "arm64"))["digest"].endswith("1" * 64)  # type: ignore[index]
    assert store.choose_platform(index, ("linux", "s390x"))["digest"].endswith("2" * 64)  # type: ignore[index]
    assert store.choose_platform({"manifests": []}, ("linux", "amd64")) is None


def test_concurrent_stores_unpack_a_layer_once(
    image_store: store.ImageStore, busybox: model.ImageRecord
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store.remove_tree(busybox.layers[0].parent)
    with ThreadPoolExecutor(4) as pool:
        records = list(
            pool.map(lambda _: store.ImageStore(image_store.root).get("busybox"), range(4))
        )
    assert all(r == busybox for r in records)
    assert [p.name for p in image_store.layout.snapshots_dir.iterdir()] == [
        busybox.layers[0].parent.name
    ]
    assert (busybox.layers[0] / "bin/busybox").is_file()
