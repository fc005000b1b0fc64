"""The guest's side of the world: a base class with default methods, and ``export``.

``export(MyOutput)`` returns the class componentize-py looks for; a guest's app module does
``Output = export(MyOutput)``. The host calls ``config_schema``, ``preferred_event_format``
and ``accepted_event_types`` once per guest version, ``init`` once per instance, then
``flush`` once per chunk and ``exit`` at the end, all on one thread.
"""

import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

from . import decode
from .log import warn

EventFormat = types.EventFormat
EventType = types.EventType
EventTypes = types.EventTypes


class ConfigKey:
    """A key a guest accepts in its ``[OUTPUT]`` section."""

    def __init__(self, name, description, default=None, required=False):
        self.name = name
        self.description = description
        self.default = default
        self.required = required

    def _wit(self):
        return types.ConfigKey(self.name, self.description, self.default, self.required)


class InitContext:
    """What an instance learns before its first flush: ``instance`` (its ``alias``, or
    ``wasm.<n>``), ``guest_path``, ``guest_digest`` (sha256 of the component), ``config`` (a
    ``dict`` of the resolved keys, defaults applied), ``event_format`` (what ``flush`` will
    receive) and ``event_types`` (what its chunks can hold: the ``accepted_event_types``)."""

    def __init__(self, ctx):
        self.instance = ctx.instance
        self.guest_path = ctx.guest_path
        self.guest_digest = ctx.guest_digest
        self.config = {entry.key: entry.value for entry in ctx.config}
        self.event_format = ctx.event_format
        self.event_types = ctx.event_types


class Retry(Exception):
    """Raise from ``flush``: the agent retries the chunk later (FLB_RETRY)."""


class Error(Exception):
    """Raise from ``flush``: the agent drops the chunk (FLB_ERROR)."""


class Chunk:
    """One flushed chunk: its ``tag``, its ``event_type`` (an ``EventType``), its ``data`` (in
    the instance's event format: msgpack, or JSON lines or OTLP JSON rendered by the host) and
    ``events()``, the decoded log records. ``deadline`` is when the host stops this flush, on
    the ``time.monotonic()`` clock (``None`` when the operator turned deadlines off);
    ``time_left()`` is what remains of it."""

    __slots__ = ("tag", "data", "event_type", "deadline")

    def __init__(self, tag, data, event_type=EventType.LOGS, time_left=None):
        self.tag = tag
        self.data = data
        self.event_type = event_type
        # The host measured the time left (nanoseconds) when it made the call; from here on it
        # shrinks with the guest's own clock.
        self.deadline = None if time_left is None else time.monotonic() + time_left / 1e9

    def time_left(self):
        """Seconds this flush may still run before the host stops it (and the chunk comes
        back), or ``None`` without a deadline: give up a little earlier and raise ``Retry``."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def events(self):
        """The log records, decoded one at a time (for logs in the msgpack event format)."""
        return decode.events(self.data)


class Output:
    """Base class of a guest. Override ``init`` and ``flush``; the rest have defaults."""

    @classmethod
    def config_schema(cls):
        """The keys this guest accepts: a list of ``ConfigKey``. Default: none."""
        return []

    @classmethod
    def preferred_event_format(cls):
        """What ``flush`` should receive unless the operator says otherwise. Default: msgpack."""
        return EventFormat.MSGPACK

    @classmethod
    def accepted_event_types(cls):
        """The event types this guest accepts (``EventTypes``); chunks of other types never
        reach it. Default: logs only."""
        return EventTypes.LOGS

    @classmethod
    def init(cls, ctx):
        """Returns the instance that receives the chunks; declare metrics here. Raise
        ``ValueError`` (or any exception) to refuse to start, with its text as the reason."""
        return cls()

    def flush(self, chunk):
        """Delivers ``chunk``. Return to deliver it; raise ``Retry`` or ``Error``. A
        ``DecodeError`` from ``chunk.events()`` answers ``Error`` with the byte offset."""
        raise NotImplementedError

    def exit(self):
        """The last call on this instance. Default: nothing."""


def export(output_class):
    """The class componentize-py instantiates for the ``output`` export, driving
    ``output_class``. Assign it to ``Output`` in the guest's app module."""

    # componentize-py makes a new Adapter for every call, so the instance's state lives here,
    # once per component instance.
    state = {"output": None}

    class Adapter(exports.Output):

        def config_schema(self):
            return [key._wit() for key in output_class.config_schema()]

        def preferred_event_format(self):
            return output_class.preferred_event_format()

        def accepted_event_types(self):
            return output_class.accepted_event_types()

        def init(self, ctx):
            try:
                state["output"] = output_class.init(InitContext(ctx))
            except Exception as err:  # noqa: BLE001 - every refusal reaches the operator as text
                raise Err(str(err) or type(err).__name__)

        def flush(self, ctx, chunk):
            output = state["output"]
            if output is None:
                raise Err(types.FlushError_Retry("flush before init"))
            try:
                output.flush(Chunk(ctx.tag, chunk, ctx.event_type, ctx.time_left))
            except Retry as err:
                raise Err(types.FlushError_Retry(str(err)))
            except (Error, decode.DecodeError) as err:
                raise Err(types.FlushError_Error(str(err)))

        def exit(self):
            output, state["output"] = state["output"], None
            if output is not None:
                try:
                    output.exit()
                except Exception as err:  # noqa: BLE001 - exit cannot fail; say why it did
                    warn(f"exit failed: {err}")

    Adapter.__name__ = Adapter.__qualname__ = "Output"
    return Adapter
