//! Metrics and traces contexts written the way cmetrics and ctraces encode them, for tests.

use rmp::encode;

pub fn str(out: &mut Vec<u8>, s: &str) {
    encode::write_str(out, s).unwrap();
}

pub fn map(out: &mut Vec<u8>, len: u32) {
    encode::write_map_len(out, len).unwrap();
}

pub fn array(out: &mut Vec<u8>, len: u32) {
    encode::write_array_len(out, len).unwrap();
}

pub fn uint(out: &mut Vec<u8>, n: u64) {
    encode::write_uint(out, n).unwrap();
}

pub fn float(out: &mut Vec<u8>, f: f64) {
    encode::write_f64(out, f).unwrap();
}

/// A metric's samples for [`metrics_context`]: `(timestamp, labels, value)`.
pub type Samples<'s> = &'s [(u64, &'s [&'s str], f64)];

/// A cmetrics context with one gauge family `ns_name` (label names `labels`), one histogram
/// (bounds 1 and 2) and one summary (quantiles 0.5 and 0.9), as `cmt_encode_msgpack` writes it.
pub fn metrics_context(labels: &[&str], samples: Samples<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    map(&mut out, 2);
    str(&mut out, "meta");
    map(&mut out, 3);
    str(&mut out, "cmetrics");
    map(&mut out, 0);
    str(&mut out, "external");
    map(&mut out, 0);
    str(&mut out, "processing");
    map(&mut out, 1);
    str(&mut out, "static_labels");
    array(&mut out, 1);
    array(&mut out, 2);
    str(&mut out, "env");
    str(&mut out, "test");
    str(&mut out, "metrics");
    array(&mut out, 3);

    family_header(&mut out, 1, labels, |_| {});
    array(&mut out, samples.len() as u32);
    for (ts, values, value) in samples {
        map(&mut out, if values.is_empty() { 3 } else { 4 });
        str(&mut out, "ts");
        uint(&mut out, *ts);
        str(&mut out, "value");
        float(&mut out, *value);
        if !values.is_empty() {
            str(&mut out, "labels");
            array(&mut out, values.len() as u32);
            for v in *values {
                str(&mut out, v);
            }
        }
        str(&mut out, "hash");
        uint(&mut out, 42);
    }

    family_header(&mut out, 2, &[], |out| {
        str(out, "buckets");
        array(out, 2);
        float(out, 1.0);
        float(out, 2.0);
        str(out, "aggregation_type");
        uint(out, 2);
    });
    array(&mut out, 1);
    map(&mut out, 3);
    str(&mut out, "ts");
    uint(&mut out, 1_700_000_000_000_000_000);
    str(&mut out, "histogram");
    map(&mut out, 3);
    str(&mut out, "buckets");
    array(&mut out, 3);
    for n in [1, 2, 3] {
        uint(&mut out, n);
    }
    str(&mut out, "sum");
    float(&mut out, 7.5);
    str(&mut out, "count");
    uint(&mut out, 6);
    str(&mut out, "hash");
    uint(&mut out, 7);

    family_header(&mut out, 3, &[], |out| {
        str(out, "quantiles");
        array(out, 2);
        float(out, 0.5);
        float(out, 0.9);
    });
    array(&mut out, 1);
    map(&mut out, 3);
    str(&mut out, "ts");
    uint(&mut out, 1_700_000_000_000_000_000);
    str(&mut out, "summary");
    map(&mut out, 4);
    str(&mut out, "quantiles_set");
    uint(&mut out, 1);
    str(&mut out, "quantiles");
    array(&mut out, 2);
    uint(&mut out, 0.25f64.to_bits());
    uint(&mut out, 0.75f64.to_bits());
    str(&mut out, "count");
    uint(&mut out, 4);
    str(&mut out, "sum");
    uint(&mut out, 2.5f64.to_bits());
    str(&mut out, "hash");
    uint(&mut out, 9);
    out
}

fn family_header(out: &mut Vec<u8>, kind: u64, labels: &[&str], extra: impl FnOnce(&mut Vec<u8>)) {
    let mut extra_fields = Vec::new();
    extra(&mut extra_fields);
    let extra_count = match kind {
        2 => 2,
        3 => 1,
        _ => 0,
    };
    map(out, 2);
    str(out, "meta");
    map(out, 4 + extra_count);
    str(out, "ver");
    uint(out, 2);
    str(out, "type");
    uint(out, kind);
    str(out, "opts");
    map(out, 5);
    for (k, v) in [
        ("ns", "ns"),
        ("ss", ""),
        ("name", ["counter", "gauge", "hist", "summ"][kind as usize]),
        ("desc", "a metric"),
        ("unit", ""),
    ] {
        str(out, k);
        str(out, v);
    }
    str(out, "labels");
    array(out, labels.len() as u32);
    for label in labels {
        str(out, label);
    }
    out.extend_from_slice(&extra_fields);
    str(out, "values");
}

/// A ctraces context with one resource, one scope and `spans` spans (`(name, attribute)`), as
/// `ctr_encode_msgpack` writes it, followed by `padding` zero bytes.
pub fn traces_context(spans: &[(&str, i64)], padding: usize) -> Vec<u8> {
    let mut out = Vec::new();
    map(&mut out, 1);
    str(&mut out, "resourceSpans");
    array(&mut out, 1);
    map(&mut out, 3);
    str(&mut out, "resource");
    map(&mut out, 2);
    str(&mut out, "attributes");
    map(&mut out, 1);
    str(&mut out, "service.name");
    str(&mut out, "test");
    str(&mut out, "dropped_attributes_count");
    uint(&mut out, 0);
    str(&mut out, "schema_url");
    encode::write_nil(&mut out).unwrap();
    str(&mut out, "scope_spans");
    array(&mut out, 1);
    map(&mut out, 3);
    str(&mut out, "scope");
    map(&mut out, 4);
    str(&mut out, "name");
    str(&mut out, "scope");
    str(&mut out, "version");
    encode::write_nil(&mut out).unwrap();
    str(&mut out, "attributes");
    encode::write_nil(&mut out).unwrap();
    str(&mut out, "dropped_attributes_count");
    uint(&mut out, 0);
    str(&mut out, "spans");
    array(&mut out, spans.len() as u32);
    for (i, (name, attribute)) in spans.iter().enumerate() {
        map(&mut out, 16);
        str(&mut out, "trace_id");
        str(&mut out, "5b8efff798038103d269b633813fc60c");
        str(&mut out, "span_id");
        str(&mut out, &format!("{:016x}", i + 1));
        str(&mut out, "parent_span_id");
        encode::write_nil(&mut out).unwrap();
        str(&mut out, "trace_state");
        encode::write_nil(&mut out).unwrap();
        str(&mut out, "name");
        str(&mut out, name);
        str(&mut out, "kind");
        uint(&mut out, 2);
        str(&mut out, "start_time_unix_nano");
        uint(&mut out, 1_700_000_000_000_000_000);
        str(&mut out, "end_time_unix_nano");
        uint(&mut out, 1_700_000_000_500_000_000);
        str(&mut out, "attributes");
        map(&mut out, 1);
        str(&mut out, "n");
        encode::write_sint(&mut out, *attribute).unwrap();
        for k in ["dropped_attributes_count", "dropped_events_count", "dropped_links_count"] {
            str(&mut out, k);
            uint(&mut out, 0);
        }
        str(&mut out, "events");
        array(&mut out, 1);
        map(&mut out, 4);
        str(&mut out, "time_unix_nano");
        uint(&mut out, 1_700_000_000_100_000_000);
        str(&mut out, "name");
        str(&mut out, "event");
        str(&mut out, "attributes");
        map(&mut out, 0);
        str(&mut out, "dropped_attributes_count");
        uint(&mut out, 0);
        str(&mut out, "links");
        array(&mut out, 0);
        str(&mut out, "schema_url");
        encode::write_nil(&mut out).unwrap();
        str(&mut out, "status");
        map(&mut out, 2);
        str(&mut out, "code");
        encode::write_sint(&mut out, 1).unwrap();
        str(&mut out, "message");
        encode::write_nil(&mut out).unwrap();
    }
    str(&mut out, "schema_url");
    encode::write_nil(&mut out).unwrap();
    out.extend(std::iter::repeat_n(0, padding));
    out
}
