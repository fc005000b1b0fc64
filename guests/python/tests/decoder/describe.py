"""Decoded values as tagged JSON, the same on the machine's Python and in the component, so
the test can compare the two decoders line for line."""

import json

import msgpack

from out_wasm_guest import Ext, Map, Timestamp


def describe(value):
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, str):
        # Invalid UTF-8 as the bytes it was: lone surrogates do not survive every JSON reader.
        return ["str", value.encode("utf-8", "surrogateescape").hex()]
    if isinstance(value, bytes):
        return ["bin", value.hex()]
    if isinstance(value, Map):
        return ["map", [[describe(k), describe(v)] for k, v in value]]
    if isinstance(value, list):
        return ["array", [describe(v) for v in value]]
    if isinstance(value, Timestamp):
        return ["time", value.seconds, value.nanoseconds]
    if isinstance(value, msgpack.Timestamp):
        return ["msgpack-time", value.seconds, value.nanoseconds]
    if isinstance(value, Ext):
        return ["ext", value.type, value.data.hex()]
    raise TypeError(f"unexpected {type(value).__name__}: {value!r}")


def line(event):
    """One event as one line of JSON (newline included)."""
    parts = [event.timestamp, event.metadata, event.body, event.group_attributes, event.group_metadata]
    return json.dumps([describe(part) for part in parts], separators=(",", ":")) + "\n"
