"""kybern.network: pod networking through CNI plugins (bridge + host-local IPAM + portmap,
loopback), network namespaces, and cleanup. Used by the oci runtime when it starts and removes
a pod sandbox; sits below kybern.runtime in the layers."""
