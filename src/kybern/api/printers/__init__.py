"""Server-side printing: the columns and row cells ``kubectl get`` shows for every kind, as
Kubernetes v1.32's printers (``pkg/printers/internalversion``) produce them.

``printer_for(group, kind)`` gives a :class:`Printer` (column definitions and a pure
``row(obj, now)`` function); ``human_duration`` formats ages. The API server wraps the rows
into ``meta.k8s.io`` Table objects (``kybern.apiserver.tables``).
"""

from kybern.api.printers.base import Cell, Column, Printer
from kybern.api.printers.duration import human_duration
from kybern.api.printers.registry import DEFAULT, PRINTERS, printer_for

__all__ = ["DEFAULT", "PRINTERS", "Cell", "Column", "Printer", "human_duration", "printer_for"]
