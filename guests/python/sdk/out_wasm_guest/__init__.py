"""out_wasm guest SDK for Python.

Write an output plugin for Fluent Bit as a Python class, build it into a WebAssembly component
with componentize-py (``guests/python/build``), and point an ``[OUTPUT] Name wasm`` section's
``wasm_path`` at it::

    from out_wasm_guest import Output, Retry, export, info

    class Hello(Output):
        @classmethod
        def init(cls, ctx):
            return cls()

        def flush(self, chunk):
            for event in chunk.events():
                info(f"{chunk.tag}: {event.body.get('msg')}")

    Output = export(Hello)
"""

from . import metrics
from .decode import DecodeError, Event, Timestamp, events
from .log import debug, error, info, trace, warn
from .output import Chunk, ConfigKey, Error, EventFormat, EventType, EventTypes, InitContext, Output, Retry, export
from .render import JsonLines, to_json
from .values import BadStr, Ext, Map

__all__ = [
    "BadStr", "Chunk", "ConfigKey", "DecodeError", "Error", "Event", "EventFormat", "EventType", "EventTypes",
    "Ext", "InitContext", "JsonLines", "Map", "Output", "Retry", "Timestamp", "debug", "error", "events", "export",
    "info", "metrics", "to_json", "trace", "warn",
]
