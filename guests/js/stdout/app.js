// stdout: every record as one JSON line on the agent's stdout, byte for byte like the agent's
// built-in stdout output with format json_lines (the JavaScript twin of guests/rust/stdout).
//
// Keys (the built-in output's, with its defaults):
// - json_date_key ("date"): key of the record time; false/off/no leaves it out.
// - json_date_format ("double"): double, epoch, epoch_ms, iso8601 or java_sql_timestamp.
// - escape_unicode ("on"): the agent's [SERVICE] json.escape_unicode; on writes non-ASCII as
//   \uXXXX like the agent does by default, off keeps UTF-8 as is.
//
// The host renders the lines with these keys (the guest asks for JSON lines with them) and this
// guest writes them as they are. It has no renderer of its own, so it refuses wasm_event_format
// msgpack and otlp_json.
//
// It counts the records it prints per tag in the guest metric records_printed (exported as
// fluentbit_wasm_guest_records_printed_total{name="<output>",tag="<tag>"}), as the other
// languages' stdout examples do.

import { EventFormat, JsonLines, Output, exportOutput, metrics } from '../sdk/index.js';

// ignoreBOM: a leading U+FEFF in a value is part of it, and must reach stdout.
const text = new TextDecoder('utf-8', { ignoreBOM: true });

// JSON escapes newlines inside values: each one ends a record.
function countLines(lines) {
  let count = 0;
  for (let at = lines.indexOf('\n'); at >= 0; at = lines.indexOf('\n', at + 1)) count++;
  return count;
}

class Stdout extends Output {
  constructor() {
    super();
    this.printed = metrics.Counter.declare('records_printed', 'records written to stdout', ['tag']);
  }

  static configSchema() {
    return JsonLines.configKeys();
  }

  // An invalid key value throws here, naming the key: the agent does not start.
  static preferredEventFormat(config) {
    return EventFormat.jsonLines(JsonLines.fromConfig(config));
  }

  static init(ctx) {
    if (ctx.eventFormat.tag !== 'json-lines') {
      throw new Error(
        `this guest prints the JSON lines the host renders, not ${ctx.eventFormat.tag}: ` +
          'leave wasm_event_format unset or set it to json_lines',
      );
    }
    return new Stdout();
  }

  flush(chunk) {
    const lines = text.decode(chunk.data);
    // One write per chunk, as the agent does, so lines of concurrent flushes never interleave.
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
