"""The guest's side of the world: a base class with default methods, and ``export``.

``export(MyOutput)`` returns the class componentize-py looks for; a guest's app module does
``Output = export(MyOutput)``. The host calls ``config_schema``, ``preferred_event_format``
and ``accepted_event_types`` once per guest version, ``init`` once per instance, then
``flush`` once per chunk (and ``idle`` between flushes, when asked for) and ``exit`` at the
end, all on one thread.

Times are seconds (``float``) on the ``time.monotonic()`` clock, as everywhere in Python; the
WIT's nanoseconds stay inside this module.
"""

import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config as _config
from wit_world.imports import out_wasm_output_types as types

from . import decode
from .log import warn

EventType = types.EventType
EventTypes = types.EventTypes
DateFormat = types.DateFormat
JsonOptions = types.JsonOptions
Delivery = types.Delivery


class EventFormat:
    """How the host hands a chunk to ``flush`` (the WIT variant ``event-format``).

    Its three cases are the generated classes ``EventFormat.Msgpack``,
    ``EventFormat.JsonLines`` (holding a ``JsonOptions``: ``date_key``, ``date_format``,
    ``escape_unicode``) and ``EventFormat.OtlpJson``; compare, ``isinstance`` or ``match``
    them::

        match ctx.event_format:
            case EventFormat.JsonLines(options): ...
            case EventFormat.Msgpack(): ...
    """

    Msgpack = types.EventFormat_Msgpack
    JsonLines = types.EventFormat_JsonLines
    OtlpJson = types.EventFormat_OtlpJson

    #: The msgpack bytes exactly as the agent flushed them.
    MSGPACK = types.EventFormat_Msgpack()
    #: One OTLP/JSON export request per chunk, rendered by the host.
    OTLP_JSON = types.EventFormat_OtlpJson()

    def __init__(self):
        raise TypeError("EventFormat is a namespace: use EventFormat.MSGPACK, EventFormat.json_lines(...), ...")

    @staticmethod
    def json_lines(date_key="date", date_format=DateFormat.DOUBLE, escape_unicode=True):
        """JSON lines rendered by the host, as the agent's ``stdout`` output prints them with
        these options (its defaults: ``date``, ``DateFormat.DOUBLE``, escaped; ``date_key=None``
        leaves the time out)."""
        return types.EventFormat_JsonLines(JsonOptions(date_key, date_format, escape_unicode))


class ConfigKey:
    """A key a guest accepts in its ``[OUTPUT]`` section: its ``name``, a one-line
    ``description`` (quoted when the key is missing), its ``default`` (``None``: unset keys are
    absent from the config) and whether it is ``required``."""

    def __init__(self, name, description, default=None, required=False):
        self.name = name
        self.description = description
        self.default = default
        self.required = required

    def _wit(self):
        return types.ConfigKey(self.name, self.description, self.default, self.required)


def lookup(key):
    """The value of any key of this instance's ``[OUTPUT]`` section, declared or not, as the
    agent has it, or ``None`` when unset (and for the host's ``wasm_*`` keys and the agent's
    own). Declared keys, with their defaults, are in ``InitContext.config``; this reads the
    rest, such as keys a guest builds by name. Callable from every method."""
    return _config.get(key)


class InitContext:
    """What an instance learns before its first flush: ``instance`` (its ``alias``, or
    ``wasm.<n>``), ``guest_path``, ``guest_digest`` (sha256 of the component), ``config`` (a
    ``dict`` of the declared keys that have a value, defaults applied), ``event_format`` (what
    ``flush`` will receive: an ``EventFormat`` case) and ``event_types`` (what its chunks can
    hold: the ``accepted_event_types``) and ``hostname`` (the agent's machine name)."""

    def __init__(self, ctx):
        self.instance = ctx.instance
        self.guest_path = ctx.guest_path
        self.guest_digest = ctx.guest_digest
        self.config = {entry.key: entry.value for entry in ctx.config}
        self.event_format = ctx.event_format
        self.event_types = ctx.event_types
        self.hostname = ctx.hostname


class Retry(Exception):
    """Raise from ``flush``: the agent retries the chunk later (FLB_RETRY); the text goes to
    its log."""


class Error(Exception):
    """Raise from ``flush``: the agent drops the chunk (FLB_ERROR); the text goes to its log."""


# When the host stops the call running now (time.monotonic()), or None, and which call it is:
# what the HTTP client bounds its requests by. Set for flush, idle and exit; calls never
# overlap.
_deadline = None
_call = None


def _deadline_after(nanoseconds):
    return None if nanoseconds is None else time.monotonic() + nanoseconds / 1e9


def current_deadline():
    """When the host stops the call running now, on the ``time.monotonic()`` clock: the
    flush's deadline during ``flush``, the end of the budget during ``idle`` and of the time
    left during ``exit``; ``None`` elsewhere and with ``wasm_deadlines off``."""
    return _deadline


class Chunk:
    """One flushed chunk: its ``tag``, its ``event_type`` (an ``EventType``), its ``data`` (in
    the instance's event format: msgpack, or JSON lines or OTLP JSON rendered by the host),
    ``delivery`` (``id``: the same on every delivery of this chunk, for an ``Idempotency-Key``;
    ``attempt``: 1, 2, ... as the host counts them) and ``events()``, the decoded log records.
    ``deadline`` is when the host stops this flush, on the ``time.monotonic()`` clock (``None``
    when the operator turned deadlines off); ``time_left()`` is what remains of it."""

    __slots__ = ("tag", "data", "event_type", "delivery", "deadline")

    def __init__(self, tag, data, event_type=EventType.LOGS, delivery=None, deadline=None):
        self.tag = tag
        self.data = data
        self.event_type = event_type
        self.delivery = delivery
        self.deadline = deadline

    def time_left(self):
        """Seconds this flush may still run before the host stops it (and the chunk comes
        back), or ``None`` without a deadline: give up a little earlier and raise ``Retry``."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def events(self):
        """The log records (``Event``), decoded one at a time (for logs in the msgpack event
        format)."""
        return decode.events(self.data)


class Output:
    """Base class of a guest. Override ``flush`` (and usually ``init`` and
    ``config_schema``); the rest have defaults."""

    @classmethod
    def config_schema(cls):
        """The keys this guest accepts: a list of ``ConfigKey``. Called once per guest
        version, before any ``init``. Default: none."""
        return []

    @classmethod
    def preferred_event_format(cls, config):
        """The format ``flush`` should receive, given the resolved declared keys (``config``,
        a ``dict`` as ``InitContext.config`` will hold it); the operator's
        ``wasm_event_format`` overrides it. Raise (``ValueError``, say) to refuse the config:
        the agent does not start, and the text says why. Default: ``EventFormat.MSGPACK``,
        which ``chunk.events()`` decodes. A guest that prints JSON asks the host to render it:
        ``return json_lines.from_config(config)``."""
        return EventFormat.MSGPACK

    @classmethod
    def accepted_event_types(cls):
        """The event types this guest accepts (``EventTypes``); chunks of other types never
        reach it. Default: logs only."""
        return EventTypes.LOGS

    @classmethod
    def init(cls, ctx):
        """Returns the instance that receives the chunks (``ctx``: an ``InitContext``);
        declare metrics here. Raise ``ValueError`` (or any exception) to refuse to start, with
        its text as the reason. Default: ``cls()``."""
        return cls()

    def flush(self, chunk):
        """Delivers ``chunk`` (a ``Chunk``). Return to deliver it; raise ``Retry`` or
        ``Error``. A ``DecodeError`` from ``chunk.events()`` answers ``Error`` with the byte
        offset. Any other exception is a fault: the host discards the instance and the chunk
        comes back."""
        raise NotImplementedError

    def idle(self, budget):
        """Background work between flushes (a batch a timer made due), for at most about
        ``budget`` seconds: a flush that arrives meanwhile waits for it. Returns the seconds
        until the next call (no sooner than the host's ``wasm_idle_interval``), or ``None``,
        the default: not until after the next flush."""
        return None

    def exit(self, time_left):
        """The last call on this instance; ``time_left`` is how many seconds it may run
        (``None`` with deadlines off). Default: nothing."""


def _nanoseconds(seconds):
    return max(0, min(int(seconds * 1e9), 2**64 - 1))


def export(output_class):
    """The class componentize-py instantiates for the ``output`` export, driving
    ``output_class``. Assign it to ``Output`` in the guest's app module."""

    # componentize-py makes a new Adapter for every call, so the instance's state lives here,
    # once per component instance.
    state = {"output": None}

    def refusal(err):
        # Every refusal reaches the operator as text.
        return Err(str(err) or type(err).__name__)

    class Adapter(exports.Output):

        def config_schema(self):
            return [key._wit() for key in output_class.config_schema()]

        def preferred_event_format(self, config):
            try:
                return output_class.preferred_event_format({entry.key: entry.value for entry in config})
            except Exception as err:  # noqa: BLE001 - the error refuses the config, with its text
                raise refusal(err) from None

        def accepted_event_types(self):
            return output_class.accepted_event_types()

        def init(self, ctx):
            try:
                state["output"] = output_class.init(InitContext(ctx))
            except Exception as err:  # noqa: BLE001 - the error refuses to start, with its text
                raise refusal(err) from None

        def flush(self, ctx, chunk):
            global _deadline, _call
            output = state["output"]
            if output is None:
                raise Err(types.FlushError_Retry("flush before init"))
            # The host measured the time left when it made the call; from here on it shrinks
            # with the guest's own clock.
            _deadline, _call = _deadline_after(ctx.time_left), "flush"
            try:
                output.flush(Chunk(ctx.tag, chunk, ctx.event_type, ctx.delivery, _deadline))
            except Retry as err:
                raise Err(types.FlushError_Retry(str(err))) from None
            except (Error, decode.DecodeError) as err:
                raise Err(types.FlushError_Error(str(err))) from None
            finally:
                _deadline = _call = None

        def idle(self, budget):
            global _deadline, _call
            output = state["output"]
            if output is None:
                return None
            _deadline, _call = _deadline_after(budget), "idle"
            try:
                after = output.idle(budget / 1e9)
            finally:
                _deadline = _call = None
            return None if after is None else _nanoseconds(after)

        def exit(self, time_left):
            global _deadline, _call
            output, state["output"] = state["output"], None
            if output is None:
                return
            _deadline, _call = _deadline_after(time_left), "exit"
            try:
                output.exit(None if time_left is None else time_left / 1e9)
            except Exception as err:  # noqa: BLE001 - exit cannot fail; say why it did
                warn(f"exit failed: {err}")
            finally:
                _deadline = _call = None

    Adapter.__name__ = Adapter.__qualname__ = "Output"
    return Adapter
