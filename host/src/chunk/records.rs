//! Counting the records of a chunk without decoding them, for `fluentbit_wasm_records_total`.
//!
//! A chunk is a sequence of msgpack records, `[[time, metadata], body]` or `[time, body]`;
//! group markers (time -1 / -2, or EventTime seconds 2^32-1 / 2^32-2) are not records. The
//! count skips over each record's values with a counter of values still to skip, so it needs
//! no stack however deep a body nests (the flush path runs on a 64 KiB coroutine stack).

/// The number of records in `chunk`; a malformed chunk counts the records before the fault.
pub fn count(chunk: &[u8]) -> u64 {
    let mut at = 0;
    let mut records = 0;
    while at < chunk.len() {
        match record(chunk, at) {
            Some((next, marker)) => {
                records += u64::from(!marker);
                at = next;
            }
            None => break,
        }
    }
    records
}

/// Skips the record at `at`; returns where the next one starts and whether it is a group marker.
fn record(chunk: &[u8], at: usize) -> Option<(usize, bool)> {
    let (len, mut at) = array_header(chunk, at)?;
    if len != 2 {
        return None;
    }
    let time_at = match array_header(chunk, at) {
        // `[[time, metadata], body]`: the time is the header's first value.
        Some((2, inner)) => inner,
        Some(_) => return None,
        None => at,
    };
    let marker = is_group_marker(chunk, time_at);
    at = skip(chunk, at)?; // the header, or the time
    at = skip(chunk, at)?; // the body
    Some((at, marker))
}

fn array_header(chunk: &[u8], at: usize) -> Option<(usize, usize)> {
    match *chunk.get(at)? {
        b @ 0x90..=0x9f => Some((usize::from(b & 0x0f), at + 1)),
        0xdc => Some((be(chunk, at + 1, 2)?, at + 3)),
        0xdd => Some((be(chunk, at + 1, 4)?, at + 5)),
        _ => None,
    }
}

fn is_group_marker(chunk: &[u8], at: usize) -> bool {
    match chunk.get(at..) {
        // fixext 8 of type 0 (EventTime) with seconds 2^32-1 or 2^32-2 and no nanoseconds.
        Some([0xd7, 0x00, 0xff, 0xff, 0xff, 0xff | 0xfe, 0, 0, 0, 0, ..]) => true,
        // Negative fixint -1 / -2.
        Some([0xff | 0xfe, ..]) => true,
        _ => false,
    }
}

/// A big-endian unsigned integer of `n` bytes at `at`.
fn be(chunk: &[u8], at: usize, n: usize) -> Option<usize> {
    let bytes = chunk.get(at..at.checked_add(n)?)?;
    Some(bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)))
}

/// Skips one value (with everything nested in it) at `at`; returns where the next starts.
///
/// The common markers (fixint, fixstr, fixmap, fixarray, nil, booleans) take the fast arm; a
/// position past the end is caught by the next read or the final check, so the fast arm needs
/// no bounds arithmetic.
fn skip(chunk: &[u8], mut at: usize) -> Option<usize> {
    let mut pending: usize = 1;
    while pending > 0 {
        pending -= 1;
        let marker = *chunk.get(at)?;
        match marker {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => at += 1,
            0xa0..=0xbf => at += 1 + usize::from(marker & 0x1f),
            0x80..=0x8f => {
                at += 1;
                pending += usize::from(marker & 0x0f) * 2;
            }
            0x90..=0x9f => {
                at += 1;
                pending += usize::from(marker & 0x0f);
            }
            _ => {
                let (header, payload, values) = sized(chunk, at, marker)?;
                at = at.checked_add(header)?.checked_add(payload)?;
                // Every value takes at least one byte: a count past what is left is malformed.
                pending = pending.checked_add(values).filter(|p| *p <= chunk.len().saturating_sub(at))?;
            }
        }
    }
    (at <= chunk.len()).then_some(at)
}

/// Header bytes, payload bytes and nested values of a value whose marker has a size field or
/// a fixed payload.
fn sized(chunk: &[u8], at: usize, marker: u8) -> Option<(usize, usize, usize)> {
    Some(match marker {
        0xcc | 0xd0 => (1, 1, 0),
        0xcd | 0xd1 => (1, 2, 0),
        0xce | 0xd2 | 0xca => (1, 4, 0),
        0xcf | 0xd3 | 0xcb => (1, 8, 0),
        0xd4 => (2, 1, 0),
        0xd5 => (2, 2, 0),
        0xd6 => (2, 4, 0),
        0xd7 => (2, 8, 0),
        0xd8 => (2, 16, 0),
        0xc4 | 0xd9 => (2, be(chunk, at + 1, 1)?, 0),
        0xc5 | 0xda => (3, be(chunk, at + 1, 2)?, 0),
        0xc6 | 0xdb => (5, be(chunk, at + 1, 4)?, 0),
        0xc7 => (3, be(chunk, at + 1, 1)?, 0),
        0xc8 => (4, be(chunk, at + 1, 2)?, 0),
        0xc9 => (6, be(chunk, at + 1, 4)?, 0),
        0xdc => (3, 0, be(chunk, at + 1, 2)?),
        0xdd => (5, 0, be(chunk, at + 1, 4)?),
        0xde => (3, 0, be(chunk, at + 1, 2)?.checked_mul(2)?),
        0xdf => (5, 0, be(chunk, at + 1, 4)?.checked_mul(2)?),
        // 0xc1 is never used; the fast arm took every other marker.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[[EventTime(1700000000.5), {"m":1}], {"k":"v"}]`
    const WITH_METADATA: &[u8] = b"\x92\x92\xd7\x00\x65\x53\xf1\x00\x1d\xcd\x65\x00\x81\xa1m\x01\x81\xa1k\xa1v";
    /// `[1700000000, {"k":[1,{"a":[]}]}]`
    const FORWARD_NESTED: &[u8] = b"\x92\xce\x65\x53\xf1\x00\x81\xa1k\x92\x01\x81\xa1a\x90";
    /// Group start `[[EventTime(2^32-1, 0), {}], {"g":1}]` and end `[[-2, {}], {}]`.
    const GROUP_START: &[u8] = b"\x92\x92\xd7\x00\xff\xff\xff\xff\x00\x00\x00\x00\x80\x81\xa1g\x01";
    const GROUP_END: &[u8] = b"\x92\x92\xfe\x80\x80";

    #[test]
    fn counts_records_of_both_layouts_and_not_group_markers() {
        let chunk = [GROUP_START, WITH_METADATA, FORWARD_NESTED, GROUP_END, WITH_METADATA].concat();
        assert_eq!(count(&chunk), 3);
        assert_eq!(count(&[]), 0);
    }

    #[test]
    fn a_malformed_chunk_counts_the_records_before_the_fault() {
        let mut chunk = [WITH_METADATA, WITH_METADATA].concat();
        chunk.truncate(chunk.len() - 1);
        assert_eq!(count(&chunk), 1, "the cut record is not counted");
        // An array claiming 2^32-1 entries in a few bytes is refused, not looped over.
        assert_eq!(count(b"\x92\xce\x65\x53\xf1\x00\xdd\xff\xff\xff\xff"), 0);
        assert_eq!(count(b"\xc1"), 0);
    }
}
