"""Runtimes by name: ``kybern server --runtime NAME`` and ``kybern agent --runtime NAME``.

A runtime module registers a factory here; the factory gets the agent's runtime options
(``root`` data directory, ``oci_runtime`` ...) and returns an object satisfying
:class:`kybern.runtime.cri.Runtime`. ``default_name()`` is what ``--runtime`` defaults to:
the real-container runtime when running as root and it reports itself usable, else
``process``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kybern.runtime import cri


@dataclass(frozen=True)
class Options:
    """What every runtime factory receives."""

    root: Path  # the runtime's state directory (<data-dir>/runtime/<name>)
    node_name: str = ""
    node_ip: str = "127.0.0.1"
    extra: dict[str, str] = field(default_factory=dict)  # runtime-specific (oci_runtime, ...)


Factory = Callable[[Options], cri.Runtime]

# name -> "module:factory", imported on first use so `kybern --help` stays fast
_BUILTIN: dict[str, str] = {
    "process": "kybern.runtime.process:create",
    "fake": "kybern.runtime.fake:create",
    "oci": "kybern.runtime.oci:create",
}
_extra: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    _extra[name] = factory


def names() -> list[str]:
    return sorted({*_BUILTIN, *_extra})


def factory(name: str) -> Factory:
    if name in _extra:
        return _extra[name]
    if name not in _BUILTIN:
        raise ValueError(f"unknown runtime {name!r} (known: {', '.join(names())})")
    module_name, _, attr = _BUILTIN[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ValueError(f"runtime {name!r} is not available in this build: {err}") from err
    made: Factory = getattr(module, attr)
    return made


def create(name: str, options: Options) -> cri.Runtime:
    return factory(name)(options)


def default_name() -> str:
    """``oci`` as root when the oci runtime says it can run here, else ``process``."""
    if os.geteuid() == 0:
        try:
            module = importlib.import_module("kybern.runtime.oci")
        except ModuleNotFoundError:
            return "process"
        usable: Callable[[], bool] | None = getattr(module, "usable", None)
        if usable is not None and usable():
            return "oci"
    return "process"
