// JSON exactly as the agent writes it, and its json_lines format.
//
// Follows Fluent Bit 5.1's msgpack2json and flb_utils_write_str as the Rust SDK does
// (guests/rust/sdk/src/value.rs): "%.16g" floats and "%.1f" for integral ones, repeated map
// keys left out but for the last, the agent's escapes, and its handling of bytes that are not
// UTF-8. Output is a string of valid Unicode: the agent's stand-ins for bad bytes (U+E0XX,
// U+FFFD) are characters too.

import { BadStr, Ext, Float, MsgMap } from './values.js';

const TWO_POW_63 = 9223372036854775808;

const trimFraction = (s) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);

/** C's printf("%.16g", f). */
function formatG(f) {
  const sci = f.toExponential(15);
  const [mantissa, exp] = sci.split('e');
  const exponent = Number(exp);
  if (exponent < -4 || exponent >= 16) {
    const e = Math.abs(exponent);
    return `${trimFraction(mantissa)}e${exponent < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  }
  return trimFraction(f.toFixed(Math.max(15 - exponent, 0)));
}

function formatFloat(f, negativeNan) {
  if (Number.isNaN(f)) return negativeNan ? '-nan' : 'nan';
  if (!Number.isFinite(f)) return f > 0 ? 'inf' : '-inf';
  if (Number.isInteger(f) && f >= -TWO_POW_63 && f < TWO_POW_63) {
    // toFixed prints integers below 1e21 (so all of these) exactly, but drops the sign of -0.
    return Object.is(f, -0) ? '-0.0' : `${f.toFixed(0)}.0`;
  }
  return formatG(f);
}

const hex4 = (n) => n.toString(16).padStart(4, '0');
const NON_ASCII_OR_DEL = /[\u007f-\uffff]/g;
const DEL = /\u007f/g;

function writeStr(out, s, escapeUnicode) {
  // JSON.stringify escapes exactly as the agent for valid text, but the agent also escapes DEL
  // and, with escape_unicode on, every non-ASCII UTF-16 unit (surrogate pairs above the BMP).
  const json = JSON.stringify(s);
  out.push(escapeUnicode ? json.replace(NON_ASCII_OR_DEL, (c) => `\\u${hex4(c.charCodeAt(0))}`) : json.replace(DEL, '\\u007f'));
}

const CONTROL_SHORT = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };

function asciiEscape(c) {
  if (c < 0x20) return CONTROL_SHORT[c] ?? `\\u${hex4(c)}`;
  if (c === 0x22) return '\\"';
  if (c === 0x5c) return '\\\\';
  if (c === 0x7f) return '\\u007f';
  return null;
}

function utf8Len(lead) {
  if (lead <= 0xbf) return 1;
  if (lead <= 0xdf) return 2;
  if (lead <= 0xef) return 3;
  if (lead <= 0xf7) return 4;
  if (lead <= 0xfb) return 5;
  return 6;
}

/** flb_utf8_decode over `announced` bytes: [length, codepoint or null]. */
function decodePrefix(data, start, announced) {
  const lead = data[start];
  let cp;
  let pending;
  if ((lead & 0xe0) === 0xc0) [cp, pending] = [lead & 0x1f, 1];
  else if ((lead & 0xf0) === 0xe0) [cp, pending] = [lead & 0x0f, 2];
  else if ((lead & 0xf8) === 0xf0) [cp, pending] = [lead & 0x07, 3];
  else return [1, null];
  for (let n = 1; n < announced; n++) {
    const byte = data[start + n];
    if ((byte & 0xc0) !== 0x80) return [n, null];
    cp = (cp << 6) | (byte & 0x3f);
    pending -= 1;
    if (pending === 0) {
      if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return [n, null];
      return [n + 1, cp];
    }
  }
  return [announced, null];
}

/** flb_utf8_validate_char: the length of the valid UTF-8 sequence at `i`, or 0. */
function validateChar(data, i) {
  const c = data[i];
  const second = i + 1 < data.length ? data[i + 1] : undefined;
  let n;
  if (c < 0x80) return 1;
  if ((c & 0xe0) === 0xc0) {
    if (c < 0xc2) return 0;
    n = 2;
  } else if ((c & 0xf0) === 0xe0) {
    if ((c === 0xe0 && second !== undefined && second < 0xa0) || (c === 0xed && second !== undefined && second >= 0xa0)) return 0;
    n = 3;
  } else if ((c & 0xf8) === 0xf0) {
    if ((c === 0xf0 && second !== undefined && second < 0x90) || c > 0xf4 || (c === 0xf4 && second !== undefined && second > 0x8f)) return 0;
    n = 4;
  } else {
    return 0;
  }
  if (data.length - i < n) return 0;
  for (let k = i + 1; k < i + n; k++) if ((data[k] & 0xc0) !== 0x80) return 0;
  return n;
}

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** A string given as bytes (a BadStr or a bin value), byte for byte as the agent. */
function writeBytes(out, data, escapeUnicode) {
  let s = '';
  let i = 0;
  while (i < data.length) {
    const c = data[i];
    if (c < 0x80) {
      s += asciiEscape(c) ?? String.fromCharCode(c);
      i += 1;
    } else if (escapeUnicode) {
      const announced = utf8Len(c);
      if (i + announced > data.length) {
        i += 1;
        continue;
      }
      const [len, cp] = decodePrefix(data, i, announced);
      if (cp !== null) {
        if (cp > 0xffff) s += `\\u${hex4(0xd800 + ((cp - 0x10000) >> 10))}\\u${hex4(0xdc00 + ((cp - 0x10000) & 0x3ff))}`;
        else s += `\\u${hex4(cp)}`;
      } else {
        for (let k = i; k < i + len; k++) s += String.fromCharCode(0xe000 + data[k]);
      }
      i += len;
    } else {
      const n = validateChar(data, i);
      if (n === 0) {
        s += '\ufffd';
        i += 1;
      } else {
        s += utf8.decode(data.subarray(i, i + n));
        i += n;
      }
    }
  }
  out.push(`"${s}"`);
}

// The chunk componentize-js hands a guest is a Uint8Array of another realm, for which
// `instanceof Uint8Array` is false; so are the bin values sliced from it.
const isBytes = (value) => Object.prototype.toString.call(value) === '[object Uint8Array]';

/** Appends `value` as JSON to the array of strings `out`. */
export function writeJson(out, value, escapeUnicode = true) {
  if (typeof value === 'string') writeStr(out, value, escapeUnicode);
  else if (value instanceof MsgMap) writeMap(out, value.entries, escapeUnicode);
  else if (typeof value === 'number' || typeof value === 'bigint') out.push(String(value));
  else if (value === null) out.push('null');
  else if (typeof value === 'boolean') out.push(value ? 'true' : 'false');
  else if (value instanceof Float) out.push(formatFloat(value.value, value.negativeNan));
  else if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i) out.push(',');
      writeJson(out, value[i], escapeUnicode);
    }
    out.push(']');
  } else if (value instanceof BadStr) writeBytes(out, value.bytes, escapeUnicode);
  else if (isBytes(value)) writeBytes(out, value, escapeUnicode);
  else if (value instanceof Ext) {
    // The agent prints each byte as a *signed* char with "\\x%02x".
    let s = '"';
    for (const b of value.data) s += `\\x${(b < 0x80 ? b : b + 0xffffff00).toString(16).padStart(2, '0')}`;
    out.push(`${s}"`);
  } else throw new TypeError(`cannot render ${Object.prototype.toString.call(value)} as JSON`);
}

const stringKey = (k) => (typeof k === 'string' ? `s${k}` : k instanceof BadStr ? `b${Array.from(k.bytes).join(',')}` : null);

function writeMap(out, entries, escapeUnicode) {
  // Like the agent, an entry whose string key appears again later is left out.
  const last = new Map();
  for (let i = 0; i < entries.length; i++) {
    const key = stringKey(entries[i][0]);
    if (key !== null) last.set(key, i);
  }
  out.push('{');
  let written = false;
  for (let i = 0; i < entries.length; i++) {
    const [key, value] = entries[i];
    const sk = stringKey(key);
    if (sk !== null && last.get(sk) !== i) continue;
    if (written) out.push(',');
    writeJson(out, key, escapeUnicode);
    out.push(':');
    writeJson(out, value, escapeUnicode);
    written = true;
  }
  out.push('}');
}

/** `value` as a JSON string, rendered like the agent's msgpack2json. */
export function toJson(value, escapeUnicode = true) {
  const out = [];
  writeJson(out, value, escapeUnicode);
  return out.join('');
}

const DATE_FORMATS = ['double', 'java_sql_timestamp', 'iso8601', 'epoch', 'epoch_ms'];
const U64 = (1n << 64n) - 1n;

function civil(seconds) {
  const days = Math.floor(seconds / 86400);
  const secs = seconds - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return [year, month, day, Math.floor(secs / 3600), Math.floor(secs / 60) % 60, secs % 60];
}

function switchValue(key, value) {
  const v = value.toLowerCase();
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === 'no') return false;
  throw new Error(`invalid value ${JSON.stringify(value)} for key '${key}': expected on or off`);
}

const pad = (n, width) => String(n).padStart(width, '0');

/**
 * The agent's json_lines format with its keys json_date_key ("date"; "off" leaves it out),
 * json_date_format (double, epoch, epoch_ms, iso8601, java_sql_timestamp) and
 * escape_unicode ("on": non-ASCII as \uXXXX).
 */
export class JsonLines {
  constructor(dateKey = 'date', dateFormat = 'double', escapeUnicode = true) {
    this.dateKey = dateKey;
    this.dateFormat = dateFormat;
    this.escapeUnicode = escapeUnicode;
  }

  /** The three keys, for a guest's configSchema. */
  static configKeys() {
    return [
      { name: 'json_date_key', description: 'key of the record time; off to leave it out', default: 'date' },
      { name: 'json_date_format', description: 'double, epoch, epoch_ms, iso8601 or java_sql_timestamp', default: 'double' },
      { name: 'escape_unicode', description: 'on: write non-ASCII as \\uXXXX like the agent; off: keep UTF-8', default: 'on' },
    ];
  }

  /** From the resolved config (a Map of key to value); an invalid value throws naming the key. */
  static fromConfig(config) {
    let dateKey = config.get('json_date_key') ?? 'date';
    // Like the agent: a boolean-looking "false" disables the key, anything else names it.
    try {
      if (!switchValue('json_date_key', dateKey)) dateKey = null;
    } catch {
      // not a switch: a key name
    }
    const dateFormat = (config.get('json_date_format') ?? 'double').toLowerCase();
    if (!DATE_FORMATS.includes(dateFormat)) {
      const given = config.get('json_date_format');
      throw new Error(
        `invalid value ${JSON.stringify(given)} for key 'json_date_format': unknown date format ${JSON.stringify(given)} (double, java_sql_timestamp, iso8601, epoch, epoch_ms)`,
      );
    }
    return new JsonLines(dateKey, dateFormat, switchValue('escape_unicode', config.get('escape_unicode') ?? 'on'));
  }

  /** True for the agent's defaults: the lines the host renders for the json-lines format. */
  isDefault() {
    return this.dateKey === 'date' && this.dateFormat === 'double' && this.escapeUnicode;
  }

  date(ts) {
    switch (this.dateFormat) {
      case 'double':
        return new Float(ts.asFloat());
      case 'epoch':
        return exactU64(BigInt(ts.seconds) & U64);
      case 'epoch_ms':
        return exactU64((BigInt(ts.seconds) * 1000n + BigInt(Math.floor(ts.nanoseconds / 1e6))) & U64);
      default: {
        const [y, mo, d, h, mi, s] = civil(Number(ts.seconds));
        const micros = pad(Math.floor(ts.nanoseconds / 1000), 6);
        return this.dateFormat === 'iso8601'
          ? `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${micros}Z`
          : `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)} ${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${micros}`;
      }
    }
  }

  /** Appends `event` as one line (newline included) to the array of strings `out`. */
  write(out, event) {
    const entries = [];
    if (this.dateKey !== null) entries.push([this.dateKey, this.date(event.timestamp)]);
    const { metadata, groupAttributes: group, body } = event;
    if ((metadata instanceof MsgMap && metadata.size > 0) || (group instanceof MsgMap && group.size > 0)) {
      const inner = [];
      if (group !== null && group !== undefined) inner.push(['group_attributes', group]);
      inner.push(['log_metadata', metadata]);
      entries.push(['__internal__', new MsgMap(inner)]);
    }
    if (body instanceof MsgMap) entries.push(...body.entries);
    else entries.push(['log', body]);
    writeMap(out, entries, this.escapeUnicode);
    out.push('\n');
  }

  /** All `events` as lines, one string. */
  render(events) {
    const out = [];
    for (const event of events) this.write(out, event);
    return out.join('');
  }
}

const exactU64 = (big) => (big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big);
