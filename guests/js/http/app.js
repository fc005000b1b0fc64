// http: POSTs each chunk's records as one JSON array to an endpoint, with the standard fetch()
// (the SDK's, over the host's wasi:http). The endpoint's host:port must be granted with
// wasm_allow_net. The JavaScript twin of guests/rust/http.
//
// Keys:
// - url (required): http://host:port/path or https://...
// - json_date_key ("date"), json_date_format ("double"), escape_unicode ("on"): as for the
//   stdout guest.
//
// Answers: 2xx is delivered; 5xx, 408, 429, failures to connect or to get an answer, and
// running out of time are retried (the agent flushes the chunk again later); other 4xx drop the
// chunk (the endpoint refuses it and would again), as does a request the host denies (no grant).
// One request per chunk, so a retried chunk is sent whole and once more; nothing is split
// across requests that could half-succeed. Each request carries the chunk's delivery id as its
// Idempotency-Key header: the same on every delivery of the chunk, so an endpoint that honours
// the header stores a retried chunk once.
//
// The host renders the records as JSON lines with the three keys (the guest asks for that
// format); the body is those lines joined as one array. This guest has no renderer of its own,
// so it refuses wasm_event_format msgpack and otlp_json.
//
// The SDK bounds the request by the flush's time left, less a margin: an endpoint too slow to
// answer in time is a clean retry, not a deadline fault that discards the instance. Delivery is
// at least once: a request the endpoint took but answered too late is sent again with the
// retried chunk.

import { EventFormat, Failure, JsonLines, Output, RequestDenied, RequestFailed, Retry, debug, exportOutput } from '../sdk/index.js';

const text = new TextDecoder('utf-8', { ignoreBOM: true });

/** `url` as a URL, if it is http:// or https:// with a host; throws saying what is wrong. */
function parseUrl(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`invalid url ${JSON.stringify(url)}: expected http://host:port/path or https://...`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`invalid url ${JSON.stringify(url)}: expected http:// or https://`);
  }
  if (parsed.host === '') throw new Error(`invalid url ${JSON.stringify(url)}: no host`);
  return parsed;
}

class Http extends Output {
  constructor(url) {
    super();
    this.url = url;
  }

  static configSchema() {
    return [
      { name: 'url', description: 'where to POST: http://host:port/path or https://...', required: true },
      ...JsonLines.configKeys(),
    ];
  }

  // An invalid key value throws here, naming the key: the agent does not start.
  static preferredEventFormat(config) {
    return EventFormat.jsonLines(JsonLines.fromConfig(config));
  }

  static init(ctx) {
    if (ctx.eventFormat.tag !== 'json-lines') {
      throw new Error(
        `this guest posts the JSON lines the host renders, not ${ctx.eventFormat.tag}: ` +
          'leave wasm_event_format unset or set it to json_lines',
      );
    }
    return new Http(parseUrl(ctx.config.get('url')));
  }

  async flush(chunk) {
    // One JSON object per line (JSON escapes newlines inside values): the array is the lines,
    // comma-separated, without their newlines.
    const records = text.decode(chunk.data).split('\n').filter((line) => line.length > 0);
    let response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': chunk.delivery.id },
        body: `[${records.join(',')}]`,
      });
    } catch (e) {
      // Not granted: retrying cannot help until the operator grants the endpoint.
      if (e instanceof RequestDenied) throw new Failure(e.message);
      // A refused or broken connection, a TLS failure, no answer in time.
      if (e instanceof RequestFailed) throw new Retry(e.message);
      throw e;
    }
    const { status } = response;
    if (status >= 200 && status <= 299) {
      debug(`posted ${records.length} records: ${status}`);
      return;
    }
    if (status === 408 || status === 429 || status >= 500) throw new Retry(`the endpoint answered ${status}`);
    throw new Failure(`the endpoint refused the records: ${status}`);
  }
}

export const output = exportOutput(Http);
