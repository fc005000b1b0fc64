//! Record times as the agent's `json_date_format` shows them.

use crate::event::Timestamp;
use crate::value::Value;

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

pub(crate) fn date_value(ts: Timestamp, format: DateFormat) -> Value<'static> {
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

pub(crate) fn formatted_date(ts: Timestamp, format: DateFormat) -> String {
    let (y, mo, d, h, mi, s) = civil(ts.seconds);
    let micros = ts.nanoseconds / 1000;
    match format {
        DateFormat::Iso8601 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z"),
        _ => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{micros:06}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
