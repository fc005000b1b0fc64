// stdout: every record as one JSON line on the agent's stdout, byte for byte like the agent's
// built-in stdout output with format json_lines (the JavaScript twin of guests/rust/stdout).
//
// Keys (the built-in output's, with its defaults): json_date_key ("date"; "off" leaves it
// out), json_date_format (double, epoch, epoch_ms, iso8601, java_sql_timestamp) and
// escape_unicode ("on").
//
// With wasm_event_format json_lines the host renders the lines (with the keys' defaults) and
// this guest writes them through; other key values then need msgpack, and init says so.
// otlp_json is refused.
//
// It also counts the records it prints per tag, as the guest metric
// fluentbit_wasm_guest_records_printed_total{name="<output>",tag="<tag>"}.

import { EventFormat, JsonLines, Output, exportOutput, metrics } from '../sdk/index.js';

const text = new TextDecoder('utf-8', { ignoreBOM: true });

// JSON escapes newlines inside values: each one ends a record.
function countLines(lines) {
  let count = 0;
  for (let at = lines.indexOf('\n'); at >= 0; at = lines.indexOf('\n', at + 1)) count++;
  return count;
}

class Stdout extends Output {
  constructor(format) {
    super();
    // null when the host delivers ready-made JSON lines.
    this.format = format;
    this.printed = metrics.Counter.declare('records_printed', 'records written to stdout', ['tag']);
  }

  static configSchema() {
    return JsonLines.configKeys();
  }

  static init(ctx) {
    const format = JsonLines.fromConfig(ctx.config);
    if (ctx.eventFormat === EventFormat.MSGPACK) return new Stdout(format);
    if (ctx.eventFormat === EventFormat.OTLP_JSON) {
      throw new Error("this guest prints the agent's JSON lines: use wasm_event_format msgpack or json_lines");
    }
    if (format.isDefault()) return new Stdout(null);
    throw new Error(
      'json_date_key, json_date_format and escape_unicode other than their defaults need ' +
        'wasm_event_format msgpack: the host renders json_lines with the defaults',
    );
  }

  flush(chunk) {
    const lines = this.format === null ? text.decode(chunk.data) : this.format.render(chunk.events());
    // console.log adds the last newline itself; an empty chunk prints nothing.
    if (lines.length > 0) console.log(lines.endsWith('\n') ? lines.slice(0, -1) : lines);
    const records = countLines(lines);
    if (records > 0) {
      try {
        this.printed.add([chunk.tag], records);
      } catch (e) {
        // More tags than the operator's wasm_metrics_max_series: a count is lost, not records,
        // and the host already logs it.
        if (!(e instanceof metrics.MetricError)) throw e;
      }
    }
  }
}

export const output = exportOutput(Stdout);
