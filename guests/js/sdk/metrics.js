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
// Each class wraps the WIT resource of the same name (the generated bindings' Counter, Gauge and
// Histogram), taking label lists of any values and numbers of any kind. What the host refuses
// (a bad name, a cap reached, a label value too long) throws a MetricError with its reason. The
// host already counts and logs refused updates, so most guests catch and ignore the error of an
// update; a refused declaration is a reason to fail init.

import * as wit from 'out-wasm:output/metrics@0.3.0';

/** The host refused a declaration or an update; the message says what and why. */
export class MetricError extends Error {}

// componentize-js throws a result's error as an Error whose `payload` is the string.
function call(fn) {
  try {
    return fn();
  } catch (e) {
    throw new MetricError(String(e?.payload ?? e?.message ?? e));
  }
}

const strings = (list) => Array.from(list, String);
const info = (name, help, labels) => ({ name: String(name), help: String(help), labelNames: strings(labels) });

/** A value that only goes up; exported with `_total` appended. */
export class Counter {
  #metric;

  constructor(metric) {
    this.#metric = metric;
  }

  /** Declares the counter `name` with these label names (or finds it, if declared before). */
  static declare(name, help, labels = []) {
    return new Counter(call(() => wit.Counter.declare(info(name, help, labels))));
  }

  /** Adds `value` (>= 0) to the series with these label values. */
  add(labels, value) {
    call(() => this.#metric.add(strings(labels), Number(value)));
  }

  /** Adds one. */
  inc(labels = []) {
    this.add(labels, 1);
  }
}

/** A value that goes up and down. */
export class Gauge {
  #metric;

  constructor(metric) {
    this.#metric = metric;
  }

  /** Declares the gauge `name` with these label names (or finds it, if declared before). */
  static declare(name, help, labels = []) {
    return new Gauge(call(() => wit.Gauge.declare(info(name, help, labels))));
  }

  /** Sets the series with these label values to `value`. */
  set(labels, value) {
    call(() => this.#metric.set(strings(labels), Number(value)));
  }

  /** Adds `value` (of either sign) to the series with these label values. */
  add(labels, value) {
    call(() => this.#metric.add(strings(labels), Number(value)));
  }
}

/** A distribution of observations in buckets. */
export class Histogram {
  #metric;

  constructor(metric) {
    this.#metric = metric;
  }

  /**
   * Declares the histogram `name` with these label names and bucket upper bounds (strictly
   * increasing; empty for the agent's defaults).
   */
  static declare(name, help, labels = [], buckets = []) {
    const bounds = Float64Array.from(buckets, Number);
    return new Histogram(call(() => wit.Histogram.declare(info(name, help, labels), bounds)));
  }

  /** Records one observation in the series with these label values. */
  observe(labels, value) {
    call(() => this.#metric.observe(strings(labels), Number(value)));
  }
}
