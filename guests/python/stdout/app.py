"""``stdout``: every record as one JSON line on the agent's stdout, byte for byte like the
agent's built-in ``stdout`` output with ``format json_lines`` (the Python twin of
``guests/rust/stdout``).

Keys (the built-in output's, with its defaults):
- ``json_date_key`` (``date``): key of the record time; ``false``/``off``/``no`` leaves it out.
- ``json_date_format`` (``double``): ``double``, ``epoch``, ``epoch_ms``, ``iso8601`` or
  ``java_sql_timestamp``.
- ``escape_unicode`` (``on``): the agent's ``[SERVICE] json.escape_unicode``; ``on`` writes
  non-ASCII as ``\\uXXXX`` like the agent does by default, ``off`` keeps UTF-8 as is.

The host renders the lines with these keys (the guest asks for JSON lines with them) and this
guest writes them through. ``wasm_event_format msgpack`` and ``otlp_json`` are refused: this
guest has no renderer of its own.

It counts the records it printed per tag in the guest metric ``records_printed`` (exported as
``fluentbit_wasm_guest_records_printed_total{name="<output>",tag="<tag>"}``), as the other
languages' ``stdout`` examples do.
"""

import os

from out_wasm_guest import EventFormat, Output, Retry, export, json_lines, metrics


class Stdout(Output):
    def __init__(self, printed):
        self.printed = printed

    @classmethod
    def config_schema(cls):
        return json_lines.config_keys()

    @classmethod
    def preferred_event_format(cls, config):
        # An invalid value raises ValueError naming the key: the config is refused.
        return json_lines.from_config(config)

    @classmethod
    def init(cls, ctx):
        # Rendered by the host with this guest's keys (or, when the operator chose json_lines,
        # the same).
        if not isinstance(ctx.event_format, EventFormat.JsonLines):
            raise ValueError(
                "this guest prints the JSON lines the host renders with its keys and has no "
                "renderer of its own: leave wasm_event_format unset (or set it to json_lines)"
            )
        return cls(metrics.Counter.declare("records_printed", "records printed on stdout", ["tag"]))

    def flush(self, chunk):
        lines = chunk.data
        # One write per chunk, as the agent does, so lines of concurrent flushes never
        # interleave. os.write, not sys.stdout: a write may be partial (WASI streams take 64 KiB
        # at a time) and nothing must be left in a Python buffer when flush returns.
        view = memoryview(lines)
        try:
            while view:
                view = view[os.write(1, view) :]
        except OSError as err:
            raise Retry(f"failed to write to stdout: {err}") from err
        # JSON escapes newlines inside values: each one ends a record.
        records = lines.count(b"\n")
        if records:
            try:
                self.printed.add([chunk.tag], records)
            except metrics.MetricError:
                # More tags than the operator's wasm_metrics_max_series: a count is lost, not
                # records, and the host already logs it.
                pass


Output = export(Stdout)
