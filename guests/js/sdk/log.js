// Lines into the agent's own log, at the instance's log_level. The host drops lines above
// the level; `enabled` lets a guest skip formatting them.

import { log as hostLog, maxLevel } from 'out-wasm:output/logging@0.2.0';

const ORDER = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };
let max = null;

export function enabled(level) {
  if (max === null) max = ORDER[maxLevel()];
  return ORDER[level] <= max;
}

export function log(level, message) {
  if (enabled(level)) hostLog(level, message);
}

export const error = (message) => log('error', message);
export const warn = (message) => log('warn', message);
export const info = (message) => log('info', message);
export const debug = (message) => log('debug', message);
export const trace = (message) => log('trace', message);
