//! JSON text exactly as the agent writes it: Fluent Bit's `msgpack2json` and
//! `flb_utils_write_str` (5.1), with the same number formats, the same escapes, the same
//! handling of duplicate keys and of bytes that are not UTF-8, so a guest's output can be diffed
//! against the agent's own outputs.
//!
//! [`Value::write_json`] renders a decoded value; `stream` renders straight from a chunk's
//! msgpack without building values; `line` puts records into the agent's JSON lines.

pub(crate) mod line;
mod number;
mod object;
mod stream;
mod string;

use crate::json::number::{push_fmt, write_float, write_i64, write_u64};
use crate::json::string::write_str;
use crate::value::Value;

impl Value<'_> {
    /// Appends this value as JSON, rendered like the agent's `msgpack2json`.
    /// `escape_unicode` mirrors the agent's `json.escape_unicode` (on by default).
    pub fn write_json(&self, out: &mut Vec<u8>, escape_unicode: bool) {
        match self {
            Value::Nil => out.extend_from_slice(b"null"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(n) => write_i64(out, *n),
            Value::UInt(n) => write_u64(out, *n),
            Value::Float(f) => write_float(out, *f),
            Value::Str(bytes) | Value::Bin(bytes) => {
                out.push(b'"');
                write_str(out, bytes, escape_unicode);
                out.push(b'"');
            }
            Value::Ext(_, payload) => {
                out.push(b'"');
                for byte in *payload {
                    // The agent prints each byte as a *signed* char with "\\x%02x".
                    push_fmt(out, format_args!("\\x{:02x}", *byte as i8 as i32 as u32));
                }
                out.push(b'"');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out, escape_unicode);
                }
                out.push(b']');
            }
            Value::Map(entries) => write_map(out, entries.iter().map(|(k, v)| (k, v)), escape_unicode),
        }
    }

    /// This value as a JSON string (see [`Value::write_json`]).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out, true);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Writes map entries as a JSON object. Like the agent, an entry whose string key appears again
/// later in the same map is left out: the last one wins, in its own position.
fn write_map<'v, 'a: 'v>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (&'v Value<'a>, &'v Value<'a>)> + Clone,
    escape_unicode: bool,
) {
    out.push(b'{');
    let mut written = 0;
    let mut rest = entries.clone();
    for (key, value) in entries {
        rest.next();
        if let Value::Str(k) = key
            && rest.clone().any(|(later, _)| matches!(later, Value::Str(l) if l == k))
        {
            continue;
        }
        if written > 0 {
            out.push(b',');
        }
        key.write_json(out, escape_unicode);
        out.push(b':');
        value.write_json(out, escape_unicode);
        written += 1;
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &Value<'_>) -> String {
        let mut out = Vec::new();
        v.write_json(&mut out, true);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn maps_drop_earlier_duplicate_keys_and_ext_prints_signed_bytes() {
        let map = Value::Map(vec![
            (Value::Str(b"a"), Value::UInt(1)),
            (Value::Str(b"b"), Value::Int(-2)),
            (Value::Str(b"a"), Value::Nil),
        ]);
        assert_eq!(json(&map), r#"{"b":-2,"a":null}"#);
        assert_eq!(json(&Value::Ext(5, &[0x01, 0x80])), r#""\x01\xffffff80""#);
    }
}
