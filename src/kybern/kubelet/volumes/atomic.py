"""Atomic directory updates for configMap, secret, downwardAPI and projected volumes.

What Kubernetes' ``AtomicWriter`` does, so a process reading the volume never sees half an
update: the payload goes into a fresh hidden directory ``..<UTC timestamp>.<random>``; the
``..data`` symlink is then swapped to it with one ``rename`` (``..data_tmp`` -> ``..data``);
every user-visible top-level entry is a symlink ``name -> ..data/name`` that never changes;
finally entries no longer in the payload and the previous timestamped directory are removed.
A payload equal to what ``..data`` already holds writes nothing.

Blocking (file system) functions: callers run them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import datetime
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

DATA = "..data"
DATA_TMP = "..data_tmp"


@dataclass(frozen=True)
class File:
    """One file of a payload: its bytes and permission bits."""

    data: bytes
    mode: int = 0o644


Payload = dict[str, File]


class PayloadError(ValueError):
    """A payload path that is absolute, escapes the volume, or starts with ``..``."""


def validate_path(path: str) -> None:
    """Reject the paths Kubernetes' ``validatePath`` rejects."""
    if not path:
        raise PayloadError("invalid path: must not be empty")
    if len(path) > 4096:
        raise PayloadError(f"invalid path: must be less than or equal to 4096 characters: {path}")
    if PurePosixPath(path).is_absolute():
        raise PayloadError(f"invalid path: must be relative path: {path}")
    if ".." in PurePosixPath(path).parts:
        raise PayloadError(f"invalid path: must not contain '..': {path}")
    if path.startswith(".."):
        raise PayloadError(f"invalid path: must not start with '..': {path}")


def write(target: Path, payload: Payload) -> bool:
    """Make ``target`` show exactly ``payload``; True when anything changed."""
    for path in payload:
        validate_path(path)
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / DATA
    old_dir = _current_dir(target)
    if old_dir is not None and _same(old_dir, payload):
        return False
    new_dir = _new_timestamped_dir(target)
    _write_payload(new_dir, payload)
    _link_visible(target, payload)
    tmp_link = target / DATA_TMP
    if tmp_link.is_symlink():
        tmp_link.unlink()
    tmp_link.symlink_to(new_dir.name)
    os.replace(tmp_link, data_link)
    _remove_stale(target, payload)
    if old_dir is not None and old_dir != new_dir:
        shutil.rmtree(old_dir, ignore_errors=True)
    return True


def read(target: Path) -> Payload:
    """What ``..data`` holds now (for tests and comparisons)."""
    current = _current_dir(target)
    return {} if current is None else _read_dir(current)


def _current_dir(target: Path) -> Path | None:
    link = target / DATA
    if not link.is_symlink():
        return None
    resolved = target / os.readlink(link)
    return resolved if resolved.is_dir() else None


def _read_dir(root: Path) -> Payload:
    files: Payload = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            files[rel] = File(full.read_bytes(), full.stat().st_mode & 0o7777)
    return files


def _same(current: Path, payload: Payload) -> bool:
    return _read_dir(current) == payload


def _new_timestamped_dir(target: Path) -> Path:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y_%m_%d_%H_%M_%S")
    while True:
        candidate = target / f"..{stamp}.{secrets.randbelow(10**10):010d}"
        try:
            candidate.mkdir(mode=0o755)
        except FileExistsError:
            continue
        return candidate


def _write_payload(root: Path, payload: Payload) -> None:
    for rel, file in payload.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(file.data)
        os.chmod(path, file.mode)


def _top_level(payload: Payload) -> set[str]:
    return {PurePosixPath(p).parts[0] for p in payload}


def _link_visible(target: Path, payload: Payload) -> None:
    for name in _top_level(payload):
        link = target / name
        if link.is_symlink():
            continue
        link.symlink_to(f"{DATA}/{name}")


def _remove_stale(target: Path, payload: Payload) -> None:
    keep = _top_level(payload)
    for entry in target.iterdir():
        if entry.name.startswith("..") or entry.name in keep:
            continue
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        else:
            shutil.rmtree(entry, ignore_errors=True)
