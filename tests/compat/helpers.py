"""Small helpers shared by the compatibility tests (media types, error unpacking)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

Obj = dict[str, Any]
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def api_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ApiException:
    """The ApiException the call must raise."""
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    return info.value


def status_of(exc: ApiException) -> Obj:
    """The Status object the server answered with."""
    body: Obj = json.loads(exc.body)
    assert body["kind"] == "Status", body
    return body
