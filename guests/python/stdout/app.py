"""``stdout``: every record as one JSON line on the agent's stdout, byte for byte like the
agent's built-in ``stdout`` output with ``format json_lines`` (the Python twin of
``guests/rust/stdout``).

Keys (the built-in output's, with its defaults): ``json_date_key`` (``date``; ``off`` leaves it
out), ``json_date_format`` (``double``, ``epoch``, ``epoch_ms``, ``iso8601``,
``java_sql_timestamp``) and ``escape_unicode`` (``on``).

With ``wasm_event_format json_lines`` the host renders the lines (with the keys' defaults) and
this guest writes them through; other key values then need ``msgpack``, and init says so.
``otlp_json`` is refused.

It also counts the records it prints per tag, as the guest metric
``fluentbit_wasm_guest_records_printed_total{name="<output>",tag="<tag>"}``.
"""

import os

from out_wasm_guest import EventFormat, JsonLines, Retry, export, metrics
from out_wasm_guest import Output as Base


class Stdout(Base):
    def __init__(self, format_):
        # None when the host delivers ready-made JSON lines.
        self.format = format_
        self.printed = metrics.Counter.declare("records_printed", "records written to stdout", ["tag"])

    @classmethod
    def config_schema(cls):
        return JsonLines.config_keys()

    @classmethod
    def init(cls, ctx):
        format_ = JsonLines.from_config(ctx.config)
        if ctx.event_format == EventFormat.MSGPACK:
            return cls(format_)
        if ctx.event_format == EventFormat.OTLP_JSON:
            raise ValueError("this guest prints the agent's JSON lines: use wasm_event_format msgpack or json_lines")
        if format_.is_default():
            return cls(None)
        raise ValueError(
            "json_date_key, json_date_format and escape_unicode other than their defaults need "
            "wasm_event_format msgpack: the host renders json_lines with the defaults"
        )

    def flush(self, chunk):
        lines = chunk.data if self.format is None else self.format.render(chunk.events())
        # JSON escapes newlines inside values: each one ends a record.
        records = lines.count(b"\n")
        # One write per chunk, as the agent does, so lines of concurrent flushes never interleave.
        # os.write, not sys.stdout: a write may be partial (WASI streams take 64 KiB at a time)
        # and nothing must be left in a Python buffer when flush returns.
        view = memoryview(lines)
        try:
            while view:
                view = view[os.write(1, view) :]
        except OSError as err:
            raise Retry(f"failed to write to stdout: {err}") from err
        if records:
            try:
                self.printed.add([chunk.tag], records)
            except metrics.MetricError:
                # More tags than the operator's wasm_metrics_max_series: a count is lost, not
                # records, and the host already logs it.
                pass


Output = export(Stdout)
