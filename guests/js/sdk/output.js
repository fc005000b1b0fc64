// The guest's side of the world: a base class with default methods, and exportOutput.
//
// `export const output = exportOutput(MyOutput);` in a guest's module makes the `output`
// export componentize-js looks for. The host calls configSchema, preferredEventFormat and
// acceptedEventTypes once per guest version, init once per instance, then flush once per chunk,
// idle between flushes when asked for, and exit at the end, all on one thread and never two at
// once. Every method may be async: componentize-js runs the event loop until its promise
// settles (that is how a flush awaits fetch).

import { get as configGet } from 'out-wasm:output/config@0.3.0';
import { setCallDeadline } from './call.js';
import { DecodeError, events } from './decode.js';
import { warn } from './log.js';

/** The kinds of events a chunk can hold (the WIT enum's names). */
export const EventType = Object.freeze({ LOGS: 'logs', METRICS: 'metrics', TRACES: 'traces' });

const EVENT_TYPES = Object.values(EventType);

/** How the host writes the record time in JSON lines (the WIT enum's names). */
export const DateFormat = Object.freeze({
  DOUBLE: 'double',
  EPOCH: 'epoch',
  EPOCH_MS: 'epoch-ms',
  ISO8601: 'iso8601',
  JAVA_SQL_TIMESTAMP: 'java-sql-timestamp',
});

const DATE_FORMATS = Object.values(DateFormat);

/**
 * What flush receives, as the WIT variant: `{ tag: 'msgpack' }` (the chunk as the agent
 * flushed it), `{ tag: 'json-lines', val: { dateKey, dateFormat, escapeUnicode } }` (one JSON
 * line per record, rendered by the host exactly as the agent's stdout output prints it with
 * these options) or `{ tag: 'otlp-json' }` (one OTLP/JSON export request).
 */
export const EventFormat = Object.freeze({
  MSGPACK: Object.freeze({ tag: 'msgpack' }),
  OTLP_JSON: Object.freeze({ tag: 'otlp-json' }),

  /**
   * JSON lines with these options, each defaulting to the agent's: `dateKey` ('date'; null
   * leaves the time out), `dateFormat` (a DateFormat, DateFormat.DOUBLE) and `escapeUnicode`
   * (true: non-ASCII as \uXXXX).
   */
  jsonLines({ dateKey = 'date', dateFormat = DateFormat.DOUBLE, escapeUnicode = true } = {}) {
    if (dateKey !== null && typeof dateKey !== 'string') throw new TypeError(`dateKey must be a string or null, not ${typeof dateKey}`);
    if (!DATE_FORMATS.includes(dateFormat)) {
      throw new TypeError(`unknown date format ${JSON.stringify(dateFormat)} (${DATE_FORMATS.join(', ')})`);
    }
    // option<string> is `undefined` for none in componentize-js.
    return { tag: 'json-lines', val: { dateKey: dateKey ?? undefined, dateFormat, escapeUnicode: Boolean(escapeUnicode) } };
  },
});

// The WIT flags are an object of booleans; guests see a Set of EventType names.
function toFlags(types) {
  const set = new Set(types);
  for (const type of set) {
    if (!EVENT_TYPES.includes(type)) throw new TypeError(`unknown event type ${JSON.stringify(type)}`);
  }
  return Object.fromEntries(EVENT_TYPES.map((type) => [type, set.has(type)]));
}

const fromFlags = (flags) => new Set(EVENT_TYPES.filter((type) => flags[type]));

/**
 * The value of any key of this instance's [OUTPUT] section, declared or not, as the agent has
 * it; undefined when unset, and for the host's wasm_* keys and the agent's own. Declared keys
 * with their defaults are in `ctx.config`; this reads the rest, such as keys a guest builds by
 * name.
 */
export function lookup(key) {
  return configGet(String(key)) ?? undefined;
}

/** Throw from flush: the agent retries the chunk later (FLB_RETRY). */
export class Retry extends Error {}

/** Throw from flush: the agent drops the chunk (FLB_ERROR). */
export class Failure extends Error {}

// Durations cross the WIT as nanoseconds (BigInt); guests see milliseconds, as
// performance.now() and setTimeout count them.
const toMillis = (nanos) => (nanos == null ? null : Number(nanos) / 1e6);
const toNanos = (millis) => BigInt(Math.max(0, Math.round(Number(millis) * 1e6)));

/**
 * One flushed chunk: `tag`, `eventType` (an EventType), `data` (a Uint8Array in the instance's
 * event format), `delivery` and `events()`, its decoded log records.
 */
export class Chunk {
  constructor(tag, data, { eventType = EventType.LOGS, timeLeft = null, delivery = null } = {}) {
    this.tag = tag;
    this.data = data;
    this.eventType = eventType;
    /**
     * Which delivery of which chunk this is: `id` (32 hex digits, the same on every delivery
     * of the chunk: retries, other instances, other versions) and `attempt` (1, 2, ... as the
     * host counts them). Send the id where the endpoint takes one (an Idempotency-Key header).
     */
    this.delivery = delivery === null ? null : Object.freeze({ id: delivery.id, attempt: delivery.attempt });
    /**
     * When the host stops this flush, on the performance.now() clock in milliseconds (null
     * when the operator turned deadlines off). The host measured the time left when it made
     * the call; from here on it shrinks with the guest's own clock.
     */
    this.deadline = timeLeft == null ? null : performance.now() + toMillis(timeLeft);
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

/**
 * Base class of a guest. Override `init` (static) and `flush`; the rest have defaults. One
 * instance lives per guest instance, from `init` until `exit`.
 */
export class Output {
  /** The keys this guest accepts: `{ name, description, default?, required? }`. Default: none. */
  static configSchema() {
    return [];
  }

  /**
   * What flush should receive (an EventFormat), given the resolved config (a Map of the
   * declared keys, as init's `ctx.config` will hold them); the operator's wasm_event_format
   * overrides it. Throw to refuse the config: the agent does not start, and the error's
   * message says why. Default: EventFormat.MSGPACK.
   */
  static preferredEventFormat(_config) {
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
   * `guestPath`, `guestDigest`, `config` (a Map of the resolved keys), `eventFormat` (what every
   * flush receives) `eventTypes` (a Set of what its chunks can hold) and `hostname` (the agent's machine name). Throw to refuse to
   * start, with the error's message as the reason.
   */
  static init(_ctx) {
    return new this();
  }

  /** Delivers `chunk` (a Chunk). Return (or resolve) to deliver it; throw Retry or Failure. */
  flush(_chunk) {
    throw new Error('flush is not implemented');
  }

  /**
   * Time for background work while no flush runs, at most about `budget` milliseconds (a
   * flush that arrives waits for it). Returns in how many milliseconds to be called again (no
   * sooner than the host's wasm_idle_interval), or null, the default: not until after the next
   * flush.
   */
  idle(_budget) {
    return null;
  }

  /**
   * The last call on this instance, with the milliseconds it may run (null without
   * deadlines): finish what is buffered. Default: nothing.
   */
  exit(_timeLeft) {}
}

// componentize-js lowers a thrown value with a `payload` as the result's error.
const err = (payload) => Object.assign(new Error('guest error'), { payload });

const isThenable = (value) => value !== null && typeof value === 'object' && typeof value.then === 'function';

/**
 * `then(result)` now, or once `result` resolves if it is a promise; errors go to `fail`. While
 * `run` (and its promise) runs, `deadline` (performance.now() ms, or null) is the call's end,
 * which bounds the SDK's fetch.
 */
function settle(run, then, fail, deadline = null) {
  setCallDeadline(deadline);
  const done = (next) => (value) => {
    setCallDeadline(null);
    return next(value);
  };
  let result;
  try {
    result = run();
  } catch (e) {
    return done(fail)(e);
  }
  return isThenable(result) ? result.then(done(then), done(fail)) : done(then)(result);
}

const after = (millis) => (millis == null ? null : performance.now() + millis);

/** A flush's exception as the WIT's flush-error; anything else stays a trap. */
function flushError(e) {
  if (e instanceof Retry) return err({ tag: 'retry', val: e.message });
  if (e instanceof Failure || e instanceof DecodeError) return err({ tag: 'error', val: e.message });
  return e;
}

const configMap = (entries) => new Map(entries.map((entry) => [entry.key, entry.value]));

const message = (e) => String(e?.message ?? e);

/** The `output` export driving `OutputClass` (a subclass of Output). */
export function exportOutput(OutputClass) {
  let instance = null;
  return {
    configSchema() {
      return OutputClass.configSchema().map((key) => ({
        name: key.name,
        description: key.description ?? '',
        defaultValue: key.default ?? undefined,
        required: key.required ?? false,
      }));
    },

    preferredEventFormat(config) {
      return settle(
        () => OutputClass.preferredEventFormat(configMap(config)),
        (format) => format,
        (e) => {
          throw err(message(e));
        },
      );
    },

    acceptedEventTypes() {
      return toFlags(OutputClass.acceptedEventTypes());
    },

    init(ctx) {
      const context = {
        instance: ctx.instance,
        guestPath: ctx.guestPath,
        guestDigest: ctx.guestDigest,
        config: configMap(ctx.config),
        eventFormat: ctx.eventFormat,
        eventTypes: fromFlags(ctx.eventTypes),
        hostname: ctx.hostname,
      };
      return settle(
        () => OutputClass.init(context),
        (created) => {
          instance = created;
        },
        (e) => {
          throw err(message(e));
        },
      );
    },

    flush(ctx, data) {
      if (instance === null) throw err({ tag: 'retry', val: 'flush before init' });
      const chunk = new Chunk(ctx.tag, data, ctx);
      return settle(
        () => instance.flush(chunk),
        () => undefined,
        (e) => {
          throw flushError(e);
        },
        chunk.deadline,
      );
    },

    idle(budget) {
      if (instance === null) return undefined;
      const millis = toMillis(budget);
      return settle(
        () => instance.idle(millis),
        (next) => (next == null ? undefined : toNanos(next)),
        (e) => {
          throw e;
        },
        after(millis),
      );
    },

    exit(timeLeft) {
      const current = instance;
      instance = null;
      if (current === null) return undefined;
      const millis = toMillis(timeLeft);
      return settle(
        () => current.exit(millis),
        () => undefined,
        (e) => warn(`exit failed: ${message(e)}`),
        after(millis),
      );
    },
  };
}
