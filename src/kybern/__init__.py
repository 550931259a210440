"""kybern: a lightweight Kubernetes-compatible container platform."""

__version__ = "0.1.0"
KUBERNETES_VERSION = "v1.32.0"
