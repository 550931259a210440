"""PersistentVolumes, PersistentVolumeClaims (core/v1) and StorageClasses (storage.k8s.io)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kybern.api.printers import base
from kybern.api.printers.base import AGE, NAME, Cell, Column, Obj, Printer

_PV_SPEC = "io.k8s.api.core.v1.PersistentVolumeSpec"
_PV_STATUS = "io.k8s.api.core.v1.PersistentVolumeStatus"
_PVC_SPEC = "io.k8s.api.core.v1.PersistentVolumeClaimSpec"
_PVC_STATUS = "io.k8s.api.core.v1.PersistentVolumeClaimStatus"
_SC = "io.k8s.api.storage.v1.StorageClass"
_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)
_DEFAULT_CLASS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def access_modes(modes: Any) -> str:
    """GetAccessModesAsString: RWO,ROX,RWX,RWOP in that order, each once."""
    present = set(base.as_list(modes))
    return ",".join(short for mode, short in _MODES if mode in present)


def _class(obj: Obj) -> str:
    annotations = base.as_map(base.get(obj, "metadata", "annotations"))
    if _BETA_CLASS in annotations:
        return base.text(annotations[_BETA_CLASS])
    return base.text(base.get(obj, "spec", "storageClassName"))


def _phase(obj: Obj) -> str:
    if base.get(obj, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    return base.text(base.get(obj, "status", "phase"))


def _persistent_volume(obj: Obj, now: float) -> list[Cell]:
    spec = base.as_map(obj.get("spec"))
    claim = spec.get("claimRef")
    claim_ref = ""
    if isinstance(claim, Mapping):
        claim_ref = f"{base.text(claim.get('namespace'))}/{base.text(claim.get('name'))}"
    return [
        base.name(obj),
        base.quantity_string(base.get(spec, "capacity", "storage")),
        access_modes(spec.get("accessModes")),
        base.text(spec.get("persistentVolumeReclaimPolicy")),
        _phase(obj),
        claim_ref,
        _class(obj),
        base.text(spec.get("volumeAttributesClassName")) or "<unset>",
        base.text(base.get(obj, "status", "reason")),
        base.age(obj, now),
        base.text(spec.get("volumeMode")) or "<unset>",
    ]


PERSISTENT_VOLUME = Printer(
    (
        NAME,
        Column("Capacity", doc=(_PV_SPEC, "capacity")),
        Column("Access Modes", doc=(_PV_SPEC, "accessModes")),
        Column("Reclaim Policy", doc=(_PV_SPEC, "persistentVolumeReclaimPolicy")),
        Column("Status", doc=(_PV_STATUS, "phase")),
        Column("Claim", doc=(_PV_SPEC, "claimRef")),
        Column("StorageClass", doc="StorageClass of the pv"),
        Column("VolumeAttributesClass", doc="VolumeAttributesClass of the pv"),
        Column("Reason", doc=(_PV_STATUS, "reason")),
        AGE,
        Column("VolumeMode", doc=(_PV_SPEC, "volumeMode"), priority=1),
    ),
    _persistent_volume,
)


def _persistent_volume_claim(obj: Obj, now: float) -> list[Cell]:
    spec = base.as_map(obj.get("spec"))
    volume = base.text(spec.get("volumeName"))
    capacity = modes = ""
    if volume:
        modes = access_modes(base.get(obj, "status", "accessModes"))
        capacity = base.quantity_string(base.get(obj, "status", "capacity", "storage"))
    return [
        base.name(obj),
        _phase(obj),
        volume,
        capacity,
        modes,
        _class(obj),
        base.text(spec.get("volumeAttributesClassName")) or "<unset>",
        base.age(obj, now),
        base.text(spec.get("volumeMode")) or "<unset>",
    ]


PERSISTENT_VOLUME_CLAIM = Printer(
    (
        NAME,
        Column("Status", doc=(_PVC_STATUS, "phase")),
        Column("Volume", doc=(_PVC_SPEC, "volumeName")),
        Column("Capacity", doc=(_PVC_STATUS, "capacity")),
        Column("Access Modes", doc=(_PVC_STATUS, "accessModes")),
        Column("StorageClass", doc="StorageClass of the pvc"),
        Column("VolumeAttributesClass", doc="VolumeAttributesClass of the pvc"),
        AGE,
        Column("VolumeMode", doc=(_PVC_SPEC, "volumeMode"), priority=1),
    ),
    _persistent_volume_claim,
)


def _storage_class(obj: Obj, now: float) -> list[Cell]:
    annotations = base.as_map(base.get(obj, "metadata", "annotations"))
    shown = base.name(obj)
    if any(annotations.get(key) == "true" for key in _DEFAULT_CLASS):
        shown += " (default)"
    expansion = obj.get("allowVolumeExpansion")
    return [
        shown,
        base.text(obj.get("provisioner")),
        base.text(obj.get("reclaimPolicy")) or "Delete",
        base.text(obj.get("volumeBindingMode")) or "Immediate",
        expansion if isinstance(expansion, bool) else False,
        base.age(obj, now),
    ]


STORAGE_CLASS = Printer(
    (
        NAME,
        Column("Provisioner", doc=(_SC, "provisioner")),
        Column("ReclaimPolicy", doc=(_SC, "reclaimPolicy")),
        Column("VolumeBindingMode", doc=(_SC, "volumeBindingMode")),
        Column("AllowVolumeExpansion", doc=(_SC, "allowVolumeExpansion")),
        AGE,
    ),
    _storage_class,
)
