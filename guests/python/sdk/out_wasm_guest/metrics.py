"""Metrics on the agent's own endpoint: declare once (in ``init``), update in ``flush``::

    from out_wasm_guest.metrics import Counter

    sent = Counter.declare("records_sent", "records delivered to the endpoint", ["status"])
    sent.add(["ok"], 256)

The host exports each as ``fluentbit_wasm_guest_<name>`` with the output's ``name`` label first.
A metric belongs to the output instance: every guest instance that declares the same name and
shape shares it, and its values survive faults, recycles and hot swaps.

What the host refuses (a bad name, a cap reached, a label value too long) raises
``MetricError`` with its reason. The host already counts and logs refused updates, so most
guests catch and ignore the error of an update; a refused declaration is a reason to fail
``init``.
"""

from componentize_py_types import Err
from wit_world.imports import metrics as _wit

MetricKind = _wit.MetricKind


class MetricError(Exception):
    """The host refused a declaration or an update; the text says what and why."""


def _call(function, *args):
    try:
        return function(*args)
    except Err as err:
        raise MetricError(err.value) from None


def _declare(name, help, kind, labels, buckets):
    spec = _wit.MetricSpec(name, help, kind, list(labels), [float(b) for b in buckets])
    return _call(_wit.declare, spec)


class Counter:
    """A value that only goes up; exported with ``_total`` appended."""

    __slots__ = ("_id",)

    def __init__(self, id_):
        self._id = id_

    @classmethod
    def declare(cls, name, help, labels=()):
        """Declares the counter ``name`` with these label names (or finds it, if declared
        before)."""
        return cls(_declare(name, help, MetricKind.COUNTER, labels, ()))

    def add(self, values, value):
        """Adds ``value`` (>= 0) to the series with these label values."""
        _call(_wit.add, self._id, list(values), float(value))

    def inc(self, values=()):
        """Adds one."""
        self.add(values, 1.0)


class Gauge:
    """A value that goes up and down."""

    __slots__ = ("_id",)

    def __init__(self, id_):
        self._id = id_

    @classmethod
    def declare(cls, name, help, labels=()):
        """Declares the gauge ``name`` with these label names (or finds it, if declared before)."""
        return cls(_declare(name, help, MetricKind.GAUGE, labels, ()))

    def set(self, values, value):
        """Sets the series with these label values to ``value``."""
        _call(_wit.set, self._id, list(values), float(value))

    def add(self, values, value):
        """Adds ``value`` (of either sign) to the series with these label values."""
        _call(_wit.add, self._id, list(values), float(value))


class Histogram:
    """A distribution of observations in buckets."""

    __slots__ = ("_id",)

    def __init__(self, id_):
        self._id = id_

    @classmethod
    def declare(cls, name, help, labels=(), buckets=()):
        """Declares the histogram ``name`` with these label names and bucket upper bounds
        (strictly increasing; empty for the agent's defaults)."""
        return cls(_declare(name, help, MetricKind.HISTOGRAM, labels, buckets))

    def observe(self, values, value):
        """Records one observation in the series with these label values."""
        _call(_wit.observe, self._id, list(values), float(value))
