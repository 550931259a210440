"""Pod volumes on the node: one plugin module per volume type, the manager that drives them.

See :mod:`kybern.kubelet.volumes.manager` for the interface the kubelet core uses.
"""

from kybern.kubelet.volumes.base import VolumeError
from kybern.kubelet.volumes.manager import VolumeManager

__all__ = ["VolumeError", "VolumeManager"]
