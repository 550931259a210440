"""The ``oci`` container runtime: real Linux containers through runc or crun (see :mod:`.runtime`).

Registered in :mod:`kybern.runtime.registry` as ``kybern.runtime.oci:create``; :func:`usable`
tells the registry whether it can be the default (root, Linux, an OCI runtime that works).
:func:`create` opens the host's image store; the pod network (:class:`kybern.network.cni.PodNetwork`)
is wired in by the agent (``OciRuntime(..., network=...)`` or the ``network`` attribute before
the first sandbox); without one, pods get only loopback.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from pathlib import Path

from kybern.runtime import registry
from kybern.runtime.images import model
from kybern.runtime.oci.runtime import OciRuntime, PodNetwork

# Whether ``usable()`` may make oci the default runtime as root. On: the agent waits for the
# node's podCIDR and wires the CNI network in (kybern.kubelet.network), so as root with a
# working runc/crun ``kybern server`` and ``kybern agent`` run real containers by default;
# ``--runtime process`` keeps host processes.
DEFAULT_WHEN_USABLE = True


def create(options: registry.Options) -> OciRuntime:
    return OciRuntime(options, images=_default_images(options))


def _default_images(options: registry.Options) -> model.ImageService | None:
    """The host's image store: ``extra["images_dir"]`` (``kybern server`` gives its
    ``<data-dir>/images``, the store ``kybern image --data-dir`` works on), else
    ``<agent data-dir>/images`` (``options.root`` is ``<agent data-dir>/runtime/oci``)."""
    try:
        from kybern.runtime.images import store
    except ImportError:
        return None
    if options.extra.get("images_dir"):
        return store.ImageStore(Path(options.extra["images_dir"]))
    return store.ImageStore(store.default_root(options.root.parent.parent))


@functools.cache
def can_run() -> bool:
    """Root on Linux with runc or crun able to run a container here."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    if shutil.which("runc") is None and shutil.which("crun") is None:
        return False
    from kybern.runtime.oci import driver

    try:
        driver.choose()
    except driver.DriverError:
        return False
    return True


def usable() -> bool:
    """Whether the registry should default to oci (see :data:`DEFAULT_WHEN_USABLE`)."""
    return DEFAULT_WHEN_USABLE and can_run()


__all__ = ["OciRuntime", "PodNetwork", "can_run", "create", "usable"]
