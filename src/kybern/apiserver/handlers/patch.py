"""PATCH: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch and
server-side apply (``application/apply-patch+yaml``).

The first three become a function from the current object to the new one, run by the
registry's guaranteed update; the write is then recorded in managedFields for the request's
field manager. Apply computes the new object and its managedFields itself (kybern.api.apply)
and creates the object when it does not exist (201). ``force`` is only for apply, and apply
needs a ``fieldManager`` (422 otherwise, as Kubernetes' PatchOptions validation answers).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybern.api import apply as server_apply
from kybern.api import errors as api_errors
from kybern.api import patch as patches
from kybern.api import strategic
from kybern.apiserver import codec, errors, query, registry, strategy
from kybern.apiserver.handlers import context

SUPPORTED = (codec.JSON_PATCH, codec.MERGE_PATCH, codec.STRATEGIC_PATCH, codec.APPLY_PATCH)
_NO_STRATEGIC = (codec.JSON_PATCH, codec.MERGE_PATCH, codec.APPLY_PATCH)


def unsupported(content_type: str, accepted: tuple[str, ...] = SUPPORTED) -> errors.StatusError:
    return errors.StatusError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f'{", ".join(accepted)} (got "{content_type}")',
    )


def patch_function(content_type: str, body: Any) -> registry.PatchFn:
    if content_type == codec.JSON_PATCH:
        if not isinstance(body, list):
            raise errors.bad_request(
                "the JSON patch must be a JSON array of operations (application/json-patch+json)"
            )
        return lambda obj: _apply(patches.apply_json_patch, obj, body)
    if content_type == codec.MERGE_PATCH:
        if not isinstance(body, dict):
            raise errors.bad_request(
                "the merge patch must be a JSON object (application/merge-patch+json)"
            )
        return lambda obj: _apply(patches.apply_merge_patch, obj, body)
    if content_type == codec.STRATEGIC_PATCH:
        if not isinstance(body, dict):
            raise errors.bad_request(
                "the strategic merge patch must be a JSON object "
                "(application/strategic-merge-patch+json)"
            )
        return lambda obj: _apply(_strategic, obj, body)
    raise unsupported(content_type)


def _strategic(obj: dict[str, Any], body: Any) -> Any:
    if strategic.definition_for(obj) is None:
        # Kubernetes has no merge keys for custom resources either.
        raise unsupported(codec.STRATEGIC_PATCH, _NO_STRATEGIC)
    return strategic.apply_strategic_merge_patch(obj, body)


def _apply(fn: Any, obj: dict[str, Any], body: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = fn(obj, body)
    except (api_errors.APIError, errors.StatusError):
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise errors.bad_request(f"the patch could not be applied: {exc}") from None
    return result


def _options_invalid(field: str, reason: str, message: str) -> errors.StatusError:
    cause = api_errors.Cause(reason, f"{field}: {message}", field)
    return errors.invalid("PatchOptions", "", [cause], "meta.k8s.io")


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    if content_type not in SUPPORTED:
        raise unsupported(content_type)
    is_apply = content_type == codec.APPLY_PATCH
    if "force" in call.query and not is_apply:
        raise _options_invalid(
            "force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch"
        )
    if is_apply and not call.query.get("fieldManager"):
        raise _options_invalid(
            "fieldManager", "FieldValueRequired", "Required value: is required for apply patch"
        )
    if is_apply:
        return await _server_side_apply(call, body)
    obj = await call.registry.patch(
        call.info,
        call.namespace,
        call.name,
        patch_function(content_type, body),
        dry_run=call.dry_run,
        subresource=call.subresource,
        field_manager=call.field_manager,
    )
    return 200, registry.to_version(call.info, obj)


async def handle(req: context.Request) -> web.StreamResponse:
    content_type = codec.media_type(req.http)
    if content_type not in SUPPORTED:
        raise unsupported(content_type)
    body = codec.decode(await codec.read_body(req.http), content_type)
    return await context.respond(req, operation, body)


# -- server-side apply ------------------------------------------------------------------------


async def _server_side_apply(call: context.Call, body: Any) -> context.Answer:
    if not isinstance(body, dict):
        raise errors.bad_request("the apply patch must be a single YAML or JSON object")
    context.check_type(call.info, body)
    server_apply.check_config(body)
    if body["metadata"]["name"] != call.name:
        raise errors.bad_request(
            f"the name of the object ({body['metadata']['name']}) does not match the name on "
            f"the URL ({call.name})"
        )
    force = query.parse_bool(call.query, "force")
    dry_run = query.dry_run(call.query)

    def applied(live: dict[str, Any] | None) -> dict[str, Any]:
        try:
            return server_apply.apply(
                live,
                body,
                manager=call.field_manager,
                force=force,
                now=strategy.now_rfc3339(),
                subresource=call.subresource,
            )
        except server_apply.Conflict as exc:
            raise errors.StatusError(
                409, "Conflict", str(exc), details={"causes": exc.causes()}
            ) from None

    for _ in range(3):
        try:
            obj = await call.registry.patch(
                call.info,
                call.namespace,
                call.name,
                applied,
                dry_run=dry_run,
                subresource=call.subresource,
            )
            return 200, registry.to_version(call.info, obj)
        except errors.StatusError as exc:
            if exc.reason != "NotFound" or call.subresource:
                raise
        try:
            created = await call.registry.create(
                call.info, call.namespace, applied(None), dry_run=dry_run
            )
            return 201, registry.to_version(call.info, created)
        except errors.StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise
    raise errors.conflict(call.info.plural, call.name, call.info.group)
