"""Metrics on the agent's own endpoint: declare once (in ``init``), update in ``flush``::

    from out_wasm_guest.metrics import Counter

    sent = Counter.declare("records_sent", "records delivered to the endpoint", ["status"])
    sent.add(["ok"], 256)

The host exports each as ``fluentbit_wasm_guest_<name>`` with the output's ``name`` label first.
A metric belongs to the output instance: every guest instance that declares the same name and
shape shares it, and its values survive faults, recycles and hot swaps.

Each class wraps the WIT resource of its kind (``wit_world.imports.metrics``), turning
sequences into the lists and numbers into the floats the bindings want, and the bindings'
``Err`` into ``MetricError``. What the host refuses (a bad name, a cap reached, a label value
too long) raises ``MetricError`` with its reason. The host already counts and logs refused
updates, so most guests catch and ignore the error of an update; a refused declaration is a
reason to fail ``init``.
"""

from componentize_py_types import Err
from wit_world.imports import metrics as _wit


class MetricError(Exception):
    """The host refused a declaration or an update; the text says what and why."""


def _call(function, *args):
    try:
        return function(*args)
    except Err as err:
        raise MetricError(err.value) from None


def _info(name, help, labels):
    return _wit.MetricInfo(name, help, list(labels))


class Counter:
    """A value that only goes up; exported with ``_total`` appended."""

    __slots__ = ("_metric",)

    def __init__(self, metric):
        self._metric = metric

    @classmethod
    def declare(cls, name, help, labels=()):
        """Declares the counter ``name`` with these label names (or finds it, if declared
        before)."""
        return cls(_call(_wit.Counter.declare, _info(name, help, labels)))

    def add(self, values, value):
        """Adds ``value`` (>= 0) to the series with these label values."""
        _call(self._metric.add, list(values), float(value))

    def inc(self, values=()):
        """Adds one."""
        self.add(values, 1.0)


class Gauge:
    """A value that goes up and down."""

    __slots__ = ("_metric",)

    def __init__(self, metric):
        self._metric = metric

    @classmethod
    def declare(cls, name, help, labels=()):
        """Declares the gauge ``name`` with these label names (or finds it, if declared before)."""
        return cls(_call(_wit.Gauge.declare, _info(name, help, labels)))

    def set(self, values, value):
        """Sets the series with these label values to ``value``."""
        _call(self._metric.set, list(values), float(value))

    def add(self, values, value):
        """Adds ``value`` (of either sign) to the series with these label values."""
        _call(self._metric.add, list(values), float(value))


class Histogram:
    """A distribution of observations in buckets."""

    __slots__ = ("_metric",)

    def __init__(self, metric):
        self._metric = metric

    @classmethod
    def declare(cls, name, help, labels=(), buckets=()):
        """Declares the histogram ``name`` with these label names and bucket upper bounds
        (strictly increasing; empty for the agent's defaults), or finds the one declared
        before with the same shape."""
        return cls(_call(_wit.Histogram.declare, _info(name, help, labels), [float(b) for b in buckets]))

    def observe(self, values, value):
        """Records one observation in the series with these label values."""
        _call(self._metric.observe, list(values), float(value))
