//! Metrics contexts as one `ExportMetricsServiceRequest`, as the agent's `stdout` output
//! renders them with `format otlp_json`: each context's resource metrics, in chunk order.
//!
//! A context's external metadata says how its metrics were grouped when they came in as OTLP
//! (`resource_metrics_list`, `resource`, `scope`, `otlp.metrics.<kind>.<name>` with the target
//! scope and per-data-point details); metrics from the agent's own inputs have none and go
//! under one empty resource and scope. Counters are sums, gauges and untyped metrics gauges;
//! static labels come first among each data point's attributes.

use super::{double, hex, i64_string, key, key_values, push_fmt, string, u64_string};
use crate::cmetrics::{MetricFamily, MetricKind, MetricsContext, Sample, SampleValue, decode_metrics};
use crate::document::lookup;
use crate::error::DecodeError;
use crate::value::Value;

type Entries<'v, 'a> = &'v [(Value<'a>, Value<'a>)];

pub(super) fn render(chunk: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let contexts = decode_metrics(chunk)?;
    out.extend_from_slice(b"{\"resourceMetrics\":[");
    let mut first = true;
    for context in &contexts {
        resource_metrics(out, &mut first, context);
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// The map under `key` (a cfl kvlist), if it is one.
fn map<'v, 'a>(entries: Option<Entries<'v, 'a>>, key: &str) -> Option<Entries<'v, 'a>> {
    match lookup(entries?, key) {
        Some(Value::Map(inner)) => Some(inner),
        _ => None,
    }
}

fn list<'v, 'a>(entries: Option<Entries<'v, 'a>>, key: &str) -> Option<&'v [Value<'a>]> {
    match lookup(entries?, key) {
        Some(Value::Array(items)) if !items.is_empty() => Some(items),
        _ => None,
    }
}

fn item<'v, 'a>(items: Option<&'v [Value<'a>]>, index: usize) -> Option<Entries<'v, 'a>> {
    match items?.get(index) {
        Some(Value::Map(entries)) => Some(entries),
        _ => None,
    }
}

fn fetch_u64(entries: Option<Entries<'_, '_>>, key: &str) -> Option<u64> {
    match lookup(entries?, key) {
        Some(Value::UInt(n)) => Some(*n),
        Some(Value::Int(n)) if *n >= 0 => Some(*n as u64),
        _ => None,
    }
}

fn fetch_i64(entries: Option<Entries<'_, '_>>, key: &str) -> Option<i64> {
    match lookup(entries?, key) {
        Some(Value::Int(n)) => Some(*n),
        Some(Value::UInt(n)) => i64::try_from(*n).ok(),
        _ => None,
    }
}

fn fetch_f64(entries: Option<Entries<'_, '_>>, key: &str) -> Option<f64> {
    match lookup(entries?, key) {
        Some(Value::Float(f)) => Some(*f),
        Some(Value::UInt(n)) => Some(*n as f64),
        Some(Value::Int(n)) => Some(*n as f64),
        _ => None,
    }
}

fn fetch_bool(entries: Option<Entries<'_, '_>>, key: &str) -> Option<bool> {
    match lookup(entries?, key) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::UInt(n)) => Some(*n != 0),
        Some(Value::Int(n)) => Some(*n != 0),
        _ => None,
    }
}

fn fetch_str<'a>(entries: Option<Entries<'_, 'a>>, key: &str) -> Option<&'a [u8]> {
    match lookup(entries?, key) {
        Some(Value::Str(text)) => Some(text),
        _ => None,
    }
}

/// The order the agent keeps metric families in: one list per kind.
fn kind_rank(kind: MetricKind) -> u8 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Untyped => 2,
        MetricKind::Summary => 3,
        MetricKind::Histogram => 4,
        MetricKind::ExponentialHistogram => 5,
    }
}

fn resource_metrics(out: &mut Vec<u8>, first_resource: &mut bool, context: &MetricsContext<'_>) {
    let external = match &context.external_metadata {
        Value::Map(entries) => Some(entries.as_slice()),
        _ => None,
    };
    let resources = list(external, "resource_metrics_list");
    let resource_count = resources.map_or(1, <[Value<'_>]>::len);
    let scope_lists: Vec<_> = (0..resource_count)
        .map(|r| match item(resources, r) {
            Some(entry) => list(Some(entry), "scope_metrics_list"),
            None => list(external, "scope_metrics_list"),
        })
        .collect();
    let scope_counts: Vec<usize> = scope_lists.iter().map(|l| l.map_or(1, <[Value<'_>]>::len)).collect();
    let total_scopes: usize = scope_counts.iter().sum();

    // Each metric goes to one scope, counted across resources.
    let mut scope_metrics: Vec<Vec<u8>> = vec![Vec::new(); total_scopes];
    let mut families: Vec<&MetricFamily<'_>> = context.families.iter().collect();
    families.sort_by_key(|f| kind_rank(f.kind));
    for family in families {
        if family.samples.is_empty() {
            continue;
        }
        let name = family.full_name();
        let metric_context = map(map(map(external, "otlp"), "metrics"), family.kind.key())
            .and_then(|kind| lookup(kind, std::str::from_utf8(&name).unwrap_or("")))
            .and_then(|v| match v {
                Value::Map(entries) => Some(entries.as_slice()),
                _ => None,
            });
        let target = target_scope(map(metric_context, "metadata"), &scope_counts, total_scopes);
        let buffer = &mut scope_metrics[target];
        if !buffer.is_empty() {
            buffer.push(b',');
        }
        metric(buffer, context, family, &name, metric_context);
    }

    let mut flat = 0;
    for r in 0..resource_count {
        let entry = item(resources, r);
        let root = entry.or(external);
        let resource_root = map(root, "resource");
        let mut scope_metrics_root = map(root, "scope_metrics");
        let mut scope_root = map(root, "scope");
        if !std::mem::take(first_resource) {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"resource\":");
        resource_json(out, resource_root);
        out.extend_from_slice(b",\"scopeMetrics\":[");
        for s in 0..scope_counts[r] {
            if let Some(scope_entry) = item(scope_lists[r], s) {
                scope_metrics_root = map(Some(scope_entry), "scope_metrics");
                scope_root = map(Some(scope_entry), "scope");
            }
            if s > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"scope\":");
            scope_json(out, scope_root);
            out.extend_from_slice(b",\"metrics\":[");
            out.extend_from_slice(&scope_metrics[flat]);
            flat += 1;
            out.push(b']');
            if let Some(url) = fetch_str(map(scope_metrics_root, "metadata"), "schema_url") {
                out.extend_from_slice(b",\"schemaUrl\":");
                string(out, url);
            }
            out.push(b'}');
        }
        out.push(b']');
        if let Some(url) = fetch_str(map(map(root, "resource_metrics"), "metadata"), "schema_url") {
            out.extend_from_slice(b",\"schemaUrl\":");
            string(out, url);
        }
        out.push(b'}');
    }
}

fn target_scope(metadata: Option<Entries<'_, '_>>, scope_counts: &[usize], total: usize) -> usize {
    if metadata.is_none() {
        return 0;
    }
    if let Some(flat) = fetch_u64(metadata, "scope_flat_index")
        && (flat as usize) < total
    {
        return flat as usize;
    }
    let (Some(resource), Some(scope)) = (fetch_u64(metadata, "resource_index"), fetch_u64(metadata, "scope_index"))
    else {
        return 0;
    };
    let flat = scope_counts.iter().take(resource as usize).sum::<usize>() + scope as usize;
    if flat < total { flat } else { 0 }
}

fn resource_json(out: &mut Vec<u8>, root: Option<Entries<'_, '_>>) {
    out.push(b'{');
    let mut first = true;
    if let Some(attributes) = map(root, "attributes")
        && !attributes.is_empty()
    {
        key(out, &mut first, "attributes");
        key_values(out, attributes);
    }
    if let Some(dropped) = fetch_i64(map(root, "metadata"), "dropped_attributes_count")
        && dropped >= 0
    {
        key(out, &mut first, "droppedAttributesCount");
        push_fmt(out, format_args!("{dropped}"));
    }
    out.push(b'}');
}

fn scope_json(out: &mut Vec<u8>, root: Option<Entries<'_, '_>>) {
    out.push(b'{');
    let mut first = true;
    if let Some(attributes) = map(root, "attributes")
        && !attributes.is_empty()
    {
        key(out, &mut first, "attributes");
        key_values(out, attributes);
    }
    let metadata = map(root, "metadata");
    for name in ["name", "version"] {
        if let Some(text) = fetch_str(metadata, name) {
            key(out, &mut first, name);
            string(out, text);
        }
    }
    if let Some(dropped) = fetch_i64(metadata, "dropped_attributes_count")
        && dropped >= 0
    {
        key(out, &mut first, "droppedAttributesCount");
        push_fmt(out, format_args!("{dropped}"));
    }
    out.push(b'}');
}

fn metric(
    out: &mut Vec<u8>,
    context: &MetricsContext<'_>,
    family: &MetricFamily<'_>,
    name: &[u8],
    metric_context: Option<Entries<'_, '_>>,
) {
    let mut first = true;
    out.push(b'{');
    key(out, &mut first, "name");
    string(out, name);
    key(out, &mut first, "description");
    string(out, family.description);
    if !family.unit.is_empty() {
        key(out, &mut first, "unit");
        string(out, family.unit);
    }
    if let Some(metadata) = map(metric_context, "metadata")
        && !metadata.is_empty()
    {
        key(out, &mut first, "metadata");
        key_values(out, metadata);
    }
    let container = match family.kind {
        MetricKind::Counter => "sum",
        MetricKind::Gauge | MetricKind::Untyped => "gauge",
        MetricKind::Summary => "summary",
        MetricKind::Histogram => "histogram",
        MetricKind::ExponentialHistogram => "exponentialHistogram",
    };
    key(out, &mut first, container);
    out.extend_from_slice(b"{\"dataPoints\":[");
    let points = map(metric_context, "datapoints");
    for (i, sample) in family.samples.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let point_key = format!("{:x}:{}", sample.hash, sample.timestamp);
        let metadata = map(points, &point_key);
        data_point(out, context, family, sample, metadata);
    }
    out.push(b']');
    match family.kind {
        MetricKind::Counter => {
            // The msgpack form does not carry `allow_reset`, so a decoded counter is monotonic.
            push_fmt(out, format_args!(",\"aggregationTemporality\":{},\"isMonotonic\":true", family.aggregation_type));
        }
        MetricKind::Histogram | MetricKind::ExponentialHistogram => {
            push_fmt(out, format_args!(",\"aggregationTemporality\":{}", family.aggregation_type));
        }
        _ => {}
    }
    out.extend_from_slice(b"}}");
}

fn data_point(
    out: &mut Vec<u8>,
    context: &MetricsContext<'_>,
    family: &MetricFamily<'_>,
    sample: &Sample<'_>,
    metadata: Option<Entries<'_, '_>>,
) {
    let mut first = true;
    out.push(b'{');
    let labels: Vec<(&[u8], &[u8])> = family
        .label_keys
        .iter()
        .zip(&sample.labels)
        .filter_map(|(name, value)| Some((name.unwrap_or(b""), (*value)?)))
        .collect();
    if !context.static_labels.is_empty() || !labels.is_empty() {
        key(out, &mut first, "attributes");
        out.push(b'[');
        for (i, (name, value)) in context.static_labels.iter().chain(&labels).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"key\":");
            string(out, name);
            out.extend_from_slice(b",\"value\":{\"stringValue\":");
            string(out, value);
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    if sample.timestamp > 0 {
        key(out, &mut first, "timeUnixNano");
        u64_string(out, sample.timestamp);
    }
    if let Some(start) = sample.start_timestamp.or_else(|| fetch_u64(metadata, "start_time_unix_nano")) {
        key(out, &mut first, "startTimeUnixNano");
        u64_string(out, start);
    }
    if let Some(flags) = fetch_u64(metadata, "flags") {
        key(out, &mut first, "flags");
        push_fmt(out, format_args!("{flags}"));
    }
    exemplars(out, &mut first, metadata);
    let has_sum = fetch_bool(metadata, "has_sum") != Some(false);
    match &sample.value {
        SampleValue::Double(f) => {
            key(out, &mut first, "asDouble");
            double(out, *f);
        }
        SampleValue::Int(n) => {
            key(out, &mut first, "asInt");
            i64_string(out, *n);
        }
        SampleValue::UInt(n) => match i64::try_from(*n) {
            Ok(n) => {
                key(out, &mut first, "asInt");
                i64_string(out, n);
            }
            Err(_) => {
                key(out, &mut first, "asDouble");
                double(out, *n as f64);
            }
        },
        SampleValue::Summary { quantile_values, count, sum, .. } => {
            key(out, &mut first, "count");
            u64_string(out, *count);
            key(out, &mut first, "sum");
            double(out, *sum);
            if !family.quantiles.is_empty() {
                key(out, &mut first, "quantileValues");
                out.push(b'[');
                for (i, (quantile, value)) in family.quantiles.iter().zip(quantile_values).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"{\"quantile\":");
                    double(out, *quantile);
                    out.extend_from_slice(b",\"value\":");
                    double(out, *value);
                    out.push(b'}');
                }
                out.push(b']');
            }
        }
        SampleValue::Histogram { buckets, sum, count } => {
            key(out, &mut first, "count");
            u64_string(out, *count);
            if has_sum {
                key(out, &mut first, "sum");
                double(out, *sum);
            }
            min_max(out, &mut first, metadata);
            key(out, &mut first, "bucketCounts");
            u64_strings(out, buckets);
            key(out, &mut first, "explicitBounds");
            out.push(b'[');
            for (i, bound) in family.bucket_bounds.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                double(out, *bound);
            }
            out.push(b']');
        }
        SampleValue::ExponentialHistogram(h) => {
            key(out, &mut first, "count");
            u64_string(out, h.count);
            key(out, &mut first, "scale");
            push_fmt(out, format_args!("{}", h.scale));
            key(out, &mut first, "zeroCount");
            u64_string(out, h.zero_count);
            key(out, &mut first, "zeroThreshold");
            double(out, h.zero_threshold);
            if let Some(sum) = h.sum
                && has_sum
            {
                key(out, &mut first, "sum");
                double(out, sum);
            }
            min_max(out, &mut first, metadata);
            for (name, offset, buckets) in [
                ("positive", h.positive_offset, &h.positive_buckets),
                ("negative", h.negative_offset, &h.negative_buckets),
            ] {
                if !buckets.is_empty() {
                    key(out, &mut first, name);
                    push_fmt(out, format_args!("{{\"offset\":{offset},\"bucketCounts\":"));
                    u64_strings(out, buckets);
                    out.push(b'}');
                }
            }
        }
    }
    out.push(b'}');
}

fn u64_strings(out: &mut Vec<u8>, values: &[u64]) {
    out.push(b'[');
    for (i, n) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        u64_string(out, *n);
    }
    out.push(b']');
}

fn min_max(out: &mut Vec<u8>, first: &mut bool, metadata: Option<Entries<'_, '_>>) {
    for (flag, name) in [("has_min", "min"), ("has_max", "max")] {
        if fetch_bool(metadata, flag) == Some(true)
            && let Some(value) = fetch_f64(metadata, name)
        {
            key(out, first, name);
            double(out, value);
        }
    }
}

fn exemplars(out: &mut Vec<u8>, first: &mut bool, metadata: Option<Entries<'_, '_>>) {
    let Some(Value::Array(items)) = metadata.and_then(|m| lookup(m, "exemplars")) else { return };
    let items: Vec<Entries<'_, '_>> = items
        .iter()
        .filter_map(|item| match item {
            Value::Map(entries) => Some(entries.as_slice()),
            _ => None,
        })
        .collect();
    if items.is_empty() {
        return;
    }
    key(out, first, "exemplars");
    out.push(b'[');
    for (i, exemplar) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let exemplar = Some(exemplar);
        let mut first = true;
        out.push(b'{');
        if let Some(time) = fetch_u64(exemplar, "time_unix_nano") {
            key(out, &mut first, "timeUnixNano");
            u64_string(out, time);
        }
        for (name, field, len) in [("spanId", "span_id", 8), ("traceId", "trace_id", 16)] {
            if let Some(Value::Bin(id)) = exemplar.and_then(|e| lookup(e, field))
                && id.len() == len
            {
                key(out, &mut first, name);
                hex(out, id);
            }
        }
        if let Some(value) = fetch_f64(exemplar, "as_double") {
            key(out, &mut first, "asDouble");
            double(out, value);
        } else if let Some(value) = fetch_i64(exemplar, "as_int") {
            key(out, &mut first, "asInt");
            i64_string(out, value);
        }
        if let Some(attributes) = map(exemplar, "filtered_attributes")
            && !attributes.is_empty()
        {
            key(out, &mut first, "filteredAttributes");
            key_values(out, attributes);
        }
        out.push(b'}');
    }
    out.push(b']');
}
