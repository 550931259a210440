"""kybern.proxy: the service proxy on every node (kube-proxy's job).

``rules`` computes what Services and EndpointSlices mean for this node (pure); ``nftables``,
``iptables`` and ``userspace`` implement it; ``proxier`` is the component that keeps the
chosen backend in step with the informer caches (``proxier.run`` is the entry point).
"""
