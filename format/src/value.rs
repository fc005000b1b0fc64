//! Msgpack values borrowed from a chunk, and their JSON rendering exactly as the agent does it.
//!
//! The rendering follows Fluent Bit's `msgpack2json` and `flb_utils_write_str` (5.1): the same
//! number formats, the same escapes, the same handling of duplicate keys and of bytes that are
//! not UTF-8, so a guest's output can be diffed against the agent's own outputs.

use crate::event::{Event, Timestamp};

/// One msgpack value. Strings, binaries and extension payloads borrow from the chunk.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Nil,
    Bool(bool),
    /// A negative integer (msgpack `int` types with a negative value).
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float (`float 32` values are widened, as the agent does).
    Float(f64),
    /// A msgpack `str`: UTF-8 by convention, not validated (see [`Value::as_str`]).
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(Vec<Value<'a>>),
    /// Entries in wire order; duplicate keys are kept.
    Map(Vec<(Value<'a>, Value<'a>)>),
    /// Extension type and payload.
    Ext(i8, &'a [u8]),
}

impl<'a> Value<'a> {
    /// The text of a `str` value, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::Str(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// The value under string key `key` of a map (the last one, if the key repeats).
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| matches!(k, Value::Str(bytes) if *bytes == key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Bin(_) => "a binary",
            Value::Array(_) => "an array",
            Value::Map(_) => "a map",
            Value::Ext(..) => "an extension",
        }
    }

    /// Appends this value as JSON, rendered like the agent's `msgpack2json`.
    /// `escape_unicode` mirrors the agent's `json.escape_unicode` (on by default).
    pub fn write_json(&self, out: &mut Vec<u8>, escape_unicode: bool) {
        match self {
            Value::Nil => out.extend_from_slice(b"null"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(n) => push_fmt(out, format_args!("{n}")),
            Value::UInt(n) => push_fmt(out, format_args!("{n}")),
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

/// Formats straight into `out`: no intermediate `String` for every number of every record.
fn push_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    std::io::Write::write_fmt(out, args).expect("writing into a Vec cannot fail");
}

/// `"%.1f"` for floats with an integral value in `long long` range, else `"%.16g"`.
fn write_float(out: &mut Vec<u8>, f: f64) {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_finite() && f.trunc() == f && (-TWO_POW_63..TWO_POW_63).contains(&f) {
        // An integral double in this range is exactly an i64: print that, not an exact float
        // conversion (which may take the slow bignum path).
        if f == 0.0 && f.is_sign_negative() {
            out.extend_from_slice(b"-0.0");
        } else {
            push_fmt(out, format_args!("{}.0", f as i64));
        }
    } else {
        out.extend_from_slice(format_g(f, 16).as_bytes());
    }
}

/// C's `printf("%.<precision>g", f)`.
pub(crate) fn format_g(f: f64, precision: usize) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    let precision = precision.max(1);
    // Round to `precision` significant digits first: the exponent is the rounded one.
    let sci = format!("{:.*e}", precision - 1, f);
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        // Fixed notation with `precision - 1 - exponent` decimals has exactly the digits of the
        // scientific form (the same rounding position), so move the point instead of
        // converting the float a second time.
        let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        let mut fixed = String::with_capacity(digits.len() + 8);
        fixed.push_str(sign);
        if exponent >= 0 {
            let whole = exponent as usize + 1;
            fixed.push_str(&digits[..whole]);
            if whole < digits.len() {
                fixed.push('.');
                fixed.push_str(&digits[whole..]);
            }
        } else {
            fixed.push_str("0.");
            fixed.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            fixed.push_str(&digits);
        }
        trim_fraction(&fixed).to_owned()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// The agent's JSON escapes for ASCII: short forms, `\u00XX` for other controls and DEL.
fn ascii_escape(c: u8) -> Option<&'static str> {
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b", "\\t", "\\n",
        "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014",
        "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e",
        "\\u001f",
    ];
    match c {
        0..=0x1f => Some(CONTROL[c as usize]),
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        0x7f => Some("\\u007f"),
        _ => None,
    }
}

/// Writes string bytes the way `flb_utils_write_str` does.
fn write_str(out: &mut Vec<u8>, bytes: &[u8], escape_unicode: bool) {
    let mut i = 0;
    while i < bytes.len() {
        // Fast path: a run of plain ASCII is copied as is.
        let run = bytes[i..].iter().take_while(|&&c| c < 0x80 && ascii_escape(c).is_none()).count();
        out.extend_from_slice(&bytes[i..i + run]);
        i += run;
        let Some(&c) = bytes.get(i) else { break };
        if let Some(escape) = ascii_escape(c) {
            out.extend_from_slice(escape.as_bytes());
            i += 1;
        } else if escape_unicode {
            i = write_escaped_sequence(out, bytes, i);
        } else {
            i = write_raw_sequence(out, bytes, i);
        }
    }
}

/// `json.escape_unicode off`: valid UTF-8 is copied, each invalid byte becomes U+FFFD.
fn write_raw_sequence(out: &mut Vec<u8>, bytes: &[u8], i: usize) -> usize {
    match utf8_validate_char(&bytes[i..]) {
        0 => {
            out.extend_from_slice("\u{FFFD}".as_bytes());
            i + 1
        }
        len => {
            out.extend_from_slice(&bytes[i..i + len]);
            i + len
        }
    }
}

/// `json.escape_unicode on` (the agent's default): a valid sequence becomes `\uXXXX` (a
/// surrogate pair above the BMP); a sequence cut short by the end of the string is dropped; the
/// bytes of an invalid sequence each become U+E0XX (XX the byte), written as UTF-8.
fn write_escaped_sequence(out: &mut Vec<u8>, bytes: &[u8], start: usize) -> usize {
    let announced = utf8_len(bytes[start]);
    if start + announced > bytes.len() {
        return start + 1;
    }
    let mut decoder = Utf8Decoder::default();
    // An invalid lead byte is taken alone; at an invalid continuation byte only the prefix
    // before it is taken, and the byte starts the next sequence.
    let rejected_at = (0..announced).find(|n| decoder.push(bytes[start + n]) == Step::Reject);
    let (len, valid) = match rejected_at {
        None => (announced, true),
        Some(0) => (1, false),
        Some(n) => (n, false),
    };
    let consumed = len;
    if valid {
        let cp = decoder.codepoint;
        if cp > 0xFFFF {
            let high = 0xD800 + ((cp - 0x10000) >> 10);
            let low = 0xDC00 + ((cp - 0x10000) & 0x3FF);
            push_fmt(out, format_args!("\\u{high:04x}\\u{low:04x}"));
        } else {
            push_fmt(out, format_args!("\\u{cp:04x}"));
        }
    } else {
        for &byte in &bytes[start..start + len] {
            out.extend_from_slice(&[0xEE, 0x80 | (byte >> 6), 0x80 | (byte & 0x3F)]);
        }
    }
    start + consumed
}

/// Length of the sequence a lead byte announces (`flb_utf8_len`): 1 for ASCII and stray
/// continuation bytes, up to 6 for the obsolete 5- and 6-byte forms.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0xBF => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        0xF8..=0xFB => 5,
        0xFC..=0xFF => 6,
    }
}

#[derive(PartialEq, Eq)]
enum Step {
    Accept,
    Reject,
    Continue,
}

/// `flb_utf8_decode`: a small state machine that rejects surrogates and code points above
/// U+10FFFF but, like the agent, not overlong forms.
#[derive(Default)]
struct Utf8Decoder {
    pending: u8,
    codepoint: u32,
}

impl Utf8Decoder {
    fn push(&mut self, byte: u8) -> Step {
        if self.pending == 0 {
            let (bits, pending) = match byte {
                0x00..=0x7F => {
                    self.codepoint = byte.into();
                    return Step::Accept;
                }
                b if b & 0xE0 == 0xC0 => (b & 0x1F, 1),
                b if b & 0xF0 == 0xE0 => (b & 0x0F, 2),
                b if b & 0xF8 == 0xF0 => (b & 0x07, 3),
                _ => return Step::Reject,
            };
            self.codepoint = bits.into();
            self.pending = pending;
            return Step::Continue;
        }
        if byte & 0xC0 != 0x80 {
            return Step::Reject;
        }
        self.codepoint = (self.codepoint << 6) | u32::from(byte & 0x3F);
        self.pending -= 1;
        if self.pending > 0 {
            return Step::Continue;
        }
        if (0xD800..=0xDFFF).contains(&self.codepoint) || self.codepoint > 0x10FFFF {
            return Step::Reject;
        }
        Step::Accept
    }
}

/// `flb_utf8_validate_char`: the length of the valid UTF-8 sequence at the start of `s`, or 0.
fn utf8_validate_char(s: &[u8]) -> usize {
    let Some(&c) = s.first() else { return 0 };
    let second = s.get(1).copied();
    let len = match c {
        0x00..=0x7F => return 1,
        c if c & 0xE0 == 0xC0 => {
            if c < 0xC2 {
                return 0;
            }
            2
        }
        c if c & 0xF0 == 0xE0 => {
            if c == 0xE0 && second.is_some_and(|b| b < 0xA0) || c == 0xED && second.is_some_and(|b| b >= 0xA0) {
                return 0;
            }
            3
        }
        c if c & 0xF8 == 0xF0 => {
            if c == 0xF0 && second.is_some_and(|b| b < 0x90)
                || c > 0xF4
                || c == 0xF4 && second.is_some_and(|b| b > 0x8F)
            {
                return 0;
            }
            4
        }
        _ => return 0,
    };
    if s.len() < len || s[1..len].iter().any(|b| b & 0xC0 != 0x80) {
        return 0;
    }
    len
}

/// How the `date` key of a JSON line shows the record's time (the agent's `json_date_format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DateFormat {
    /// Seconds as a float: `1700000000.123456`.
    #[default]
    Double,
    /// `2023-11-14 22:13:20.123456`
    JavaSqlTimestamp,
    /// `2023-11-14T22:13:20.123456Z`
    Iso8601,
    /// Whole seconds: `1700000000`.
    Epoch,
    /// Milliseconds: `1700000000123`.
    EpochMs,
}

impl std::str::FromStr for DateFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "double" => Ok(Self::Double),
            "java_sql_timestamp" => Ok(Self::JavaSqlTimestamp),
            "iso8601" => Ok(Self::Iso8601),
            "epoch" => Ok(Self::Epoch),
            "epoch_ms" => Ok(Self::EpochMs),
            _ => Err(format!("unknown date format {s:?} (double, java_sql_timestamp, iso8601, epoch, epoch_ms)")),
        }
    }
}

fn date_value(ts: Timestamp, format: DateFormat) -> Value<'static> {
    match format {
        DateFormat::Double => Value::Float(ts.as_f64()),
        DateFormat::Epoch => Value::UInt(ts.seconds as u64),
        DateFormat::EpochMs => {
            Value::UInt((ts.seconds as u64).wrapping_mul(1000).wrapping_add(u64::from(ts.nanoseconds / 1_000_000)))
        }
        DateFormat::JavaSqlTimestamp | DateFormat::Iso8601 => {
            unreachable!("formatted dates are rendered as text, see write_json_line")
        }
    }
}

/// UTC calendar fields of `seconds` since the epoch (proleptic Gregorian).
fn civil(seconds: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400) as u32;
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs / 3600, secs / 60 % 60, secs % 60)
}

fn formatted_date(ts: Timestamp, format: DateFormat) -> String {
    let (y, mo, d, h, mi, s) = civil(ts.seconds);
    let micros = ts.nanoseconds / 1000;
    match format {
        DateFormat::Iso8601 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z"),
        _ => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{micros:06}"),
    }
}

/// Appends `event` as one JSON line (with `\n`) exactly like the agent's `format json_lines`
/// (stdout, file and http outputs): the date under `date_key` (none if `None`), then
/// `__internal__` when the record has metadata or group attributes, then the body's keys.
pub fn write_json_line(
    out: &mut Vec<u8>,
    event: &Event<'_>,
    date_key: Option<&str>,
    date_format: DateFormat,
    escape_unicode: bool,
) {
    let date_text = match date_format {
        DateFormat::JavaSqlTimestamp | DateFormat::Iso8601 => formatted_date(event.timestamp, date_format),
        _ => String::new(),
    };
    let date = date_key.map(|key| {
        let value = match date_format {
            DateFormat::JavaSqlTimestamp | DateFormat::Iso8601 => Value::Str(date_text.as_bytes()),
            format => date_value(event.timestamp, format),
        };
        (Value::Str(key.as_bytes()), value)
    });

    let has_metadata = matches!(&event.metadata, Value::Map(m) if !m.is_empty());
    let has_group = matches!(&event.group_attributes, Some(Value::Map(m)) if !m.is_empty());
    let internal = (has_metadata || has_group).then(|| {
        let mut inner = Vec::with_capacity(2);
        if let Some(group) = &event.group_attributes {
            inner.push((Value::Str(b"group_attributes"), group.clone()));
        }
        inner.push((Value::Str(b"log_metadata"), event.metadata.clone()));
        (Value::Str(b"__internal__"), Value::Map(inner))
    });

    let log_key = Value::Str(b"log");
    let body: Box<dyn Iterator<Item = (&Value<'_>, &Value<'_>)> + '_> = match &event.body {
        Value::Map(entries) => Box::new(entries.iter().map(|(k, v)| (k, v))),
        other => Box::new(std::iter::once((&log_key, other))),
    };
    let entries: Vec<(&Value<'_>, &Value<'_>)> =
        date.iter().chain(internal.iter()).map(|(k, v)| (k, v)).chain(body).collect();
    write_map(out, entries.iter().copied(), escape_unicode);
    out.push(b'\n');
}

#[cfg(test)]
mod float_reference {
    use proptest::prelude::*;

    use super::*;

    /// The straightforward `%.16g` / `%.1f` (two exact conversions), which the faster code
    /// above must match.
    fn reference(f: f64) -> String {
        const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
        if f.is_finite() && f.trunc() == f && (-TWO_POW_63..TWO_POW_63).contains(&f) {
            return format!("{f:.1}");
        }
        if !f.is_finite() {
            return format_g(f, 16);
        }
        let sci = format!("{f:.15e}");
        let exponent: i32 = sci.split_once('e').unwrap().1.parse().unwrap();
        if !(-4..16).contains(&exponent) {
            return format_g(f, 16);
        }
        let decimals = (15 - exponent) as usize;
        trim_fraction(&format!("{f:.decimals$}")).to_owned()
    }

    fn rendered(f: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, f);
        String::from_utf8(out).unwrap()
    }

    proptest! {
        #[test]
        fn floats_match_the_two_conversion_reference(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assert_eq!(rendered(f), reference(f), "bits {:016x}", bits);
        }

        #[test]
        fn everyday_floats_match_the_reference(whole in -1_000_000_000_000i64..1_000_000_000_000, frac in 0u32..1_000_000, scale in -6i32..6) {
            let f = (whole as f64 + f64::from(frac) / 1e6) * 10f64.powi(scale);
            prop_assert_eq!(rendered(f), reference(f), "{:e}", f);
        }
    }
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
    fn floats_render_like_printf() {
        let cases = [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (1700000000.123456, "1700000000.123456"),
            (1e20, "1e+20"),
            (1.0e300, "1e+300"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (std::f64::consts::PI, "3.141592653589793"),
            (2.0f32 as f64 / 3.0, "0.6666666666666666"),
            (9.223372036854776e18, "9.223372036854776e+18"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
        ];
        for (f, expected) in cases {
            assert_eq!(json(&Value::Float(f)), expected, "rendering {f:?}");
        }
    }

    #[test]
    fn strings_escape_like_the_agent() {
        let cases: [(&[u8], bool, &str); 9] = [
            (b"tab\there \"q\" \\ /", true, r#""tab\there \"q\" \\ /""#),
            (b"\x00\x01\x08\x0b\x0c\x7f", true, r#""\u0000\u0001\b\u000b\f\u007f""#),
            ("ünï".as_bytes(), true, r#""\u00fc\u006e\u00ef""#.replace("\\u006e", "n").leak()),
            ("ünï".as_bytes(), false, "\"ünï\""),
            ("😀".as_bytes(), true, r#""\ud83d\ude00""#),
            // 0xff announces a 6-byte sequence: with fewer bytes left the agent drops it...
            (b"a\xffb", true, "\"ab\""),
            // ...with enough left, the decoder rejects it and maps the byte to U+E0FF.
            (b"a\xffbcdefg", true, "\"a\u{E0FF}bcdefg\""),
            (b"a\xffb", false, "\"a\u{FFFD}b\""),
            // A lead byte cut short by the end is dropped; the stray continuation byte after it
            // is invalid on its own.
            (b"cut\xe2\x82", true, "\"cut\u{E082}\""),
        ];
        for (bytes, escape, expected) in cases {
            let mut out = Vec::new();
            Value::Str(bytes).write_json(&mut out, escape);
            assert_eq!(String::from_utf8_lossy(&out), expected, "rendering {bytes:?} (escape_unicode {escape})");
        }
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

    #[test]
    fn calendar_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        let ts = Timestamp { seconds: 1_700_000_000, nanoseconds: 123_456_789 };
        assert_eq!(formatted_date(ts, DateFormat::Iso8601), "2023-11-14T22:13:20.123456Z");
        assert_eq!(formatted_date(ts, DateFormat::JavaSqlTimestamp), "2023-11-14 22:13:20.123456");
    }
}
