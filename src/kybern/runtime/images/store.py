"""``ImageStore``: the host's image store, implementing :class:`model.ImageService`.

Content lives in an OCI layout (:mod:`.layout`) under a root shared by all agents on the host
(``<data-dir>/images``); each layer is unpacked once into ``snapshots/<diffID hex>/fs`` (see
:mod:`.unpack`), with ``meta.json`` beside it. A snapshot is unpacked into a private temporary
directory and renamed into place, so concurrent agents never see a half-unpacked layer and the
loser of a race just discards its copy.

Names resolve to the descriptor recorded in ``index.json``: a manifest, or an index from which
the host platform's manifest is chosen. An image's id is its config digest, as in containerd.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kybern.runtime.images import digest as digests
from kybern.runtime.images import errors, layout, mediatypes, model, reference, unpack


def default_root(data_dir: Path) -> Path:
    return data_dir / "images"


def host_platform() -> tuple[str, str]:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )
    return "linux", arch


class ImageStore:
    def __init__(
        self,
        root: Path,
        *,
        insecure_registries: Iterable[str] = (),
        platform: tuple[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.layout = layout.Layout(self.root)
        self.insecure_registries = set(insecure_registries)
        self.platform = platform or host_platform()

    # --- ImageService ------------------------------------------------------------------

    async def ensure(
        self,
        reference_: str,
        *,
        policy: model.PullPolicy = model.PullPolicy.IF_NOT_PRESENT,
        credentials: dict[str, model.Credentials] | None = None,
        progress: model.ProgressCallback | None = None,
    ) -> model.ImageRecord:
        ref = reference.parse(reference_)
        if policy is not model.PullPolicy.ALWAYS:
            local = await asyncio.to_thread(self.get, str(ref))
            if local is not None:
                return local
            if policy is model.PullPolicy.NEVER:
                raise errors.ImageNotPresent(
                    f'Container image "{reference_}" is not present with pull policy of Never'
                )
        from kybern.runtime.images import transfer  # transfer imports store's types

        return await transfer.pull(self, ref, credentials=credentials, progress=progress)

    def get(self, reference_: str) -> model.ImageRecord | None:
        found = self.resolve(reference_)
        return None if found is None else self.record(found)

    def list(self) -> list[model.ImageRecord]:
        by_id: dict[str, model.ImageRecord] = {}
        for top in {d["digest"] for d in self.layout.refs().values()}:
            try:
                record = self.record(top)
            except errors.ImageError:
                continue  # an index whose platform manifest was never pulled
            seen = by_id.get(record.id)
            if seen is not None:  # one image under two manifests (e.g. loaded from an archive)
                record = dataclasses.replace(
                    seen,
                    references=tuple(sorted({*seen.references, *record.references})),
                    repo_digests=tuple(sorted({*seen.repo_digests, *record.repo_digests})),
                )
            by_id[record.id] = record
        return sorted(by_id.values(), key=lambda r: (r.references, r.id))

    async def remove(self, reference_: str) -> None:
        await asyncio.to_thread(self.untag, reference_)

    # --- names -------------------------------------------------------------------------

    def resolve(self, text: str) -> str | None:
        """The top-level manifest/index digest a name, ``name@digest`` or image id points at."""
        refs = self.layout.refs()
        try:
            ref = reference.parse(text)
        except errors.InvalidReference:
            ref = None
        if ref is not None:
            if str(ref) in refs:
                return str(refs[str(ref)]["digest"])
            if ref.digest and self.layout.has_blob(ref.digest):
                names = {reference.parse(n).name for n in refs}
                return ref.digest if ref.name in names else None
        return self._resolve_id(text, refs)

    def _resolve_id(self, text: str, refs: dict[str, dict[str, Any]]) -> str | None:
        hex_prefix = text.removeprefix("sha256:")
        if len(hex_prefix) < 3 or not all(c in "0123456789abcdef" for c in hex_prefix):
            return None
        matches = {}
        for d in refs.values():
            try:
                config = self.manifest_for(d["digest"])["config"]["digest"]
            except errors.ImageError:
                continue
            if digests.hex_of(config).startswith(hex_prefix):
                matches[config] = d["digest"]
        if len(matches) > 1:
            raise errors.InvalidReference(f"image id prefix {text!r} is ambiguous")
        return next(iter(matches.values()), None)

    def names_of(self, top_digest: str) -> builtins.list[str]:
        return sorted(n for n, d in self.layout.refs().items() if d["digest"] == top_digest)

    def set_name(self, name: str, top_digest: str) -> None:
        """Point ``name`` (a canonical reference) at a manifest or index already in the store."""
        data = self.layout.read_blob(top_digest)
        doc = json.loads(data)
        media_type = doc.get("mediaType") or (
            mediatypes.OCI_INDEX if "manifests" in doc else mediatypes.OCI_MANIFEST
        )
        descriptor = {"mediaType": media_type, "digest": top_digest, "size": len(data)}
        self.layout.set_ref(name, descriptor)

    def tag(self, source: str, target: str) -> None:
        top = self.resolve(source)
        if top is None:
            raise errors.ImageNotPresent(f"image {source!r} not found")
        self.set_name(str(reference.parse(target)), top)

    def untag(self, text: str) -> builtins.list[str]:
        """Remove a name, or every name of an image id; returns the names removed."""
        refs = self.layout.refs()
        try:
            ref: reference.Reference | None = reference.parse(text)
        except errors.InvalidReference:
            ref = None
        if ref is not None and str(ref) in refs:
            names = {str(ref)}
        else:
            top = self.resolve(text)
            if top is None:
                raise errors.ImageNotPresent(f"image {text!r} not found")
            config = self.manifest_for(top)["config"]["digest"]
            names = {n for n, d in refs.items() if self._config_of(d["digest"]) == config}
        self.layout.remove_refs(names)
        return sorted(names)

    def _config_of(self, top: str) -> str:
        try:
            return str(self.manifest_for(top)["config"]["digest"])
        except errors.ImageError:
            return ""

    # --- manifests and records ---------------------------------------------------------

    def manifest_for(self, top_digest: str) -> dict[str, Any]:
        """The image manifest of ``top_digest``, choosing this host's platform in an index."""
        return self.platform_manifest(top_digest)[1]

    def platform_manifest(self, top_digest: str) -> tuple[str, dict[str, Any]]:
        """``(digest, manifest)`` of the image manifest ``top_digest`` is or indexes."""
        doc = self.layout.read_json(top_digest)
        if mediatypes.manifest_kind(str(doc.get("mediaType", "")), doc) == "manifest":
            return top_digest, doc
        chosen = choose_platform(doc, self.platform)
        if chosen is None or not self.layout.has_blob(chosen["digest"]):
            raise errors.ImageNotPresent(
                f"no manifest for {'/'.join(self.platform)} in {top_digest}"
            )
        return chosen["digest"], self.layout.read_json(chosen["digest"])

    def record(self, top_digest: str) -> model.ImageRecord:
        manifest = self.manifest_for(top_digest)
        config_raw = self.layout.read_json(manifest["config"]["digest"])
        diff_ids = list((config_raw.get("rootfs") or {}).get("diff_ids") or [])
        layers = manifest.get("layers") or []
        if len(diff_ids) != len(layers):
            raise errors.ImageError(
                f"image {top_digest}: {len(layers)} layers but {len(diff_ids)} diff_ids"
            )
        snapshots = tuple(
            self.snapshot(lay["digest"], diff) for lay, diff in zip(layers, diff_ids, strict=True)
        )
        names = self.names_of(top_digest)
        repos = sorted({reference.parse(n).name for n in names})
        return model.ImageRecord(
            id=manifest["config"]["digest"],
            references=tuple(n for n in names if "@" not in n),
            repo_digests=tuple(f"{r}@{top_digest}" for r in repos),
            config=image_config(config_raw),
            layers=snapshots,
            size=sum(int(lay.get("size", 0)) for lay in layers),
            os=str(config_raw.get("os", "linux")),
            architecture=str(config_raw.get("architecture", "amd64")),
        )

    # --- snapshots ---------------------------------------------------------------------

    def snapshot_dir(self, diff_id: str) -> Path:
        return self.layout.snapshots_dir / digests.hex_of(diff_id)

    def snapshot(self, layer_digest: str, diff_id: str) -> Path:
        """The unpacked directory of a layer, unpacking it now if this is the first use."""
        final = self.snapshot_dir(diff_id)
        if (final / "meta.json").exists():
            return final / "fs"
        blob = self.layout.blob_path(layer_digest)
        if not blob.exists():
            raise errors.ImageNotPresent(f"layer {layer_digest} is not in the store")
        tmp = Path(tempfile.mkdtemp(dir=self.layout.snapshots_dir, prefix=".unpack-"))
        try:
            result = unpack.unpack(blob, tmp / "fs", expected_diff_id=diff_id)
            meta = {
                "diffID": diff_id,
                "layer": layer_digest,
                "size": result.size,
                "whiteouts": result.whiteouts,
            }
            layout.atomic_write(tmp / "meta.json", json.dumps(meta).encode())
            try:
                os.rename(tmp, final)
            except OSError:  # another agent won the race; its copy is identical
                if not (final / "meta.json").exists():
                    raise
        finally:
            if tmp.exists():
                remove_tree(tmp)
        return final / "fs"


def choose_platform(index: dict[str, Any], wanted: tuple[str, str]) -> dict[str, Any] | None:
    """The index entry for ``(os, architecture)``, else linux/amd64, else None."""
    entries = [
        m for m in index.get("manifests") or [] if m.get("mediaType") not in mediatypes.INDEXES
    ]
    for target in (wanted, ("linux", "amd64")):
        for m in entries:
            p = m.get("platform") or {}
            if (p.get("os"), p.get("architecture")) == target:
                return dict(m)
    return None


def image_config(raw: dict[str, Any]) -> model.ImageConfig:
    c = raw.get("config") or {}
    return model.ImageConfig(
        entrypoint=tuple(c.get("Entrypoint") or ()),
        cmd=tuple(c.get("Cmd") or ()),
        env=tuple(c.get("Env") or ()),
        working_dir=str(c.get("WorkingDir") or ""),
        user=str(c.get("User") or ""),
        exposed_ports=tuple(sorted(c.get("ExposedPorts") or {})),
        labels=dict(c.get("Labels") or {}),
        stop_signal=str(c.get("StopSignal") or ""),
        raw=raw,
    )


def remove_tree(path: Path) -> None:
    """Remove a snapshot tree, making read-only directories writable first."""

    def retry(func: Any, p: str, _exc: Any) -> None:
        os.chmod(os.path.dirname(p), 0o700)
        func(p)

    shutil.rmtree(path, onerror=retry)
