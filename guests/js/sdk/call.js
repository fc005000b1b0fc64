// When the host stops the call now running (flush, idle, exit), for what must finish before:
// the SDK's fetch bounds its requests by it. Set by exportOutput around each call.

let deadline = null;

/** The end of the current call on the performance.now() clock (ms), or null: no bound known. */
export const callDeadline = () => deadline;

/** Sets (a number) or clears (null) the current call's end. */
export function setCallDeadline(end) {
  deadline = end;
}
