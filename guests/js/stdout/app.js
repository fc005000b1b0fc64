// stdout: every record as one JSON line on the agent's stdout, byte for byte like the agent's
// built-in stdout output with format json_lines (the JavaScript twin of guests/rust/stdout).
//
// Keys (the built-in output's, with its defaults): json_date_key ("date"; "off" leaves it
// out), json_date_format (double, epoch, epoch_ms, iso8601, java_sql_timestamp) and
// escape_unicode ("on").
//
// With wasm_event_format json_lines the host renders the lines (with the keys' defaults) and
// this guest writes them through; other key values then need msgpack, and init says so.

import { EventFormat, JsonLines, Output, exportOutput } from '../sdk/index.js';

const text = new TextDecoder('utf-8', { ignoreBOM: true });

class Stdout extends Output {
  constructor(format) {
    super();
    // null when the host delivers ready-made JSON lines.
    this.format = format;
  }

  static configSchema() {
    return JsonLines.configKeys();
  }

  static init(ctx) {
    const format = JsonLines.fromConfig(ctx.config);
    if (ctx.eventFormat === EventFormat.MSGPACK) return new Stdout(format);
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
  }
}

export const output = exportOutput(Stdout);
