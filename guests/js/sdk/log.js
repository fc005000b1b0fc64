// Lines into the agent's own log, at the instance's log_level. The host drops lines above
// the level; `enabled` lets a guest skip formatting them.

import { log as hostLog, maxLevel } from 'out-wasm:output/logging@0.3.0';

const ORDER = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };
// The level is constant for the life of an instance: asked once.
let max = null;

/** True if a line at `level` ('error', 'warn', 'info', 'debug' or 'trace') reaches the log. */
export function enabled(level) {
  if (max === null) max = ORDER[maxLevel()];
  return ORDER[level] <= max;
}

/** Writes `message` to the agent's log at `level`, prefixed with the instance name. */
export function log(level, message) {
  if (enabled(level)) hostLog(level, String(message));
}

export const error = (message) => log('error', message);
export const warn = (message) => log('warn', message);
export const info = (message) => log('info', message);
export const debug = (message) => log('debug', message);
export const trace = (message) => log('trace', message);
