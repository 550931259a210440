"""The FailedScheduling summary, in Kubernetes v1.32's exact format."""

from __future__ import annotations

import pytest

from kybern.scheduler import diagnosis, framework

pytestmark = pytest.mark.timeout(10)
CPU = framework.Status.unschedulable("Insufficient cpu")
TAINT = framework.Status.unschedulable(
    "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }", resolvable=False
)


def test_histogram_sorted_as_strings_with_postfilter_message() -> None:
    message = diagnosis.fit_error_message(
        3,
        {"a": CPU, "b": TAINT, "c": TAINT},
        post_filter_msg="preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    )
    assert message == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: "
        "3 Preemption is not helpful for scheduling."
    )


def test_multiple_reasons_per_node_all_count_sorted_as_strings_not_by_count() -> None:
    both = framework.Status.unschedulable("Insufficient cpu", "Insufficient memory")
    message = diagnosis.fit_error_message(2, {"a": both, "b": CPU})
    # Kubernetes sorts the "<count> <reason>" strings, so "1 ..." comes before "2 ..."
    assert message == "0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."


def test_absent_nodes_counted_under_the_absent_status() -> None:
    absent = framework.Status.unschedulable(
        "Preemption is not helpful for scheduling", resolvable=False
    )
    no_victims = framework.Status.unschedulable("No preemption victims found for incoming pod")
    message = diagnosis.fit_error_message(3, {"a": no_victims}, absent=absent)
    assert message == (
        "0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )


def test_pre_filter_message_replaces_the_histogram() -> None:
    message = diagnosis.fit_error_message(2, {"a": CPU, "b": CPU}, pre_filter_msg="too bad")
    assert message == "0/2 nodes are available: too bad."
