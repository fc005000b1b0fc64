"""The guest's side of the world: a base class with default methods, and ``export``.

``export(MyOutput)`` returns the class componentize-py looks for; a guest's app module does
``Output = export(MyOutput)``. The host calls ``config_schema`` and
``preferred_event_format`` once per guest version, ``init`` once per instance, then ``flush``
once per chunk and ``exit`` at the end, all on one thread.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

from . import decode
from .log import warn

EventFormat = types.EventFormat


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
    """What an instance learns before its first flush: ``instance`` (``wasm.<n>``),
    ``guest_path``, ``guest_digest`` (sha256 of the component), ``config`` (a ``dict`` of the
    resolved keys, defaults applied) and ``event_format`` (what ``flush`` will receive)."""

    def __init__(self, ctx):
        self.instance = ctx.instance
        self.guest_path = ctx.guest_path
        self.guest_digest = ctx.guest_digest
        self.config = {entry.key: entry.value for entry in ctx.config}
        self.event_format = ctx.event_format


class Retry(Exception):
    """Raise from ``flush``: the agent retries the chunk later (FLB_RETRY)."""


class Error(Exception):
    """Raise from ``flush``: the agent drops the chunk (FLB_ERROR)."""


class Chunk:
    """One flushed chunk: its ``tag``, its ``data`` (msgpack, or JSON lines when the instance's
    event format is ``JSON_LINES``) and ``events()``, the decoded records."""

    __slots__ = ("tag", "data")

    def __init__(self, tag, data):
        self.tag = tag
        self.data = data

    def events(self):
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
    def init(cls, ctx):
        """Returns the instance that receives the chunks; raise ``ValueError`` (or any
        exception) to refuse to start, with its text as the reason."""
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

        def init(self, ctx):
            try:
                state["output"] = output_class.init(InitContext(ctx))
            except Exception as err:  # noqa: BLE001 - every refusal reaches the operator as text
                raise Err(str(err) or type(err).__name__)

        def flush(self, tag, chunk):
            output = state["output"]
            if output is None:
                raise Err(types.FlushError_Retry("flush before init"))
            try:
                output.flush(Chunk(tag, chunk))
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
