"""``kybern image pull|push|tag|ls|rm|inspect|save|load|gc|build``: the host's image store by hand.

Works on ``<data-dir>/images``, the store every agent on the host shares. Registries on
127.0.0.1/localhost and hosts given with ``--insecure-registry`` are spoken to over plain HTTP;
credentials come from a docker ``config.json`` (``--registry-config``). Pulls and pushes show
one progress bar per blob. Errors print one line and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from kybern.cli import paths
from kybern.runtime.images import (
    archive,
    credentials,
    errors,
    gc,
    model,
    reference,
    store,
    transfer,
)
from kybern.runtime.images.build import builder

Handler = Callable[[argparse.Namespace, store.ImageStore], int]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``image`` and its subcommands to the ``kybern`` parser."""
    p = subparsers.add_parser("image", help="manage the host's OCI images", description=__doc__)
    sub = p.add_subparsers(dest="image_command", metavar="COMMAND", required=True)
    for name, help_text, add_args, handler in _COMMANDS:
        cp = sub.add_parser(name, help=help_text, description=help_text)
        _common_flags(cp)
        add_args(cp)
        cp.set_defaults(image_handler=handler)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The handler ``kybern image`` dispatches to; returns the exit code."""
    data_dir = args.data_dir or paths.default_data_dir()
    try:
        images = store.ImageStore(
            store.default_root(data_dir), insecure_registries=args.insecure_registry
        )
        return int(args.image_handler(args, images))
    except errors.ImageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except PermissionError as e:
        print(f"error: {e} (use --data-dir or run as root)", file=sys.stderr)
        return 1


def _common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", type=Path, default=None, help=f"default {paths.default_data_dir()}"
    )
    p.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST",
        help="use plain HTTP for this registry (127.0.0.1 and localhost always are)",
    )
    p.add_argument(
        "--registry-config",
        type=Path,
        default=Path(os.path.expanduser("~/.docker/config.json")),
        help="docker config.json with registry credentials (default ~/.docker/config.json)",
    )


# --- commands ---------------------------------------------------------------------------


def _pull(args: argparse.Namespace, images: store.ImageStore) -> int:
    ref = reference.parse(args.image)
    creds = credentials.load_file(args.registry_config)
    with _progress(args.quiet) as progress:
        record = asyncio.run(transfer.pull(images, ref, credentials=creds, progress=progress))
    print(f"{ref}: {record.id}")
    return 0


def _push(args: argparse.Namespace, images: store.ImageStore) -> int:
    target = reference.parse(args.target or args.image)
    creds = credentials.load_file(args.registry_config)
    with _progress(args.quiet) as progress:
        digest = asyncio.run(
            transfer.push(images, args.image, target, credentials=creds, progress=progress)
        )
    print(f"{target}: digest: {digest}")
    return 0


def _tag(args: argparse.Namespace, images: store.ImageStore) -> int:
    images.tag(args.source, args.target)
    return 0


def _ls(args: argparse.Namespace, images: store.ImageStore) -> int:
    rows = []
    for record in images.list():
        names: list[reference.Reference | None] = [reference.parse(n) for n in record.references]
        names = names or [None]
        for ref in names:
            digest = next(
                (
                    d.split("@")[1]
                    for d in record.repo_digests
                    if ref and d.startswith(ref.name + "@")
                ),
                "",
            )
            rows.append(
                (ref.name if ref else "<none>", ref.tag if ref else "<none>", digest, record)
            )
    if args.quiet:
        for image_id in dict.fromkeys(r[3].id for r in rows):
            print(image_id.removeprefix("sha256:")[:12])
        return 0
    table = [("IMAGE", "TAG", *(("DIGEST",) if args.digests else ()), "IMAGE ID", "SIZE")]
    for name, tag, digest, record in rows:
        extra = (digest or "<none>",) if args.digests else ()
        table.append(
            (name, tag, *extra, record.id.removeprefix("sha256:")[:12], _size(record.size))
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _rm(args: argparse.Namespace, images: store.ImageStore) -> int:
    status = 0
    for name in args.images:
        try:
            for removed in images.untag(name):
                print(f"Untagged: {removed}")
        except errors.ImageNotPresent as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
    return status


def _inspect(args: argparse.Namespace, images: store.ImageStore) -> int:
    out = []
    for name in args.images:
        record = images.get(name)
        if record is None:
            raise errors.ImageNotPresent(f"image {name!r} not found")
        out.append(inspect_document(record))
    print(json.dumps(out, indent=2))
    return 0


def inspect_document(record: model.ImageRecord) -> dict[str, Any]:
    raw = record.config.raw
    return {
        "Id": record.id,
        "RepoTags": list(record.references),
        "RepoDigests": list(record.repo_digests),
        "Os": record.os,
        "Architecture": record.architecture,
        "Size": record.size,
        "Config": raw.get("config") or {},
        "RootFS": raw.get("rootfs") or {},
        "Snapshots": [str(p) for p in record.layers],
    }


def _save(args: argparse.Namespace, images: store.ImageStore) -> int:
    archive.save(images, args.images, args.output, fmt=args.format)
    return 0


def _load(args: argparse.Namespace, images: store.ImageStore) -> int:
    for name in archive.load(images, args.input):
        print(f"Loaded image: {name}")
    return 0


def _gc(args: argparse.Namespace, images: store.ImageStore) -> int:
    report = gc.collect(images, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {len(report.blobs)} blobs and {len(report.snapshots)} snapshots, {_size(report.bytes_freed)}"
    )
    return 0


def _build(args: argparse.Namespace, images: store.ImageStore) -> int:
    build_args = dict(a.partition("=")[::2] for a in args.build_arg)
    options = builder.Options(
        context=args.context,
        dockerfile=args.file,
        tags=args.tag,
        build_args=build_args,
        no_cache=args.no_cache,
        target=args.target,
        credentials=credentials.load_file(args.registry_config),
    )
    builder.build(images, options)
    return 0


# --- arguments --------------------------------------------------------------------------


def _args_pull(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="image reference, e.g. busybox or 127.0.0.1:5000/app:v1")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _args_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="local image to push")
    p.add_argument(
        "target", nargs="?", default="", help="destination reference (default: the image's name)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _args_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("target")


def _args_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="only image ids")
    p.add_argument("--digests", action="store_true", help="show repo digests")


def _args_images(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")


def _args_save(p: argparse.ArgumentParser) -> None:
    _args_images(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="tarball to write")
    p.add_argument("--format", choices=archive.FORMATS, default="docker-archive")


def _args_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", type=Path, required=True, help="docker- or OCI-archive tarball")


def _args_gc(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="only report what would be removed")


def _args_build(p: argparse.ArgumentParser) -> None:
    p.add_argument("context", type=Path, help="the build context directory")
    p.add_argument("-t", "--tag", action="append", default=[], help="name the image (repeatable)")
    p.add_argument("-f", "--file", type=Path, default=None, help="default CONTEXT/Dockerfile")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V")
    p.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    p.add_argument("--target", default="", help="build this stage (default: the last)")


_COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Handler]] = [
    ("pull", "pull an image from a registry", _args_pull, _pull),
    ("push", "push an image to a registry", _args_push, _push),
    ("tag", "give an image another name", _args_tag, _tag),
    ("ls", "list images", _args_ls, _ls),
    ("rm", "remove image names (blobs go at the next gc)", _args_images, _rm),
    ("inspect", "show images' configuration as JSON", _args_images, _inspect),
    ("save", "write images to a docker- or OCI-archive tarball", _args_save, _save),
    ("load", "import images from a tarball", _args_load, _load),
    ("gc", "delete blobs and snapshots no image references", _args_gc, _gc),
    ("build", "build an image from a Dockerfile (root: RUN uses runc/crun)", _args_build, _build),
]


# --- output -----------------------------------------------------------------------------


@contextmanager
def _progress(quiet: bool) -> Iterator[model.ProgressCallback | None]:
    if quiet or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, transient=False) as bars:
        tasks: dict[str, Any] = {}

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bars.add_task(what.removeprefix("sha256:")[:12], total=total or None)
            bars.update(tasks[what], completed=done)

        yield update


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{value:.1f}GB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kybern")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
