"""Records of a chunk: timestamp, metadata and body, decoded one at a time.

The values are decoded by the ``msgpack`` package (its pure-Python implementation, pinned in
``guests/python/requirements.txt``), told through its hooks to keep what the agent keeps:
every map entry in wire order, repeated and unhashable keys included (``object_pairs_hook``
makes a ``Map``), the bytes of strings that are not UTF-8 (``unicode_errors``), and extension
values (``ext_hook``: an EventTime, extension type 0 with two big-endian u32s, becomes a
``Timestamp``; any other an ``Ext``). What is left here is the record layer the Rust decoder
(``format/src/event.rs``) has: both record layouts, EventTime / integer / float timestamps,
group markers skipped with their attributes and metadata attached to the records inside, and
every error naming the byte offset of the record part where decoding stopped.
"""

import msgpack

from .values import Ext, Map

_SECONDS_MAX = 2**63 - 1
# The agent marks group boundaries with EventTime seconds 2^32-1 / 2^32-2 (or the integers
# -1 / -2) and zero nanoseconds.
_GROUP_START_SECONDS = 0xFFFF_FFFF
_GROUP_END_SECONDS = 0xFFFF_FFFE


class DecodeError(Exception):
    """A chunk that is not well-formed msgpack records: ``offset`` is where in the chunk the
    record part that failed starts, ``reason`` says what is wrong."""

    def __init__(self, offset, reason):
        super().__init__(f"malformed chunk at byte offset {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class Timestamp:
    """When a record happened: seconds and nanoseconds (below 10^9) since the Unix epoch."""

    __slots__ = ("seconds", "nanoseconds")

    def __init__(self, seconds, nanoseconds=0):
        self.seconds = seconds
        self.nanoseconds = nanoseconds

    def unix_nanos(self):
        """Nanoseconds since the epoch, exactly."""
        return self.seconds * 1_000_000_000 + self.nanoseconds

    def as_float(self):
        """Seconds as a float, computed the way the agent computes it."""
        return float(self.seconds) + self.nanoseconds / 1e9

    @classmethod
    def from_float(cls, seconds):
        """The timestamp of a finite float of seconds, split the way the agent splits it."""
        whole = float(int(seconds))
        nanos = int((seconds - whole) * 1e9)
        whole = int(whole)
        if nanos < 0:
            whole, nanos = whole - 1, nanos + 1_000_000_000
        return cls(whole, min(max(nanos, 0), 999_999_999))

    def __eq__(self, other):
        return isinstance(other, Timestamp) and (self.seconds, self.nanoseconds) == (other.seconds, other.nanoseconds)

    def __hash__(self):
        return hash((self.seconds, self.nanoseconds))

    def __repr__(self):
        return f"Timestamp({self.seconds}, {self.nanoseconds})"


class Event:
    """One record: ``timestamp`` (a ``Timestamp``), ``metadata`` (a ``Map``, empty for the old
    layout), ``body`` (normally a ``Map``), and for a record inside an OpenTelemetry group the
    group's ``group_attributes`` (its body) and ``group_metadata``, else ``None``."""

    __slots__ = ("timestamp", "metadata", "body", "group_attributes", "group_metadata")

    def __init__(self, timestamp, metadata, body, group_attributes=None, group_metadata=None):
        self.timestamp = timestamp
        self.metadata = metadata
        self.body = body
        self.group_attributes = group_attributes
        self.group_metadata = group_metadata

    def __repr__(self):
        return (
            f"Event({self.timestamp!r}, {self.metadata!r}, {self.body!r}, {self.group_attributes!r}, "
            f"{self.group_metadata!r})"
        )


def _ext(code, data):
    if code == 0 and len(data) == 8:
        seconds = int.from_bytes(data[:4], "big")
        nanoseconds = int.from_bytes(data[4:], "big")
        # Out of range, it stays an Ext: only as a record's timestamp is it an error.
        if nanoseconds < 1_000_000_000:
            return Timestamp(seconds, nanoseconds)
    return Ext(code, data)


def _kind(value):
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bytes):
        return "a binary"
    if isinstance(value, Map):
        return "a map"
    if isinstance(value, list):
        return "an array"
    return "an extension"


def _reason(err):
    if isinstance(err, msgpack.OutOfData):
        return "truncated: the chunk ends inside a value"
    if isinstance(err, msgpack.StackError):
        return "nested too deeply"
    return str(err)


def _unpack(unpacker, at):
    try:
        return unpacker.unpack()
    except (msgpack.UnpackException, ValueError) as err:
        # ValueError: a length past the chunk's end, or a malformed msgpack timestamp.
        raise DecodeError(at, _reason(err)) from None


def _timestamp(value, at):
    """A ``Timestamp``, or the string ``"start"`` / ``"end"`` for a group marker."""
    if type(value) is Timestamp:
        if value.nanoseconds == 0:
            if value.seconds == _GROUP_START_SECONDS:
                return "start"
            if value.seconds == _GROUP_END_SECONDS:
                return "end"
        return value
    if isinstance(value, Ext):
        if value.type == 0 and len(value.data) == 8:
            raise DecodeError(at, f"EventTime has {int.from_bytes(value.data[4:], 'big')} nanoseconds")
        raise DecodeError(at, f"timestamp is extension type {value.type} of {len(value.data)} bytes, not EventTime")
    if isinstance(value, msgpack.Timestamp):
        raise DecodeError(at, f"timestamp is extension type -1 of {len(value.to_bytes())} bytes, not EventTime")
    if isinstance(value, bool) or value is None:
        raise DecodeError(at, f"timestamp is {_kind(value)}, not a time")
    if isinstance(value, int):
        if value == -1:
            return "start"
        if value == -2:
            return "end"
        return Timestamp(min(value, _SECONDS_MAX), 0)
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return Timestamp.from_float(value)
    raise DecodeError(at, f"timestamp is {_kind(value)}, not a time")


def events(chunk):
    """Yields the ``Event`` of every record of ``chunk`` (bytes) in order; raises
    ``DecodeError`` at the first malformed record."""
    unpacker = msgpack.Unpacker(
        raw=False,
        # Invalid UTF-8 kept as lone surrogates: s.encode("utf-8", "surrogateescape") is exact.
        unicode_errors="surrogateescape",
        object_pairs_hook=Map,
        # Map keys of any type, as msgpack and the agent allow.
        strict_map_key=False,
        ext_hook=_ext,
        # Bounds every announced length by the chunk: a hostile length fails before any
        # allocation.
        max_buffer_size=max(len(chunk), 1),
    )
    unpacker.feed(chunk)
    end = len(chunk)
    group = group_metadata = None
    while unpacker.tell() < end:
        start = unpacker.tell()
        try:
            n = unpacker.read_array_header()
        except msgpack.OutOfData:
            raise DecodeError(start, _reason(msgpack.OutOfData())) from None
        except (msgpack.UnpackException, ValueError):
            raise DecodeError(start, "record is not an array") from None
        if n != 2:
            raise DecodeError(start, f"record is an array of {n}, not 2")
        # [[timestamp, metadata], body] (current agents) or [timestamp, body] (older ones).
        header_at = unpacker.tell()
        header = _unpack(unpacker, header_at)
        if type(header) is list:
            if len(header) != 2:
                raise DecodeError(header_at, f"record header is an array of {len(header)}, not 2")
            stamp, metadata = _timestamp(header[0], header_at), header[1]
        else:
            stamp, metadata = _timestamp(header, header_at), Map()
        body = _unpack(unpacker, unpacker.tell())
        if stamp == "start":
            group, group_metadata = body, metadata
        elif stamp == "end":
            group = group_metadata = None
        else:
            yield Event(stamp, metadata, body, group, group_metadata)
