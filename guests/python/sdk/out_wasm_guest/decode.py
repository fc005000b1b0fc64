"""Records of a chunk: timestamp, metadata and body, decoded one at a time.

The decoder follows the Rust SDK (``guests/rust/sdk/src/event.rs`` and ``msgpack.rs``): both
record layouts, EventTime / integer / float timestamps, group markers skipped with their
attributes attached to the records inside, nesting capped, and every error naming the byte
offset where decoding stopped.
"""

import struct

from .values import BadStr, Ext, Map

#: Nesting deeper than this is refused: a hostile chunk must not exhaust the guest's stack.
MAX_DEPTH = 256

_GROUP_START = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_GROUP_END = b"\xff\xff\xff\xfe\x00\x00\x00\x00"


class DecodeError(Exception):
    """A chunk that is not well-formed msgpack records."""

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
        return self.seconds * 1_000_000_000 + self.nanoseconds

    def as_float(self):
        """Seconds as a float, computed the way the agent computes it."""
        return float(self.seconds) + self.nanoseconds / 1e9

    def __eq__(self, other):
        return isinstance(other, Timestamp) and (self.seconds, self.nanoseconds) == (other.seconds, other.nanoseconds)

    def __repr__(self):
        return f"Timestamp({self.seconds}, {self.nanoseconds})"


class Event:
    """One record: ``timestamp``, ``metadata`` (a ``Map``, empty for the old layout), ``body``
    (normally a ``Map``) and ``group_attributes`` (the attributes of the OpenTelemetry group
    the record belongs to, or ``None``)."""

    __slots__ = ("timestamp", "metadata", "body", "group_attributes")

    def __init__(self, timestamp, metadata, body, group_attributes=None):
        self.timestamp = timestamp
        self.metadata = metadata
        self.body = body
        self.group_attributes = group_attributes

    def __repr__(self):
        return f"Event({self.timestamp!r}, {self.metadata!r}, {self.body!r}, {self.group_attributes!r})"


_be16 = struct.Struct(">H").unpack_from
_be32 = struct.Struct(">I").unpack_from
_be64 = struct.Struct(">Q").unpack_from
_bes8 = struct.Struct(">b").unpack_from
_bes16 = struct.Struct(">h").unpack_from
_bes32 = struct.Struct(">i").unpack_from
_bes64 = struct.Struct(">q").unpack_from
_bef32 = struct.Struct(">f").unpack_from
_bef64 = struct.Struct(">d").unpack_from


class _Reader:
    __slots__ = ("data", "pos", "end")

    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.end = len(data)

    def _need(self, n, what):
        if self.pos + n > self.end:
            raise DecodeError(self.pos, f"truncated: {what} needs {n} bytes, {self.end - self.pos} left")

    def _fixed(self, unpack, n, what):
        self._need(n, what)
        value = unpack(self.data, self.pos)[0]
        self.pos += n
        return value

    def _take(self, n, what):
        self._need(n, what)
        start = self.pos
        self.pos += n
        return self.data[start:self.pos]

    def _str(self, n):
        raw = self._take(n, "a string")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return BadStr(raw)

    def _count(self, n, min_bytes, what, at):
        left = self.end - self.pos
        if n * min_bytes > left:
            raise DecodeError(at, f"truncated: {what} of {n} entries, only {left} bytes left")

    def array_len(self):
        """The length of the array starting here, or ``None`` (nothing consumed) if it is not one."""
        at = self.pos
        self._need(1, "a marker")
        b = self.data[at]
        if 0x90 <= b <= 0x9F:
            self.pos += 1
            return b & 0x0F
        if b == 0xDC:
            self.pos += 1
            return self._fixed(_be16, 2, "an array length")
        if b == 0xDD:
            self.pos += 1
            return self._fixed(_be32, 4, "an array length")
        return None

    def peek_is_array(self):
        if self.pos >= self.end:
            return False
        b = self.data[self.pos]
        return 0x90 <= b <= 0x9F or b == 0xDC or b == 0xDD

    def value(self, depth=0):
        at = self.pos
        if depth > MAX_DEPTH:
            raise DecodeError(at, f"nesting deeper than {MAX_DEPTH} levels")
        if at >= self.end:
            raise DecodeError(at, f"truncated: a marker needs 1 bytes, {self.end - at} left")
        data = self.data
        b = data[at]
        self.pos = at + 1
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0xA0 <= b <= 0xBF:
            return self._str(b & 0x1F)
        if 0x80 <= b <= 0x8F:
            return self._map(b & 0x0F, depth, at)
        if 0x90 <= b <= 0x9F:
            return self._array(b & 0x0F, depth, at)
        if b == 0xC0:
            return None
        if b == 0xC2:
            return False
        if b == 0xC3:
            return True
        if b == 0xCC:
            return self._fixed(lambda d, p: (d[p],), 1, "a u8")
        if b == 0xCD:
            return self._fixed(_be16, 2, "a u16")
        if b == 0xCE:
            return self._fixed(_be32, 4, "a u32")
        if b == 0xCF:
            return self._fixed(_be64, 8, "a u64")
        if b == 0xD0:
            return self._fixed(_bes8, 1, "an i8")
        if b == 0xD1:
            return self._fixed(_bes16, 2, "an i16")
        if b == 0xD2:
            return self._fixed(_bes32, 4, "an i32")
        if b == 0xD3:
            return self._fixed(_bes64, 8, "an i64")
        if b == 0xCA:
            return self._fixed(_bef32, 4, "a f32")
        if b == 0xCB:
            return self._fixed(_bef64, 8, "a f64")
        if b == 0xD9:
            return self._str(self._fixed(lambda d, p: (d[p],), 1, "a string length"))
        if b == 0xDA:
            return self._str(self._fixed(_be16, 2, "a string length"))
        if b == 0xDB:
            return self._str(self._fixed(_be32, 4, "a string length"))
        if b == 0xC4:
            return bytes(self._take(self._fixed(lambda d, p: (d[p],), 1, "a binary length"), "a binary"))
        if b == 0xC5:
            return bytes(self._take(self._fixed(_be16, 2, "a binary length"), "a binary"))
        if b == 0xC6:
            return bytes(self._take(self._fixed(_be32, 4, "a binary length"), "a binary"))
        if b == 0xDC:
            return self._array(self._fixed(_be16, 2, "an array length"), depth, at)
        if b == 0xDD:
            return self._array(self._fixed(_be32, 4, "an array length"), depth, at)
        if b == 0xDE:
            return self._map(self._fixed(_be16, 2, "a map length"), depth, at)
        if b == 0xDF:
            return self._map(self._fixed(_be32, 4, "a map length"), depth, at)
        if b in _FIXEXT:
            return self._ext(_FIXEXT[b])
        if b == 0xC7:
            return self._ext(self._fixed(lambda d, p: (d[p],), 1, "an extension length"))
        if b == 0xC8:
            return self._ext(self._fixed(_be16, 2, "an extension length"))
        if b == 0xC9:
            return self._ext(self._fixed(_be32, 4, "an extension length"))
        raise DecodeError(at, "reserved msgpack marker 0xc1")

    def _array(self, n, depth, at):
        self._count(n, 1, "array", at)
        value = self.value
        return [value(depth + 1) for _ in range(n)]

    def _map(self, n, depth, at):
        self._count(n, 2, "map", at)
        value = self.value
        entries = Map()
        append = entries.append
        for _ in range(n):
            key = value(depth + 1)
            append((key, value(depth + 1)))
        return entries

    def _ext(self, n):
        kind = self._fixed(_bes8, 1, "an extension type")
        return Ext(kind, bytes(self._take(n, "an extension payload")))


_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def _kind(value):
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, (str, BadStr)):
        return "a string"
    if isinstance(value, bytes):
        return "a binary"
    if isinstance(value, Map):
        return "a map"
    if isinstance(value, list):
        return "an array"
    return "an extension"


def _timestamp(reader):
    """A ``Timestamp``, or the string ``"start"`` / ``"end"`` for a group marker."""
    at = reader.pos
    value = reader.value()
    if isinstance(value, Ext):
        if value.type == 0 and len(value.data) == 8:
            if value.data == _GROUP_START:
                return "start"
            if value.data == _GROUP_END:
                return "end"
            seconds, nanos = struct.unpack(">II", value.data)
            if nanos >= 1_000_000_000:
                raise DecodeError(at, f"EventTime has {nanos} nanoseconds")
            return Timestamp(seconds, nanos)
        raise DecodeError(at, f"timestamp is extension type {value.type} of {len(value.data)} bytes, not EventTime")
    if isinstance(value, bool) or value is None:
        raise DecodeError(at, f"timestamp is {_kind(value)}, not a time")
    if isinstance(value, int):
        if value == -1:
            return "start"
        if value == -2:
            return "end"
        return Timestamp(min(value, 2**63 - 1), 0)
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        whole = float(int(value))
        nanos = int((value - whole) * 1e9)
        seconds = int(whole)
        if nanos < 0:
            seconds, nanos = seconds - 1, nanos + 1_000_000_000
        return Timestamp(seconds, min(max(nanos, 0), 999_999_999))
    raise DecodeError(at, f"timestamp is {_kind(value)}, not a time")


def events(chunk):
    """Yields the ``Event`` of every record of ``chunk`` (bytes) in order; raises
    ``DecodeError`` at the first malformed record."""
    reader = _Reader(chunk)
    group = None
    empty = Map()
    while reader.pos < reader.end:
        start = reader.pos
        n = reader.array_len()
        if n is None:
            raise DecodeError(start, "record is not an array")
        if n != 2:
            raise DecodeError(start, f"record is an array of {n}, not 2")
        header_at = reader.pos
        if reader.peek_is_array():
            n = reader.array_len()
            if n != 2:
                raise DecodeError(header_at, f"record header is an array of {n}, not 2")
            stamp = _timestamp(reader)
            metadata = reader.value()
        else:
            stamp = _timestamp(reader)
            metadata = empty
        body = reader.value()
        if stamp == "start":
            group = body
        elif stamp == "end":
            group = None
        else:
            yield Event(stamp, metadata, body, group)
