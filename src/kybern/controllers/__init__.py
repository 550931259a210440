"""kybern.controllers: the controller manager and its controllers, one module each.

- runtime.py: ``Result``, ``TerminalError``, ``Watch``, the ``Controller`` protocol and the
  ``Runner`` (queue, workers, retries, metrics, reconcile ids) every controller shares.
- manager.py: the ``kybern server`` component that runs them (leader election optional).
- namespaces.py, serviceaccounts.py, garbagecollector.py, replicaset.py (and
  ReplicationController), deployment.py (+ deploymentutil.py): the controllers.
- events.py (Event recorder), pods.py (pod ordering, readiness, expectations): shared helpers.
"""
