// The guest's side of the world: a base class with default methods, and exportOutput.
//
// `export const output = exportOutput(MyOutput);` in a guest's module makes the `output`
// export componentize-js looks for. The host calls configSchema, preferredEventFormat and
// acceptedEventTypes once per guest version, init once per instance, then flush once per chunk
// and exit at the end, all on one thread.

import { events } from './decode.js';
import { DecodeError } from './decode.js';
import { warn } from './log.js';

/**
 * What flush receives: the chunk as the agent delivered it, JSON lines rendered by the host, or
 * the chunk as one OTLP/JSON export request rendered by the host.
 */
export const EventFormat = Object.freeze({ MSGPACK: 'msgpack', JSON_LINES: 'json-lines', OTLP_JSON: 'otlp-json' });

/** The kinds of events a chunk can hold. */
export const EventType = Object.freeze({ LOGS: 'logs', METRICS: 'metrics', TRACES: 'traces' });

const EVENT_TYPES = Object.values(EventType);

// The WIT flags are an object of booleans; guests see a Set of EventType names.
function toFlags(types) {
  const set = new Set(types);
  for (const type of set) {
    if (!EVENT_TYPES.includes(type)) throw new TypeError(`unknown event type ${JSON.stringify(type)}`);
  }
  return Object.fromEntries(EVENT_TYPES.map((type) => [type, set.has(type)]));
}

const fromFlags = (flags) => new Set(EVENT_TYPES.filter((type) => flags[type]));

/** Throw from flush: the agent retries the chunk later (FLB_RETRY). */
export class Retry extends Error {}

/** Throw from flush: the agent drops the chunk (FLB_ERROR). */
export class Failure extends Error {}

/**
 * One flushed chunk: `tag`, `eventType` (an EventType), `data` (a Uint8Array in the instance's
 * event format) and `events()`, its decoded log records. `deadline` is when the host stops this
 * flush, on the `performance.now()` clock in milliseconds (null when the operator turned
 * deadlines off); `timeLeft()` is what remains of it.
 */
export class Chunk {
  constructor(tag, data, eventType = EventType.LOGS, timeLeft = null) {
    this.tag = tag;
    this.data = data;
    this.eventType = eventType;
    // The host measured the time left (nanoseconds, a BigInt) when it made the call; from here
    // on it shrinks with the guest's own clock.
    this.deadline = timeLeft == null ? null : performance.now() + Number(timeLeft) / 1e6;
  }

  /**
   * Milliseconds this flush may still run before the host stops it (and the chunk comes back),
   * or null without a deadline: give up a little earlier and throw Retry.
   */
  timeLeft() {
    return this.deadline === null ? null : Math.max(0, this.deadline - performance.now());
  }

  /** The log records, decoded one at a time (for logs in the msgpack event format). */
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
   * The event types this guest accepts (an iterable of EventType); chunks of other types never
   * reach it. Default: logs only.
   */
  static acceptedEventTypes() {
    return [EventType.LOGS];
  }

  /**
   * Returns the instance that receives the chunks; declare metrics here. `ctx` has `instance`,
   * `guestPath`, `guestDigest`, `config` (a Map of the resolved keys), `eventFormat` and
   * `eventTypes` (a Set of what its chunks can hold). Throw to refuse to start, with the
   * error's message as the reason.
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

    acceptedEventTypes() {
      return toFlags(OutputClass.acceptedEventTypes());
    },

    init(ctx) {
      try {
        instance = OutputClass.init({
          instance: ctx.instance,
          guestPath: ctx.guestPath,
          guestDigest: ctx.guestDigest,
          config: new Map(ctx.config.map((entry) => [entry.key, entry.value])),
          eventFormat: ctx.eventFormat,
          eventTypes: fromFlags(ctx.eventTypes),
        });
      } catch (e) {
        throw err(String(e?.message ?? e));
      }
    },

    flush(ctx, chunk) {
      if (instance === null) throw err({ tag: 'retry', val: 'flush before init' });
      try {
        instance.flush(new Chunk(ctx.tag, chunk, ctx.eventType, ctx.timeLeft));
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
