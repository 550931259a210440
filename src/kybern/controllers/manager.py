"""The controller manager: the ``kybern server`` component that runs every controller.

``run(ctx)`` builds each enabled controller over the shared client and informer factory,
registers their event handlers, starts the informers, waits for every cache to sync, then runs
one ``runtime.Runner`` per controller until cancelled. With ``leader_elect`` in the options it
first campaigns for the Lease ``kube-system/kybern-controller-manager`` (as
kube-controller-manager does) and runs the controllers only while it holds it; losing the
Lease stops them, and it campaigns again.

Options read from ``ctx.options``: ``controllers`` (kube-controller-manager's
``--controllers`` list or comma-separated string: ``*``, ``name``, ``-name``; default all),
``leader_elect`` (bool, default False), ``identity`` (leader election identity),
``root_ca_pem`` (the cluster CA, for the root-ca-cert-publisher),
``cluster_cidr`` / ``node_cidr_mask_size`` (the node-ipam-controller's pod CIDRs).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from kybern import client as kclient
from kybern.controllers import (
    cronjob,
    daemonset,
    deployment,
    disruption,
    endpoints,
    endpointslice,
    garbagecollector,
    job,
    namespaces,
    nodeipam,
    nodelifecycle,
    podgc,
    replicaset,
    resourcequota,
    rootcacertpublisher,
    runtime,
    serviceaccounts,
    servicelb,
    statefulset,
    tainteviction,
)

log = logging.getLogger(__name__)

LEASE_NAME = "kybern-controller-manager"
LEASE_NAMESPACE = "kube-system"
SYNC_TIMEOUT = 60.0

Factory = Callable[..., runtime.Controller]

# name -> factory(client=, informers=, clock=); the names kube-controller-manager uses.
# A factory whose ``takes_options`` is true also gets ``options=`` (the manager's options).
CONTROLLERS: dict[str, Factory] = {
    "namespace": namespaces.NamespaceController,
    "serviceaccount": serviceaccounts.ServiceAccountController,
    "garbagecollector": garbagecollector.GarbageCollector,
    "replicaset": replicaset.ReplicaSetController,
    "replicationcontroller": replicaset.ReplicationControllerController,
    "deployment": deployment.DeploymentController,
    "statefulset": statefulset.StatefulSetController,
    "daemonset": daemonset.DaemonSetController,
    "job": job.JobController,
    "cronjob": cronjob.CronJobController,
    "endpoint": endpoints.EndpointsController,
    "endpointslice": endpointslice.EndpointSliceController,
    "resourcequota": resourcequota.ResourceQuotaController,
    "disruption": disruption.DisruptionController,
    "nodelifecycle": nodelifecycle.NodeLifecycleController,
    "node-ipam-controller": nodeipam.NodeIPAMController,
    "taint-eviction-controller": tainteviction.TaintEvictionController,
    "podgc": podgc.PodGCController,
    "root-ca-cert-publisher": rootcacertpublisher.RootCACertPublisher,
    "service-lb-controller": servicelb.ServiceLBController,
}


class Context(Protocol):
    """What the manager needs from ``kybern.cli.cluster.Context``."""

    @property
    def client(self) -> kclient.Client: ...

    @property
    def informers(self) -> kclient.SharedInformerFactory: ...

    @property
    def options(self) -> dict[str, object]: ...


def enabled(spec: Iterable[str] | None) -> list[str]:
    """Controller names from kube-controller-manager's ``--controllers`` syntax: ``*`` is
    every controller, ``name`` enables one, ``-name`` disables one (``["*", "-garbagecollector"]``,
    ``["-*"]`` for none). None: all."""
    if spec is None:
        return list(CONTROLLERS)
    items = list(spec)
    unknown = [i for i in items if i.lstrip("-") not in CONTROLLERS and i.lstrip("-") != "*"]
    if unknown:
        raise ValueError(
            f"unknown controllers: {', '.join(unknown)} (known: {', '.join(CONTROLLERS)})"
        )
    on = set(CONTROLLERS) if "*" in items else set()
    on |= {i for i in items if i in CONTROLLERS}
    on -= {i[1:] for i in items if i.startswith("-") and i[1:] in CONTROLLERS}
    if "-*" in items:
        on &= {i for i in items if i in CONTROLLERS}
    return [name for name in CONTROLLERS if name in on]


def build(
    names: Iterable[str],
    client: kclient.Client,
    informers: kclient.SharedInformerFactory,
    options: Mapping[str, object] | None = None,
) -> list[runtime.Runner]:
    """One runner per named controller, handlers registered (informers not yet started)."""
    runners = []
    for name in names:
        factory = CONTROLLERS[name]
        extra = {"options": options or {}} if getattr(factory, "takes_options", False) else {}
        controller = factory(client=client, informers=informers, clock=informers.clock, **extra)
        runner = runtime.Runner(controller, informers)
        runner.register()
        runners.append(runner)
    return runners


async def run_controllers(
    client: kclient.Client,
    informers: kclient.SharedInformerFactory,
    *,
    names: Iterable[str] | None = None,
    started: asyncio.Event | None = None,
    options: Mapping[str, object] | None = None,
) -> None:
    """Run the controllers (default: all) until cancelled."""
    runners = build(enabled(names), client, informers, options)
    if not runners:
        log.info("no controllers enabled")
        await asyncio.Event().wait()  # idle until cancelled, like any component
    informers.start()
    async with asyncio.timeout(SYNC_TIMEOUT):
        await informers.wait_for_cache_sync()
    log.info("controllers started: %s", ", ".join(r.controller.name for r in runners))
    if started is not None:
        started.set()
    await asyncio.gather(*(runner.run() for runner in runners))


async def run(ctx: Context) -> None:
    """The component entry point (see ``kybern.cli.cluster``)."""
    options: dict[str, Any] = dict(ctx.options)
    names = options.get("controllers")
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    selected = list(names) if isinstance(names, list | tuple) else None

    async def lead() -> None:
        await run_controllers(ctx.client, ctx.informers, names=selected, options=options)

    if not options.get("leader_elect"):
        await lead()
        return
    identity = str(options.get("identity") or f"{socket.gethostname()}_{uuid.uuid4()}")
    config = kclient.LeaderElectionConfig(
        name=LEASE_NAME, namespace=LEASE_NAMESPACE, identity=identity
    )
    while True:
        elector = kclient.LeaderElector(
            ctx.client, config, on_started_leading=lead, clock=ctx.informers.clock
        )
        await elector.run()
        log.warning("%s: lost the controller-manager lease; campaigning again", identity)
