"""PATCH with a JSON patch (RFC 6902) or a JSON merge patch (RFC 7386).

Strategic merge patch and server-side apply arrive with the kubectl-compatibility issue; until
then they are refused with 415 rather than approximated.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybern.api import errors as api_errors
from kybern.api import patch as patches
from kybern.apiserver import codec, errors, query, registry
from kybern.apiserver.handlers import context

SUPPORTED = (codec.JSON_PATCH, codec.MERGE_PATCH)


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
    raise errors.StatusError(
        415,
        "UnsupportedMediaType",
        f'the body of the request was in an unknown format - accepted media types include: {", ".join(SUPPORTED)} (got "{content_type}")',
    )


def _apply(fn: Any, obj: dict[str, Any], body: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = fn(obj, body)
    except api_errors.APIError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise errors.bad_request(f"the patch could not be applied: {exc}") from None
    return result


async def handle(req: context.Request) -> web.StreamResponse:
    content_type = codec.media_type(req.http)
    if content_type not in SUPPORTED:
        patch_function(content_type, None)
    body = codec.decode(await codec.read_body(req.http), content_type)
    fn = patch_function(content_type, body)
    obj = await req.registry.patch(
        req.info,
        req.namespace,
        req.name,
        fn,
        dry_run=query.dry_run(req.query),
        subresource=req.subresource,
    )
    return codec.response(registry.to_version(req.info, obj))
