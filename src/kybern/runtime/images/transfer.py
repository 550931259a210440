"""Pull images from and push them to registries (the orchestration over :mod:`.registry`).

A pull resolves the reference to a manifest (through an index, choosing the store's platform),
fetches the config and the missing layers in parallel, checks every blob against its digest as
it streams into the store, unpacks the layers, and only then names the image, so a name never
points at an image that cannot be used. A push uploads the blobs the registry lacks, then the
manifest under the tag.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from kybern.runtime.images import digest as digests
from kybern.runtime.images import errors, mediatypes, model, reference, registry, store

PARALLEL_LAYERS = 3
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


@asynccontextmanager
async def client_for(
    images: store.ImageStore,
    ref: reference.Reference,
    credentials: dict[str, model.Credentials] | None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncIterator[registry.Client]:
    creds = (credentials or {}).get(ref.registry)
    scheme = registry.scheme_for(ref.api_host, images.insecure_registries)
    if session is not None:
        yield registry.Client(session, ref.api_host, scheme, creds)
        return
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as own:
        yield registry.Client(own, ref.api_host, scheme, creds)


async def pull(
    images: store.ImageStore,
    ref: reference.Reference,
    *,
    credentials: dict[str, model.Credentials] | None = None,
    progress: model.ProgressCallback | None = None,
    session: aiohttp.ClientSession | None = None,
) -> model.ImageRecord:
    """Pull ``ref`` into ``images``; raises :class:`errors.PullError`."""
    try:
        async with client_for(images, ref, credentials, session) as client:
            with images.layout.adding():
                top = await _fetch_image(images, client, ref, progress)
                name = str(ref) if ref.tag else str(ref.with_digest(top))
                return await asyncio.to_thread(_finish_pull, images, name, top)
    except (
        errors.RegistryError,
        errors.DigestMismatch,
        errors.UnsafeLayer,
        aiohttp.ClientError,
        ValueError,
    ) as e:
        raise errors.PullError(f'failed to pull and unpack image "{ref}": {e}') from e


def _finish_pull(images: store.ImageStore, name: str, top: str) -> model.ImageRecord:
    images.record(top)  # unpacks every layer (and verifies diffIDs) before the name exists
    images.set_name(name, top)
    return images.record(top)


async def _fetch_image(
    images: store.ImageStore,
    client: registry.Client,
    ref: reference.Reference,
    progress: model.ProgressCallback | None,
) -> str:
    """Fetch manifest (via index), config and layers; returns the top-level digest."""
    top, doc = await _fetch_manifest(images, client, ref.repository, ref.digest or ref.tag)
    manifest = doc
    if mediatypes.manifest_kind(str(doc.get("mediaType", "")), doc) == "index":
        chosen = store.choose_platform(doc, images.platform)
        if chosen is None:
            raise errors.RegistryError(
                f"no manifest for platform {'/'.join(images.platform)} in {ref}"
            )
        _, manifest = await _fetch_manifest(images, client, ref.repository, chosen["digest"])
    descriptors = [manifest["config"], *manifest.get("layers", [])]
    await fetch_blobs(images, client, ref.repository, descriptors, progress)
    return top


async def _fetch_manifest(
    images: store.ImageStore, client: registry.Client, repository: str, tag_or_digest: str
) -> tuple[str, dict[str, Any]]:
    data, _media_type = await client.get_manifest(repository, tag_or_digest)
    digest = digests.of_bytes(data)
    if tag_or_digest.startswith("sha256:") and digest != tag_or_digest:
        raise errors.DigestMismatch(f"manifest has digest {digest}, expected {tag_or_digest}")
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise errors.RegistryError(
            f"unsupported manifest for {repository}:{tag_or_digest} (schema 1?)"
        )
    images.layout.write_blob(data, expected=digest)
    return digest, doc


async def fetch_blobs(
    images: store.ImageStore,
    client: registry.Client,
    repository: str,
    descriptors: list[dict[str, Any]],
    progress: model.ProgressCallback | None,
) -> None:
    """Fetch the blobs the store lacks, at most :data:`PARALLEL_LAYERS` at a time."""
    gate = asyncio.Semaphore(PARALLEL_LAYERS)

    async def one(desc: dict[str, Any]) -> None:
        async with gate:
            await _fetch_blob(images, client, repository, desc, progress)

    try:
        async with asyncio.TaskGroup() as tg:
            for desc in descriptors:
                tg.create_task(one(desc))
    except ExceptionGroup as group:  # report the first failure as itself; the rest were cancelled
        raise group.exceptions[0] from None


async def _fetch_blob(
    images: store.ImageStore,
    client: registry.Client,
    repository: str,
    desc: dict[str, Any],
    progress: model.ProgressCallback | None,
) -> None:
    digest, total = digests.check(str(desc["digest"])), int(desc.get("size", 0))
    if images.layout.has_blob(digest):
        if progress:
            progress(digest, total, total)
        return
    for attempt in range(registry.RETRIES + 1):
        writer = images.layout.writer(digest)
        try:
            async for chunk in client.blob_chunks(repository, digest):
                writer.write(chunk)
                if progress:
                    progress(digest, writer.size, total)
            writer.commit()
            return
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
            writer.discard()
            if attempt == registry.RETRIES:
                raise
            await client.sleep(registry.BACKOFF * 2**attempt)
        finally:
            writer.discard()


async def push(
    images: store.ImageStore,
    source: str,
    target: reference.Reference,
    *,
    credentials: dict[str, model.Credentials] | None = None,
    progress: model.ProgressCallback | None = None,
    session: aiohttp.ClientSession | None = None,
) -> str:
    """Push local image ``source`` as ``target``; returns the pushed manifest's digest."""
    top = images.resolve(source)
    if top is None:
        raise errors.ImageNotPresent(f"image {source!r} not found")
    manifest_digest, manifest = images.platform_manifest(top)
    data = images.layout.read_blob(manifest_digest)
    media_type = str(manifest.get("mediaType") or mediatypes.OCI_MANIFEST)
    mount_from = _mount_source(images, top, target)
    try:
        async with client_for(images, target, credentials, session) as client:
            for desc in [manifest["config"], *manifest.get("layers", [])]:
                await _push_blob(images, client, target.repository, desc, progress, mount_from)
            await client.put_manifest(
                target.repository, target.tag or manifest_digest, data, media_type
            )
    except (errors.RegistryError, aiohttp.ClientError) as e:
        raise errors.PushError(f'failed to push "{target}": {e}') from e
    return manifest_digest


async def _push_blob(
    images: store.ImageStore,
    client: registry.Client,
    repository: str,
    desc: dict[str, Any],
    progress: model.ProgressCallback | None,
    mount_from: str = "",
) -> None:
    digest, total = str(desc["digest"]), int(desc.get("size", 0))
    if not await client.has_blob(repository, digest):
        data = await asyncio.to_thread(images.layout.read_blob, digest)
        await client.upload_blob(repository, digest, data, mount_from=mount_from)
    if progress:
        progress(digest, total, total)


def _mount_source(images: store.ImageStore, top: str, target: reference.Reference) -> str:
    """Another repository of the same registry this image came from or went to, if any: the
    registry can then mount its blobs instead of receiving them again (it uploads otherwise)."""
    for name in images.names_of(top):
        ref = reference.parse(name)
        if ref.registry == target.registry and ref.repository != target.repository:
            return ref.repository
    return ""
