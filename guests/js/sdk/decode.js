// Records of a chunk: timestamp, metadata and body, decoded one at a time.
//
// Follows the Rust SDK (format/src/event.rs and msgpack.rs): both record layouts, EventTime /
// integer / float timestamps, group markers skipped with their attributes attached to the
// records inside, nesting capped, every error naming the byte offset.
//
// Hand-written rather than on an npm msgpack library: @msgpack/msgpack (3.1.3) and msgpackr
// (2.1) decode maps into objects or Maps, which keep one entry per key (the agent keeps
// every one), and lose invalid UTF-8 (docs/guests-js.md, "Why the decoder is hand-written").

import { BadStr, Ext, MsgMap } from './values.js';

/** Nesting deeper than this is refused: a hostile chunk must not exhaust the guest's stack. */
export const MAX_DEPTH = 256;

/** A chunk that is not well-formed msgpack records. */
export class DecodeError extends Error {
  constructor(offset, reason) {
    super(`malformed chunk at byte offset ${offset}: ${reason}`);
    this.offset = offset;
    this.reason = reason;
  }
}

/** When a record happened: seconds and nanoseconds (below 10^9) since the Unix epoch. */
export class Timestamp {
  constructor(seconds, nanoseconds = 0) {
    this.seconds = seconds;
    this.nanoseconds = nanoseconds;
  }

  /** Nanoseconds since the epoch, as a BigInt. */
  unixNanos() {
    return BigInt(this.seconds) * 1000000000n + BigInt(this.nanoseconds);
  }

  /** Seconds as a float, computed the way the agent computes it. */
  asFloat() {
    return Number(this.seconds) + this.nanoseconds / 1e9;
  }
}

/**
 * One record: `timestamp`, `metadata` (a MsgMap, empty for the old layout), `body` (normally a
 * MsgMap) and `groupAttributes` (the attributes of its OpenTelemetry group, or null).
 */
export class Event {
  constructor(timestamp, metadata, body, groupAttributes) {
    this.timestamp = timestamp;
    this.metadata = metadata;
    this.body = body;
    this.groupAttributes = groupAttributes;
  }
}

// ignoreBOM: a leading U+FEFF is part of the value, as the agent prints it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const exact = (big) => (big <= SAFE && big >= -SAFE ? Number(big) : big);

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    this.end = bytes.length;
  }

  need(n, what) {
    if (this.pos + n > this.end) {
      throw new DecodeError(this.pos, `truncated: ${what} needs ${n} bytes, ${this.end - this.pos} left`);
    }
  }

  u8(what) {
    this.need(1, what);
    return this.bytes[this.pos++];
  }

  u16(what) {
    this.need(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what) {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  take(n, what) {
    this.need(n, what);
    const slice = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return slice;
  }

  str(n) {
    const raw = this.take(n, 'a string');
    try {
      return utf8.decode(raw);
    } catch {
      return new BadStr(raw);
    }
  }

  count(n, minBytes, what, at) {
    const left = this.end - this.pos;
    if (n * minBytes > left) throw new DecodeError(at, `truncated: ${what} of ${n} entries, only ${left} bytes left`);
  }

  /** The length of the array starting here, or null (nothing consumed) if it is not one. */
  arrayLen() {
    const at = this.pos;
    const b = this.u8('a marker');
    if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
    if (b === 0xdc) return this.u16('an array length');
    if (b === 0xdd) return this.u32('an array length');
    this.pos = at;
    return null;
  }

  peekIsArray() {
    if (this.pos >= this.end) return false;
    const b = this.bytes[this.pos];
    return (b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd;
  }

  value(depth = 0) {
    const at = this.pos;
    if (depth > MAX_DEPTH) throw new DecodeError(at, `nesting deeper than ${MAX_DEPTH} levels`);
    const b = this.u8('a marker');
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0xa0 && b <= 0xbf) return this.str(b & 0x1f);
    if (b >= 0x80 && b <= 0x8f) return this.map(b & 0x0f, depth, at);
    if (b >= 0x90 && b <= 0x9f) return this.array(b & 0x0f, depth, at);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xcc: return this.u8('a u8');
      case 0xcd: return this.u16('a u16');
      case 0xce: return this.u32('a u32');
      case 0xcf: { this.need(8, 'a u64'); const v = this.view.getBigUint64(this.pos); this.pos += 8; return exact(v); }
      case 0xd0: { this.need(1, 'an i8'); const v = this.view.getInt8(this.pos); this.pos += 1; return v; }
      case 0xd1: { this.need(2, 'an i16'); const v = this.view.getInt16(this.pos); this.pos += 2; return v; }
      case 0xd2: { this.need(4, 'an i32'); const v = this.view.getInt32(this.pos); this.pos += 4; return v; }
      case 0xd3: { this.need(8, 'an i64'); const v = this.view.getBigInt64(this.pos); this.pos += 8; return exact(v); }
      case 0xca: return this.float(4, 'a f32');
      case 0xcb: return this.float(8, 'a f64');
      case 0xd9: return this.str(this.u8('a string length'));
      case 0xda: return this.str(this.u16('a string length'));
      case 0xdb: return this.str(this.u32('a string length'));
      case 0xc4: return this.take(this.u8('a binary length'), 'a binary');
      case 0xc5: return this.take(this.u16('a binary length'), 'a binary');
      case 0xc6: return this.take(this.u32('a binary length'), 'a binary');
      case 0xdc: return this.array(this.u16('an array length'), depth, at);
      case 0xdd: return this.array(this.u32('an array length'), depth, at);
      case 0xde: return this.map(this.u16('a map length'), depth, at);
      case 0xdf: return this.map(this.u32('a map length'), depth, at);
      case 0xd4: return this.ext(1);
      case 0xd5: return this.ext(2);
      case 0xd6: return this.ext(4);
      case 0xd7: return this.ext(8);
      case 0xd8: return this.ext(16);
      case 0xc7: return this.ext(this.u8('an extension length'));
      case 0xc8: return this.ext(this.u16('an extension length'));
      case 0xc9: return this.ext(this.u32('an extension length'));
      default: throw new DecodeError(at, 'reserved msgpack marker 0xc1');
    }
  }

  float(n, what) {
    this.need(n, what);
    const v = n === 4 ? this.view.getFloat32(this.pos) : this.view.getFloat64(this.pos);
    this.pos += n;
    return v;
  }

  array(n, depth, at) {
    this.count(n, 1, 'array', at);
    const items = new Array(n);
    for (let i = 0; i < n; i++) items[i] = this.value(depth + 1);
    return items;
  }

  map(n, depth, at) {
    this.count(n, 2, 'map', at);
    const entries = new Array(n);
    for (let i = 0; i < n; i++) {
      const key = this.value(depth + 1);
      entries[i] = [key, this.value(depth + 1)];
    }
    return new MsgMap(entries);
  }

  ext(n) {
    this.need(1, 'an extension type');
    const type = this.view.getInt8(this.pos);
    this.pos += 1;
    return new Ext(type, this.take(n, 'an extension payload'));
  }
}

const kind = (v) => {
  if (v === null) return 'nil';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'number' || typeof v === 'bigint') return 'a number';
  if (typeof v === 'string' || v instanceof BadStr) return 'a string';
  if (Object.prototype.toString.call(v) === '[object Uint8Array]') return 'a binary';
  if (v instanceof MsgMap) return 'a map';
  if (Array.isArray(v)) return 'an array';
  return 'an extension';
};

const isMarker = (data, last) =>
  data.length === 8 && data[0] === 0xff && data[1] === 0xff && data[2] === 0xff && data[3] === last &&
  data[4] === 0 && data[5] === 0 && data[6] === 0 && data[7] === 0;

/** A Timestamp, or 'start' / 'end' for a group marker. */
function timestamp(reader) {
  const at = reader.pos;
  // A float is told by its marker: decoded, 1.0 and 1 are the same number, and only the
  // integers -1 / -2 mark groups.
  const isFloat = reader.bytes[at] === 0xca || reader.bytes[at] === 0xcb;
  const v = reader.value();
  if (v instanceof Ext) {
    if (v.type === 0 && v.data.length === 8) {
      if (isMarker(v.data, 0xff)) return 'start';
      if (isMarker(v.data, 0xfe)) return 'end';
      const view = new DataView(v.data.buffer, v.data.byteOffset, 8);
      const nanos = view.getUint32(4);
      if (nanos >= 1000000000) throw new DecodeError(at, `EventTime has ${nanos} nanoseconds`);
      return new Timestamp(view.getUint32(0), nanos);
    }
    throw new DecodeError(at, `timestamp is extension type ${v.type} of ${v.data.length} bytes, not EventTime`);
  }
  if (isFloat) {
    if (!Number.isFinite(v)) throw new DecodeError(at, `timestamp is the float ${v}, not a time`);
    const whole = Math.trunc(v);
    let nanos = Math.trunc((v - whole) * 1e9);
    let seconds = whole;
    if (nanos < 0) {
      seconds -= 1;
      nanos += 1000000000;
    }
    return new Timestamp(seconds, Math.min(Math.max(nanos, 0), 999999999));
  }
  if (typeof v === 'number' || typeof v === 'bigint') {
    if (v === -1) return 'start';
    if (v === -2) return 'end';
    return new Timestamp(v, 0);
  }
  throw new DecodeError(at, `timestamp is ${kind(v)}, not a time`);
}

/** Every Event of `chunk` (a Uint8Array) in order; throws DecodeError at the first malformed record. */
export function* events(chunk) {
  const reader = new Reader(chunk);
  let group = null;
  while (reader.pos < reader.end) {
    const start = reader.pos;
    const n = reader.arrayLen();
    if (n === null) throw new DecodeError(start, 'record is not an array');
    if (n !== 2) throw new DecodeError(start, `record is an array of ${n}, not 2`);
    const headerAt = reader.pos;
    let stamp;
    let metadata;
    if (reader.peekIsArray()) {
      const h = reader.arrayLen();
      if (h !== 2) throw new DecodeError(headerAt, `record header is an array of ${h}, not 2`);
      stamp = timestamp(reader);
      metadata = reader.value();
    } else {
      stamp = timestamp(reader);
      metadata = new MsgMap();
    }
    const body = reader.value();
    if (stamp === 'start') group = body;
    else if (stamp === 'end') group = null;
    else yield new Event(stamp, metadata, body, group);
  }
}
