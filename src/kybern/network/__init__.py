"""kybern.network: pod networking through CNI plugins (bridge + host-local IPAM + portmap,
loopback), network namespaces, and cleanup. Used by the oci runtime when it starts and removes
a pod sandbox; sits below kybern.runtime in the layers.

- ``netns``: pinned network namespaces (``/run/netns/kybern-<sandbox id>``), loopback up.
- ``config``: the conflist the agent writes from the node's ``spec.podCIDR``.
- ``invoke`` / ``result``: running one plugin (CNI environment protocol) and reading its result.
- ``cni``: ``PodNetwork.setup/teardown/check`` (ADD/DEL/CHECK of a whole conflist).
- ``hostrules`` / ``iptables``: the node-wide masquerade and forward rules.
- ``cleanup``: what dead sandboxes leave behind; ``uninstall``.
- ``node``: the agent's start-up call tying them together (``prepare``).
"""
