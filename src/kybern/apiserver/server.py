"""The API server assembled: store, watch cache, registry, TLS, authentication, HTTP.

``APIServer`` is what ``kybern server`` runs and what integration tests start in-process: it
opens the datastore, primes the watch cache, makes sure the system namespaces exist, creates
or reuses the PKI, writes the admin kubeconfig and serves HTTPS.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from kybern.api import kinds
from kybern.apiserver import (
    admission,
    app,
    authn,
    errors,
    gctuning,
    kubeconfig,
    local,
    metrics,
    pki,
    registry,
    satokens,
    watchcache,
)
from kybern.apiserver import services as service_alloc
from kybern.apiserver.handlers import podproxy
from kybern.apiserver.services import kubernetes_service
from kybern.storage import backend as storage_backend
from kybern.storage import open_backend

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    bind_address: str = "127.0.0.1"
    port: int = 6443
    datastore: str = ""  # default: sqlite in the data dir
    tls: bool = True
    watch_cache_capacity: int = 10_000
    # Process-wide GC tuning (kybern.apiserver.gctuning): on for `kybern server`, off when the
    # server is embedded in another process such as a test run.
    tune_gc: bool = False
    history_window_seconds: float | None = None
    history_window_revisions: int | None = None
    compact_interval_seconds: float | None = None  # None: the backend's default
    # Service ClusterIPs and NodePorts (kube-apiserver's --service-cluster-ip-range and
    # --service-node-port-range); the `kubernetes` Service takes the CIDR's first address.
    service_cidr: str = service_alloc.DEFAULT_SERVICE_CIDR
    node_port_range: str = service_alloc.DEFAULT_NODE_PORT_RANGE
    advertise_address: str = ""  # in the `kubernetes` Endpoints; default: from bind_address

    def datastore_url(self) -> str:
        return self.datastore or f"sqlite://{self.data_dir / 'db' / 'state.db'}"


class APIServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = metrics.Metrics()
        self.backend: storage_backend.Backend | None = None
        self.cache: watchcache.WatchCache | None = None
        self.registry: registry.Registry | None = None
        self.pki: pki.PKI | None = None
        self.token_issuer: satokens.Issuer | None = None
        self._runner: web.AppRunner | None = None
        self._gc_task: asyncio.Task[None] | None = None
        self.services: service_alloc.ServiceAllocation | None = None
        self.port = config.port
        self.kubeconfig_path = config.data_dir / "kubeconfig.yaml"

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return kubeconfig.server_url(bind_address=self.config.bind_address, port=self.port).replace(
            "https", scheme, 1
        )

    def local_api(self) -> local.LocalAPI:
        """The in-process API (no HTTP) for kybern.client's in-process transport; after start."""
        assert self.registry is not None, "start() the server first"
        return local.LocalAPI(self.registry)

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        options = {}
        if self.config.history_window_seconds is not None:
            options["history_window_seconds"] = self.config.history_window_seconds
        if self.config.history_window_revisions is not None:
            options["history_window_revisions"] = self.config.history_window_revisions
        if self.config.compact_interval_seconds is not None:
            options["compact_interval"] = self.config.compact_interval_seconds
        raw = open_backend(self.config.datastore_url(), **options)
        await raw.start()
        self.backend = metrics.TimedBackend(raw, self.metrics)  # type: ignore[assignment]
        self.cache = watchcache.WatchCache(self.backend, capacity=self.config.watch_cache_capacity)  # type: ignore[arg-type]
        await self.cache.start()
        self.registry = registry.Registry(
            backend=self.backend,  # type: ignore[arg-type]
            cache=self.cache,
            admit=admission.default_chain(self.cache),
        )
        key = await asyncio.to_thread(pki.ensure_service_account_key, self.config.data_dir / "pki")
        self.token_issuer = satokens.Issuer(key)
        satokens.install(self.registry, self.token_issuer)
        self.services = service_alloc.ServiceAllocation(
            reg=self.registry,
            cache=self.cache,
            service_cidr=self.config.service_cidr,
            node_port_range=self.config.node_port_range,
        )
        await self._bootstrap()
        await self._serve()
        address = self.config.advertise_address or kubernetes_service.advertise_address(
            self.config.bind_address
        )
        await self.services.start(address=address, port=self.port)
        if self.config.tune_gc:
            freezer = gctuning.HeapFreezer(self.cache.object_count, self.cache.replaced_count)
            self._gc_task = asyncio.create_task(gctuning.run(freezer), name="gc-freezer")

    async def _bootstrap(self) -> None:
        assert self.registry is not None
        info = kinds.lookup("", "v1", "namespaces")
        assert info is not None
        for name in admission.SYSTEM_NAMESPACES:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            try:
                await self.registry.create(info, "", body, dry_run=False)
            except errors.StatusError as exc:
                if exc.reason != "AlreadyExists":
                    raise

    async def _serve(self) -> None:
        assert self.registry is not None
        assert self.cache is not None
        authenticator = None
        ssl_context = None
        if self.config.tls:
            extra = (
                [self.config.bind_address]
                if self.config.bind_address not in ("", "0.0.0.0", "::")
                else []
            )
            self.pki = await asyncio.to_thread(
                pki.ensure_pki, data_dir=self.config.data_dir, extra_sans=extra
            )
            ssl_context = self.pki.server_ssl_context()
            authenticator = authn.Authenticator.from_pki(self.pki)
            if self.token_issuer is not None:
                authenticator.service_accounts = satokens.TokenAuthenticator(
                    self.token_issuer, satokens.cache_lookup(self.cache)
                )
        application = app.build(
            reg=self.registry,
            metrics_=self.metrics,
            authenticator=authenticator,
            ready=self.cache.ready.is_set,
        )
        if self.pki is not None:  # pods/log, exec, port-forward dial kubelets with it
            application[podproxy.KUBELET_TLS] = await asyncio.to_thread(
                pki.kubelet_client_ssl_context, self.pki
            )
        self._runner = web.AppRunner(
            application, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        sock = _listen(self.config.bind_address, self.config.port)
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await site.start()
        if self.pki is not None:
            await asyncio.to_thread(
                kubeconfig.write_admin_kubeconfig,
                pki=self.pki,
                server_url=self.url,
                path=self.kubeconfig_path,
            )
        log.info("kybern API server serving on %s (kubeconfig: %s)", self.url, self.kubeconfig_path)

    async def stop(self) -> None:
        if self._gc_task is not None:
            self._gc_task.cancel()
        if self.services is not None:
            await self.services.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.cache is not None:
            await self.cache.stop()
        if self.backend is not None:
            await self.backend.close()


def _listen(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address or "0.0.0.0", port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def run(config: Config) -> None:
    """Serve until SIGTERM/SIGINT or cancellation, then shut down cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = APIServer(config)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()
