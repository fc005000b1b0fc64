//! The agent's JSON-lines format, set up from the same keys the agent's outputs take.

use crate::config::{Config, ConfigKey};
use crate::date::DateFormat;
use crate::error::DecodeError;
use crate::event::{Event, Events};
use crate::json::line::{LineHead, render_json_line, write_json_line};

/// How records become JSON lines: `json_date_key`, `json_date_format` and `escape_unicode`,
/// with the agent's defaults (`date`, `double`, `on`).
#[derive(Clone, Debug)]
pub struct JsonLines {
    /// `None` when `json_date_key` is `off` (or `false`, `no`).
    pub date_key: Option<String>,
    pub date_format: DateFormat,
    /// The agent's `[SERVICE] json.escape_unicode`: `\uXXXX` for non-ASCII when on.
    pub escape_unicode: bool,
}

fn switch(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("invalid value {value:?} for key '{key}': expected on or off")),
    }
}

impl JsonLines {
    /// The three keys, for a guest's `config_schema`.
    pub fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::optional("json_date_key", "key of the record time; off to leave it out").default("date"),
            ConfigKey::optional("json_date_format", "double, epoch, epoch_ms, iso8601 or java_sql_timestamp")
                .default("double"),
            ConfigKey::optional("escape_unicode", "on: write non-ASCII as \\uXXXX like the agent; off: keep UTF-8")
                .default("on"),
        ]
    }

    /// From the resolved config; an invalid value is an error naming the key.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let date_key = config.get("json_date_key").unwrap_or("date");
        // Like the agent: a boolean-looking "false" disables the key, anything else names it.
        let date_key = match switch("json_date_key", date_key) {
            Ok(false) => None,
            _ => Some(date_key.to_owned()),
        };
        Ok(Self {
            date_key,
            date_format: config.parse("json_date_format")?.unwrap_or_default(),
            escape_unicode: switch("escape_unicode", config.get("escape_unicode").unwrap_or("on"))?,
        })
    }

    /// True for the agent's defaults: the lines the host renders for
    /// [`EventFormat::JsonLines`](crate::EventFormat::JsonLines).
    pub fn is_default(&self) -> bool {
        self.date_key.as_deref() == Some("date") && self.date_format == DateFormat::Double && self.escape_unicode
    }

    /// The agent's defaults.
    pub fn agent_default() -> Self {
        Self { date_key: Some("date".to_owned()), date_format: DateFormat::Double, escape_unicode: true }
    }

    /// Appends `event` as one line, newline included.
    pub fn write(&self, out: &mut Vec<u8>, event: &Event<'_>) {
        write_json_line(out, event, self.date_key.as_deref(), self.date_format, self.escape_unicode);
    }

    /// Appends every record of a msgpack `chunk` as one line each: the same bytes as
    /// [`JsonLines::write`] over [`Events`], but rendered straight from the msgpack without
    /// building [`Value`](crate::Value)s, which makes it about twice as fast. At the first
    /// malformed record it stops with the error `Events` gives, after the lines of the records
    /// before it. Returns the number of records written.
    pub fn write_chunk(&self, out: &mut Vec<u8>, chunk: &[u8]) -> Result<usize, DecodeError> {
        let line = LineHead {
            date_key: self.date_key.as_deref(),
            date_format: self.date_format,
            escape_unicode: self.escape_unicode,
        };
        let mut events = Events::new(chunk);
        // The entries of the objects being written, reused from line to line.
        let mut entries = Vec::new();
        let mut records = 0;
        while let Some(header) = events.next_header()? {
            render_json_line(out, &mut entries, &mut events, header, &line)?;
            records += 1;
        }
        Ok(records)
    }
}

/// `write_chunk` (rendering in place) must give exactly what `write` over [`Events`] gives:
/// the same lines, and at a malformed record the same error after the same lines.
#[cfg(test)]
mod in_place {
    use proptest::prelude::*;

    use super::*;

    /// The reference: decode each record into `Value`s, then render it.
    fn by_events(format: &JsonLines, chunk: &[u8]) -> (Vec<u8>, Result<usize, DecodeError>) {
        let mut out = Vec::new();
        let mut records = 0;
        for event in Events::new(chunk) {
            match event {
                Ok(event) => format.write(&mut out, &event),
                Err(err) => return (out, Err(err)),
            }
            records += 1;
        }
        (out, Ok(records))
    }

    fn in_place(format: &JsonLines, chunk: &[u8]) -> (Vec<u8>, Result<usize, DecodeError>) {
        let mut out = Vec::new();
        let result = format.write_chunk(&mut out, chunk);
        (out, result)
    }

    fn str_bytes(text: &[u8]) -> Vec<u8> {
        let mut out = vec![0xd9, text.len() as u8];
        out.extend_from_slice(text);
        out
    }

    /// Msgpack values whose maps often repeat keys, with strings that need escaping.
    fn value() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            Just(vec![0xc0]),
            any::<i64>().prop_map(|n| [vec![0xd3], n.to_be_bytes().to_vec()].concat()),
            any::<u8>().prop_map(|n| vec![n & 0x7f]),
            any::<f64>().prop_map(|f| [vec![0xcb], f.to_bits().to_be_bytes().to_vec()].concat()),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| str_bytes(&b)),
            "[a-c\"\\\\é\u{1F600}\t]{0,6}".prop_map(|s| str_bytes(s.as_bytes())),
            Just(vec![0xd7, 0x05, 1, 2, 3, 4, 5, 6, 7, 0x80]),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(|items| [
                    vec![0x90 | items.len() as u8],
                    items.concat()
                ]
                .concat()),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            Just(b"k".to_vec()),
                            Just(b"date".to_vec()),
                            Just(b"log".to_vec()),
                            "[a-c]{1,2}".prop_map(String::into_bytes)
                        ]
                        .prop_map(|k| str_bytes(&k)),
                        inner.clone()
                    ),
                    0..5
                )
                .prop_map(|entries| {
                    let mut out = vec![0x80 | entries.len() as u8];
                    for (key, value) in entries {
                        out.extend(key);
                        out.extend(value);
                    }
                    out
                }),
                (inner.clone(), inner).prop_map(|(key, value)| [vec![0x81], key, value].concat()),
            ]
        })
    }

    /// A record (`[[EventTime, metadata], body]`, or the old `[int, body]`), or a group marker.
    fn record() -> impl Strategy<Value = Vec<u8>> {
        (0u8..8, any::<u32>(), 0u32..1_000_000_000, value(), value()).prop_map(|(kind, s, ns, metadata, body)| {
            let time =
                |s: u32, ns: u32| [vec![0xd7, 0x00], s.to_be_bytes().to_vec(), ns.to_be_bytes().to_vec()].concat();
            match kind {
                0 => [vec![0x92], vec![0xce], s.to_be_bytes().to_vec(), body].concat(),
                1 => [vec![0x92, 0x92], time(u32::MAX, 0), vec![0x80], body].concat(),
                2 => [vec![0x92, 0x92], time(u32::MAX - 1, 0), vec![0x80, 0x80]].concat(),
                3 => [vec![0x92, 0x92], time(s, ns), metadata, body].concat(),
                _ => [vec![0x92, 0x92], time(s, ns), vec![0x80], body].concat(),
            }
        })
    }

    fn formats() -> [JsonLines; 3] {
        [
            JsonLines::agent_default(),
            JsonLines { date_key: None, date_format: DateFormat::Double, escape_unicode: false },
            JsonLines { date_key: Some("k".into()), date_format: DateFormat::Iso8601, escape_unicode: true },
        ]
    }

    proptest! {
        #[test]
        fn well_formed_chunks_render_alike(records in proptest::collection::vec(record(), 0..6)) {
            let chunk = records.concat();
            for format in formats() {
                let (expected, expected_result) = by_events(&format, &chunk);
                let (actual, result) = in_place(&format, &chunk);
                prop_assert_eq!(&result, &expected_result);
                prop_assert_eq!(String::from_utf8_lossy(&actual), String::from_utf8_lossy(&expected));
            }
        }

        #[test]
        fn cut_or_corrupted_chunks_fail_alike(
            records in proptest::collection::vec(record(), 1..5),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let mut chunk = records.concat();
            for (at, byte) in flips {
                let i = at.index(chunk.len());
                chunk[i] = byte;
            }
            let chunk = &chunk[..cut.index(chunk.len() + 1)];
            for format in formats() {
                let (expected, expected_result) = by_events(&format, chunk);
                let (actual, result) = in_place(&format, chunk);
                prop_assert_eq!(&result, &expected_result);
                prop_assert_eq!(String::from_utf8_lossy(&actual), String::from_utf8_lossy(&expected));
            }
        }

        #[test]
        fn arbitrary_bytes_fail_alike(chunk in proptest::collection::vec(any::<u8>(), 0..256)) {
            let format = JsonLines::agent_default();
            let (expected, expected_result) = by_events(&format, &chunk);
            let (actual, result) = in_place(&format, &chunk);
            prop_assert_eq!(&result, &expected_result);
            prop_assert_eq!(actual, expected);
        }
    }

    #[test]
    fn repeated_keys_keep_the_last_in_its_place_at_every_level() {
        // [[EventTime, {}], {"a":1,"date":2,"m":{"x":1,"y":2,"x":3},"a":4}]
        let chunk = b"\x92\x92\xd7\x00\x65\x53\xf1\x00\x00\x00\x00\x00\x80\x84\xa1a\x01\xa4date\x02\xa1m\x83\xa1x\x01\xa1y\x02\xa1x\x03\xa1a\x04";
        let (out, result) = in_place(&JsonLines::agent_default(), chunk);
        assert_eq!(result, Ok(1));
        assert_eq!(String::from_utf8_lossy(&out), "{\"date\":2,\"m\":{\"y\":2,\"x\":3},\"a\":4}\n");
        assert_eq!(by_events(&JsonLines::agent_default(), chunk).0, out, "the same as the Value path");
    }
}
