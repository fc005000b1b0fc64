"""The keys of the agent's ``stdout`` output for JSON lines, turned into the event format the
host renders with them (the Python face of Rust's ``JsonLines::config_keys`` and
``JsonLines::from_config`` in ``format/src/json_lines.rs``).

The host renders the lines, byte for byte as the agent does; a guest only declares the keys
and asks for the format::

    from out_wasm_guest import Output, json_lines

    class Printer(Output):
        @classmethod
        def config_schema(cls):
            return json_lines.config_keys()

        @classmethod
        def preferred_event_format(cls, config):
            return json_lines.from_config(config)
"""

import json

from .output import ConfigKey, DateFormat, EventFormat

_DATE_FORMATS = {
    "double": DateFormat.DOUBLE,
    "java_sql_timestamp": DateFormat.JAVA_SQL_TIMESTAMP,
    "iso8601": DateFormat.ISO8601,
    "epoch": DateFormat.EPOCH,
    "epoch_ms": DateFormat.EPOCH_MS,
}


def _quoted(value):
    # Quoted as Rust's JsonLines::from_config quotes it, so every SDK refuses in the same words.
    return json.dumps(value, ensure_ascii=False)


def _switch(key, value):
    lowered = value.lower()
    if lowered in ("on", "true", "yes"):
        return True
    if lowered in ("off", "false", "no"):
        return False
    raise ValueError(f"invalid value {_quoted(value)} for key '{key}': expected on or off")


def config_keys():
    """The three keys, for a guest's ``config_schema``: ``json_date_key`` (``date``;
    ``false``/``off``/``no`` leaves the time out), ``json_date_format`` (``double``, ``epoch``,
    ``epoch_ms``, ``iso8601``, ``java_sql_timestamp``) and ``escape_unicode`` (``on``)."""
    return [
        ConfigKey("json_date_key", "key of the record time; off to leave it out", default="date"),
        ConfigKey("json_date_format", "double, epoch, epoch_ms, iso8601 or java_sql_timestamp", default="double"),
        ConfigKey("escape_unicode", "on: write non-ASCII as \\uXXXX like the agent; off: keep UTF-8", default="on"),
    ]


def from_config(config):
    """``EventFormat.JsonLines`` with the options these keys of ``config`` (a ``dict``) say;
    an invalid value raises ``ValueError`` naming the key."""
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
            f"invalid value {_quoted(date_format)} for key 'json_date_format': unknown date format "
            f"{_quoted(date_format)} (double, java_sql_timestamp, iso8601, epoch, epoch_ms)"
        )
    escape_unicode = _switch("escape_unicode", config.get("escape_unicode", "on"))
    return EventFormat.json_lines(date_key, _DATE_FORMATS[date_format.lower()], escape_unicode)
