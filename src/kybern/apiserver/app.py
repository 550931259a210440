"""The aiohttp application: middlewares (metrics, per-request state and Warning headers,
errors as Status, authentication) and routes.

Routes: /version, /healthz, /livez, /readyz, /metrics, /openapi/v2 and /openapi/v3
(kybern.apiserver.openapi), discovery and every resource path under /api and /apis
(kybern.apiserver.routing). Anything else is a 404 Status.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

import kybern
from kybern.api import errors as api_errors
from kybern.apiserver import (
    authn,
    codec,
    errors,
    fieldvalidation,
    metrics,
    openapi,
    registry,
    routing,
)
from kybern.apiserver.handlers import context
from kybern.storage import errors as storage_errors

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READY_KEY = web.AppKey("ready", Callable[[], bool])


def version_info() -> dict[str, str]:
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": f"{kybern.KUBERNETES_VERSION}+kybern",
        "gitCommit": "kybern-" + kybern.__version__,
        "gitTreeState": "clean",
        "buildDate": "2026-11-22T00:00:00Z",
        "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}",
        "compiler": "cpython",
        "platform": f"{sys.platform}/{machine}",
    }


def _resource_label(request: web.Request) -> tuple[str, str] | None:
    parts = [p for p in request.path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return None
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest and rest[0] == "watch":
        rest = rest[1:]
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        rest = rest[2:]
    if not rest:
        return None
    return rest[0], rest[1] if len(rest) > 1 else ""


def metrics_middleware(m: metrics.Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        resource = _resource_label(request)
        verb = metrics.request_verb(request, resource)
        name = resource[0] if resource else ""
        code = 500
        if verb == "WATCH":
            m.watches.labels(verb, name).inc()
        try:
            response = await handler(request)
            code = response.status
            return response
        finally:
            if verb == "WATCH":
                m.watches.labels(verb, name).dec()
            else:
                m.latency.labels(verb, name).observe(time.perf_counter() - start)
            m.requests.labels(verb, name, str(code)).inc()

    return record


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a Kubernetes Status response (never a traceback)."""
    try:
        return await handler(request)
    except errors.StatusError as exc:
        return _status_response(exc)
    except (api_errors.APIError, storage_errors.StorageError) as exc:
        return _status_response(errors.from_exception(exc))
    except web.HTTPRequestEntityTooLarge:
        return _status_response(errors.too_large(codec.MAX_BODY))
    except web.HTTPNotFound:
        return _status_response(errors.path_not_found(request.path))
    except web.HTTPMethodNotAllowed:
        return _status_response(errors.method_not_allowed())
    except web.HTTPException as exc:
        return _status_response(
            errors.StatusError(exc.status, exc.reason.replace(" ", ""), exc.text or exc.reason)
        )
    except TimeoutError:
        return _status_response(
            errors.StatusError(504, "Timeout", "the request timed out waiting for storage")
        )
    except ConnectionResetError:
        raise
    except Exception as exc:
        log.exception("internal error serving %s %s", request.method, request.path)
        return _status_response(errors.internal(f"{type(exc).__name__}: {exc}"))


def _status_response(exc: errors.StatusError) -> web.Response:
    return web.Response(
        status=exc.code, body=orjson.dumps(exc.status()), content_type="application/json"
    )


async def _version(request: web.Request) -> web.Response:
    return codec.response(version_info())


async def _health(request: web.Request) -> web.Response:
    if not request.app[READY_KEY]():
        return web.Response(
            status=500, text="[-]watch-cache failed: not ready\nhealthz check failed\n"
        )
    if "verbose" in request.query:
        return web.Response(
            text="[+]ping ok\n[+]etcd ok\n[+]watch-cache ok\nhealthz check passed\n"
        )
    return web.Response(text="ok")


async def _not_found(request: web.Request) -> web.Response:
    raise errors.path_not_found(request.path)


def build(
    *,
    reg: registry.Registry,
    metrics_: metrics.Metrics,
    authenticator: authn.Authenticator | None,
    ready: Callable[[], bool] = lambda: True,
) -> web.Application:
    # fieldvalidation.middleware sits outside status_errors: error answers carry warnings too.
    middlewares = [metrics_middleware(metrics_), fieldvalidation.middleware, status_errors]
    if authenticator is not None:
        middlewares.append(authn.middleware(authenticator))
    app = web.Application(middlewares=middlewares, client_max_size=codec.MAX_BODY)
    app[context.REGISTRY] = reg
    app[READY_KEY] = ready
    app.router.add_get("/version", _version)
    app.router.add_get("/version/", _version)
    for check in ("healthz", "livez", "readyz"):
        app.router.add_get(f"/{check}", _health)
        app.router.add_get(f"/{check}/{{tail:.*}}", _health)
    app.router.add_get("/metrics", metrics_.handle)
    openapi.add_routes(app)
    app.router.add_route("*", "/api", routing.core)
    app.router.add_route("*", "/api/{tail:.*}", routing.core)
    app.router.add_route("*", "/apis", routing.groups)
    app.router.add_route("*", "/apis/{tail:.*}", routing.groups)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
