"""The SDK inside real components, built with guests/python/build and run by the agent's
stand-in (out-wasm-loader) through out_wasm.so:
- the decoder: tests/decoder prints every decoded record as tagged JSON; its lines must be
  those the same decoder gives on the machine's Python, and a malformed chunk must be refused
  with its offset;
- the HTTP client: tests/fetch makes one request per flush to a server on loopback run here
  and prints what came back (status, a header, the body's length and hash) or what it raised.
Needs the loader and the plugin built (cargo build --release -p out-wasm -p out-wasm-loader);
run by guests/python/test, which says where they are."""

import hashlib
import http.server
import json
import os
import re
import socket
import threading
import struct
import subprocess
import sys
import tempfile
import unittest

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "decoder"))

from describe import line  # noqa: E402
from out_wasm_guest import events  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def event_time(seconds, nanoseconds):
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanoseconds))


def pack(*records):
    packer = msgpack.Packer(use_bin_type=True)
    return b"".join(packer.pack(record) for record in records)


CHUNKS = [
    pack(
        [[event_time(1_700_000_000, 500_000_000), {"m": 1}], {"msg": "a", "n": 1}],
        [1_700_000_001, {"msg": "forward", "big": 2**64 - 1, "neg": -(2**63), "f": 0.1}],
        [[event_time(0xFFFF_FFFF, 0), {"schema": "otlp"}], {"resource": {"service.name": "x"}}],
        [[1.25, {}], {"bin": b"\x00\xff", "ext": msgpack.ExtType(5, b"ab"), "t": event_time(5, 6)}],
        [[event_time(0xFFFF_FFFE, 0), {}], {}],
    ),
    # Raw: repeated keys, keys that are an array and nil, invalid UTF-8, a msgpack timestamp.
    b"\x92\x92\x01\x80\x86\xa1a\x01\xa1a\x02\x91\x01\xa1x\xc0\xc0\xa1s\xa3\xff\xc3(\xa1m\xd6\xff\x00\x00\x00\x07",
]
MALFORMED = pack([1, {"ok": True}]) + b"\x92\x01\xc1"


class Guest(unittest.TestCase):
    """Builds the test guest ``name`` once per class and runs it with the loader."""

    name = None

    @classmethod
    def setUpClass(cls):
        target = os.environ.get("OUT_WASM_TARGET_DIR") or os.path.join(HERE, "../../../target")
        cls.loader = os.path.join(target, "release/out-wasm-loader")
        cls.plugin = os.path.join(target, "release/libout_wasm.so")
        for path in (cls.loader, cls.plugin):
            if not os.path.exists(path):
                raise AssertionError(f"{path} is missing: cargo build --release -p out-wasm -p out-wasm-loader")
        cls.work = tempfile.TemporaryDirectory()
        cls.guest = os.path.join(cls.work.name, f"{cls.name}.wasm")
        subprocess.run([os.path.join(HERE, "../build"), os.path.join(HERE, cls.name), cls.guest], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.work.cleanup()

    def run_loader(self, chunks, keys=()):
        conf = os.path.join(self.work.name, f"{self.name}.conf")
        with open(conf, "w") as f:
            f.write(f"[OUTPUT]\n    Name wasm\n    Match *\n    wasm_watch off\n    wasm_path {self.guest}\n")
            for key, value in keys:
                f.write(f"    {key} {value}\n")
        command = [self.loader, "-c", conf, "-e", self.plugin]
        for i, chunk in enumerate(chunks):
            path = os.path.join(self.work.name, f"chunk{i}.msgpack")
            with open(path, "wb") as f:
                f.write(chunk)
            command += ["--chunk", path]
        return subprocess.run(command, capture_output=True, check=True)


class Decoder(Guest):
    name = "decoder"

    def test_the_component_decodes_as_the_sdk_does_here(self):
        result = self.run_loader(CHUNKS)
        log = result.stderr.decode(errors="replace")
        self.assertIn("2 chunks: 2 ok, 0 retried, 0 failed", log)
        expected = "".join(line(event) for chunk in CHUNKS for event in events(chunk))
        self.assertEqual(result.stdout.decode(), expected, log)
        # One line checked by hand, so that two equally wrong decoders cannot pass.
        self.assertIn(
            '[["time",1700000000,500000000],["map",[[["str","6d"],1]]],'
            '["map",[[["str","6d7367"],["str","61"]],[["str","6e"],1]]],null,null]\n',
            expected,
        )
        self.assertEqual(len(expected.splitlines()), 4)

    def test_a_malformed_chunk_is_refused_with_its_offset(self):
        result = self.run_loader([MALFORMED])
        log = result.stderr.decode(errors="replace")
        self.assertIn("1 chunks: 0 ok, 0 retried, 1 failed", log)
        self.assertIn("malformed chunk at byte offset 9: Unknown header: 0xc1", log)


BIG = bytes(range(256)) * 1200  # 300 KiB: more than one read of the response body
ECHO_CHUNK = pack([1, {"msg": "posted"}])


class Endpoint(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release = threading.Event()  # set when the tests are done: /slow answers then
    seen = []

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.seen.append((self.command, self.path, self.headers.get("x-asked"), self.headers.get("content-length")))
        if self.path == "/big":
            self.answer(200, BIG, [("X-Test", "hello")])
        elif self.path == "/slow":
            self.release.wait()
            self.answer(200, b"late")
        else:
            self.answer(404, b"no such page")

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        self.seen.append((self.command, self.path, self.headers.get("x-asked"), self.headers.get("content-length")))
        self.answer(201, body, [("X-Test", "echo")])


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # /slow answers after the guest gave up: its connection is gone, as it should be.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class Fetch(Guest):
    name = "fetch"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = Server(("127.0.0.1", 0), Endpoint)
        cls.port = cls.server.server_address[1]
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        Endpoint.release.set()
        cls.server.shutdown()
        cls.server.server_close()
        super().tearDownClass()

    def fetch(self, path, grant=None, **keys):
        url = path if "://" in path else f"http://127.0.0.1:{self.port}{path}"
        keys = [("url", url), ("wasm_allow_net", grant or f"127.0.0.1:{self.port}"), *keys.items()]
        result = self.run_loader([ECHO_CHUNK], keys)
        log = result.stderr.decode(errors="replace")
        self.assertIn("1 chunks: 1 ok, 0 retried, 0 failed", log)
        [line] = result.stdout.decode().splitlines()
        return json.loads(line)

    def test_a_get_returns_the_status_headers_and_whole_body(self):
        seen = self.fetch("/big")
        self.assertEqual(
            seen, {"status": 200, "x-test": "hello", "length": len(BIG), "sha256": hashlib.sha256(BIG).hexdigest()}
        )
        self.assertIn(("GET", "/big", "yes", None), Endpoint.seen, "a GET without a body has no content-length")

    def test_any_status_is_a_response(self):
        seen = self.fetch("/nothing?x=1")
        self.assertEqual((seen["status"], seen["length"]), (404, len(b"no such page")))

    def test_a_post_sends_its_body_with_its_length(self):
        seen = self.fetch("/echo", method="POST")
        self.assertEqual((seen["status"], seen["x-test"]), (201, "echo"))
        self.assertEqual(seen["sha256"], hashlib.sha256(ECHO_CHUNK).hexdigest())
        self.assertIn(("POST", "/echo", "yes", str(len(ECHO_CHUNK))), Endpoint.seen)

    def test_a_timeout_is_a_timeout_of_the_time_given(self):
        seen = self.fetch("/slow", timeout="0.3")
        self.assertEqual(seen, {"timeout": "request failed: no answer within 300 ms", "is-transport-error": True})

    def test_the_flush_deadline_bounds_a_longer_timeout(self):
        seen = self.fetch("/slow", timeout="30", wasm_flush_timeout="1s")
        # The time left when the request starts: 900 ms at most (1 s less the margin), less
        # whatever the guest spent before it on a loaded machine.
        match = re.fullmatch(r"request failed: no answer within (\d+) ms \(the flush's time left less a margin\)", seen["timeout"])
        self.assertIsNotNone(match, seen)
        self.assertLessEqual(int(match[1]), 900)

    def test_failures_are_told_apart(self):
        self.assertEqual(
            self.fetch("/big", grant="127.0.0.1:1"),
            {"denied": "the host denied the request: grant the endpoint with wasm_allow_net"},
        )
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        seen = self.fetch(f"http://127.0.0.1:{port}/", grant=f"127.0.0.1:{port}")
        self.assertEqual(seen, {"transport": "request failed: connection-refused", "code": "ErrorCode_ConnectionRefused"})
        self.assertEqual(self.fetch("ftp://127.0.0.1/x"), {"invalid": "invalid url 'ftp://127.0.0.1/x': expected http:// or https://"})


if __name__ == "__main__":
    unittest.main()
