//! Records of a chunk: timestamp, metadata and body, decoded lazily one at a time.

use rmp::Marker;

use crate::error::DecodeError;
use crate::msgpack::Reader;
use crate::value::Value;

/// When a record happened: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub seconds: i64,
    /// Always below 1_000_000_000.
    pub nanoseconds: u32,
}

impl Timestamp {
    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanoseconds)
    }

    /// Seconds since the epoch as a double, the way the agent computes it.
    pub fn as_f64(&self) -> f64 {
        self.seconds as f64 + f64::from(self.nanoseconds) / 1e9
    }

    /// From float seconds, truncating like the agent does.
    fn from_f64(seconds: f64) -> Self {
        let whole = seconds.trunc();
        let nanos = ((seconds - whole) * 1e9) as i64;
        let (seconds, nanos) =
            if nanos < 0 { (whole as i64 - 1, nanos + 1_000_000_000) } else { (whole as i64, nanos) };
        Self { seconds, nanoseconds: nanos.clamp(0, 999_999_999) as u32 }
    }
}

/// One record of a chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Event<'a> {
    pub timestamp: Timestamp,
    /// The record's metadata map; an empty map for records in the old `[ts, body]` layout.
    pub metadata: Value<'a>,
    /// The record itself, normally a map.
    pub body: Value<'a>,
    /// Attributes of the group the record belongs to (records from OpenTelemetry inputs come
    /// in groups, opened and closed by marker records that are not yielded as events).
    pub group_attributes: Option<Value<'a>>,
    /// The metadata of the marker that opened the record's group (for OpenTelemetry groups:
    /// `schema`, `resource_id`, `scope_id`).
    pub group_metadata: Option<Value<'a>>,
}

/// What a record's timestamp says it is.
enum Stamp {
    Time(Timestamp),
    GroupStart,
    GroupEnd,
}

/// Iterates over the records of a chunk. Yields `Err` once at the first malformed record and
/// then ends.
pub struct Events<'a> {
    reader: Reader<'a>,
    failed: bool,
    group: Option<Value<'a>>,
    group_metadata: Option<Value<'a>>,
}

impl<'a> Events<'a> {
    pub fn new(chunk: &'a [u8]) -> Self {
        Self { reader: Reader::new(chunk), failed: false, group: None, group_metadata: None }
    }

    /// The next record that is not a group marker, or `None` at the end of the chunk.
    fn next_event(&mut self) -> Result<Option<Event<'a>>, DecodeError> {
        let Some((timestamp, metadata)) = self.next_header()? else { return Ok(None) };
        let body = self.reader.value()?;
        let group_attributes = self.group.clone();
        let group_metadata = self.group_metadata.clone();
        Ok(Some(Event { timestamp, metadata, body, group_attributes, group_metadata }))
    }

    /// Reads up to the body of the next record that is not a group marker, and returns its
    /// timestamp and metadata; the body is then the next value of [`Events::parts`]'s reader,
    /// for renderers that walk it in place. `None` at the end of the chunk.
    pub(crate) fn next_header(&mut self) -> Result<Option<(Timestamp, Value<'a>)>, DecodeError> {
        while !self.reader.is_empty() {
            let (stamp, metadata) = self.header()?;
            match stamp {
                Stamp::Time(timestamp) => return Ok(Some((timestamp, metadata))),
                Stamp::GroupStart => {
                    self.group = Some(self.reader.value()?);
                    self.group_metadata = Some(metadata);
                }
                Stamp::GroupEnd => {
                    self.reader.value()?;
                    self.group = None;
                    self.group_metadata = None;
                }
            }
        }
        Ok(None)
    }

    /// The reader, at the body after [`Events::next_header`], and the attributes of the
    /// current group.
    pub(crate) fn parts(&mut self) -> (&mut Reader<'a>, Option<&Value<'a>>) {
        (&mut self.reader, self.group.as_ref())
    }

    fn header(&mut self) -> Result<(Stamp, Value<'a>), DecodeError> {
        let start = self.reader.offset();
        match self.reader.array_len()? {
            Some(2) => {}
            Some(n) => {
                return Err(DecodeError::new(start, format!("record is an array of {n}, not 2")));
            }
            None => return Err(DecodeError::new(start, "record is not an array")),
        }
        // `[[timestamp, metadata], body]` (current agents) or `[timestamp, body]` (older).
        let header_at = self.reader.offset();
        if is_array(self.reader.peek_marker()) {
            match self.reader.array_len()? {
                Some(2) => {}
                Some(n) => {
                    return Err(DecodeError::new(header_at, format!("record header is an array of {n}, not 2")));
                }
                None => unreachable!("peeked an array marker"),
            }
            let timestamp = self.timestamp()?;
            Ok((timestamp, self.reader.value()?))
        } else {
            Ok((self.timestamp()?, Value::Map(Vec::new())))
        }
    }

    fn timestamp(&mut self) -> Result<Stamp, DecodeError> {
        let at = self.reader.offset();
        let time = match self.reader.value()? {
            // The agent marks group boundaries with EventTime seconds 2^32-1 / 2^32-2 (or the
            // integers -1 / -2) and zero nanoseconds.
            Value::Ext(0, payload) if payload == [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0] => {
                return Ok(Stamp::GroupStart);
            }
            Value::Ext(0, payload) if payload == [0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0] => {
                return Ok(Stamp::GroupEnd);
            }
            Value::Int(-1) => return Ok(Stamp::GroupStart),
            Value::Int(-2) => return Ok(Stamp::GroupEnd),
            Value::Ext(0, payload) if payload.len() == 8 => {
                let seconds = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes"));
                let nanoseconds = u32::from_be_bytes(payload[4..].try_into().expect("4 bytes"));
                if nanoseconds >= 1_000_000_000 {
                    return Err(DecodeError::new(at, format!("EventTime has {nanoseconds} nanoseconds")));
                }
                Timestamp { seconds: seconds.into(), nanoseconds }
            }
            Value::Ext(kind, payload) => {
                return Err(DecodeError::new(
                    at,
                    format!("timestamp is extension type {kind} of {} bytes, not EventTime", payload.len()),
                ));
            }
            Value::UInt(seconds) => Timestamp { seconds: seconds.min(i64::MAX as u64) as i64, nanoseconds: 0 },
            Value::Int(seconds) => Timestamp { seconds, nanoseconds: 0 },
            Value::Float(seconds) if seconds.is_finite() => Timestamp::from_f64(seconds),
            other => {
                return Err(DecodeError::new(at, format!("timestamp is {}, not a time", other.kind())));
            }
        };
        Ok(Stamp::Time(time))
    }
}

fn is_array(marker: Option<Marker>) -> bool {
    matches!(marker, Some(Marker::FixArray(_) | Marker::Array16 | Marker::Array32))
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<Event<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let event = self.next_event();
        self.failed = event.is_err();
        event.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[[EventTime(1700000000.5), {"m":1}], {"k":"v"}]`
    const WITH_METADATA: &[u8] = b"\x92\x92\xd7\x00\x65\x53\xf1\x00\x1d\xcd\x65\x00\x81\xa1m\x01\x81\xa1k\xa1v";
    /// `[1700000000, {"k":"v"}]`
    const FORWARD_INT: &[u8] = b"\x92\xce\x65\x53\xf1\x00\x81\xa1k\xa1v";
    /// `[1700000000.25, {"k":"v"}]`
    const FORWARD_FLOAT: &[u8] = b"\x92\xcb\x41\xd9\x54\xfc\x40\x10\x00\x00\x81\xa1k\xa1v";

    fn all(chunk: &[u8]) -> Vec<Result<Event<'_>, DecodeError>> {
        Events::new(chunk).collect()
    }

    #[test]
    fn decodes_both_layouts_and_every_timestamp_encoding() {
        let body = Value::Map(vec![(Value::Str(b"k"), Value::Str(b"v"))]);
        let event = all(WITH_METADATA).remove(0).unwrap();
        assert_eq!(event.timestamp, Timestamp { seconds: 1_700_000_000, nanoseconds: 500_000_000 });
        assert_eq!(event.metadata, Value::Map(vec![(Value::Str(b"m"), Value::UInt(1))]));
        assert_eq!(event.body, body);

        let event = all(FORWARD_INT).remove(0).unwrap();
        assert_eq!(event.timestamp, Timestamp { seconds: 1_700_000_000, nanoseconds: 0 });
        assert_eq!(event.metadata, Value::Map(Vec::new()), "old layout: empty metadata");
        assert_eq!(event.body, body);

        let event = all(FORWARD_FLOAT).remove(0).unwrap();
        assert_eq!(event.timestamp, Timestamp { seconds: 1_700_000_000, nanoseconds: 250_000_000 });
    }

    #[test]
    fn reads_consecutive_records_and_ends_cleanly() {
        let mut chunk = WITH_METADATA.to_vec();
        chunk.extend_from_slice(FORWARD_INT);
        let events = all(&chunk);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(Result::is_ok), "{events:?}");
        assert!(all(b"").is_empty(), "an empty chunk has no records");
    }

    #[test]
    fn every_truncation_is_an_error_with_an_offset_inside_the_chunk() {
        for cut in 1..WITH_METADATA.len() {
            let events = all(&WITH_METADATA[..cut]);
            assert_eq!(events.len(), 1, "cut at {cut}: one error, then the iterator ends");
            let err = events[0].as_ref().expect_err("a truncated record cannot decode");
            assert!(err.offset <= cut, "cut at {cut}: offset {} past the end", err.offset);
            assert!(err.to_string().starts_with("malformed chunk at byte offset"), "{err}");
        }
    }

    #[test]
    fn names_what_is_wrong_and_where() {
        let cases: [(&[u8], usize, &str); 5] = [
            (b"\x81\xa1k\xa1v", 0, "record is not an array"),
            (b"\x93\x01\x02\x03", 0, "array of 3, not 2"),
            (b"\x92\xa1x\x80", 1, "timestamp is a string"),
            (b"\x92\xd6\x05\x00\x00\x00\x00\x80", 1, "extension type 5"),
            (b"\x92\x01\xdd\xff\xff\xff\xff", 2, "truncated: array of 4294967295 entries"),
        ];
        for (chunk, offset, reason) in cases {
            let err = all(chunk).remove(0).expect_err("malformed");
            assert_eq!(err.offset, offset, "{reason}: {err}");
            assert!(err.reason.contains(reason), "expected {reason:?} in {err}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let mut chunk = b"\x92\x01".to_vec();
        chunk.extend(std::iter::repeat_n(0x91, 100_000));
        chunk.push(0xc0);
        let err = all(&chunk).remove(0).expect_err("too deep");
        assert!(err.reason.contains("nesting deeper than"), "{err}");
    }

    #[test]
    fn group_markers_are_skipped_and_their_attributes_attached() {
        let mut chunk = Vec::new();
        // Group start: EventTime seconds 0xffffffff, attributes {"g":1}.
        chunk.extend_from_slice(b"\x92\x92\xd7\x00\xff\xff\xff\xff\x00\x00\x00\x00\x80\x81\xa1g\x01");
        chunk.extend_from_slice(FORWARD_INT);
        // Group end, then a record outside any group.
        chunk.extend_from_slice(b"\x92\x92\xd7\x00\xff\xff\xff\xfe\x00\x00\x00\x00\x80\x80");
        chunk.extend_from_slice(FORWARD_INT);
        let events: Vec<_> = all(&chunk).into_iter().map(Result::unwrap).collect();
        assert_eq!(events.len(), 2, "markers are not records");
        assert_eq!(events[0].group_attributes, Some(Value::Map(vec![(Value::Str(b"g"), Value::UInt(1))])));
        assert_eq!(events[1].group_attributes, None);
    }
}

/// Fuzzing the decoder with proptest (bounded: `PROPTEST_CASES`, default 256 per property):
/// arbitrary bytes, and well-formed chunks cut or corrupted anywhere, never panic, never loop,
/// and every error names an offset inside the chunk.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn record() -> impl Strategy<Value = Vec<u8>> {
        // [[EventTime, {}], {"k": <str>, "n": <int>}] with random contents.
        (any::<u32>(), 0u32..1_000_000_000, "[a-zé]{0,12}", any::<i64>()).prop_map(|(s, ns, text, n)| {
            let mut out = vec![0x92, 0x92, 0xd7, 0x00];
            out.extend_from_slice(&s.to_be_bytes());
            out.extend_from_slice(&ns.to_be_bytes());
            out.extend_from_slice(&[0x80, 0x82, 0xa1, b'k', 0xd9, text.len() as u8]);
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(&[0xa1, b'n', 0xd3]);
            out.extend_from_slice(&n.to_be_bytes());
            out
        })
    }

    fn check(chunk: &[u8]) {
        let mut count = 0;
        for event in Events::new(chunk) {
            count += 1;
            assert!(count <= chunk.len(), "more records than bytes: the decoder loops");
            if let Err(err) = event {
                assert!(err.offset <= chunk.len(), "offset {} past the end of {} bytes", err.offset, chunk.len());
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            check(&bytes);
        }

        #[test]
        fn well_formed_chunks_decode_whole(records in proptest::collection::vec(record(), 0..8)) {
            let chunk: Vec<u8> = records.concat();
            let events: Vec<_> = Events::new(&chunk).collect();
            prop_assert_eq!(events.len(), records.len());
            prop_assert!(events.iter().all(Result::is_ok));
        }

        #[test]
        fn cut_or_corrupted_chunks_fail_cleanly(
            records in proptest::collection::vec(record(), 1..6),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let mut chunk: Vec<u8> = records.concat();
            for (at, byte) in flips {
                let i = at.index(chunk.len());
                chunk[i] = byte;
            }
            let end = cut.index(chunk.len() + 1);
            check(&chunk[..end]);
        }

        #[test]
        fn rendering_any_decoded_value_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            for event in Events::new(&bytes).flatten() {
                let mut out = Vec::new();
                crate::write_json_line(&mut out, &event, Some("date"), crate::DateFormat::Iso8601, true);
                crate::write_json_line(&mut out, &event, None, crate::DateFormat::Double, false);
            }
        }
    }
}
