// The JavaScript shapes of msgpack values that have no exact built-in counterpart.
//
// A chunk decodes to plain values where nothing is lost: null, booleans, numbers for integers
// within 2^53 (BigInt beyond), strings (valid UTF-8), Uint8Array (msgpack bin) and arrays.
// Four shapes keep what the agent keeps and JavaScript would lose: MsgMap (entries in wire
// order, repeated and non-string keys included), Float (a msgpack float, even when integral:
// the agent prints 1.0, not 1), BadStr (a str whose bytes are not UTF-8) and Ext.

/** A msgpack map: `entries` is an array of `[key, value]` in wire order. */
export class MsgMap {
  constructor(entries = []) {
    this.entries = entries;
  }

  /** The value of the last entry with string key `key`, as the agent reads a repeated key. */
  get(key) {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i][0] === key) return this.entries[i][1];
    }
    return undefined;
  }

  get size() {
    return this.entries.length;
  }

  /** A plain object of the string-keyed entries (the last of repeated keys wins). */
  toObject() {
    const out = {};
    for (const [k, v] of this.entries) if (typeof k === 'string') out[k] = v;
    return out;
  }
}

/** A msgpack float. Arithmetic works through valueOf; `value` is the number. */
export class Float {
  constructor(value, negativeNan = false) {
    this.value = value;
    // JavaScript cannot see the sign of a NaN; the agent prints it.
    this.negativeNan = negativeNan;
  }

  valueOf() {
    return this.value;
  }
}

/** A msgpack str whose bytes are not valid UTF-8: `bytes` is a Uint8Array. */
export class BadStr {
  constructor(bytes) {
    this.bytes = bytes;
  }
}

/** A msgpack extension value other than a record timestamp. */
export class Ext {
  constructor(type, data) {
    this.type = type;
    this.data = data;
  }
}
