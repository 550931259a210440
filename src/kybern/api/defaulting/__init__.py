"""Server-side defaulting: fill the fields Kubernetes v1.32's API server fills.

``default(group, kind, obj)`` mutates a decoded object in place, before validation. It
combines two Kubernetes layers:

- scheme defaults (the ``SetDefaults_*`` functions), applied every time an object is
  decoded: on create, update and patch alike;
- create-time strategy defaults (``PrepareForCreate``): namespace ``spec.finalizers``, a
  pod's ``status.phase: Pending``, a Service's IP families, a Job's generated selector.
  They run only when ``create`` is true. Pass ``create=False`` on update, patch and
  subresource writes: re-adding the ``kubernetes`` finalizer on ``/finalize`` would make
  namespaces undeletable.

Call it after the apiserver has set ``metadata.name`` and ``metadata.uid`` on create (the
Job selector is derived from the uid). It is idempotent and never raises on partial or
mistyped objects: it skips what it cannot default and leaves the errors to validation.
Kinds without defaults are left untouched.

One module per API group; the pod-spec defaults shared by all workload templates live in
:mod:`kybern.api.defaulting.podspec`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kybern.api.defaulting import apps, autoscaling, batch, core, groups

Defaulter = Callable[[dict[str, Any], bool], None]

_DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    **core.DEFAULTERS,
    **apps.DEFAULTERS,
    **batch.DEFAULTERS,
    **autoscaling.DEFAULTERS,
    **groups.DEFAULTERS,
}


def default(group: str, kind: str, obj: dict[str, Any], *, create: bool = True) -> None:
    """Fill Kubernetes' defaults into ``obj`` (in place) for the kind ``group``/``kind``."""
    defaulter = _DEFAULTERS.get((group, kind))
    if defaulter is not None and isinstance(obj, dict):
        defaulter(obj, create)


def has_defaults(group: str, kind: str) -> bool:
    """Whether kybern knows defaults for this kind (others pass through unchanged)."""
    return (group, kind) in _DEFAULTERS
