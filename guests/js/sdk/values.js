// The JavaScript shapes of msgpack values that have no exact built-in counterpart.
//
// A chunk decodes to plain values where nothing is lost: null, booleans, numbers (floats, and
// integers within 2^53; BigInt beyond), strings (valid UTF-8), Uint8Array (msgpack bin) and
// arrays. Three shapes keep what the agent keeps and a plain JavaScript value would lose, as the
// Rust SDK's `Value` does: MsgMap (every entry in wire order, repeated and non-string keys
// included), BadStr (a str whose bytes are not UTF-8) and Ext.

/**
 * A msgpack map: `entries` is an array of `[key, value]` in wire order. A repeated key keeps
 * all its entries (as the agent's msgpack does); `get` reads the last, as the agent does.
 */
export class MsgMap {
  constructor(entries = []) {
    this.entries = entries;
  }

  /** The value of the last entry with string key `key`, or undefined. */
  get(key) {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i][0] === key) return this.entries[i][1];
    }
    return undefined;
  }

  /** True if some entry has string key `key`. */
  has(key) {
    return this.entries.some(([k]) => k === key);
  }

  /** The number of entries, repeated keys counted each time. */
  get size() {
    return this.entries.length;
  }

  /**
   * A plain object of the string-keyed entries (the last of repeated keys wins; other keys
   * are left out). Nested maps stay MsgMaps. Also what JSON.stringify writes for a MsgMap.
   */
  toObject() {
    // fromEntries defines own properties: a "__proto__" key is data, not the prototype.
    return Object.fromEntries(this.entries.filter(([k]) => typeof k === 'string'));
  }

  toJSON() {
    return this.toObject();
  }
}

/** A msgpack str whose bytes are not valid UTF-8: `bytes` is a Uint8Array. */
export class BadStr {
  constructor(bytes) {
    this.bytes = bytes;
  }
}

/** A msgpack extension value other than a record timestamp: `type` (-128..127) and `data`. */
export class Ext {
  constructor(type, data) {
    this.type = type;
    this.data = data;
  }
}
