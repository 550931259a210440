"""PersistentVolume, PersistentVolumeClaim and StorageClass printers."""

from __future__ import annotations

from tests.unit.api.test_printers_helpers import ago, cells, headers, obj


def test_persistent_volume() -> None:
    assert headers("", "PersistentVolume") == [
        "NAME",
        "CAPACITY",
        "ACCESS MODES",
        "RECLAIM POLICY",
        "STATUS",
        "CLAIM",
        "STORAGECLASS",
        "VOLUMEATTRIBUTESCLASS",
        "REASON",
        "AGE",
    ]
    assert headers("", "PersistentVolume", wide=True)[10:] == ["VOLUMEMODE"]
    spec = {
        "capacity": {"storage": "10240Mi"},
        "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "claimRef": {"namespace": "default", "name": "data"},
        "storageClassName": "fast",
        "volumeMode": "Filesystem",
    }
    item = obj("v1", "PersistentVolume", "pv1", 120, spec=spec, status={"phase": "Bound"})
    assert cells("", "PersistentVolume", item) == [
        "pv1",
        "10Gi",
        "RWO,RWX",
        "Retain",
        "Bound",
        "default/data",
        "fast",
        "<unset>",
        "",
        "2m",
        "Filesystem",
    ]
    deleting = obj(
        "v1", "PersistentVolume", "pv2", 120, metadata={"deletionTimestamp": ago(1)}, spec={}
    )
    assert cells("", "PersistentVolume", deleting)[1:7] == ["0", "", "", "Terminating", "", ""]


def test_persistent_volume_claim() -> None:
    assert headers("", "PersistentVolumeClaim") == [
        "NAME",
        "STATUS",
        "VOLUME",
        "CAPACITY",
        "ACCESS MODES",
        "STORAGECLASS",
        "VOLUMEATTRIBUTESCLASS",
        "AGE",
    ]
    pending = obj(
        "v1",
        "PersistentVolumeClaim",
        "data",
        60,
        spec={"storageClassName": "fast"},
        status={"phase": "Pending"},
    )
    assert cells("", "PersistentVolumeClaim", pending) == [
        "data",
        "Pending",
        "",
        "",
        "",
        "fast",
        "<unset>",
        "60s",
        "<unset>",
    ]
    bound = obj(
        "v1",
        "PersistentVolumeClaim",
        "data",
        60,
        metadata={"annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}},
        spec={"volumeName": "pv1", "storageClassName": "fast", "volumeMode": "Block"},
        status={
            "phase": "Bound",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOncePod"],
        },
    )
    assert cells("", "PersistentVolumeClaim", bound) == [
        "data",
        "Bound",
        "pv1",
        "1Gi",
        "RWOP",
        "legacy",
        "<unset>",
        "60s",
        "Block",
    ]


def test_storage_class() -> None:
    assert headers("storage.k8s.io", "StorageClass") == [
        "NAME",
        "PROVISIONER",
        "RECLAIMPOLICY",
        "VOLUMEBINDINGMODE",
        "ALLOWVOLUMEEXPANSION",
        "AGE",
    ]
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"}
    item = obj(
        "storage.k8s.io/v1",
        "StorageClass",
        "standard",
        60,
        metadata={"annotations": annotations},
        provisioner="rancher.io/local-path",
    )
    assert cells("storage.k8s.io", "StorageClass", item) == [
        "standard (default)",
        "rancher.io/local-path",
        "Delete",
        "Immediate",
        False,
        "60s",
    ]
    custom = obj(
        "storage.k8s.io/v1",
        "StorageClass",
        "slow",
        60,
        provisioner="p",
        reclaimPolicy="Retain",
        volumeBindingMode="WaitForFirstConsumer",
        allowVolumeExpansion=True,
    )
    assert cells("storage.k8s.io", "StorageClass", custom)[:5] == [
        "slow",
        "p",
        "Retain",
        "WaitForFirstConsumer",
        True,
    ]
