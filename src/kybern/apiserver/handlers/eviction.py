"""pods/eviction: a pod delete that honours PodDisruptionBudgets (POST a policy/v1 Eviction).

Kubernetes v1.32's EvictionREST, step by step:

0. The eviction itself is admitted first, as a CREATE of the ``pods/eviction`` subresource
   (kind Eviction) before the pod is even read: NamespaceLifecycle refuses it in a missing
   namespace (404) or a terminating one (403 with a ``NamespaceTerminating`` cause, which
   ``kubectl drain`` waits on); the plugins that look at pods themselves (LimitRanger,
   ResourceQuota, ServiceAccount, DefaultTolerationSeconds) ignore subresources.
1. A pod that cannot disrupt anything more (Succeeded, Failed, Pending, or already being
   deleted) is deleted at once, budgets unchecked; a live pod's delete is pinned to the
   resourceVersion just read so it cannot race with the pod becoming ready.
2. The PodDisruptionBudgets of the pod's namespace whose selector matches the pod (policy/v1:
   ``{}`` matches every pod, a missing selector none). More than one: Kubernetes' own 500.
   None: delete.
3. One budget: an unready pod passes without spending a disruption when the budget says
   ``unhealthyPodEvictionPolicy: AlwaysAllow``, or when the budget is met anyway
   (IfHealthyBudget, the default); its delete is then pinned to the pod's resourceVersion and
   a conflict answers 429 (the pod changed: the client retries).
   Otherwise the budget must be processed (``observedGeneration`` current) and allow a
   disruption: ``disruptionsAllowed`` is decremented and the pod recorded in ``disruptedPods``
   (which the disruption controller expires after 2 minutes), written with compare-and-swap
   and retried on conflicts against the fresh budget; no disruption left answers 429
   TooManyRequests with a ``DisruptionBudget`` cause.
4. The pod gets the ``DisruptionTarget`` condition (reason ``EvictionByEvictionAPI``), then is
   deleted with the eviction's deleteOptions (grace period, preconditions, dry run). The
   answer is a Success Status with code 201.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from aiohttp import web

from kybern.api import errors as api_errors
from kybern.api import kinds, labels
from kybern.apiserver import admission, codec, deletion, errors, registry, strategy, watchcache
from kybern.apiserver.handlers import context

EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_BUDGETS = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not "
    "support."
)
MAX_DISRUPTED_PODS = 2000  # Kubernetes' MaxDisruptedPodSize
CONFLICT_RETRIES = 10  # Kubernetes' EvictionsRetry steps
_IGNORE_BUDGET_PHASES = ("Succeeded", "Failed", "Pending")


def _pdb_info() -> kinds.ResourceInfo:
    info = kinds.lookup("policy", "v1", "poddisruptionbudgets")
    assert info is not None  # served by kinds.py
    return info


# -- the request ---------------------------------------------------------------------------


def _eviction(call: context.Call, body: Any) -> dict[str, Any]:
    eviction = context.object_body_any(body)
    api_version = eviction.get("apiVersion", "policy/v1")
    kind = eviction.get("kind", "Eviction")
    if api_version not in EVICTION_VERSIONS or kind != "Eviction":
        raise errors.bad_request(
            f"not a Eviction object: {api_version}, Kind={kind} (expected policy/v1 Eviction)"
        )
    meta = eviction.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata: the Eviction's metadata must be a JSON object")
    if meta.get("name", "") != call.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    namespace = meta.get("namespace")
    if namespace and namespace != call.namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    return eviction


def _delete_options(call: context.Call, eviction: dict[str, Any]) -> deletion.DeleteOptions:
    """The eviction's deleteOptions; the request's ``dryRun`` applies when they name none."""
    body = eviction.get("deleteOptions")
    if body is not None and not isinstance(body, dict):
        raise errors.bad_request("deleteOptions: must be a DeleteOptions object")
    pre = (body or {}).get("preconditions")
    if pre is not None and not isinstance(pre, dict):
        raise errors.bad_request("deleteOptions.preconditions: must be an object")
    only_dry_run = {"dryRun": call.query["dryRun"]} if "dryRun" in call.query else {}
    return deletion.parse_options(only_dry_run, body)


async def _admit(
    call: context.Call, eviction: dict[str, Any], options: deletion.DeleteOptions
) -> None:
    """The admission chain on the eviction (step 0 above), in the URL's namespace and name."""
    meta = {**(eviction.get("metadata") or {}), "name": call.name, "namespace": call.namespace}
    request = admission.Request(call.info, dry_run=options.dry_run, subresource="eviction")
    await call.registry.admit.on_create(request, {**eviction, "metadata": meta})


# -- pods and budgets ----------------------------------------------------------------------


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _can_ignore_budget(pod: dict[str, Any]) -> bool:
    """Kubernetes' canIgnorePDB: the pod disrupts nothing more by going away."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in _IGNORE_BUDGET_PHASES or bool(pod["metadata"].get("deletionTimestamp"))


def _pin_to_pod(pod: dict[str, Any]) -> bool:
    """Whether a budget-free delete must not race a change of the pod (it is still live)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def selector_matches(pdb: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    try:
        selector = labels.from_label_selector((pdb.get("spec") or {}).get("selector"))
    except api_errors.APIError:
        return False  # an invalid selector matches no pod
    return selector.matches(pod_labels)


def budgets_for(reg: registry.Registry, pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The budgets in the pod's namespace whose selector matches it (from the watch cache)."""
    info = _pdb_info()
    meta = pod["metadata"]
    cache = reg.cache.resource(info.storage_resource)
    prefix = watchcache.collection_prefix(info.storage_resource, meta.get("namespace", ""))
    pod_labels = meta.get("labels") or {}
    found = []
    for key in cache.keys_in(prefix):
        pdb = registry.to_version(info, cache.objects[key])
        if selector_matches(pdb, pod_labels):
            found.append(pdb)
    return found


# -- errors --------------------------------------------------------------------------------


def _too_many_requests(cause: str, retry_after: int = 0) -> errors.StatusError:
    details: dict[str, Any] = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return errors.StatusError(429, "TooManyRequests", VIOLATION, details=details)


def _still_processing(name: str) -> errors.StatusError:
    return _too_many_requests(
        f"The disruption budget {name} is still being processed by the server.", 10
    )


def _forbidden(name: str, detail: str) -> errors.StatusError:
    return errors.forbidden("poddisruptionbudget", name, "policy", detail)


def _multiple_budgets() -> context.Answer:
    # Kubernetes returns this as a Status object with code 500 and no reason (not an error).
    return 500, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": MULTIPLE_BUDGETS,
        "code": 500,
    }


SUCCESS: dict[str, Any] = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Success",
    "code": 201,
}


# -- the budget ----------------------------------------------------------------------------


def disruption_allowed_condition(pdb: dict[str, Any]) -> None:
    """Kubernetes' UpdateDisruptionAllowedCondition, in place on ``pdb``'s status."""
    status = pdb.setdefault("status", {})
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    wanted = {
        "type": "DisruptionAllowed",
        "status": "True" if allowed else "False",
        "reason": "SufficientPods" if allowed else "InsufficientPods",
        "message": "",
        "observedGeneration": int(status.get("observedGeneration") or 0),
    }
    conditions = [dict(c) for c in status.get("conditions") or []]
    for cond in conditions:
        if cond.get("type") == "DisruptionAllowed":
            if cond.get("status") != wanted["status"]:
                cond["lastTransitionTime"] = strategy.now_rfc3339()
            cond.update(wanted)
            break
    else:
        conditions.append({**wanted, "lastTransitionTime": strategy.now_rfc3339()})
    status["conditions"] = conditions


def _decremented(pdb: dict[str, Any], pod_name: str, dry_run: bool) -> dict[str, Any]:
    """The budget with one disruption spent on ``pod_name`` (Kubernetes' checkAndDecrement);
    429/403 Status errors when it has none to give."""
    meta, status = pdb["metadata"], pdb.get("status") or {}
    name = meta["name"]
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise _still_processing(name)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise _forbidden(name, "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise _forbidden(
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        )
    if allowed == 0:
        desired = int(status.get("desiredHealthy") or 0)
        current = int(status.get("currentHealthy") or 0)
        raise _too_many_requests(
            f"The disruption budget {name} needs {desired} healthy pods and has {current} currently"
        )
    new = copy.deepcopy(pdb)
    new_status = new.setdefault("status", {})
    new_status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        disruption_allowed_condition(new)
    if not dry_run:
        disrupted = dict(new_status.get("disruptedPods") or {})
        disrupted[pod_name] = strategy.now_rfc3339()
        new_status["disruptedPods"] = disrupted
    return new


def _passes_unhealthy(pod: dict[str, Any], pdb: dict[str, Any]) -> bool:
    """An unready pod leaves without spending a disruption when the budget is met anyway."""
    if is_ready(pod):
        return False
    status = pdb.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired and desired > 0


async def _spend(call: context.Call, pod: dict[str, Any], pdb: dict[str, Any], dry: bool) -> bool:
    """Charge the eviction to ``pdb``; True when the pod passed as unhealthy instead (its
    delete must then be pinned to the pod's resourceVersion)."""
    policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy")
    if not is_ready(pod) and policy == "AlwaysAllow":
        return True
    info, name = _pdb_info(), pdb["metadata"]["name"]
    for attempt in range(CONFLICT_RETRIES):
        if attempt:
            pdb = registry.to_version(info, await call.registry.get(info, call.namespace, name))
        if _passes_unhealthy(pod, pdb):
            return True
        new = _decremented(pdb, pod["metadata"]["name"], dry)
        if dry:
            return False
        try:
            await call.registry.update(
                info, call.namespace, name, new, dry_run=False, subresource="status"
            )
            return False
        except errors.StatusError as exc:
            if exc.reason != "Conflict":
                raise
    raise errors.StatusError(
        504,
        "Timeout",
        f'Timeout: couldn\'t update PodDisruptionBudget "{name}" due to conflicts',
        details={"retryAfterSeconds": 10},
    )


# -- the delete ----------------------------------------------------------------------------


def _with_disruption_target(pod: dict[str, Any], options: deletion.DeleteOptions) -> dict[str, Any]:
    meta = pod["metadata"]
    if options.uid and options.uid != meta.get("uid"):
        raise errors.conflict(
            "pods",
            meta["name"],
            "",
            f"Precondition failed: UID in precondition: {options.uid}, UID in object meta: {meta.get('uid')}",
        )
    if options.resource_version and options.resource_version != meta.get("resourceVersion"):
        raise errors.conflict(
            "pods",
            meta["name"],
            "",
            "Precondition failed: ResourceVersion in precondition: "
            f"{options.resource_version}, ResourceVersion in object meta: {meta.get('resourceVersion')}",
        )
    status = pod.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    previous = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "DisruptionTarget"), None
    )
    stamp = strategy.now_rfc3339()
    if previous is not None and previous.get("status") == "True":
        stamp = previous.get("lastTransitionTime") or stamp
    conditions.append(
        {
            "type": "DisruptionTarget",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": stamp,
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        }
    )
    status["conditions"] = conditions
    return pod


async def _mark_and_delete(call: context.Call, options: deletion.DeleteOptions) -> None:
    """Kubernetes' addConditionAndDeletePod."""
    if not options.dry_run:
        updated = await call.registry.patch(
            call.info,
            call.namespace,
            call.name,
            lambda pod: _with_disruption_target(pod, options),
            dry_run=False,
            subresource="status",
            field_manager=call.field_manager,
        )
        if options.resource_version:  # we moved the pod on: the precondition follows
            rv = updated["metadata"]["resourceVersion"]
            options = dataclasses.replace(options, resource_version=rv)
    await deletion.delete(call.registry, call.info, call.namespace, call.name, options)


async def _delete_if_budgets_do_not_apply(
    call: context.Call, options: deletion.DeleteOptions
) -> dict[str, Any] | None:
    """Delete a pod that can go regardless of budgets (None: done). A live pod's delete is
    pinned to the version read; on a conflict the pod is read again, and when it no longer
    qualifies it is returned for the budget checks."""
    for _ in range(CONFLICT_RETRIES):
        pod = await _get_pod(call)
        if not _can_ignore_budget(pod):
            return pod
        pinned = options
        if _pin_to_pod(pod) and options.resource_version is None:
            rv = pod["metadata"]["resourceVersion"]
            pinned = dataclasses.replace(options, resource_version=rv)
        try:
            await _mark_and_delete(call, pinned)
            return None
        except errors.StatusError as exc:
            if exc.reason != "Conflict" or options.resource_version is not None:
                raise
    raise errors.conflict("pods", call.name)


async def _get_pod(call: context.Call) -> dict[str, Any]:
    return registry.to_version(
        call.info, await call.registry.get(call.info, call.namespace, call.name)
    )


# -- the operation -------------------------------------------------------------------------


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    if call.method != "POST":
        raise errors.method_not_allowed()
    eviction = _eviction(call, body)
    options = _delete_options(call, eviction)
    await _admit(call, eviction, options)
    pod = await _delete_if_budgets_do_not_apply(call, options)
    if pod is None:
        return 201, dict(SUCCESS)
    budgets = budgets_for(call.registry, pod)
    if len(budgets) > 1:
        return _multiple_budgets()
    pinned = bool(budgets) and await _spend(call, pod, budgets[0], options.dry_run)
    final = options
    if pinned and options.resource_version is None:
        final = dataclasses.replace(options, resource_version=pod["metadata"]["resourceVersion"])
    try:
        await _mark_and_delete(call, final)
    except errors.StatusError as exc:
        if exc.reason == "Conflict" and pinned and options.resource_version is None:
            # the unready pod changed (maybe became ready): the client retries the eviction
            raise _still_processing(budgets[0]["metadata"]["name"]) from None
        raise
    return 201, dict(SUCCESS)


async def handle(req: context.Request) -> web.StreamResponse:
    try:
        return await context.respond(req, operation, await context.read_body(req))
    except errors.StatusError as exc:
        # Kubernetes sends a Status' retryAfterSeconds as a Retry-After header too
        retry = (exc.details or {}).get("retryAfterSeconds")
        if not retry:
            raise
        response = codec.response(exc.status(), status=exc.code)
        response.headers["Retry-After"] = str(retry)
        return response
