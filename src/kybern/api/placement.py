"""Node placement rules shared by the scheduler and the controllers that place pods themselves
(the DaemonSet controller): node selector terms (matchExpressions on labels, matchFields on the
node's name) and taint toleration, as Kubernetes' component-helpers define them. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kybern.api import labels

_NODE_OPERATORS = {
    "In": labels.IN,
    "NotIn": labels.NOT_IN,
    "Exists": labels.EXISTS,
    "DoesNotExist": labels.DOES_NOT_EXIST,
    "Gt": labels.GREATER_THAN,
    "Lt": labels.LESS_THAN,
}


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """One nodeSelectorTerm: its matchExpressions (on labels) AND matchFields (on the name)."""

    expressions: labels.Selector
    field_names: tuple[labels.Requirement, ...]

    def matches(self, node_labels: Mapping[str, str], node_name: str) -> bool:
        if not self.expressions.requirements and not self.field_names:
            return False  # an empty term matches no node
        if not self.expressions.matches(node_labels):
            return False
        fields = {"metadata.name": node_name}
        return all(req.matches(fields) for req in self.field_names)


def node_selector_term(term: Mapping[str, Any]) -> NodeSelectorTerm:
    expressions = [_node_requirement(e) for e in term.get("matchExpressions") or ()]
    field_reqs = tuple(_node_requirement(e) for e in term.get("matchFields") or ())
    return NodeSelectorTerm(labels.selector(expressions), field_reqs)


def _node_requirement(expr: Mapping[str, Any]) -> labels.Requirement:
    operator = _NODE_OPERATORS.get(str(expr.get("operator")), "invalid")
    values = tuple(str(v) for v in expr.get("values") or ())
    return labels.Requirement(str(expr.get("key") or ""), operator, values)


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' ToleratesTaint: empty key with Exists matches every taint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")
