"""The SDK's record decoder (out_wasm_guest.decode) on the msgpack package's pure-Python
implementation, the code the component runs: what the agent's records decode to, and every
way a chunk can be malformed. Run by guests/python/test."""

import struct
import unittest

import msgpack

from out_wasm_guest import DecodeError, Ext, Map, Timestamp, events, has_invalid_utf8


def event_time(seconds, nanoseconds):
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanoseconds))


def pack(*records):
    packer = msgpack.Packer(use_bin_type=True)
    return b"".join(packer.pack(record) for record in records)


# [[EventTime(1700000000.5), {"m":1}], {"k":"v"}], as in format/src/event.rs.
WITH_METADATA = b"\x92\x92\xd7\x00\x65\x53\xf1\x00\x1d\xcd\x65\x00\x81\xa1m\x01\x81\xa1k\xa1v"
# [1700000000, {"k":"v"}]
FORWARD_INT = b"\x92\xce\x65\x53\xf1\x00\x81\xa1k\xa1v"
# [1700000000.25, {"k":"v"}]
FORWARD_FLOAT = b"\x92\xcb\x41\xd9\x54\xfc\x40\x10\x00\x00\x81\xa1k\xa1v"


def decode_error(chunk):
    with_error = None
    try:
        list(events(chunk))
    except DecodeError as err:
        with_error = err
    assert with_error is not None, f"expected a DecodeError for {chunk!r}"
    return with_error


class Layouts(unittest.TestCase):
    def test_both_layouts_and_every_timestamp_encoding(self):
        [event] = events(WITH_METADATA)
        self.assertEqual(event.timestamp, Timestamp(1_700_000_000, 500_000_000))
        self.assertEqual(event.metadata, Map([("m", 1)]))
        self.assertEqual(event.body, Map([("k", "v")]))
        self.assertIsNone(event.group_attributes)

        [event] = events(FORWARD_INT)
        self.assertEqual(event.timestamp, Timestamp(1_700_000_000, 0))
        self.assertEqual(event.metadata, Map())
        self.assertEqual(event.body.get("k"), "v")

        [event] = events(FORWARD_FLOAT)
        self.assertEqual(event.timestamp, Timestamp(1_700_000_000, 250_000_000))

    def test_records_come_in_order_and_an_empty_chunk_has_none(self):
        chunk = pack(*[[[event_time(i, 0), {}], {"n": i}] for i in range(5)])
        self.assertEqual([e.body.get("n") for e in events(chunk)], [0, 1, 2, 3, 4])
        self.assertEqual(list(events(b"")), [])

    def test_group_markers_are_skipped_and_attach_their_attributes(self):
        chunk = pack(
            [[event_time(0xFFFF_FFFF, 0), {"schema": "otlp"}], {"resource": "r"}],
            [[event_time(1, 0), {}], {"in": True}],
            [[event_time(0xFFFF_FFFE, 0), {}], {}],
            [[event_time(2, 0), {}], {"in": False}],
            [[-1, {}], {"resource": "int marker"}],
            [[3, {}], {"in": True}],
            [[-2, {}], {}],
        )
        inside, outside, inside_again = events(chunk)
        self.assertEqual(inside.group_attributes, Map([("resource", "r")]))
        self.assertEqual(inside.group_metadata, Map([("schema", "otlp")]))
        self.assertIsNone(outside.group_attributes)
        self.assertIsNone(outside.group_metadata)
        self.assertEqual(inside_again.group_attributes, Map([("resource", "int marker")]))
        self.assertEqual(inside_again.timestamp, Timestamp(3, 0))

    def test_timestamps_like_the_agent(self):
        [big] = events(pack([2**64 - 1, {}]))
        self.assertEqual(big.timestamp, Timestamp(2**63 - 1, 0))
        [negative] = events(pack([-1.25, {}]))
        self.assertEqual(negative.timestamp, Timestamp(-2, 750_000_000))
        self.assertEqual(Timestamp(1_700_000_000, 123_456_000).as_float(), 1700000000.123456)
        self.assertEqual(Timestamp(1, 5).unix_nanos(), 1_000_000_005)


class Values(unittest.TestCase):
    def body(self, raw_body):
        """The decoded body of one record whose body is the raw msgpack ``raw_body``."""
        [event] = events(b"\x92\x92\xd7\x00" + struct.pack(">II", 1, 0) + b"\x80" + raw_body)
        return event.body

    def test_repeated_keys_are_kept_in_wire_order_and_the_last_one_is_read(self):
        body = self.body(b"\x83\xa1a\x01\xa1b\x02\xa1a\x03")
        self.assertEqual(list(body), [("a", 1), ("b", 2), ("a", 3)])
        self.assertEqual(body.get("a"), 3)
        self.assertEqual(body.to_dict(), {"a": 3, "b": 2})

    def test_keys_of_any_type_are_kept(self):
        # {[1]: "list key", 1: "int key", nil: "nil key", "1": "str key"}
        body = self.body(b"\x84\x91\x01\xa8list key\x01\xa7int key\xc0\xa7nil key\xa11\xa7str key")
        self.assertEqual(list(body), [([1], "list key"), (1, "int key"), (None, "nil key"), ("1", "str key")])
        self.assertEqual(body.get(1), "int key")
        self.assertEqual(body.get("1"), "str key")
        self.assertEqual(body.get(True), None, "a bool key is not the int 1")

    def test_invalid_utf8_is_kept_byte_for_byte_and_told_from_binary(self):
        # {"s": str "ok\xff\xc3(", "b": bin "\xff", "u": "é"}
        body = self.body(b"\x83\xa1s\xa5ok\xff\xc3(\xa1b\xc4\x01\xff\xa1u\xa2\xc3\xa9")
        text = body.get("s")
        self.assertIsInstance(text, str)
        self.assertTrue(has_invalid_utf8(text))
        self.assertEqual(text.encode("utf-8", "surrogateescape"), b"ok\xff\xc3(")
        self.assertEqual(body.get("b"), b"\xff")
        self.assertEqual(body.get("u"), "é")
        self.assertFalse(has_invalid_utf8(body.get("u")))

    def test_extension_values(self):
        # {"t": EventTime(5, 6), "x": ext 5 "ab", "bad": EventTime with 10^9 ns, "m": msgpack timestamp 7 s}
        body = self.body(
            b"\x84\xa1t\xd7\x00" + struct.pack(">II", 5, 6)
            + b"\xa1x\xd5\x05ab"
            + b"\xa3bad\xd7\x00" + struct.pack(">II", 5, 1_000_000_000)
            + b"\xa1m\xd6\xff" + struct.pack(">I", 7)
        )
        self.assertEqual(body.get("t"), Timestamp(5, 6))
        self.assertEqual(body.get("x"), Ext(5, b"ab"))
        self.assertEqual(body.get("bad"), Ext(0, struct.pack(">II", 5, 1_000_000_000)))
        self.assertEqual(body.get("m"), msgpack.Timestamp(7, 0))
        # A negative extension type the msgpack package's own ExtType would refuse.
        self.assertEqual(self.body(b"\xd4\xfb\x00"), Ext(-5, b"\x00"))

    def test_numbers_keep_their_exact_values(self):
        self.assertEqual(self.body(b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), 2**64 - 1)
        self.assertEqual(self.body(b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), -(2**63))
        self.assertEqual(self.body(b"\xca\x3f\xc0\x00\x00"), 1.5)
        self.assertIs(self.body(b"\xc3"), True)
        self.assertIsNone(self.body(b"\xc0"))


class Malformed(unittest.TestCase):
    def assert_error(self, chunk, offset, reason):
        err = decode_error(chunk)
        self.assertEqual((err.offset, err.reason), (offset, reason), str(err))
        self.assertEqual(str(err), f"malformed chunk at byte offset {offset}: {reason}")

    def test_record_shapes(self):
        self.assert_error(b"\x81\xa1k\xa1v", 0, "record is not an array")
        self.assert_error(pack([1, {}, {}]), 0, "record is an array of 3, not 2")
        self.assert_error(pack([[1, {}, 2], {}]), 1, "record header is an array of 3, not 2")

    def test_timestamps(self):
        self.assert_error(pack([None, {}]), 1, "timestamp is nil, not a time")
        self.assert_error(pack([[True, {}], {}]), 1, "timestamp is a boolean, not a time")
        self.assert_error(pack([["now", {}], {}]), 1, "timestamp is a string, not a time")
        self.assert_error(pack([float("nan"), {}]), 1, "timestamp is a float, not a time")
        self.assert_error(pack([event_time(1, 1_000_000_000), {}]), 1, "EventTime has 1000000000 nanoseconds")
        self.assert_error(pack([msgpack.ExtType(5, b"1234"), {}]), 1, "timestamp is extension type 5 of 4 bytes, not EventTime")
        self.assert_error(pack([msgpack.Timestamp(1, 0), {}]), 1, "timestamp is extension type -1 of 4 bytes, not EventTime")

    def test_the_offset_is_where_the_failing_record_part_starts(self):
        first = pack([[event_time(1, 0), {}], {"k": "v"}])
        self.assert_error(first + pack([[1, {}], {}])[:-1], len(first) + 4, "truncated: the chunk ends inside a value")
        self.assert_error(first + b"\x92\xc1", len(first) + 1, "Unknown header: 0xc1")
        self.assert_error(first + b"\x92\x01\xc1", len(first) + 2, "Unknown header: 0xc1")
        self.assert_error(first + b"\x92", len(first) + 1, "truncated: the chunk ends inside a value")
        self.assert_error(first + b"\x92\x01", len(first) + 2, "truncated: the chunk ends inside a value")

    def test_records_before_the_error_are_yielded(self):
        good = pack([1, {"n": 1}], [2, {"n": 2}])
        seen = []
        with self.assertRaises(DecodeError):
            for event in events(good + b"\xc1"):
                seen.append(event.body.get("n"))
        self.assertEqual(seen, [1, 2])

    def test_hostile_lengths_fail_without_allocating_them(self):
        # A str, a bin, an array and a map announcing 4 GiB - 1 in a chunk of a few bytes.
        for marker in (b"\xdb", b"\xc6", b"\xdd", b"\xdf"):
            err = decode_error(b"\x92\x01" + marker + b"\xff\xff\xff\xff")
            self.assertEqual(err.offset, 2, str(err))

    def test_deep_nesting_is_an_error_not_a_crash(self):
        err = decode_error(b"\x92\x01" + b"\x91" * 100_000 + b"\x01")
        self.assertEqual((err.offset, err.reason), (2, "nested too deeply"))


if __name__ == "__main__":
    unittest.main()
