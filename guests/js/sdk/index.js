// out_wasm guest SDK for JavaScript.
//
// Write an output plugin for Fluent Bit as a class, build it into a WebAssembly component with
// jco / componentize-js (guests/js/build), and point an `[OUTPUT] Name wasm` section's
// wasm_path at it:
//
//   import { Output, exportOutput, info } from '../sdk/index.js';
//
//   class Hello extends Output {
//     flush(chunk) {
//       for (const event of chunk.events()) info(`${chunk.tag}: ${event.body.get('msg')}`);
//     }
//   }
//
//   export const output = exportOutput(Hello);

export { DecodeError, Event, Timestamp, events } from './decode.js';
// Also installs its fetch as globalThis.fetch.
export { RequestDenied, RequestFailed, RequestTimeout, fetch, requestBudget } from './http.js';
export { JsonLines } from './json_lines.js';
export { debug, enabled, error, info, trace, warn } from './log.js';
export * as metrics from './metrics.js';
export { Chunk, DateFormat, EventFormat, EventType, Failure, Output, Retry, exportOutput, lookup } from './output.js';
export { BadStr, Ext, MsgMap } from './values.js';
