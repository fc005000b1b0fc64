"""JSON exactly as the agent writes it, and its ``json_lines`` format.

Follows Fluent Bit 5.1's ``msgpack2json`` and ``flb_utils_write_str`` as the Rust SDK does
(``guests/rust/sdk/src/value.rs``): ``%.16g`` floats and ``%.1f`` for integral ones, repeated
map keys left out but for the last, the agent's escapes, and its handling of bytes that are not
UTF-8. Output is ``bytes``: a line may hold bytes Python's ``str`` cannot (U+E0XX stand-ins are
fine, but the rendering is byte-oriented like the agent's).
"""

import json
import math

from .decode import Timestamp
from .values import BadStr, Ext, Map

_encode_ascii = json.encoder.encode_basestring_ascii
_encode_utf8 = json.encoder.encode_basestring
_TWO_POW_63 = 9_223_372_036_854_775_808.0


def _float(f):
    if f != f:
        return "-nan" if math.copysign(1.0, f) < 0 else "nan"
    if f in (float("inf"), float("-inf")):
        return "inf" if f > 0 else "-inf"
    if f.is_integer() and -_TWO_POW_63 <= f < _TWO_POW_63:
        return "%.1f" % f
    return "%.16g" % f


_CONTROL = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b", "\\t", "\\n",
    "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014",
    "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e",
    "\\u001f",
]


def _ascii_escape(c):
    if c < 0x20:
        return _CONTROL[c].encode()
    if c == 0x22:
        return b'\\"'
    if c == 0x5C:
        return b"\\\\"
    if c == 0x7F:
        return b"\\u007f"
    return None


def _utf8_len(lead):
    if lead <= 0xBF:
        return 1
    if lead <= 0xDF:
        return 2
    if lead <= 0xEF:
        return 3
    if lead <= 0xF7:
        return 4
    if lead <= 0xFB:
        return 5
    return 6


def _decode_prefix(data, start, announced):
    """``flb_utf8_decode`` over ``announced`` bytes: ``(length, codepoint or None)``; an invalid
    lead byte is taken alone, and at an invalid continuation only the prefix before it."""
    lead = data[start]
    if lead < 0x80:
        return 1, lead
    if lead & 0xE0 == 0xC0:
        cp, pending = lead & 0x1F, 1
    elif lead & 0xF0 == 0xE0:
        cp, pending = lead & 0x0F, 2
    elif lead & 0xF8 == 0xF0:
        cp, pending = lead & 0x07, 3
    else:
        return 1, None
    for n in range(1, announced):
        byte = data[start + n]
        if byte & 0xC0 != 0x80:
            return n, None
        cp = (cp << 6) | (byte & 0x3F)
        pending -= 1
        if pending == 0:
            if 0xD800 <= cp <= 0xDFFF or cp > 0x10FFFF:
                return n, None
            return n + 1, cp
    return announced, None


def _validate_char(data, i):
    """``flb_utf8_validate_char``: length of the valid UTF-8 sequence at ``i``, or 0."""
    c = data[i]
    second = data[i + 1] if i + 1 < len(data) else None
    if c < 0x80:
        return 1
    if c & 0xE0 == 0xC0:
        if c < 0xC2:
            return 0
        n = 2
    elif c & 0xF0 == 0xE0:
        if (c == 0xE0 and second is not None and second < 0xA0) or (c == 0xED and second is not None and second >= 0xA0):
            return 0
        n = 3
    elif c & 0xF8 == 0xF0:
        if (c == 0xF0 and second is not None and second < 0x90) or c > 0xF4 or (
            c == 0xF4 and second is not None and second > 0x8F
        ):
            return 0
        n = 4
    else:
        return 0
    if len(data) - i < n or any(b & 0xC0 != 0x80 for b in data[i + 1 : i + n]):
        return 0
    return n


def _write_raw_bytes(out, data, escape_unicode):
    """A string given as bytes (a ``BadStr`` or a bin value), byte for byte as the agent."""
    i = 0
    end = len(data)
    while i < end:
        c = data[i]
        if c < 0x80:
            escape = _ascii_escape(c)
            out.append(escape if escape is not None else data[i : i + 1])
            i += 1
        elif escape_unicode:
            announced = _utf8_len(c)
            if i + announced > end:
                i += 1
                continue
            length, cp = _decode_prefix(data, i, announced)
            if cp is not None:
                if cp > 0xFFFF:
                    high = 0xD800 + ((cp - 0x10000) >> 10)
                    low = 0xDC00 + ((cp - 0x10000) & 0x3FF)
                    out.append(b"\\u%04x\\u%04x" % (high, low))
                else:
                    out.append(b"\\u%04x" % cp)
            else:
                for byte in data[i : i + length]:
                    out.append(bytes((0xEE, 0x80 | (byte >> 6), 0x80 | (byte & 0x3F))))
            i += length
        else:
            n = _validate_char(data, i)
            if n == 0:
                out.append("\ufffd".encode())
                i += 1
            else:
                out.append(data[i : i + n])
                i += n


def _write_str(out, s, escape_unicode):
    # json's escaping is the agent's for valid text but for DEL, which the agent escapes too.
    if escape_unicode:
        text = _encode_ascii(s)
    else:
        text = _encode_utf8(s)
    if "\x7f" in text:
        text = text.replace("\x7f", "\\u007f")
    out.append(text.encode())


def write_json(out, value, escape_unicode=True):
    """Appends ``value`` as JSON (``bytes`` pieces) to the list ``out``."""
    t = type(value)
    if t is str:
        _write_str(out, value, escape_unicode)
    elif t is Map:
        _write_map(out, value, escape_unicode)
    elif t is int:
        out.append(str(value).encode())
    elif value is None:
        out.append(b"null")
    elif t is bool:
        out.append(b"true" if value else b"false")
    elif t is float:
        out.append(_float(value).encode())
    elif t is list:
        out.append(b"[")
        for i, item in enumerate(value):
            if i:
                out.append(b",")
            write_json(out, item, escape_unicode)
        out.append(b"]")
    elif t is BadStr or t is bytes:
        out.append(b'"')
        _write_raw_bytes(out, value, escape_unicode)
        out.append(b'"')
    elif t is Ext:
        # The agent prints each byte as a *signed* char with "\\x%02x".
        out.append(b'"' + b"".join(b"\\x%02x" % (b if b < 0x80 else b + 0xFFFFFF00) for b in value.data) + b'"')
    else:
        raise TypeError(f"cannot render {t.__name__} as JSON")


def _write_map(out, entries, escape_unicode):
    # Like the agent, an entry whose string key appears again later is left out.
    last = {}
    for i, (key, _) in enumerate(entries):
        if type(key) is str or type(key) is BadStr:
            last[(type(key), key)] = i
    out.append(b"{")
    written = False
    for i, (key, value) in enumerate(entries):
        if (type(key) is str or type(key) is BadStr) and last[(type(key), key)] != i:
            continue
        if written:
            out.append(b",")
        write_json(out, key, escape_unicode)
        out.append(b":")
        write_json(out, value, escape_unicode)
        written = True
    out.append(b"}")


def to_json(value, escape_unicode=True):
    """``value`` as JSON ``bytes``, rendered like the agent's ``msgpack2json``."""
    out = []
    write_json(out, value, escape_unicode)
    return b"".join(out)


_DATE_FORMATS = ("double", "java_sql_timestamp", "iso8601", "epoch", "epoch_ms")


def _civil(seconds):
    days, secs = divmod(seconds, 86_400)
    z = days + 719_468
    era, doe = divmod(z, 146_097)
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day, secs // 3600, secs // 60 % 60, secs % 60


def _switch(key, value):
    lowered = value.lower()
    if lowered in ("on", "true", "yes"):
        return True
    if lowered in ("off", "false", "no"):
        return False
    raise ValueError(f"invalid value {value!r} for key '{key}': expected on or off")


class JsonLines:
    """The agent's ``json_lines`` format with its keys ``json_date_key`` (``date``; ``off``
    leaves it out), ``json_date_format`` (``double``, ``epoch``, ``epoch_ms``, ``iso8601``,
    ``java_sql_timestamp``) and ``escape_unicode`` (``on``: non-ASCII as ``\\uXXXX``)."""

    def __init__(self, date_key="date", date_format="double", escape_unicode=True):
        self.date_key = date_key
        self.date_format = date_format
        self.escape_unicode = escape_unicode

    @staticmethod
    def config_keys():
        """The three keys, for a guest's ``config_schema``."""
        from .output import ConfigKey

        return [
            ConfigKey("json_date_key", "key of the record time; off to leave it out", default="date"),
            ConfigKey("json_date_format", "double, epoch, epoch_ms, iso8601 or java_sql_timestamp", default="double"),
            ConfigKey("escape_unicode", "on: write non-ASCII as \\uXXXX like the agent; off: keep UTF-8", default="on"),
        ]

    @classmethod
    def from_config(cls, config):
        """From the resolved config (a ``dict``); an invalid value raises ``ValueError`` naming the key."""
        date_key = config.get("json_date_key", "date")
        try:
            # Like the agent: a boolean-looking "false" disables the key, anything else names it.
            if not _switch("json_date_key", date_key):
                date_key = None
        except ValueError:
            pass
        date_format = config.get("json_date_format", "double")
        if date_format.lower() not in _DATE_FORMATS:
            raise ValueError(
                f"invalid value {date_format!r} for key 'json_date_format': unknown date format "
                f"{date_format!r} (double, java_sql_timestamp, iso8601, epoch, epoch_ms)"
            )
        return cls(date_key, date_format.lower(), _switch("escape_unicode", config.get("escape_unicode", "on")))

    def is_default(self):
        """True for the agent's defaults: the lines the host renders for ``json-lines``."""
        return self.date_key == "date" and self.date_format == "double" and self.escape_unicode

    def _date(self, ts):
        fmt = self.date_format
        if fmt == "double":
            return ts.as_float()
        if fmt == "epoch":
            return ts.seconds & 0xFFFF_FFFF_FFFF_FFFF
        if fmt == "epoch_ms":
            return (ts.seconds * 1000 + ts.nanoseconds // 1_000_000) & 0xFFFF_FFFF_FFFF_FFFF
        y, mo, d, h, mi, s = _civil(ts.seconds)
        sep, zone = ("T", "Z") if fmt == "iso8601" else (" ", "")
        return "%04d-%02d-%02d%s%02d:%02d:%02d.%06d%s" % (y, mo, d, sep, h, mi, s, ts.nanoseconds // 1000, zone)

    def write(self, out, event):
        """Appends ``event`` as one line (newline included) to the list ``out``."""
        entries = Map()
        if self.date_key is not None:
            entries.append((self.date_key, self._date(event.timestamp)))
        metadata = event.metadata
        group = event.group_attributes
        if (type(metadata) is Map and metadata) or (type(group) is Map and group):
            inner = Map()
            if group is not None:
                inner.append(("group_attributes", group))
            inner.append(("log_metadata", metadata))
            entries.append(("__internal__", inner))
        body = event.body
        if type(body) is Map:
            entries.extend(body)
        else:
            entries.append(("log", body))
        _write_map(out, entries, self.escape_unicode)
        out.append(b"\n")

    def render(self, events):
        """All ``events`` as lines, one ``bytes``."""
        out = []
        for event in events:
            self.write(out, event)
        return b"".join(out)


__all__ = ["JsonLines", "Timestamp", "to_json", "write_json"]
