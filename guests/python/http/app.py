"""``http``: POSTs each chunk's records as one JSON array to an endpoint, over the host's
outbound HTTP (``wasi:http``, through ``out_wasm_guest.http``); the Python twin of
``guests/rust/http``. The endpoint's ``host:port`` must be granted with ``wasm_allow_net``.

Keys:
- ``url`` (required): ``http://host:port/path`` or ``https://...``.
- ``json_date_key`` (``date``), ``json_date_format`` (``double``), ``escape_unicode`` (``on``):
  as for the ``stdout`` guest.

Answers: 2xx is delivered; 5xx, 408, 429 and failures to connect or to get an answer in time
are retried (the agent flushes the chunk again later); other statuses drop the chunk (the
endpoint refuses it and would again), as does a request the host denies (no grant). One
request per chunk, so a retried chunk is sent whole and once more; nothing is split across
requests that could half-succeed. Each request carries the chunk's delivery id as its
``Idempotency-Key`` header: the same on every delivery of the chunk, so an endpoint that
honours the header stores a retried chunk once.

The host renders the records as JSON lines with the three keys (the guest asks for that
format); the body is those lines joined as one array. ``wasm_event_format msgpack`` or
``otlp_json`` is refused: this guest has no renderer of its own.

The request gets the flush's time left, less a margin (the SDK's bound): an endpoint too slow
to answer in time is a clean retry, not a deadline fault that discards the instance. Delivery
is at least once: a request the endpoint took but answered too late is sent again with the
retried chunk.
"""

from urllib.parse import urlsplit

from out_wasm_guest import ConfigKey, Error, EventFormat, Output, Retry, debug, export, http, json_lines


def _checked_url(url):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"invalid url {url!r}: expected http:// or https://")
    if not parts.hostname:
        raise ValueError(f"invalid url {url!r}: no host")
    return url


class HttpOutput(Output):
    def __init__(self, url):
        self.url = url

    @classmethod
    def config_schema(cls):
        return [ConfigKey("url", "where to POST: http://host:port/path or https://...", required=True)] + (
            json_lines.config_keys()
        )

    @classmethod
    def preferred_event_format(cls, config):
        return json_lines.from_config(config)

    @classmethod
    def init(cls, ctx):
        if not isinstance(ctx.event_format, EventFormat.JsonLines):
            raise ValueError(
                "this guest posts the JSON lines the host renders with its keys and has no "
                "renderer of its own: leave wasm_event_format unset (or set it to json_lines)"
            )
        return cls(_checked_url(ctx.config.get("url", "")))

    def flush(self, chunk):
        # One JSON line per record: the array is the lines, comma-separated, without their
        # newlines.
        records = [line for line in chunk.data.split(b"\n") if line]
        body = b"[" + b",".join(records) + b"]"
        headers = {"content-type": "application/json", "idempotency-key": chunk.delivery.id}
        try:
            response = http.request("POST", self.url, headers, body)
        except http.RequestDenied as err:
            raise Error(str(err)) from None
        except http.HttpError as err:
            # "request failed: ...": a timeout or a failed exchange, worth another try.
            raise Retry(str(err)) from None
        status = response.status
        if 200 <= status <= 299:
            debug(f"posted {len(records)} records: {status}")
        elif status in (408, 429) or 500 <= status <= 599:
            raise Retry(f"the endpoint answered {status}")
        else:
            raise Error(f"the endpoint refused the records: {status}")


Output = export(HttpOutput)
