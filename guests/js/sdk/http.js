// The standard fetch() for guests, over the host's outbound HTTP (the generated bindings of the
// world's wasi:http/outgoing-handler import), bounded by the time the current call has left.
//
//   const response = await fetch(url, { method: 'POST', headers, body, signal });
//
// Importing the SDK installs this fetch as globalThis.fetch, so guest code and libraries that
// call fetch() get it. It takes what the standard takes (a URL or a Request, and an init with
// method, headers, body and signal; the body as a string, bytes, a Blob, URLSearchParams,
// FormData or a stream, as Request reads it) and resolves to a standard Response, whose body is
// already read. Redirects are not followed: a 3xx is the answer.
//
// Why not StarlingMonkey's own fetch (what componentize-js puts behind the global): it sends a
// request with a body through a streaming task that aborts the whole component when the host
// closes the body early, which it does for a request it denies (always) or one whose
// connection fails (often): the instance traps and the chunk comes back. It also never aborts
// such a request on its signal, so AbortSignal.timeout does not stop it, and every failure is
// the same TypeError ("NetworkError when attempting to fetch resource"), so a denied request
// cannot be told from a refused connection. docs/guests-js.md ("HTTP") has the details.
//
// The bound: during a flush, a request gets the flush's time left less a margin (a tenth, at
// least 50 ms; `requestBudget`), as the host's own connect and read timeouts and as the SDK's
// wait; during idle its budget, during exit its time left. A request that runs out of it
// rejects with a RequestTimeout, in time for the guest to answer Retry before the host stops
// the call. A signal the guest gives (AbortSignal.timeout, a controller's) applies as well:
// whichever ends first.
//
// Failures reject with a RequestFailed (a TypeError, as the standard's network errors are),
// whose `code` is the host's wasi:http error code (`{ tag: 'connection-refused' }`, ...):
// RequestDenied for a request the host refused because wasm_allow_net does not grant its
// endpoint, RequestTimeout (name 'TimeoutError') for one that ran out of time.

import { callDeadline } from './call.js';
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, IncomingBody, OutgoingBody, OutgoingRequest, RequestOptions, httpErrorCode } from 'wasi:http/types@0.2.12';
import { subscribeDuration } from 'wasi:clocks/monotonic-clock@0.2.12';
import { poll } from 'wasi:io/poll@0.2.12';

/** A request that did not get an answer; `code` is the wasi:http error code, if the host gave one. */
export class RequestFailed extends TypeError {
  constructor(message, code = undefined) {
    super(message);
    this.name = 'RequestFailed';
    this.code = code;
  }
}

/** The host refused the request before any connection: wasm_allow_net does not grant its endpoint. */
export class RequestDenied extends RequestFailed {
  constructor(authority) {
    super(`the host denied the request to ${authority}: grant the endpoint with wasm_allow_net`, { tag: 'HTTP-request-denied' });
    this.name = 'RequestDenied';
  }
}

/** The request ran out of time: the call's bound, or the host's timeouts set from it. */
export class RequestTimeout extends RequestFailed {
  constructor(message, code = undefined) {
    super(message, code);
    // The name AbortSignal.timeout's DOMException has: one check catches both.
    this.name = 'TimeoutError';
  }
}

/**
 * How long a request may take when `timeLeft` milliseconds remain of the call: all but a tenth,
 * and at least 50 ms, kept for answering the host.
 */
export function requestBudget(timeLeft) {
  return Math.max(0, timeLeft - Math.max(timeLeft / 10, 50));
}

// How long one wait on the host lasts before the event loop runs, so that a guest's signal
// (its timer is a task of the event loop) can fire while a request is outstanding.
const SLICE_MS = 10;
const READ_MAX = 65536n;
const TIMEOUT_CODES = new Set(['connection-timeout', 'connection-read-timeout', 'connection-write-timeout', 'HTTP-response-timeout', 'DNS-timeout']);
// Statuses whose Response has no body (the Response constructor refuses one).
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

const utf8 = new TextEncoder();
const text = new TextDecoder();
const nanos = (ms) => BigInt(Math.max(0, Math.ceil(ms * 1e6)));
const drop = (resource) => resource?.[Symbol.dispose]?.();

// componentize-js throws a result's error as an Error whose `payload` is the WIT value.
const payload = (e) => (e !== null && typeof e === 'object' && 'payload' in e ? e.payload : e);

function detail(code) {
  const val = code?.val;
  if (val === undefined || val === null) return '';
  if (typeof val !== 'object') return ` (${val})`;
  return ` (${JSON.stringify(val, (_, v) => (typeof v === 'bigint' ? String(v) : v))})`;
}

/** The rejection for wasi:http error code `code` of a request to `authority`. */
function failure(code, authority) {
  const tag = code?.tag;
  if (tag === 'HTTP-request-denied') return new RequestDenied(authority);
  const message = `request failed: ${tag ?? 'no answer'}${detail(code)} (${authority})`;
  return TIMEOUT_CODES.has(tag) ? new RequestTimeout(message, code) : new RequestFailed(message, code);
}

/**
 * Waits until `pollable` is ready: true, or false once `deadline` (performance.now() ms, or
 * null) passes. Rejects with the signal's reason when `signal` aborts meanwhile.
 */
async function ready(pollable, deadline, signal) {
  for (;;) {
    if (signal.aborted) throw signal.reason;
    const left = deadline === null ? SLICE_MS : deadline - performance.now();
    if (left <= 0) return false;
    const timer = subscribeDuration(nanos(Math.min(left, SLICE_MS)));
    const which = poll([pollable, timer]);
    drop(timer);
    if (which.includes(0)) return true;
    // Let the event loop run (timers, and so signals) before the next slice.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

function method(name) {
  const known = ['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch'];
  const lower = name.toLowerCase();
  return known.includes(lower) ? { tag: lower } : { tag: 'other', val: name };
}

function outgoing(request, url, body) {
  const entries = [];
  for (const [name, value] of request.headers) entries.push([name, utf8.encode(value)]);
  if (body !== null && !request.headers.has('content-length')) entries.push(['content-length', utf8.encode(String(body.length))]);
  let fields;
  try {
    fields = Fields.fromList(entries);
  } catch (e) {
    throw new TypeError(`fetch: the host refuses the request's headers (${payload(e)?.tag ?? payload(e)})`);
  }
  const wasi = new OutgoingRequest(fields);
  try {
    wasi.setMethod(method(request.method));
    wasi.setScheme({ tag: url.protocol === 'https:' ? 'HTTPS' : 'HTTP' });
    wasi.setAuthority(url.host);
    wasi.setPathWithQuery(`${url.pathname}${url.search}`);
  } catch {
    drop(wasi);
    throw new TypeError(`fetch: the host refuses the request's method or URL: ${request.method} ${url.href}`);
  }
  return wasi;
}

// Writes `body` and finishes it: as much as the host permits at a time (check-write; it takes a
// whole request body at once when its buffer allows), then one flush. (Writing in blocking
// write-and-flush calls of 4 KiB made a round trip through the host's client per 4 KiB.) A
// request the host refuses (or whose connection fails) closes its body: the write fails, and
// the response says why, so the failure is not the answer.
function send(out, body) {
  const stream = out.write();
  try {
    for (let at = 0; at < body.length; ) {
      const permit = Number(stream.checkWrite());
      if (permit === 0) {
        const pollable = stream.subscribe();
        try {
          poll([pollable]);
        } finally {
          drop(pollable);
        }
        continue;
      }
      const end = Math.min(body.length, at + permit);
      stream.write(body.subarray(at, end));
      at = end;
    }
    stream.blockingFlush();
  } catch {
    // see above
  } finally {
    // The stream must be dropped before its body is finished.
    drop(stream);
  }
  try {
    OutgoingBody.finish(out, undefined);
  } catch {
    // see above
  }
}

async function readBody(incoming, deadline, signal, authority, limit) {
  const body = incoming.consume();
  const stream = body.stream();
  const parts = [];
  let length = 0;
  try {
    for (;;) {
      let bytes;
      try {
        bytes = stream.read(READ_MAX);
      } catch (e) {
        const error = payload(e);
        if (error?.tag === 'closed') break;
        const code = error?.tag === 'last-operation-failed' ? httpErrorCode(error.val) : undefined;
        drop(error?.val);
        throw failure(code, authority);
      }
      if (bytes.length > 0) {
        parts.push(bytes);
        length += bytes.length;
        continue;
      }
      const pollable = stream.subscribe();
      try {
        if (!(await ready(pollable, deadline, signal))) throw timedOut(authority, limit, 'for the rest of the answer');
      } finally {
        drop(pollable);
      }
    }
  } finally {
    drop(stream);
  }
  drop(IncomingBody.finish(body));
  const all = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

const timedOut = (authority, limit, what) =>
  new RequestTimeout(`request failed: no answer from ${authority} within ${Math.round(limit)} ms ${what} (the call's time left less a margin)`);

// A request body as bytes: a string or bytes given to fetch directly (the usual case: a JSON
// payload), without reading it back through the Request's stream, which in StarlingMonkey costs
// milliseconds for tens of KiB; anything else (a Blob, a stream, a Request's own body) read as
// the Request has it.
async function bodyBytes(given, request) {
  if (typeof given === 'string') return utf8.encode(given);
  if (given instanceof Uint8Array) return given;
  if (given instanceof ArrayBuffer) return new Uint8Array(given);
  return new Uint8Array(await request.arrayBuffer());
}

/**
 * The standard fetch(input, init) over the host's wasi:http, bounded by the current call's time
 * left (see the top of this file). Resolves to a Response; rejects with a RequestFailed (or its
 * RequestDenied and RequestTimeout), or with the signal's reason when the guest's signal aborts.
 */
export async function fetch(input, init = undefined) {
  const request = new Request(input, init);
  const url = new URL(request.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`fetch: ${url.protocol} URLs are not supported, only http: and https: (${url.href})`);
  }
  const { signal } = request;
  if (signal.aborted) throw signal.reason;
  const body = request.body === null ? null : await bodyBytes(init?.body, request);
  const end = callDeadline();
  const limit = end === null ? null : requestBudget(end - performance.now());
  const deadline = limit === null ? null : performance.now() + limit;
  if (limit !== null && limit <= 0) throw timedOut(url.host, 0, 'left');

  const wasi = outgoing(request, url, body);
  const out = wasi.body();
  let options;
  if (limit !== null) {
    // The host's client gives up by itself in time, so nothing is left waiting on its side.
    options = new RequestOptions();
    options.setConnectTimeout(nanos(limit));
    options.setFirstByteTimeout(nanos(limit));
    options.setBetweenBytesTimeout(nanos(limit));
  }
  let future;
  try {
    future = handle(wasi, options);
  } catch (e) {
    drop(out);
    throw failure(payload(e), url.host);
  }
  try {
    send(out, body ?? new Uint8Array(0));
    const pollable = future.subscribe();
    try {
      if (!(await ready(pollable, deadline, signal))) throw timedOut(url.host, limit, 'for the status');
    } finally {
      drop(pollable);
    }
    const got = future.get();
    if (got?.tag !== 'ok' || got.val.tag !== 'ok') throw failure(got?.tag === 'ok' ? got.val.val : undefined, url.host);
    const incoming = got.val.val;
    try {
      const status = incoming.status();
      const headers = new Headers();
      const fields = incoming.headers();
      try {
        for (const [name, value] of fields.entries()) headers.append(name, text.decode(value));
      } finally {
        // A child of the response: dropped first.
        drop(fields);
      }
      const bytes = await readBody(incoming, deadline, signal, url.host, limit);
      return new Response(NULL_BODY.has(status) || request.method === 'HEAD' ? null : bytes, { status, headers });
    } finally {
      drop(incoming);
    }
  } finally {
    drop(future);
  }
}

globalThis.fetch = fetch;
