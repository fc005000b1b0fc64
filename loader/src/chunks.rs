//! Turns JSON lines into msgpack chunks shaped like the agent's.

use anyhow::{Context, Result, bail};
use serde_json::Value as Json;

/// How records are laid out in the chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// `[[timestamp, metadata], body]`: what current agents send.
    #[default]
    WithMetadata,
    /// `[timestamp, body]`: older agents and some inputs.
    Forward,
}

/// How the timestamp is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeEncoding {
    /// msgpack ext type 0: u32 seconds, u32 nanoseconds, big-endian.
    #[default]
    EventTime,
    /// Integer seconds.
    Integer,
    /// Float seconds.
    Float,
}

/// A record's time: seconds and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    pub seconds: u32,
    pub nanoseconds: u32,
}

impl Time {
    pub fn now() -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self { seconds: now.as_secs() as u32, nanoseconds: now.subsec_nanos() }
    }
}

/// Encodes one record.
pub fn encode_record(
    out: &mut Vec<u8>,
    body: &Json,
    metadata: &Json,
    time: Time,
    layout: Layout,
    encoding: TimeEncoding,
) -> Result<()> {
    rmp::encode::write_array_len(out, 2)?;
    if layout == Layout::WithMetadata {
        rmp::encode::write_array_len(out, 2)?;
    }
    match encoding {
        TimeEncoding::EventTime => {
            rmp::encode::write_ext_meta(out, 8, 0)?;
            out.extend_from_slice(&time.seconds.to_be_bytes());
            out.extend_from_slice(&time.nanoseconds.to_be_bytes());
        }
        TimeEncoding::Integer => {
            rmp::encode::write_uint(out, time.seconds.into())?;
        }
        TimeEncoding::Float => {
            rmp::encode::write_f64(out, f64::from(time.seconds) + f64::from(time.nanoseconds) / 1e9)?;
        }
    }
    if layout == Layout::WithMetadata {
        encode_json(out, metadata)?;
    }
    encode_json(out, body)
}

/// JSON as msgpack the way the agent packs parsed JSON: integers as ints, others as f64.
pub fn encode_json(out: &mut Vec<u8>, value: &Json) -> Result<()> {
    match value {
        Json::Null => rmp::encode::write_nil(out)?,
        Json::Bool(b) => rmp::encode::write_bool(out, *b)?,
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                rmp::encode::write_uint(out, u)?;
            } else if let Some(i) = n.as_i64() {
                rmp::encode::write_sint(out, i)?;
            } else {
                rmp::encode::write_f64(out, n.as_f64().unwrap_or(f64::NAN))?;
            }
        }
        Json::String(s) => rmp::encode::write_str(out, s)?,
        Json::Array(items) => {
            rmp::encode::write_array_len(out, items.len() as u32)?;
            for item in items {
                encode_json(out, item)?;
            }
        }
        Json::Object(map) => {
            rmp::encode::write_map_len(out, map.len() as u32)?;
            for (key, item) in map {
                rmp::encode::write_str(out, key)?;
                encode_json(out, item)?;
            }
        }
    }
    Ok(())
}

/// Parses JSON lines (blank lines skipped) into record bodies.
pub fn parse_lines(text: &str) -> Result<Vec<Json>> {
    let mut bodies = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let body: Json = serde_json::from_str(line).with_context(|| format!("line {}: not JSON", n + 1))?;
        if !body.is_object() {
            bail!("line {}: a record must be a JSON object", n + 1);
        }
        bodies.push(body);
    }
    Ok(bodies)
}

/// Packs bodies into chunks of `per_chunk` records, all stamped `time`.
pub fn chunks(
    bodies: &[Json],
    per_chunk: usize,
    time: Time,
    layout: Layout,
    encoding: TimeEncoding,
) -> Result<Vec<Vec<u8>>> {
    let empty = Json::Object(Default::default());
    bodies
        .chunks(per_chunk.max(1))
        .map(|records| {
            let mut chunk = Vec::new();
            for body in records {
                encode_record(&mut chunk, body, &empty, time, layout, encoding)?;
            }
            Ok(chunk)
        })
        .collect()
}
