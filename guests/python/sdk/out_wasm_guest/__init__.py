"""out_wasm guest SDK for Python.

Write an output plugin for Fluent Bit as a Python class, build it into a WebAssembly component
with componentize-py (``guests/python/build``), and point an ``[OUTPUT] Name wasm`` section's
``wasm_path`` at it::

    from out_wasm_guest import Output, export, info

    class Hello(Output):
        def flush(self, chunk):
            for event in chunk.events():
                info(f"{chunk.tag}: {event.body.get('msg')}")

    Output = export(Hello)

Modules: ``output`` (the base class and what it is handed), ``json_lines`` (the agent's JSON
keys, for host-rendered lines), ``decode`` and ``values`` (records as Python values),
``metrics``, ``log``, ``http`` (requests over the host's ``wasi:http``).
"""

from . import http, json_lines, metrics
from .decode import DecodeError, Event, Timestamp, events
from .log import debug, error, info, trace, warn
from .output import (
    Chunk,
    ConfigKey,
    DateFormat,
    Delivery,
    Error,
    EventFormat,
    EventType,
    EventTypes,
    InitContext,
    JsonOptions,
    Output,
    Retry,
    current_deadline,
    export,
    lookup,
)
from .values import Ext, Map, has_invalid_utf8

__all__ = [
    "Chunk", "ConfigKey", "DateFormat", "DecodeError", "Delivery", "Error", "Event", "EventFormat", "EventType",
    "EventTypes", "Ext", "InitContext", "JsonOptions", "Map", "Output", "Retry", "Timestamp", "current_deadline",
    "debug", "error", "events", "export", "has_invalid_utf8", "http", "info", "json_lines", "lookup", "metrics",
    "trace", "warn",
]
