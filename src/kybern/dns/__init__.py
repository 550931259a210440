"""kybern.dns: cluster DNS served from informer caches (records), over UDP and TCP (server),
forwarding other names upstream with a cache (forward); ``component.run`` assembles it."""
