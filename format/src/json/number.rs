//! Numbers as the agent prints them: `%.1f` for integral floats in `long long` range, `%.16g`
//! otherwise, integers in decimal; formatted straight into the output.

/// Formats straight into `out`: no intermediate `String` for every number of every record.
pub(crate) fn push_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    std::io::Write::write_fmt(out, args).expect("writing into a Vec cannot fail");
}

/// `"%.1f"` for floats with an integral value in `long long` range, else `"%.16g"`.
pub(crate) fn write_float(out: &mut Vec<u8>, f: f64) {
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
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
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

pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
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

    fn rendered(f: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, f);
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
            assert_eq!(rendered(f), expected, "rendering {f:?}");
        }
    }
}
