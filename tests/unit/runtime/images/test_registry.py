"""The registry client and pull/push against an in-memory registry: token and basic auth,
retries, index platform choice, pull by digest, and refusal of tampered content."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from kybern.runtime.images import digest as digests
from kybern.runtime.images import errors, mediatypes, model, reference, registry, store, transfer
from kybern.testing import images
from kybern.testing.images import Entry, tar_layer

from .fakeregistry import FakeRegistry, serve


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "BACKOFF", 0.001)


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
async def host(fake: FakeRegistry) -> AsyncIterator[str]:
    async with serve(fake) as h:
        yield h


@pytest.fixture
def source(image_store: store.ImageStore) -> model.ImageRecord:
    return images.build_image(image_store, "app:v1", [tar_layer([Entry("hello", data=b"world")])])


async def push_and_pull(
    image_store: store.ImageStore,
    tmp_path_factory: pytest.TempPathFactory,
    host: str,
    creds: dict[str, model.Credentials] | None = None,
) -> model.ImageRecord:
    target = reference.parse(f"{host}/team/app:v1")
    await transfer.push(image_store, "app:v1", target, credentials=creds)
    other = store.ImageStore(tmp_path_factory.mktemp("pulled"))
    return await transfer.pull(other, target, credentials=creds)


class TestAuth:
    async def test_anonymous_bearer_token(
        self,
        image_store: store.ImageStore,
        source: model.ImageRecord,
        fake: FakeRegistry,
        host: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        fake.auth = "bearer"
        pulled = await push_and_pull(image_store, tmp_path_factory, host)
        assert pulled.id == source.id
        scopes = {r["scope"] for r in fake.token_requests}
        assert scopes == {"repository:team/app:pull,push", "repository:team/app:pull"}
        assert {r["service"] for r in fake.token_requests} == {"fake"}

    async def test_bearer_token_with_credentials(
        self,
        image_store: store.ImageStore,
        source: model.ImageRecord,
        fake: FakeRegistry,
        host: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        fake.auth, fake.users = "bearer", {"me": "pw"}
        with pytest.raises(errors.PushError, match="authentication"):
            await push_and_pull(image_store, tmp_path_factory, host)
        creds = {host: model.Credentials("me", "pw")}
        assert (await push_and_pull(image_store, tmp_path_factory, host, creds)).id == source.id

    async def test_basic_auth(
        self,
        image_store: store.ImageStore,
        source: model.ImageRecord,
        fake: FakeRegistry,
        host: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        fake.auth, fake.users = "basic", {"me": "pw"}
        with pytest.raises(errors.PushError, match="unauthorized"):
            await push_and_pull(image_store, tmp_path_factory, host)
        creds = {host: model.Credentials("me", "pw")}
        assert (await push_and_pull(image_store, tmp_path_factory, host, creds)).id == source.id


class TestPull:
    async def test_retries_transient_failures(
        self,
        image_store: store.ImageStore,
        source: model.ImageRecord,
        fake: FakeRegistry,
        host: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        fake.fail_next = 3
        assert (await push_and_pull(image_store, tmp_path_factory, host)).id == source.id
        assert fake.fail_next == 0

    async def test_gives_up_after_retries(
        self, image_store: store.ImageStore, fake: FakeRegistry, host: str
    ) -> None:
        fake.fail_next = 100
        with pytest.raises(errors.PullError, match="HTTP 503"):
            await transfer.pull(image_store, reference.parse(f"{host}/x:v1"))

    async def test_unknown_image(self, image_store: store.ImageStore, host: str) -> None:
        with pytest.raises(errors.PullError, match="not found: manifest unknown"):
            await image_store.ensure(f"{host}/nothing:v1")

    async def test_index_picks_platform_and_pull_by_digest(
        self,
        image_store: store.ImageStore,
        source: model.ImageRecord,
        fake: FakeRegistry,
        host: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        manifest_digest = await transfer.push(
            image_store, "app:v1", reference.parse(f"{host}/app:amd64")
        )
        manifest = fake.manifests[("app", manifest_digest)][0]
        index = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": "sha256:" + "e" * 64,
                    "size": 1,
                    "platform": {"os": "linux", "architecture": "arm64"},
                },
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": manifest_digest,
                    "size": len(manifest),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
            ],
        }
        index_digest = fake.add_manifest(
            "app", "multi", json.dumps(index).encode(), mediatypes.OCI_INDEX
        )
        other = store.ImageStore(tmp_path_factory.mktemp("pulled"), platform=("linux", "amd64"))
        pulled = await other.ensure(f"{host}/app:multi", policy=model.PullPolicy.ALWAYS)
        assert pulled.id == source.id
        assert pulled.repo_digests == (f"{host}/app@{index_digest}",)
        by_digest = store.ImageStore(tmp_path_factory.mktemp("bydigest"))
        record = await by_digest.ensure(f"{host}/app@{index_digest}")
        assert record.references == ()
        assert by_digest.get(f"{host}/app@{index_digest}") == record

    async def test_tampered_blob_is_refused(
        self,
        image_store: store.ImageStore,
        source: model.ImageRecord,
        fake: FakeRegistry,
        host: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        await transfer.push(image_store, "app:v1", reference.parse(f"{host}/app:v1"))
        layer_digest = next(
            d for d, b in fake.blobs.items() if digests.of_bytes(b) == d and b[:2] == b"\x1f\x8b"
        )
        data = bytearray(fake.blobs[layer_digest])
        data[-1] ^= 0xFF
        fake.blobs[layer_digest] = bytes(data)
        other = store.ImageStore(tmp_path_factory.mktemp("pulled"))
        with pytest.raises(errors.PullError, match="expected " + layer_digest):
            await other.ensure(f"{host}/app:v1")
        assert other.list() == []
        assert not other.layout.has_blob(layer_digest)

    async def test_tampered_manifest_by_digest_is_refused(
        self,
        image_store: store.ImageStore,
        source: model.ImageRecord,
        fake: FakeRegistry,
        host: str,
    ) -> None:
        digest = await transfer.push(image_store, "app:v1", reference.parse(f"{host}/app:v1"))
        data, media_type = fake.manifests[("app", digest)]
        fake.manifests[("app", digest)] = (data + b" ", media_type)
        with pytest.raises(errors.PullError, match="manifest has digest"):
            await transfer.pull(
                store.ImageStore(image_store.root.parent / "o"),
                reference.parse(f"{host}/app@{digest}"),
            )

    async def test_progress_reports_every_blob(
        self,
        image_store: store.ImageStore,
        source: model.ImageRecord,
        host: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        await transfer.push(image_store, "app:v1", reference.parse(f"{host}/app:v1"))
        seen: dict[str, tuple[int, int]] = {}
        other = store.ImageStore(tmp_path_factory.mktemp("pulled"))
        await other.ensure(
            f"{host}/app:v1",
            progress=lambda what, done, total: seen.__setitem__(what, (done, total)),
        )
        assert source.id in seen
        assert len(seen) == 2  # the config and the one layer
        assert all(done == total > 0 for done, total in seen.values())


def test_plain_http_for_loopback_and_insecure_hosts() -> None:
    assert registry.scheme_for("127.0.0.1:5000", set()) == "http"
    assert registry.scheme_for("localhost", set()) == "http"
    assert registry.scheme_for("registry.example:5000", set()) == "https"
    assert registry.scheme_for("registry.example:5000", {"registry.example:5000"}) == "http"
