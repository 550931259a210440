"""kybern.runtime.images: OCI images on disk (content store, unpacked layer snapshots),
registry pull/push, docker/OCI archives, and image builds. See :mod:`.model` for the interface
runtimes use."""
