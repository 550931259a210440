"""kybern.client: how components talk to the API server.

- ``Client`` (resources.py): Kubernetes verbs over dict objects, on a ``Transport``.
- ``RESTTransport`` (rest.py): HTTPS from a kubeconfig; ``InProcessTransport`` (inprocess.py):
  the same semantics inside ``kybern server`` without HTTP or JSON, over a ``LocalAPI``.
- ``Informer`` / ``SharedInformerFactory`` (informer.py) with ``Store`` (store.py): list+watch
  caches with indexes and event handlers, one per resource per process.
- ``RateLimitingQueue`` (workqueue.py): the controllers' deduplicating, rate-limited queue.
- ``LeaderElector`` (leaderelection.py): leader election on a Lease.
- ``Clock`` / ``FakeClock`` (clock.py): time, drivable by tests.
- errors.py: ``ApiError`` and its subclasses (``NotFound``, ``Conflict``, ``Gone`` ...).
"""

from kybern.client import errors
from kybern.client.clock import Clock, FakeClock, RealClock
from kybern.client.errors import (
    AlreadyExists,
    ApiError,
    ClientError,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    TransportError,
)
from kybern.client.informer import (
    DeletedFinalStateUnknown,
    EventHandler,
    FuncHandler,
    Informer,
    SharedInformerFactory,
    object_of,
)
from kybern.client.inprocess import InProcessTransport, copy_object
from kybern.client.leaderelection import Config as LeaderElectionConfig
from kybern.client.leaderelection import LeaderElector
from kybern.client.resources import Client, path_for, resource_info
from kybern.client.rest import ClusterConfig, RESTTransport, load_kubeconfig
from kybern.client.store import Store, key_of, split_key
from kybern.client.transport import LocalAPI, Response, Transport, User, WatchEvent
from kybern.client.workqueue import RateLimitingQueue, ShutDown

__all__ = [
    "AlreadyExists",
    "ApiError",
    "Client",
    "ClientError",
    "Clock",
    "ClusterConfig",
    "Conflict",
    "DeletedFinalStateUnknown",
    "EventHandler",
    "FakeClock",
    "FuncHandler",
    "Gone",
    "InProcessTransport",
    "Informer",
    "Invalid",
    "LeaderElectionConfig",
    "LeaderElector",
    "LocalAPI",
    "NotFound",
    "RESTTransport",
    "RateLimitingQueue",
    "RealClock",
    "Response",
    "SharedInformerFactory",
    "ShutDown",
    "Store",
    "Transport",
    "TransportError",
    "User",
    "WatchEvent",
    "copy_object",
    "errors",
    "key_of",
    "load_kubeconfig",
    "object_of",
    "path_for",
    "resource_info",
    "split_key",
]
