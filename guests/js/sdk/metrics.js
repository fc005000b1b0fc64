// Metrics on the agent's own endpoint: declare once (in init), update in flush.
//
//   import { metrics } from '../sdk/index.js';
//
//   const sent = metrics.Counter.declare('records_sent', 'records delivered to the endpoint', ['status']);
//   sent.add(['ok'], 256);
//
// The host exports each as fluentbit_wasm_guest_<name> with the output's `name` label first. A
// metric belongs to the output instance: every guest instance that declares the same name and
// shape shares it, and its values survive faults, recycles and hot swaps.
//
// What the host refuses (a bad name, a cap reached, a label value too long) throws a
// MetricError with its reason. The host already counts and logs refused updates, so most
// guests catch and ignore the error of an update; a refused declaration is a reason to fail
// init.

import * as wit from 'out-wasm:output/metrics@0.2.0';

/** The host refused a declaration or an update; the message says what and why. */
export class MetricError extends Error {}

// componentize-js throws a result's error as an Error whose `payload` is the string.
function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (e) {
    throw new MetricError(String(e?.payload ?? e?.message ?? e));
  }
}

function declare(name, help, kind, labels, buckets) {
  return call(wit.declare, {
    name,
    help,
    kind,
    labelNames: Array.from(labels, String),
    buckets: Float64Array.from(buckets, Number),
  });
}

const values = (labels) => Array.from(labels, String);

/** A value that only goes up; exported with `_total` appended. */
export class Counter {
  #id;

  constructor(id) {
    this.#id = id;
  }

  /** Declares the counter `name` with these label names (or finds it, if declared before). */
  static declare(name, help, labels = []) {
    return new Counter(declare(name, help, 'counter', labels, []));
  }

  /** Adds `value` (>= 0) to the series with these label values. */
  add(labels, value) {
    call(wit.add, this.#id, values(labels), Number(value));
  }

  /** Adds one. */
  inc(labels = []) {
    this.add(labels, 1);
  }
}

/** A value that goes up and down. */
export class Gauge {
  #id;

  constructor(id) {
    this.#id = id;
  }

  /** Declares the gauge `name` with these label names (or finds it, if declared before). */
  static declare(name, help, labels = []) {
    return new Gauge(declare(name, help, 'gauge', labels, []));
  }

  /** Sets the series with these label values to `value`. */
  set(labels, value) {
    call(wit.set, this.#id, values(labels), Number(value));
  }

  /** Adds `value` (of either sign) to the series with these label values. */
  add(labels, value) {
    call(wit.add, this.#id, values(labels), Number(value));
  }
}

/** A distribution of observations in buckets. */
export class Histogram {
  #id;

  constructor(id) {
    this.#id = id;
  }

  /**
   * Declares the histogram `name` with these label names and bucket upper bounds (strictly
   * increasing; empty for the agent's defaults).
   */
  static declare(name, help, labels = [], buckets = []) {
    return new Histogram(declare(name, help, 'histogram', labels, buckets));
  }

  /** Records one observation in the series with these label values. */
  observe(labels, value) {
    call(wit.observe, this.#id, values(labels), Number(value));
  }
}
