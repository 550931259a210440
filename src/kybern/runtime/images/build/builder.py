"""Run a Dockerfile's steps and store the result as an OCI image (``kybern image build``).

Each stage starts from its FROM (a local image, one pulled through the store, an earlier stage,
or ``scratch``) and keeps: its layers (descriptor, diffID, unpacked snapshot), its config
(:class:`metadata.Config`), the ARG values in scope, the history and the cache chain key.
RUN (:mod:`.run`) and COPY/ADD (:mod:`.context`) each add one gzip layer, reused from the cache
(:mod:`.cache`) when the chain key matches; the other instructions change the config only.
The target stage (default: the last) becomes an OCI manifest + config in the store, named by
every ``-t``. Progress goes to ``out`` in podman's style (``STEP 3/7: RUN ...``,
``--> Using cache ...``) with RUN output streamed in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kybern.runtime.images import digest as digests
from kybern.runtime.images import mediatypes, model, reference, store
from kybern.runtime.images.build import (
    cache,
    context,
    dockerfile,
    expand,
    ignore,
    layerdiff,
    metadata,
    run,
)
from kybern.runtime.images.build.errors import BuildError, DockerfileError
from kybern.runtime.images.build.imageview import ImageView, resolve_user
from kybern.runtime.oci import driver

_URL = re.compile(r"^(https?://|git@|git://)")


@dataclass
class Options:
    context: Path
    dockerfile: Path | None = None  # default <context>/Dockerfile
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    target: str = ""
    out: TextIO | None = None  # default: sys.stdout at build time
    oci_runtime: str = ""  # runc/crun binary for RUN (default: driver.choose())
    credentials: dict[str, model.Credentials] | None = None


@dataclass
class Layer:
    descriptor: dict[str, Any]
    diff_id: str
    snapshot: Path


@dataclass
class Stage:
    name: str
    key: str
    layers: list[Layer] = field(default_factory=list)
    cfg: metadata.Config = field(default_factory=metadata.Config)
    history: list[dict[str, Any]] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)
    platform: tuple[str, str] = ("linux", "amd64")


class Builder:
    def __init__(self, images: store.ImageStore, options: Options) -> None:
        self.images = images
        self.opts = options
        self.out = options.out or sys.stdout
        self.cache = cache.Cache(images.root)
        self.work = images.root / "build-tmp"
        self.now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.stages: dict[str, Stage] = {}
        self.used_args: set[str] = set()
        self.meta_args: dict[str, str] = {}
        self.escape = "\\"
        self.step = 0
        self.total = 0

    # --- the whole build ------------------------------------------------------------------

    def build(self) -> model.ImageRecord:
        for tag in self.opts.tags:
            reference.parse(tag)  # refuse a bad name before any work
        path = self.opts.dockerfile or self.opts.context / "Dockerfile"
        try:
            text = path.read_text()
        except OSError as e:
            raise BuildError(f"cannot read the Dockerfile: {e}") from None
        parsed = dockerfile.parse(text)
        self.escape = parsed.escape
        target = parsed.stage(self.opts.target) if self.opts.target else parsed.stages[-1]
        todo = parsed.stages[: target.index + 1]
        self.total = sum(1 + len(s.instructions) for s in todo)
        self.tree = context.Tree(self.opts.context, ignore.load(self.opts.context))
        self.meta_args = self._global_args(parsed.global_args)
        with self.images.layout.adding():
            final = None
            for stage in todo:
                final = self._stage(stage)
            assert final is not None
            record = self._commit(final)
        unused = set(self.opts.build_args) - self.used_args
        if unused:
            self.out.write(f"[Warning] one or more build-args {sorted(unused)} were not consumed\n")
        return record

    def _global_args(self, args: tuple[dockerfile.Instruction, ...]) -> dict[str, str]:
        values: dict[str, str] = {}
        for ins in args:
            self._declare_args(ins, values, values)
        return values

    def _declare_args(
        self, ins: dockerfile.Instruction, scope: dict[str, str], env: dict[str, str]
    ) -> None:
        lexer = expand.Lexer(env, self.escape)
        for word in lexer.words(ins.args):
            name, has_default, default = word.partition("=")
            self.used_args.add(name)
            if name in self.opts.build_args:
                scope[name] = self.opts.build_args[name]
            elif has_default:
                scope[name] = default
            elif name in self.meta_args:  # a global ARG re-declared in the stage
                scope[name] = self.meta_args[name]

    # --- stages -------------------------------------------------------------------------

    def _stage(self, stage: dockerfile.Stage) -> Stage:
        state = self._from(stage)
        for ins in stage.instructions:
            self._announce(ins)
            try:
                self._instruction(state, ins)
            except BuildError as e:
                if e.line:
                    raise
                raise type(e)(e.reason, line=ins.line) from None
        self.stages[str(stage.index)] = state
        if stage.name:
            self.stages[stage.name] = state
        return state

    def _announce(self, ins: dockerfile.Instruction) -> None:
        self.step += 1
        self.out.write(f"STEP {self.step}/{self.total}: {ins.original}\n")
        self.out.flush()

    def _from(self, stage: dockerfile.Stage) -> Stage:
        self._announce(stage.from_)
        try:
            base = expand.Lexer(self.meta_args, self.escape).word(stage.base)
        except DockerfileError as e:
            raise DockerfileError(e.reason, line=stage.from_.line) from None
        if base.lower() == "scratch":
            return Stage(stage.name, cache.base_key(""), platform=self.images.platform)
        if base.lower() in self.stages:
            parent = self.stages[base.lower()]
            return Stage(
                stage.name,
                parent.key,
                list(parent.layers),
                metadata.Config(dict(parent.cfg.data), parent.cfg.shell),
                list(parent.history),
                platform=parent.platform,
            )
        return self._from_image(stage, base)

    def _from_image(self, stage: dockerfile.Stage, base: str) -> Stage:
        try:
            record = self.images.get(base) or asyncio.run(
                self.images.ensure(base, credentials=self.opts.credentials)
            )
        except Exception as e:
            raise BuildError(f"FROM {base}: {e}", line=stage.from_.line) from None
        top = self.images.resolve(record.references[0] if record.references else record.id)
        assert top is not None
        manifest = self.images.manifest_for(top)
        raw = record.config.raw
        layers = [
            Layer(dict(desc), diff, snap)
            for desc, diff, snap in zip(
                manifest.get("layers") or [], raw["rootfs"]["diff_ids"], record.layers, strict=True
            )
        ]
        shell = tuple((raw.get("config") or {}).get("Shell") or metadata.DEFAULT_SHELL)
        cfg = metadata.Config(dict(raw.get("config") or {}), shell)
        return Stage(
            stage.name,
            cache.base_key(record.id),
            layers,
            cfg,
            list(raw.get("history") or []),
            platform=(record.os, record.architecture),
        )

    # --- instructions -------------------------------------------------------------------

    def _instruction(self, state: Stage, ins: dockerfile.Instruction) -> None:
        if ins.command == "ARG":
            self._declare_args(ins, state.args, self._substitution_env(state))
            state.key = cache.step_key(state.key, "ARG " + json.dumps(sorted(state.args.items())))
            self._history(state, ins.original, empty=True)
        elif ins.command == "RUN":
            self._run(state, ins)
        elif ins.command in ("COPY", "ADD"):
            self._copy(state, ins)
        else:
            metadata.apply(state.cfg, ins, expand.Lexer(self._substitution_env(state), self.escape))
            state.key = cache.step_key(
                state.key, ins.command, json.dumps(state.cfg.data, sort_keys=True)
            )
            self._history(state, ins.original, empty=True)

    def _substitution_env(self, state: Stage) -> dict[str, str]:
        return {**state.args, **state.cfg.env()}

    def _run(self, state: Stage, ins: dockerfile.Instruction) -> None:
        argv = metadata.command_line(ins, state.cfg.shell)
        env = dict(state.cfg.env())
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env = {**{k: v for k, v in state.args.items() if k not in env}, **env}
        user = str(state.cfg.data.get("User") or "0")
        cwd = state.cfg.workdir()
        inputs = json.dumps({"env": sorted(env.items()), "user": user, "cwd": cwd})
        key = cache.step_key(state.key, "RUN " + json.dumps(argv), inputs)
        created_by = f"RUN {ins.args}"
        if self._reuse(state, key, created_by):
            return
        container = self._container(state)
        try:
            uid, gid, extra = self._user(user, container.rootfs)
            container.prepare_cwd(cwd)
            process = run.Process(argv, [f"{k}={v}" for k, v in env.items()], cwd, uid, gid, extra)
            try:
                code = container.run(process, self.out, binary=self.opts.oci_runtime)
            except driver.DriverError as e:
                raise BuildError(f"RUN: {e}") from None
            if code != 0:
                raise BuildError(f"RUN: the command {argv} returned a non-zero code: {code}")
            tar, _ = layerdiff.to_bytes(container.upper, skip=container.created_mount_points())
        finally:
            container.close()
        self._add_layer(state, key, tar, created_by)

    def _container(self, state: Stage) -> run.Container:
        if os.geteuid() != 0:
            raise BuildError("RUN and COPY --from need root (overlay mounts, runc/crun)")
        try:
            return run.Container(self.work, [layer.snapshot for layer in state.layers])
        except OSError as e:
            raise BuildError(f"cannot mount the build container's root: {e}") from None

    def _user(self, user: str, root: Path) -> tuple[int, int, list[int]]:
        passwd = _read(root / "etc" / "passwd")
        group = _read(root / "etc" / "group")
        return resolve_user(user, passwd, group)

    def _copy(self, state: Stage, ins: dockerfile.Instruction) -> None:
        lexer = expand.Lexer(self._substitution_env(state), self.escape)
        words = (
            [lexer.word(w) for w in ins.exec_form]
            if ins.exec_form is not None
            else lexer.words(ins.args)
        )
        if len(words) < 2:
            raise BuildError(f"{ins.command} requires at least two arguments, but got {len(words)}")
        sources, dest = words[:-1], words[-1]
        if ins.command == "ADD" and any(_URL.match(s) for s in sources):
            raise BuildError(
                "ADD from a URL is not supported: kybern builds have no internet access; download the file into the build context and ADD it from there"
            )
        dest_abs = dest if dest.startswith("/") else state.cfg.workdir().rstrip("/") + "/" + dest
        view = ImageView([layer.snapshot for layer in state.layers])
        owner = self._owner(ins.flags.get("chown", ""), view, lexer)
        chmod = _chmod(ins.flags.get("chmod", ""))
        with self._source_tree(ins.flags.get("from", ""), lexer) as tree:
            items = context.plan(
                tree,
                sources,
                dest_abs,
                owner=owner,
                chmod=chmod,
                lookup=view.stat,
                extract_archives=ins.command == "ADD",
            )
            flags = " ".join(f"--{k}={v}" for k, v in sorted(ins.flags.items()))
            text = f"{ins.command} {flags} {json.dumps(sources)} {dest_abs}"
            key = cache.step_key(state.key, text, context.digest(items))
            created_by = f"{ins.command} {ins.args}"
            if self._reuse(state, key, created_by):
                return
            tar = context.write_tar(items)
        self._add_layer(state, key, tar, created_by)

    def _owner(self, spec: str, view: ImageView, lexer: expand.Lexer) -> context.Owner | None:
        if not spec:
            return None
        uid, gid, _ = resolve_user(
            lexer.word(spec), view.read_text("etc/passwd"), view.read_text("etc/group")
        )
        # Docker: a user without a group means gid = uid, whatever the user's primary group.
        return context.Owner(uid, gid if ":" in spec else uid)

    @contextlib.contextmanager
    def _source_tree(self, source: str, lexer: expand.Lexer) -> Iterator[context.Tree]:
        if not source:
            yield self.tree
            return
        name = lexer.word(source).lower()
        state = self.stages.get(name)
        if state is None:
            raise BuildError(
                f"COPY --from={source}: no such build stage (copying from other images is not supported)"
            )
        container = self._container(state)
        try:
            yield context.Tree(container.rootfs)
        finally:
            container.close()

    # --- layers and the cache -----------------------------------------------------------

    def _reuse(self, state: Stage, key: str, created_by: str) -> bool:
        entry = None if self.opts.no_cache else self.cache.get(key)
        if entry is None or not self.images.layout.has_blob(entry.layer):
            return False
        self._append(state, key, entry, created_by)
        self.out.write(f"--> Using cache {entry.layer.removeprefix('sha256:')[:12]}\n")
        return True

    def _add_layer(self, state: Stage, key: str, tar: bytes, created_by: str) -> None:
        blob = gzip.compress(tar, compresslevel=6, mtime=0)
        layer = self.images.layout.write_blob(blob)
        entry = cache.Entry(layer, digests.of_bytes(tar), len(blob), mediatypes.OCI_LAYER_GZIP)
        self.cache.put(key, entry)
        self._append(state, key, entry, created_by)
        self.out.write(f"--> {layer.removeprefix('sha256:')[:12]}\n")

    def _append(self, state: Stage, key: str, entry: cache.Entry, created_by: str) -> None:
        snapshot = self.images.snapshot(entry.layer, entry.diff_id)
        desc = {"mediaType": entry.media_type, "digest": entry.layer, "size": entry.size}
        state.layers.append(Layer(desc, entry.diff_id, snapshot))
        state.key = key
        self._history(state, created_by, empty=False)

    def _history(self, state: Stage, created_by: str, *, empty: bool) -> None:
        entry: dict[str, Any] = {
            "created": self.now,
            "created_by": created_by,
            "comment": "kybern image build",
        }
        if empty:
            entry["empty_layer"] = True
        state.history.append(entry)

    # --- the image ----------------------------------------------------------------------

    def _commit(self, state: Stage) -> model.ImageRecord:
        os_name, arch = state.platform
        config_doc: dict[str, Any] = {
            "created": self.now,
            "architecture": arch,
            "os": os_name,
            "config": {k: v for k, v in state.cfg.data.items() if v is not None},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in state.layers]},
            "history": state.history,
        }
        if state.cfg.author:
            config_doc["author"] = state.cfg.author
        config_data = json.dumps(config_doc, sort_keys=True).encode()
        config_digest = self.images.layout.write_blob(config_data)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {
                "mediaType": mediatypes.OCI_CONFIG,
                "digest": config_digest,
                "size": len(config_data),
            },
            "layers": [layer.descriptor for layer in state.layers],
        }
        top = self.images.layout.write_blob(json.dumps(manifest, sort_keys=True).encode())
        self.out.write(
            f"COMMIT {' '.join(self.opts.tags)}\n--> {config_digest.removeprefix('sha256:')[:12]}\n"
        )
        for tag in self.opts.tags:
            name = reference.normalize(tag)
            self.images.set_name(name, top)
            self.out.write(f"Successfully tagged {name}\n")
        self.out.write(f"{config_digest.removeprefix('sha256:')}\n")
        return self.images.record(top)


def build(images: store.ImageStore, options: Options) -> model.ImageRecord:
    """Build the Dockerfile in ``options`` into ``images``; raises :class:`BuildError`."""
    return Builder(images, options).build()


def _read(path: Path) -> str:
    try:
        return "" if path.is_symlink() else path.read_text(errors="replace")
    except OSError:
        return ""


def _chmod(text: str) -> int | None:
    if not text:
        return None
    try:
        return int(text, 8)
    except ValueError:
        raise BuildError(f"invalid --chmod={text}: only octal modes are supported") from None
