//! Strings as the agent escapes them (`flb_utils_write_str`): short escapes and `\u00XX` for
//! ASCII controls, `\uXXXX` (surrogate pairs included) for non-ASCII when `escape_unicode` is
//! on, and the agent's own treatment of bytes that are not UTF-8.

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
pub(crate) fn write_str(out: &mut Vec<u8>, bytes: &[u8], escape_unicode: bool) {
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

pub(crate) fn write_quoted(out: &mut Vec<u8>, text: &[u8], escape_unicode: bool) {
    out.push(b'"');
    write_str(out, text, escape_unicode);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

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
            write_quoted(&mut out, bytes, escape);
            assert_eq!(String::from_utf8_lossy(&out), expected, "rendering {bytes:?} (escape_unicode {escape})");
        }
    }
}
