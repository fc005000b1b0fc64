"""The Python shapes of msgpack values that have no exact built-in counterpart.

A chunk decodes to plain Python values where that loses nothing: ``None``, ``bool``, ``int``
(of any size), ``float``, ``str`` (valid UTF-8), ``bytes`` (msgpack bin) and ``list``. Three
shapes keep what the agent keeps and Python would lose: ``Map`` (entries in wire order,
duplicate and unhashable keys included), ``BadStr`` (a msgpack str that is not UTF-8) and
``Ext`` (an extension value).
"""


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


class BadStr(bytes):
    """A msgpack ``str`` whose bytes are not valid UTF-8; rendered as the agent renders it."""

    __slots__ = ()


class Ext:
    """A msgpack extension value other than a record timestamp."""

    __slots__ = ("type", "data")

    def __init__(self, type_, data):
        self.type = type_
        self.data = data

    def __eq__(self, other):
        return isinstance(other, Ext) and (self.type, self.data) == (other.type, other.data)

    def __repr__(self):
        return f"Ext({self.type}, {self.data!r})"
