//! Msgpack values borrowed from a chunk, and their JSON rendering exactly as the agent does it.
//!
//! The rendering follows Fluent Bit's `msgpack2json` and `flb_utils_write_str` (5.1): the same
//! number formats, the same escapes, the same handling of duplicate keys and of bytes that are
//! not UTF-8, so a guest's output can be diffed against the agent's own outputs.

use crate::event::{DecodeError, Event, Events, Timestamp};
use crate::msgpack::{Reader, Token};

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
            write_i64(out, f as i64);
            out.extend_from_slice(b".0");
        }
    } else if !write_fixed_g16(out, f) {
        out.extend_from_slice(format_g(f, 16).as_bytes());
    }
}

/// Decimal digits of `n`, without going through `core::fmt`.
fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

const POW10: [u128; 21] = {
    let mut table = [1u128; 21];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// `%.16g` of a finite, non-integral `f` whose rounded decimal exponent is -4 to 15, the range
/// `%g` prints in fixed notation, which covers the floats of everyday records. Exact with
/// integers: `|f| = m / 2^s`, and its 16 significant digits are `m * 10^p / 2^s` rounded half
/// to even (like glibc), with `p = 15 - exponent`; `m * 10^p` fits in 117 bits. Returns false,
/// writing nothing, for other floats.
fn write_fixed_g16(out: &mut Vec<u8>, f: f64) -> bool {
    const LOW: u128 = 1_000_000_000_000_000;
    const HIGH: u128 = 10 * LOW;
    let bits = f.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    // Subnormals, infinities and NaN are far outside the range.
    if biased == 0 || biased == 0x7ff {
        return false;
    }
    let m = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    let s = 1075 - biased;
    if !(1..=100).contains(&s) {
        return false;
    }
    // floor(log10 |f|) is this or one more (78913 / 2^18 is log10(2) rounded down).
    let mut exponent = ((biased - 1023) * 78913) >> 18;
    let mut tries = 0;
    let (mut digits, remainder) = loop {
        let Ok(p) = usize::try_from(15 - exponent) else { return false };
        let Some(&scale) = POW10.get(p) else { return false };
        let scaled = m * scale;
        let digits = scaled >> s;
        tries += 1;
        if digits >= HIGH && tries < 3 {
            exponent += 1;
            continue;
        }
        if digits < LOW && tries < 3 {
            exponent -= 1;
            continue;
        }
        break (digits, scaled & ((1u128 << s) - 1));
    };
    let half = 1u128 << (s - 1);
    if remainder > half || remainder == half && digits % 2 == 1 {
        digits += 1;
        if digits == HIGH {
            digits = LOW;
            exponent += 1;
        }
    }
    if !(LOW..HIGH).contains(&digits) || !(-4..=15).contains(&exponent) {
        return false;
    }
    let mut text = [0u8; 16];
    let mut n = digits as u64;
    for slot in text.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let significant = 16 - text.iter().rev().take_while(|d| **d == b'0').count();
    if bits >> 63 == 1 {
        out.push(b'-');
    }
    if exponent >= 0 {
        let whole = exponent as usize + 1;
        out.extend_from_slice(&text[..whole]);
        if significant > whole {
            out.push(b'.');
            out.extend_from_slice(&text[whole..significant]);
        }
    } else {
        out.extend_from_slice(b"0.");
        out.extend_from_slice(&b"000"[..(-exponent - 1) as usize]);
        out.extend_from_slice(&text[..significant]);
    }
    true
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
    let mut rest = bytes;
    loop {
        // Fast path: a run of plain ASCII is copied as is.
        let run = plain_run(rest);
        let (plain, tail) = rest.split_at(run);
        out.extend_from_slice(plain);
        let Some(&c) = tail.first() else { break };
        let taken = if let Some(escape) = ascii_escape(c) {
            out.extend_from_slice(escape.as_bytes());
            1
        } else if escape_unicode {
            write_escaped_sequence(out, tail, 0)
        } else {
            write_raw_sequence(out, tail, 0)
        };
        rest = &tail[taken..];
    }
}

/// Bytes copied into a JSON string as they are: printable ASCII but `"` and `\\`.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0x20;
    while c < 0x7f {
        table[c] = c != b'"' as usize && c != b'\\' as usize;
        c += 1;
    }
    table
};

/// Length of the run of [`PLAIN`] bytes at the start of `s`: 16 bytes a step with SIMD128 in
/// wasm, 8 a step in a `u64` elsewhere, then byte by byte.
fn plain_run(s: &[u8]) -> usize {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let mut done = {
        let done = simd::plain_run_16(s);
        if done + 16 <= s.len() {
            return done;
        }
        done
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let mut done = 0;
    while let Some(word) = s.get(done..done + 8) {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let special = special_bytes(word);
        if special != 0 {
            return done + (special.trailing_zeros() / 8) as usize;
        }
        done += 8;
    }
    done + s[done..].iter().take_while(|&&c| PLAIN[c as usize]).count()
}

/// The high bit of each byte of `word` that is not [`PLAIN`]. A false mark can only follow a
/// true one (a borrow moves up, never down), so the lowest mark is always exact.
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    control
        | (word & HIGHS)
        | zero_in(word ^ (ONES * 0x7f))
        | zero_in(word ^ (ONES * u64::from(b'"')))
        | zero_in(word ^ (ONES * u64::from(b'\\')))
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::*;

    /// Bytes before the first non-plain one, in whole 16-byte blocks: stops at the first
    /// block that has one (returning its exact position) or at the last whole block.
    pub fn plain_run_16(s: &[u8]) -> usize {
        let mut done = 0;
        while let Some(block) = s.get(done..done + 16) {
            // SAFETY: `block` is 16 readable bytes; `v128_load` needs no alignment.
            let v = unsafe { v128_load(block.as_ptr().cast::<v128>()) };
            let special = v128_or(
                v128_or(u8x16_lt(v, u8x16_splat(0x20)), u8x16_ge(v, u8x16_splat(0x7f))),
                v128_or(u8x16_eq(v, u8x16_splat(b'"')), u8x16_eq(v, u8x16_splat(b'\\'))),
            );
            let mask = u8x16_bitmask(special);
            if mask != 0 {
                return done + mask.trailing_zeros() as usize;
            }
            done += 16;
        }
        done
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
            push_u_escape(out, high);
            push_u_escape(out, low);
        } else {
            push_u_escape(out, cp);
        }
    } else {
        for &byte in &bytes[start..start + len] {
            out.extend_from_slice(&[0xEE, 0x80 | (byte >> 6), 0x80 | (byte & 0x3F)]);
        }
    }
    start + consumed
}

/// `\\u` and four lowercase hex digits of `unit` (below 0x10000).
fn push_u_escape(out: &mut Vec<u8>, unit: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let nibble = |shift: u32| HEX[((unit >> shift) & 0xf) as usize];
    out.extend_from_slice(&[b'\\', b'u', nibble(12), nibble(8), nibble(4), nibble(0)]);
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
    let mut entries = Vec::new();
    let line = LineHead { date_key, date_format, escape_unicode };
    let object = line.write(out, &mut entries, event.timestamp, &event.metadata, event.group_attributes.as_ref());
    match &event.body {
        Value::Map(body) => {
            for (key, value) in body {
                object.key(out, &mut entries, str_key(key));
                key.write_json(out, escape_unicode);
                out.push(b':');
                value.write_json(out, escape_unicode);
                object.value_end(out, &mut entries);
            }
        }
        other => {
            object.key(out, &mut entries, Some(b"log"));
            out.extend_from_slice(b"\"log\":");
            other.write_json(out, escape_unicode);
            object.value_end(out, &mut entries);
        }
    }
    object.close(out, &mut entries);
    out.push(b'\n');
}

/// Like [`write_json_line`] for the record whose header `events` has just read: the body is
/// rendered straight from the chunk's msgpack, without building [`Value`]s. On a malformed
/// body, `out` is left as it was and the error is the one [`Events`] gives for these bytes.
pub(crate) fn render_json_line<'a>(
    out: &mut Vec<u8>,
    entries: &mut Vec<Entry<'a>>,
    events: &mut Events<'a>,
    (timestamp, metadata): (Timestamp, Value<'a>),
    line: &LineHead<'a>,
) -> Result<(), DecodeError> {
    let start = out.len();
    let (reader, group) = events.parts();
    let object = line.write(out, entries, timestamp, &metadata, group);
    let body = reader.check_depth(0).and_then(|()| reader.token()).and_then(|token| match token {
        Token::Map(len) => render_entries(reader, len, &object, out, line.escape_unicode, 0, entries),
        token => {
            object.key(out, entries, Some(b"log"));
            out.extend_from_slice(b"\"log\":");
            render_token(reader, token, out, line.escape_unicode, 0, entries)?;
            object.value_end(out, entries);
            Ok(())
        }
    });
    if let Err(err) = body {
        out.truncate(start);
        entries.clear();
        return Err(err);
    }
    object.close(out, entries);
    out.push(b'\n');
    Ok(())
}

/// What comes before a record's body in its JSON line.
pub(crate) struct LineHead<'k> {
    pub date_key: Option<&'k str>,
    pub date_format: DateFormat,
    pub escape_unicode: bool,
}

impl<'k> LineHead<'k> {
    /// Opens the line's object and writes its date and `__internal__` entries.
    fn write(
        &self,
        out: &mut Vec<u8>,
        entries: &mut Vec<Entry<'k>>,
        timestamp: Timestamp,
        metadata: &Value<'_>,
        group: Option<&Value<'_>>,
    ) -> ObjectWriter {
        let object = ObjectWriter::open(out, entries);
        if let Some(key) = self.date_key {
            object.key(out, entries, Some(key.as_bytes()));
            Value::Str(key.as_bytes()).write_json(out, self.escape_unicode);
            out.push(b':');
            match self.date_format {
                DateFormat::JavaSqlTimestamp | DateFormat::Iso8601 => {
                    let text = formatted_date(timestamp, self.date_format);
                    Value::Str(text.as_bytes()).write_json(out, self.escape_unicode);
                }
                format => date_value(timestamp, format).write_json(out, self.escape_unicode),
            }
            object.value_end(out, entries);
        }
        let has_metadata = matches!(metadata, Value::Map(m) if !m.is_empty());
        let has_group = matches!(group, Some(Value::Map(m)) if !m.is_empty());
        if has_metadata || has_group {
            object.key(out, entries, Some(b"__internal__"));
            out.extend_from_slice(b"\"__internal__\":{");
            if let Some(group) = group {
                out.extend_from_slice(b"\"group_attributes\":");
                group.write_json(out, self.escape_unicode);
                out.push(b',');
            }
            out.extend_from_slice(b"\"log_metadata\":");
            metadata.write_json(out, self.escape_unicode);
            out.push(b'}');
            object.value_end(out, entries);
        }
        object
    }
}

fn str_key<'k>(key: &Value<'k>) -> Option<&'k [u8]> {
    match key {
        Value::Str(bytes) => Some(bytes),
        _ => None,
    }
}

/// One entry of an object being written: its string key (`None` for other keys, which are
/// never merged) and where its `"key":value` text lies in the output.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'k> {
    key: Option<&'k [u8]>,
    start: usize,
    end: usize,
}

/// A JSON object written entry by entry as the msgpack map is read. Like the agent, an entry
/// whose string key comes again later in the same map is left out (the last one wins, in its
/// own position): entries are recorded in a stack shared by nested objects, and the rare
/// object with a repeated key is rewritten when it closes.
pub(crate) struct ObjectWriter {
    /// Offset just after the `{`.
    open: usize,
    /// This object's first entry in the stack.
    base: usize,
}

impl ObjectWriter {
    fn open(out: &mut Vec<u8>, entries: &[Entry<'_>]) -> Self {
        out.push(b'{');
        Self { open: out.len(), base: entries.len() }
    }

    /// Starts an entry; its key and value are written next.
    fn key<'k>(&self, out: &mut Vec<u8>, entries: &mut Vec<Entry<'k>>, key: Option<&'k [u8]>) {
        if entries.len() > self.base {
            out.push(b',');
        }
        entries.push(Entry { key, start: out.len(), end: out.len() });
    }

    fn value_end(&self, out: &[u8], entries: &mut [Entry<'_>]) {
        if let Some(entry) = entries.last_mut() {
            entry.end = out.len();
        }
    }

    fn close(self, out: &mut Vec<u8>, entries: &mut Vec<Entry<'_>>) {
        let mine = &entries[self.base..];
        let repeated =
            |i: usize| mine[i].key.is_some_and(|key| mine[i + 1..].iter().any(|later| later.key == Some(key)));
        if (0..mine.len()).any(repeated) {
            let text = out.split_off(self.open);
            let mut written = 0;
            for (i, entry) in mine.iter().enumerate() {
                if repeated(i) {
                    continue;
                }
                if written > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&text[entry.start - self.open..entry.end - self.open]);
                written += 1;
            }
        }
        entries.truncate(self.base);
        out.push(b'}');
    }
}

/// Renders the next value of `reader` as JSON in place; fails where [`Reader::value`] would.
fn render_next<'a>(
    reader: &mut Reader<'a>,
    out: &mut Vec<u8>,
    escape_unicode: bool,
    depth: usize,
    entries: &mut Vec<Entry<'a>>,
) -> Result<(), DecodeError> {
    reader.check_depth(depth)?;
    if let Some(text) = reader.fixstr() {
        write_quoted(out, text, escape_unicode);
        return Ok(());
    }
    if let Some(n) = reader.fixint() {
        write_u64(out, n.into());
        return Ok(());
    }
    let token = reader.token()?;
    render_token(reader, token, out, escape_unicode, depth, entries)
}

fn write_quoted(out: &mut Vec<u8>, text: &[u8], escape_unicode: bool) {
    out.push(b'"');
    write_str(out, text, escape_unicode);
    out.push(b'"');
}

fn render_token<'a>(
    reader: &mut Reader<'a>,
    token: Token<'a>,
    out: &mut Vec<u8>,
    escape_unicode: bool,
    depth: usize,
    entries: &mut Vec<Entry<'a>>,
) -> Result<(), DecodeError> {
    match token {
        Token::Scalar(value) => value.write_json(out, escape_unicode),
        Token::Array(len) => {
            out.push(b'[');
            for i in 0..len {
                if i > 0 {
                    out.push(b',');
                }
                render_next(reader, out, escape_unicode, depth + 1, entries)?;
            }
            out.push(b']');
        }
        Token::Map(len) => {
            let object = ObjectWriter::open(out, entries);
            render_entries(reader, len, &object, out, escape_unicode, depth, entries)?;
            object.close(out, entries);
        }
    }
    Ok(())
}

/// The `len` entries of a map at `depth` into `object`.
fn render_entries<'a>(
    reader: &mut Reader<'a>,
    len: usize,
    object: &ObjectWriter,
    out: &mut Vec<u8>,
    escape_unicode: bool,
    depth: usize,
    entries: &mut Vec<Entry<'a>>,
) -> Result<(), DecodeError> {
    for _ in 0..len {
        reader.check_depth(depth + 1)?;
        if let Some(key) = reader.fixstr() {
            object.key(out, entries, Some(key));
            write_quoted(out, key, escape_unicode);
        } else {
            render_key(reader, object, out, escape_unicode, depth, entries)?;
        }
        out.push(b':');
        render_next(reader, out, escape_unicode, depth + 1, entries)?;
        object.value_end(out, entries);
    }
    Ok(())
}

/// A key that is not a `fixstr`, for [`render_entries`].
fn render_key<'a>(
    reader: &mut Reader<'a>,
    object: &ObjectWriter,
    out: &mut Vec<u8>,
    escape_unicode: bool,
    depth: usize,
    entries: &mut Vec<Entry<'a>>,
) -> Result<(), DecodeError> {
    match reader.token()? {
        Token::Scalar(key) => {
            object.key(out, entries, str_key(&key));
            key.write_json(out, escape_unicode);
        }
        key => {
            object.key(out, entries, None);
            render_token(reader, key, out, escape_unicode, depth + 1, entries)?;
        }
    }
    Ok(())
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
        fn fixed_notation_floats_match_the_reference(mantissa in any::<u64>(), exponent in -16i32..54, negative in any::<bool>()) {
            // Every binade the integer fast path prints (|f| from 1e-5 to 2^54), the whole
            // mantissa random: ties and carries into the next power of ten included.
            let bits = (u64::from(negative) << 63) | (((exponent + 1023) as u64) << 52) | (mantissa >> 12);
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
            // Exact ties at the 16th digit round to even, like glibc.
            (1234567890123456.5, "1234567890123456"),
            (1234567890123457.5, "1234567890123458"),
            (0.0001, "0.0001"),
            (0.00009999999999999999, "9.999999999999999e-05"),
            (42.125, "42.125"),
            (-1_700_000_000.123_456_7, "-1700000000.123457"),
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
