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

from kybern.runtime import registry
from kybern.runtime.images import model
from kybern.runtime.oci.runtime import OciRuntime, PodNetwork

# Whether ``usable()`` may make oci the default runtime as root. Off until the agent wires the
# pod network (CNI needs the node's podCIDR) and images are pullable in the test environment:
# until then ``--runtime oci`` is opt-in and root runs keep the process runtime.
DEFAULT_WHEN_USABLE = False


def create(options: registry.Options) -> OciRuntime:
    return OciRuntime(options, images=_default_images(options))


def _default_images(options: registry.Options) -> model.ImageService | None:
    """The host's image store (``<data-dir>/images``; ``options.root`` is
    ``<data-dir>/runtime/oci``)."""
    try:
        from kybern.runtime.images import store
    except ImportError:
        return None
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
