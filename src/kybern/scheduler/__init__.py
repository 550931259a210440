"""kybern.scheduler: kube-scheduler's design in Python, driven by plain dicts.

Map of the package (cycle order):

- ``podinfo``/``nodeinfo``: what the scheduler reads from a Pod / Node, computed once.
- ``queue``: activeQ (priority, then age), backoffQ (1 s -> 10 s), unschedulable pods
  moved by cluster events or after 5 minutes; nominated pods by node.
- ``cache``: nodes with their pods, assumed pods (confirm / forget / expire), snapshot.
- ``framework``: Status, CycleState, Snapshot, one Protocol per extension point, the
  Framework that runs a profile; ``plugins/``: one plugin per module plus the registry.
- ``preemption``: DefaultPreemption (PostFilter). ``diagnosis``: the FailedScheduling text.
- ``equivalence``: Borg's equivalence classes (shared filter results and scores).
- ``scheduler``: the cycle. ``adapter``: the ClusterAPI Protocol it writes through and the
  informer-event handlers that feed it.

Driving it: ``s = scheduler.Scheduler(cluster=<ClusterAPI>)``; feed objects with
``adapter.on_node_event``/``on_pod_event``/... (or ``s.add_node``, ``s.add_pod``,
``s.remove_pod``...); run ``await s.run()`` in a task, or ``await s.run_once()`` per cycle.
"""
