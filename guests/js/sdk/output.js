// The guest's side of the world: a base class with default methods, and exportOutput.
//
// `export const output = exportOutput(MyOutput);` in a guest's module makes the `output`
// export componentize-js looks for. The host calls configSchema and preferredEventFormat once
// per guest version, init once per instance, then flush once per chunk and exit at the end,
// all on one thread.

import { events } from './decode.js';
import { DecodeError } from './decode.js';
import { warn } from './log.js';

/** What flush receives: the chunk as the agent delivered it, or JSON lines from the host. */
export const EventFormat = Object.freeze({ MSGPACK: 'msgpack', JSON_LINES: 'json-lines' });

/** Throw from flush: the agent retries the chunk later (FLB_RETRY). */
export class Retry extends Error {}

/** Throw from flush: the agent drops the chunk (FLB_ERROR). */
export class Failure extends Error {}

/** One flushed chunk: `tag`, `data` (a Uint8Array) and `events()`, its decoded records. */
export class Chunk {
  constructor(tag, data) {
    this.tag = tag;
    this.data = data;
  }

  events() {
    return events(this.data);
  }
}

/** Base class of a guest. Override `init` (static) and `flush`; the rest have defaults. */
export class Output {
  /** The keys this guest accepts: `{ name, description, default?, required? }`. Default: none. */
  static configSchema() {
    return [];
  }

  /** What flush should receive unless the operator says otherwise. Default: msgpack. */
  static preferredEventFormat() {
    return EventFormat.MSGPACK;
  }

  /**
   * Returns the instance that receives the chunks. `ctx` has `instance`, `guestPath`,
   * `guestDigest`, `config` (a Map of the resolved keys) and `eventFormat`. Throw to refuse
   * to start, with the error's message as the reason.
   */
  static init(_ctx) {
    return new this();
  }

  /** Delivers `chunk`. Return to deliver it; throw Retry or Failure. */
  flush(_chunk) {
    throw new Error('flush is not implemented');
  }

  /** The last call on this instance. Default: nothing. */
  exit() {}
}

// componentize-js lowers a thrown value with a `payload` as the result's error.
const err = (payload) => Object.assign(new Error('guest error'), { payload });

/** The `output` export driving `OutputClass`. */
export function exportOutput(OutputClass) {
  let instance = null;
  return {
    configSchema() {
      return OutputClass.configSchema().map((key) => ({
        name: key.name,
        description: key.description ?? '',
        defaultValue: key.default,
        required: key.required ?? false,
      }));
    },

    preferredEventFormat() {
      return OutputClass.preferredEventFormat();
    },

    init(ctx) {
      try {
        instance = OutputClass.init({
          instance: ctx.instance,
          guestPath: ctx.guestPath,
          guestDigest: ctx.guestDigest,
          config: new Map(ctx.config.map((entry) => [entry.key, entry.value])),
          eventFormat: ctx.eventFormat,
        });
      } catch (e) {
        throw err(String(e?.message ?? e));
      }
    },

    flush(tag, chunk) {
      if (instance === null) throw err({ tag: 'retry', val: 'flush before init' });
      try {
        instance.flush(new Chunk(tag, chunk));
      } catch (e) {
        if (e instanceof Retry) throw err({ tag: 'retry', val: e.message });
        if (e instanceof Failure || e instanceof DecodeError) throw err({ tag: 'error', val: e.message });
        throw e;
      }
    },

    exit() {
      const current = instance;
      instance = null;
      try {
        current?.exit();
      } catch (e) {
        warn(`exit failed: ${e?.message ?? e}`);
      }
    },
  };
}
