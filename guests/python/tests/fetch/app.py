"""A test guest (guests/python/tests/test_component.py): on each flush, one request with
out_wasm_guest.http to the key ``url`` (``method``, ``timeout`` in seconds, the chunk as the
body of a POST), and one JSON line on stdout saying what came back or what was raised."""

import hashlib
import json
import os

from out_wasm_guest import ConfigKey, Output, export, http


class Fetch(Output):
    def __init__(self, config):
        self.url = config["url"]
        self.method = config.get("method", "GET")
        self.timeout = float(config["timeout"]) if "timeout" in config else None

    @classmethod
    def config_schema(cls):
        return [
            ConfigKey("url", "where to send the request", required=True),
            ConfigKey("method", "the request's method"),
            ConfigKey("timeout", "seconds the request may take"),
        ]

    @classmethod
    def init(cls, ctx):
        return cls(ctx.config)

    def flush(self, chunk):
        body = chunk.data if self.method == "POST" else b""
        try:
            response = http.request(self.method, self.url, {"x-asked": "yes"}, body, timeout=self.timeout)
            seen = {
                "status": response.status,
                "x-test": response.header("X-Test"),
                "length": len(response.body),
                "sha256": hashlib.sha256(response.body).hexdigest(),
            }
        except http.Timeout as err:
            seen = {"timeout": str(err), "is-transport-error": isinstance(err, http.TransportError)}
        except http.RequestDenied as err:
            seen = {"denied": str(err)}
        except http.TransportError as err:
            seen = {"transport": str(err), "code": type(err.code).__name__}
        except ValueError as err:
            seen = {"invalid": str(err)}
        out = (json.dumps(seen) + "\n").encode()
        while out:
            out = out[os.write(1, out) :]


Output = export(Fetch)
