"""The Python shapes of msgpack values that have no exact built-in counterpart.

A chunk decodes to plain Python values where that loses nothing: ``None``, ``bool``, ``int``
(of any size), ``float``, ``str``, ``bytes`` (msgpack bin) and ``list``. A msgpack str whose
bytes are not UTF-8 is a ``str`` too, its invalid bytes kept as lone surrogates (Python's
``surrogateescape``, as ``os.fsdecode`` does): ``s.encode("utf-8", "surrogateescape")`` gives
back the exact bytes, and ``has_invalid_utf8(s)`` tells such a string. Two shapes keep what
the agent keeps and Python would lose: ``Map`` (entries in wire order, repeated and
unhashable keys included) and ``Ext`` (an extension value). An EventTime (extension type 0)
comes out as a ``Timestamp``, and a msgpack timestamp (extension type -1) as the msgpack
library's ``msgpack.Timestamp``.
"""

from typing import NamedTuple


class Map(list):
    """A msgpack map: a list of ``(key, value)`` pairs in wire order."""

    __slots__ = ()

    def get(self, key, default=None):
        """The value of the last entry with ``key``, as the agent reads a repeated key."""
        for k, v in reversed(self):
            if k == key and type(k) is type(key):
                return v
        return default

    def to_dict(self):
        """A ``dict`` of the entries (the last of repeated keys wins; keys must be hashable)."""
        return dict(self)


class Ext(NamedTuple):
    """A msgpack extension value: its ``type`` (-128..127) and its ``data``."""

    type: int
    data: bytes


def has_invalid_utf8(text):
    """Whether ``text`` came from a msgpack str whose bytes are not UTF-8 (it holds the lone
    surrogates ``surrogateescape`` keeps them as)."""
    try:
        # Strict UTF-8 refuses exactly the surrogates: a decoded valid string has none.
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
