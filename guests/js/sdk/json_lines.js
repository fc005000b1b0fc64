// The agent's `stdout` keys for JSON lines, which the host renders: a guest declares them
// (configKeys) and asks for JSON lines with their values (fromConfig). The twin of the Rust
// SDK's JsonLines::config_keys and JsonLines::from_config (format/src/json_lines.rs): the same
// keys, descriptions, defaults and error messages. The rendering itself is the host's.
//
//   static configSchema() { return JsonLines.configKeys(); }
//   static preferredEventFormat(config) { return EventFormat.jsonLines(JsonLines.fromConfig(config)); }

import { DateFormat } from './output.js';

// The key's spelling (the agent's) to the WIT's.
const DATE_FORMATS = {
  double: DateFormat.DOUBLE,
  java_sql_timestamp: DateFormat.JAVA_SQL_TIMESTAMP,
  iso8601: DateFormat.ISO8601,
  epoch: DateFormat.EPOCH,
  epoch_ms: DateFormat.EPOCH_MS,
};

function toggle(key, value) {
  const v = value.toLowerCase();
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === 'no') return false;
  throw new Error(`invalid value ${JSON.stringify(value)} for key '${key}': expected on or off`);
}

/** The keys json_date_key, json_date_format and escape_unicode, with the agent's defaults. */
export class JsonLines {
  /** The three keys, for a guest's configSchema. */
  static configKeys() {
    return [
      { name: 'json_date_key', description: 'key of the record time; off to leave it out', default: 'date' },
      { name: 'json_date_format', description: 'double, epoch, epoch_ms, iso8601 or java_sql_timestamp', default: 'double' },
      { name: 'escape_unicode', description: 'on: write non-ASCII as \\uXXXX like the agent; off: keep UTF-8', default: 'on' },
    ];
  }

  /**
   * The options of EventFormat.jsonLines from the resolved config (a Map); an invalid value
   * throws an Error naming the key, which refuses the config when thrown from
   * preferredEventFormat.
   */
  static fromConfig(config) {
    const dateKey = config.get('json_date_key') ?? 'date';
    let on = true;
    try {
      on = toggle('json_date_key', dateKey);
    } catch {
      // Like the agent: a boolean-looking "false" disables the key, anything else names it.
    }
    const format = config.get('json_date_format') ?? 'double';
    const dateFormat = DATE_FORMATS[format.toLowerCase()];
    if (dateFormat === undefined) {
      throw new Error(
        `invalid value ${JSON.stringify(format)} for key 'json_date_format': unknown date format ${JSON.stringify(format)} (double, java_sql_timestamp, iso8601, epoch, epoch_ms)`,
      );
    }
    return {
      dateKey: on ? dateKey : null,
      dateFormat,
      escapeUnicode: toggle('escape_unicode', config.get('escape_unicode') ?? 'on'),
    };
  }
}
