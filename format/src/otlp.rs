//! OTLP/JSON: a chunk rendered as one OpenTelemetry export request of its kind
//! (`ExportLogsServiceRequest`, `ExportMetricsServiceRequest`, `ExportTraceServiceRequest`),
//! ready to POST to an OTLP/HTTP receiver's `/v1/logs`, `/v1/metrics` or `/v1/traces`.
//!
//! The rendering follows the agent's own (`flb_opentelemetry_*_to_otlp_json` in Fluent Bit
//! 5.1, what its `stdout` output prints with `format otlp_json`): the same fields in the same
//! order, the same mapping of records, metadata and groups to resources and scopes, the same
//! number formats. Where the agent's text is not valid OTLP/JSON this rendering follows the
//! OTLP JSON mapping instead: span status codes are numbers (the agent writes `"OK"`), a
//! `hasSum` flag (no such field) is left out, an unsigned value above the int64 range becomes a
//! double, ids of the wrong length and map entries with non-string keys are left out, NaN and
//! infinities are the strings protobuf's JSON mapping uses, invalid UTF-8 becomes U+FFFD.

mod logs;
mod metrics;
mod traces;

use crate::error::DecodeError;
use crate::event_type::EventType;
use crate::value::Value;

/// Appends `chunk`, holding events of `event_type`, to `out` as one OTLP/JSON export request.
/// On error `out` may hold part of the request.
pub fn render(event_type: EventType, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    match event_type {
        EventType::Logs => logs::render(chunk, out),
        EventType::Metrics => metrics::render(chunk, out),
        EventType::Traces => traces::render(chunk, out),
    }
}

/// Writes the `"key":` of an object member, with the comma before it unless it is the first.
fn key(out: &mut Vec<u8>, first: &mut bool, name: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A JSON string, escaped as the agent's JSON writer (yyjson) does: `"`, `\` and control
/// characters only, `\u00XX` in upper case; other text as UTF-8.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let text = String::from_utf8_lossy(bytes);
    for &c in text.as_bytes() {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..0x20 => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

/// A 64-bit integer field: a decimal string, as the OTLP JSON mapping wants.
fn u64_string(out: &mut Vec<u8>, n: u64) {
    push_fmt(out, format_args!("\"{n}\""));
}

fn i64_string(out: &mut Vec<u8>, n: i64) {
    push_fmt(out, format_args!("\"{n}\""));
}

fn push_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    std::io::Write::write_fmt(out, args).expect("writing into a Vec cannot fail");
}

/// A double as yyjson writes it: the shortest text that reads back the same, in fixed notation
/// with at least one decimal when the decimal point falls within 21 digits, else as `1.5e300`.
/// NaN and the infinities, which JSON has no numbers for, are protobuf's strings.
fn double(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
        return;
    }
    if f.is_sign_negative() {
        out.push(b'-');
    }
    if f == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    let digits: Vec<u8> = mantissa.bytes().filter(|c| *c != b'.').collect();
    let dot = exponent + 1;
    if -6 < dot && dot <= 21 {
        if dot <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-dot) as usize));
            out.extend_from_slice(&digits);
        } else if dot as usize >= digits.len() {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', dot as usize - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..dot as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[dot as usize..]);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        push_fmt(out, format_args!("e{exponent}"));
    }
}

/// Standard base64 with padding: protobuf's JSON form of `bytes`.
fn base64(out: &mut Vec<u8>, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push(b'"');
    for group in bytes.chunks(3) {
        let n = (u32::from(group[0]) << 16)
            | (u32::from(*group.get(1).unwrap_or(&0)) << 8)
            | u32::from(*group.get(2).unwrap_or(&0));
        let chars = [18, 12, 6, 0].map(|shift| ALPHABET[(n >> shift & 0x3f) as usize]);
        out.extend_from_slice(&chars[..group.len() + 1]);
        out.extend(std::iter::repeat_n(b'=', 3 - group.len()));
    }
    out.push(b'"');
}

/// Lowercase hex: the OTLP JSON form of trace and span ids.
fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
    out.push(b'"');
}

/// A msgpack value as an OTLP `AnyValue`. Nil is the empty `AnyValue` `{}`, like the agent's;
/// an extension is its payload as bytes.
fn any_value(out: &mut Vec<u8>, value: &Value<'_>) {
    let mut first = true;
    out.push(b'{');
    match value {
        Value::Nil => {}
        Value::Bool(b) => {
            key(out, &mut first, "boolValue");
            out.extend_from_slice(if *b { b"true" } else { b"false" });
        }
        Value::Int(n) => {
            key(out, &mut first, "intValue");
            i64_string(out, *n);
        }
        Value::UInt(n) => match i64::try_from(*n) {
            Ok(n) => {
                key(out, &mut first, "intValue");
                i64_string(out, n);
            }
            Err(_) => {
                key(out, &mut first, "doubleValue");
                double(out, *n as f64);
            }
        },
        Value::Float(f) => {
            key(out, &mut first, "doubleValue");
            double(out, *f);
        }
        Value::Str(text) => {
            key(out, &mut first, "stringValue");
            string(out, text);
        }
        Value::Bin(bytes) | Value::Ext(_, bytes) => {
            key(out, &mut first, "bytesValue");
            base64(out, bytes);
        }
        Value::Array(items) => {
            key(out, &mut first, "arrayValue");
            out.extend_from_slice(b"{\"values\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                any_value(out, item);
            }
            out.extend_from_slice(b"]}");
        }
        Value::Map(entries) => {
            key(out, &mut first, "kvlistValue");
            out.extend_from_slice(b"{\"values\":");
            key_values(out, entries);
            out.push(b'}');
        }
    }
    out.push(b'}');
}

/// Map entries as an OTLP `KeyValue` list, in order; entries whose key is not a string have
/// no `KeyValue` form and are left out.
fn key_values(out: &mut Vec<u8>, entries: &[(Value<'_>, Value<'_>)]) {
    out.push(b'[');
    let mut first = true;
    for (k, v) in entries {
        let Value::Str(name) = k else { continue };
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"key\":");
        string(out, name);
        out.extend_from_slice(b",\"value\":");
        any_value(out, v);
        out.push(b'}');
    }
    out.push(b']');
}

/// Number of entries [`key_values`] writes.
fn key_value_count(entries: &[(Value<'_>, Value<'_>)]) -> usize {
    entries.iter().filter(|(k, _)| matches!(k, Value::Str(_))).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_are_written_like_yyjson() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (123456.0, "123456.0"),
            (1e20, "100000000000000000000.0"),
            (1e21, "1e21"),
            (1e22, "1e22"),
            (1.5e300, "1.5e300"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1.2345e-7, "1.2345e-7"),
            (std::f64::consts::PI, "3.141592653589793"),
            (1700000000.123456, "1700000000.123456"),
            (f64::NAN, "\"NaN\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ];
        for (f, expected) in cases {
            assert_eq!(text(|out| double(out, f)), expected, "writing {f:e}");
        }
    }

    #[test]
    fn strings_escape_like_yyjson() {
        assert_eq!(text(|out| string(out, b"a\"b\\c/\n\x01\x7f")), "\"a\\\"b\\\\c/\\n\\u0001\x7f\"");
        assert_eq!(text(|out| string(out, "é😀".as_bytes())), "\"é😀\"", "UTF-8 stays as it is");
        assert_eq!(text(|out| string(out, b"a\xffb")), "\"a\u{FFFD}b\"", "invalid UTF-8 is replaced");
    }

    #[test]
    fn base64_pads_like_protobuf() {
        assert_eq!(text(|out| base64(out, b"")), "\"\"");
        assert_eq!(text(|out| base64(out, b"f")), "\"Zg==\"");
        assert_eq!(text(|out| base64(out, b"fo")), "\"Zm8=\"");
        assert_eq!(text(|out| base64(out, b"foo")), "\"Zm9v\"");
        assert_eq!(text(|out| base64(out, b"\xff\xfe\xfd\xfc")), "\"//79/A==\"");
    }

    #[test]
    fn any_values_follow_the_otlp_json_mapping() {
        let value = Value::Map(vec![
            (Value::Str(b"s"), Value::Str(b"x")),
            (Value::Str(b"i"), Value::Int(-3)),
            (Value::Str(b"u"), Value::UInt(u64::MAX)),
            (Value::Str(b"a"), Value::Array(vec![Value::Bool(true), Value::Nil])),
            (Value::UInt(1), Value::Nil),
            (Value::Str(b"b"), Value::Bin(b"hi")),
        ]);
        assert_eq!(
            text(|out| any_value(out, &value)),
            concat!(
                r#"{"kvlistValue":{"values":[{"key":"s","value":{"stringValue":"x"}},"#,
                r#"{"key":"i","value":{"intValue":"-3"}},{"key":"u","value":{"doubleValue":18446744073709552000.0}},"#,
                r#"{"key":"a","value":{"arrayValue":{"values":[{"boolValue":true},{}]}}},"#,
                r#"{"key":"b","value":{"bytesValue":"aGk="}}]}}"#
            )
        );
    }
}

/// Whatever renders is JSON (proptest, `PROPTEST_CASES` per property): arbitrary bytes as each
/// kind, and generated contexts with arbitrary strings and floats (NaN, infinities, controls).
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;
    use crate::test_chunks::{metrics_context, traces_context};

    fn renders_json(kind: EventType, chunk: &[u8]) {
        let mut out = Vec::new();
        if render(kind, chunk, &mut out).is_ok()
            && let Err(err) = serde_json::from_slice::<serde_json::Value>(&out)
        {
            panic!("{kind:?} rendering is not JSON ({err}): {}", String::from_utf8_lossy(&out));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_render_json_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for kind in [EventType::Logs, EventType::Metrics, EventType::Traces] {
                renders_json(kind, &bytes);
            }
        }

        #[test]
        fn generated_contexts_render_json(label in "\\PC{0,8}|[\\x00-\\x1f\"\\\\]{0,4}", value in any::<f64>(), n in any::<i64>()) {
            let chunk = metrics_context(&["l"], &[(1, &[label.as_str()], value)]);
            renders_json(EventType::Metrics, &chunk);
            let chunk = traces_context(&[(label.as_str(), n)], 0);
            renders_json(EventType::Traces, &chunk);
        }

        #[test]
        fn records_render_json(text in "\\PC{0,12}", f in any::<f64>()) {
            // [[EventTime, {}], {"log": text, "f": f}]
            let mut chunk = vec![0x92, 0x92, 0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 0, 0x80, 0x82];
            crate::test_chunks::str(&mut chunk, "log");
            crate::test_chunks::str(&mut chunk, &text);
            crate::test_chunks::str(&mut chunk, "f");
            crate::test_chunks::float(&mut chunk, f);
            renders_json(EventType::Logs, &chunk);
        }
    }
}
