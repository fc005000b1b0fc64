"""The decoder inside a real component: tests/decoder (a guest that prints every decoded record
as tagged JSON) built with guests/python/build, run by the agent's stand-in (out-wasm-loader)
through out_wasm.so over chunks made here; its lines must be those the same decoder gives on
the machine's Python, and a malformed chunk must be refused with its offset. Needs the loader
and the plugin built (cargo build --release -p out-wasm -p out-wasm-loader); run by
guests/python/test, which says where they are."""

import os
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


class Component(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        target = os.environ.get("OUT_WASM_TARGET_DIR") or os.path.join(HERE, "../../../target")
        cls.loader = os.path.join(target, "release/out-wasm-loader")
        cls.plugin = os.path.join(target, "release/libout_wasm.so")
        for path in (cls.loader, cls.plugin):
            if not os.path.exists(path):
                raise AssertionError(f"{path} is missing: cargo build --release -p out-wasm -p out-wasm-loader")
        cls.work = tempfile.TemporaryDirectory()
        cls.guest = os.path.join(cls.work.name, "decoder.wasm")
        subprocess.run([os.path.join(HERE, "../build"), os.path.join(HERE, "decoder"), cls.guest], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.work.cleanup()

    def run_loader(self, chunks):
        conf = os.path.join(self.work.name, "decoder.conf")
        with open(conf, "w") as f:
            f.write(f"[OUTPUT]\n    Name wasm\n    Match *\n    wasm_watch off\n    wasm_path {self.guest}\n")
        command = [self.loader, "-c", conf, "-e", self.plugin]
        for i, chunk in enumerate(chunks):
            path = os.path.join(self.work.name, f"chunk{i}.msgpack")
            with open(path, "wb") as f:
                f.write(chunk)
            command += ["--chunk", path]
        return subprocess.run(command, capture_output=True, check=True)

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


if __name__ == "__main__":
    unittest.main()
