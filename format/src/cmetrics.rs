//! Metrics chunks: concatenated cmetrics msgpack contexts, decoded as Fluent Bit 5.1's
//! `cmt_decode_msgpack` reads them (the layout `cmt_encode_msgpack` writes, version 2).
//!
//! Strings borrow from the chunk (as bytes: the agent does not promise UTF-8); only the lists
//! allocate. An error names the byte offset of the context and the path to the bad field.

use crate::document::{Doc, lookup};
use crate::error::DecodeError;
use crate::msgpack::Reader;
use crate::value::Value;

/// One cmetrics context: the metrics one input produced, with their metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsContext<'a> {
    /// `meta.cmetrics`: the library's own metadata (a map, possibly empty).
    pub internal_metadata: Value<'a>,
    /// `meta.external`: what the pipeline attached; for metrics that came in as OTLP, the
    /// resource, scope and per-metric details under `resource`, `scope`, `otlp`, ...
    pub external_metadata: Value<'a>,
    /// Labels added to every sample (`meta.processing.static_labels`), in order.
    pub static_labels: Vec<(&'a [u8], &'a [u8])>,
    pub families: Vec<MetricFamily<'a>>,
}

/// The kind of a metric family (cmetrics' `CMT_COUNTER` ... `CMT_EXP_HISTOGRAM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
    ExponentialHistogram,
}

impl MetricKind {
    fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Counter,
            1 => Self::Gauge,
            2 => Self::Histogram,
            3 => Self::Summary,
            4 => Self::Untyped,
            5 => Self::ExponentialHistogram,
            _ => return None,
        })
    }

    /// The key cmetrics uses for this kind in OTLP metadata (`otlp.metrics.<key>`).
    pub fn key(&self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
            Self::ExponentialHistogram => "exp_histogram",
        }
    }
}

/// A metric and its samples: one per label set.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily<'a> {
    pub kind: MetricKind,
    pub namespace: &'a [u8],
    pub subsystem: &'a [u8],
    pub name: &'a [u8],
    pub description: &'a [u8],
    /// Empty when the metric has no unit.
    pub unit: &'a [u8],
    /// 0 unspecified, 1 delta, 2 cumulative (the OTLP `AggregationTemporality` numbers).
    pub aggregation_type: u64,
    /// Label names; a sample's label values pair with them by position.
    pub label_keys: Vec<Option<&'a [u8]>>,
    /// Histograms: the upper bounds of the buckets (the last bucket, +Inf, has none).
    pub bucket_bounds: Vec<f64>,
    /// Summaries: the quantiles.
    pub quantiles: Vec<f64>,
    pub samples: Vec<Sample<'a>>,
}

impl MetricFamily<'_> {
    /// `namespace_subsystem_name`, leaving out empty parts, as cmetrics names the metric.
    pub fn full_name(&self) -> Vec<u8> {
        let mut name = Vec::with_capacity(self.namespace.len() + self.subsystem.len() + self.name.len() + 2);
        for part in [self.namespace, self.subsystem] {
            if !part.is_empty() {
                name.extend_from_slice(part);
                name.push(b'_');
            }
        }
        name.extend_from_slice(self.name);
        name
    }
}

/// One sample of a family.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// Nanoseconds since the epoch.
    pub timestamp: u64,
    pub start_timestamp: Option<u64>,
    /// Label values in the order of the family's `label_keys`; `None` for an unset label.
    pub labels: Vec<Option<&'a [u8]>>,
    pub value: SampleValue,
    pub hash: u64,
}

/// What a sample measured.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleValue {
    /// Counters, gauges and untyped metrics stored as doubles.
    Double(f64),
    /// ... stored as signed integers.
    Int(i64),
    /// ... stored as unsigned integers.
    UInt(u64),
    Histogram {
        /// One count per bucket, the +Inf bucket last.
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
    Summary {
        /// One value per quantile of the family.
        quantile_values: Vec<f64>,
        quantiles_set: bool,
        count: u64,
        sum: f64,
    },
    ExponentialHistogram(ExponentialHistogram),
}

/// An exponential histogram sample.
#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialHistogram {
    pub scale: i64,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive_offset: i64,
    pub positive_buckets: Vec<u64>,
    pub negative_offset: i64,
    pub negative_buckets: Vec<u64>,
    pub count: u64,
    /// `None` when the sum was not recorded.
    pub sum: Option<f64>,
}

/// Decodes every context of a metrics chunk. An empty chunk has none.
pub fn decode_metrics(chunk: &[u8]) -> Result<Vec<MetricsContext<'_>>, DecodeError> {
    let mut reader = Reader::new(chunk);
    let mut contexts = Vec::new();
    while !reader.is_empty() {
        let doc = Doc { at: reader.offset(), what: "metrics context" };
        let root = reader.value()?;
        contexts.push(context(doc, &root)?);
    }
    Ok(contexts)
}

fn context<'a>(doc: Doc, root: &Value<'a>) -> Result<MetricsContext<'a>, DecodeError> {
    let root = doc.map(root, "the context")?;
    let meta = lookup(root, "meta").ok_or_else(|| doc.error("the context", "has no 'meta'"))?;
    let metrics = lookup(root, "metrics").ok_or_else(|| doc.error("the context", "has no 'metrics'"))?;
    let meta = doc.map(meta, "meta")?;
    let internal_metadata = lookup(meta, "cmetrics").cloned().unwrap_or(Value::Map(Vec::new()));
    let external_metadata = lookup(meta, "external").cloned().unwrap_or(Value::Map(Vec::new()));
    let mut static_labels = Vec::new();
    if let Some(processing) = lookup(meta, "processing") {
        let processing = doc.map(processing, "meta.processing")?;
        if let Some(labels) = lookup(processing, "static_labels") {
            for label in doc.array(labels, "meta.processing.static_labels")? {
                let path = "meta.processing.static_labels[]";
                match doc.array(label, path)? {
                    [key, value] => static_labels.push((doc.str(key, path)?, doc.str(value, path)?)),
                    other => return Err(doc.error(path, format_args!("has {} items, not 2", other.len()))),
                }
            }
        }
    }
    let families =
        doc.array(metrics, "metrics")?.iter().map(|family| metric_family(doc, family)).collect::<Result<_, _>>()?;
    Ok(MetricsContext { internal_metadata, external_metadata, static_labels, families })
}

fn metric_family<'a>(doc: Doc, family: &Value<'a>) -> Result<MetricFamily<'a>, DecodeError> {
    let family = doc.map(family, "metrics[]")?;
    let meta = lookup(family, "meta").ok_or_else(|| doc.error("metrics[]", "has no 'meta'"))?;
    let meta = doc.map(meta, "metrics[].meta")?;
    let kind = lookup(meta, "type").ok_or_else(|| doc.error("metrics[].meta", "has no 'type'"))?;
    let kind = doc.uint(kind, "metrics[].meta.type")?;
    let kind = MetricKind::from_code(kind)
        .ok_or_else(|| doc.error("metrics[].meta.type", format_args!("{kind} is no metric type")))?;
    let mut out = MetricFamily {
        kind,
        namespace: b"",
        subsystem: b"",
        name: b"",
        description: b"",
        unit: b"",
        aggregation_type: 0,
        label_keys: Vec::new(),
        bucket_bounds: Vec::new(),
        quantiles: Vec::new(),
        samples: Vec::new(),
    };
    for (key, value) in doc.fields(meta, "metrics[].meta")? {
        match key {
            b"ver" => {
                let version = doc.uint(value, "metrics[].meta.ver")?;
                if version != 2 {
                    return Err(doc.error("metrics[].meta.ver", format_args!("encoder version {version}, not 2")));
                }
            }
            b"opts" => {
                let opts = doc.map(value, "metrics[].meta.opts")?;
                for (key, value) in doc.fields(opts, "metrics[].meta.opts")? {
                    let field = match key {
                        b"ns" => &mut out.namespace,
                        b"ss" => &mut out.subsystem,
                        b"name" => &mut out.name,
                        b"desc" => &mut out.description,
                        b"unit" => &mut out.unit,
                        _ => continue,
                    };
                    *field = doc.str(value, "metrics[].meta.opts")?;
                }
            }
            b"labels" => {
                out.label_keys = doc
                    .array(value, "metrics[].meta.labels")?
                    .iter()
                    .map(|key| doc.str_or_nil(key, "metrics[].meta.labels[]"))
                    .collect::<Result<_, _>>()?;
            }
            b"buckets" => out.bucket_bounds = floats(doc, value, "metrics[].meta.buckets")?,
            b"quantiles" => out.quantiles = floats(doc, value, "metrics[].meta.quantiles")?,
            b"aggregation_type" => out.aggregation_type = doc.uint(value, "metrics[].meta.aggregation_type")?,
            _ => {}
        }
    }
    if let Some(values) = lookup(family, "values") {
        for sample_value in doc.array(values, "metrics[].values")? {
            let sample = sample(doc, &out, sample_value)?;
            out.samples.push(sample);
        }
    }
    Ok(out)
}

fn floats(doc: Doc, value: &Value<'_>, path: &str) -> Result<Vec<f64>, DecodeError> {
    doc.array(value, path)?.iter().map(|f| doc.float(f, path)).collect()
}

fn uints(doc: Doc, value: &Value<'_>, path: &str) -> Result<Vec<u64>, DecodeError> {
    doc.array(value, path)?.iter().map(|n| doc.uint(n, path)).collect()
}

fn sample<'a>(doc: Doc, family: &MetricFamily<'a>, value: &Value<'a>) -> Result<Sample<'a>, DecodeError> {
    const PATH: &str = "metrics[].values[]";
    let fields = doc.fields(doc.map(value, PATH)?, PATH)?;
    let mut out =
        Sample { timestamp: 0, start_timestamp: None, labels: Vec::new(), value: SampleValue::Double(0.0), hash: 0 };
    let mut double = 0.0;
    let mut value_type = 0;
    let (mut int64, mut uint64) = (0, 0);
    let mut aggregate = None;
    for (key, value) in fields {
        match key {
            b"ts" => out.timestamp = doc.uint(value, "metrics[].values[].ts")?,
            b"start_ts" => out.start_timestamp = Some(doc.uint(value, "metrics[].values[].start_ts")?),
            b"value" => double = doc.float(value, "metrics[].values[].value")?,
            b"value_type" => value_type = doc.uint(value, "metrics[].values[].value_type")?,
            b"value_int64" => int64 = doc.int(value, "metrics[].values[].value_int64")?,
            b"value_uint64" => uint64 = doc.uint(value, "metrics[].values[].value_uint64")?,
            b"labels" => {
                out.labels = doc
                    .array(value, "metrics[].values[].labels")?
                    .iter()
                    .map(|label| doc.str_or_nil(label, "metrics[].values[].labels[]"))
                    .collect::<Result<_, _>>()?;
            }
            b"hash" => out.hash = doc.uint(value, "metrics[].values[].hash")?,
            b"histogram" if family.kind == MetricKind::Histogram => aggregate = Some(histogram(doc, family, value)?),
            b"summary" if family.kind == MetricKind::Summary => aggregate = Some(summary(doc, family, value)?),
            b"exp_histogram" if family.kind == MetricKind::ExponentialHistogram => {
                aggregate = Some(exponential_histogram(doc, value)?)
            }
            _ => {}
        }
    }
    if out.labels.len() > family.label_keys.len() {
        return Err(doc.error(
            "metrics[].values[].labels",
            format_args!("{} values for {} label names", out.labels.len(), family.label_keys.len()),
        ));
    }
    out.value = match family.kind {
        MetricKind::Counter | MetricKind::Gauge | MetricKind::Untyped => match value_type {
            1 => SampleValue::Int(int64),
            2 => SampleValue::UInt(uint64),
            _ => SampleValue::Double(double),
        },
        kind => aggregate
            .ok_or_else(|| doc.error(PATH, format_args!("a {} sample has no {} data", kind.key(), kind.key())))?,
    };
    Ok(out)
}

fn histogram(doc: Doc, family: &MetricFamily<'_>, value: &Value<'_>) -> Result<SampleValue, DecodeError> {
    const PATH: &str = "metrics[].values[].histogram";
    let (mut buckets, mut sum, mut count) = (Vec::new(), 0.0, 0);
    for (key, value) in doc.fields(doc.map(value, PATH)?, PATH)? {
        match key {
            b"buckets" => buckets = uints(doc, value, "metrics[].values[].histogram.buckets")?,
            b"sum" => sum = doc.float(value, "metrics[].values[].histogram.sum")?,
            b"count" => count = doc.uint(value, "metrics[].values[].histogram.count")?,
            _ => {}
        }
    }
    if buckets.len() != family.bucket_bounds.len() + 1 {
        return Err(doc.error(
            "metrics[].values[].histogram.buckets",
            format_args!("{} counts for {} bounds (one more expected)", buckets.len(), family.bucket_bounds.len()),
        ));
    }
    Ok(SampleValue::Histogram { buckets, sum, count })
}

fn summary(doc: Doc, family: &MetricFamily<'_>, value: &Value<'_>) -> Result<SampleValue, DecodeError> {
    const PATH: &str = "metrics[].values[].summary";
    let (mut quantile_values, mut quantiles_set, mut count, mut sum) = (Vec::new(), false, 0, 0.0);
    for (key, value) in doc.fields(doc.map(value, PATH)?, PATH)? {
        match key {
            // cmetrics keeps these doubles as their IEEE-754 bits in unsigned integers.
            b"quantiles" => {
                quantile_values = uints(doc, value, "metrics[].values[].summary.quantiles")?
                    .into_iter()
                    .map(f64::from_bits)
                    .collect();
            }
            b"quantiles_set" => quantiles_set = doc.uint(value, "metrics[].values[].summary.quantiles_set")? != 0,
            b"count" => count = doc.uint(value, "metrics[].values[].summary.count")?,
            b"sum" => sum = f64::from_bits(doc.uint(value, "metrics[].values[].summary.sum")?),
            _ => {}
        }
    }
    if quantile_values.len() != family.quantiles.len() {
        return Err(doc.error(
            "metrics[].values[].summary.quantiles",
            format_args!("{} values for {} quantiles", quantile_values.len(), family.quantiles.len()),
        ));
    }
    Ok(SampleValue::Summary { quantile_values, quantiles_set, count, sum })
}

fn exponential_histogram(doc: Doc, value: &Value<'_>) -> Result<SampleValue, DecodeError> {
    const PATH: &str = "metrics[].values[].exp_histogram";
    let mut out = ExponentialHistogram {
        scale: 0,
        zero_count: 0,
        zero_threshold: 0.0,
        positive_offset: 0,
        positive_buckets: Vec::new(),
        negative_offset: 0,
        negative_buckets: Vec::new(),
        count: 0,
        sum: None,
    };
    let (mut sum_set, mut sum_bits) = (false, 0);
    for (key, value) in doc.fields(doc.map(value, PATH)?, PATH)? {
        match key {
            b"scale" => out.scale = doc.int(value, PATH)?,
            b"zero_count" => out.zero_count = doc.uint(value, PATH)?,
            b"zero_threshold" => out.zero_threshold = doc.float(value, PATH)?,
            b"positive_offset" => out.positive_offset = doc.int(value, PATH)?,
            b"positive_buckets" => out.positive_buckets = uints(doc, value, PATH)?,
            b"negative_offset" => out.negative_offset = doc.int(value, PATH)?,
            b"negative_buckets" => out.negative_buckets = uints(doc, value, PATH)?,
            b"count" => out.count = doc.uint(value, PATH)?,
            b"sum_set" => sum_set = doc.uint(value, PATH)? != 0,
            // The sum's IEEE-754 bits, as for summaries.
            b"sum" => sum_bits = doc.uint(value, PATH)?,
            _ => {}
        }
    }
    out.sum = sum_set.then(|| f64::from_bits(sum_bits));
    Ok(SampleValue::ExponentialHistogram(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chunks::metrics_context;

    #[test]
    fn decodes_families_samples_and_static_labels() {
        let chunk = metrics_context(&["host", "cpu"], &[(1, &["a", "0"], 1.5), (2, &[], 2.0)]);
        let contexts = decode_metrics(&chunk).unwrap();
        assert_eq!(contexts.len(), 1);
        let context = &contexts[0];
        assert_eq!(context.static_labels, vec![(&b"env"[..], &b"test"[..])]);
        let gauge = &context.families[0];
        assert_eq!((gauge.kind, gauge.full_name()), (MetricKind::Gauge, b"ns_gauge".to_vec()));
        assert_eq!(gauge.label_keys, vec![Some(&b"host"[..]), Some(&b"cpu"[..])]);
        assert_eq!(gauge.samples[0].labels, vec![Some(&b"a"[..]), Some(&b"0"[..])]);
        assert_eq!(gauge.samples[0].value, SampleValue::Double(1.5));
        assert_eq!(gauge.samples[1].timestamp, 2);
        let histogram = &context.families[1];
        assert_eq!(histogram.bucket_bounds, vec![1.0, 2.0]);
        assert_eq!(histogram.aggregation_type, 2);
        assert_eq!(histogram.samples[0].value, SampleValue::Histogram { buckets: vec![1, 2, 3], sum: 7.5, count: 6 });
        let summary = &context.families[2];
        assert_eq!(
            summary.samples[0].value,
            SampleValue::Summary { quantile_values: vec![0.25, 0.75], quantiles_set: true, count: 4, sum: 2.5 },
            "quantile values and the sum are stored as IEEE-754 bits"
        );
    }

    #[test]
    fn concatenated_contexts_decode_one_after_another() {
        let mut chunk = metrics_context(&[], &[(1, &[], 1.0)]);
        chunk.extend(metrics_context(&[], &[(2, &[], 2.0)]));
        let contexts = decode_metrics(&chunk).unwrap();
        assert_eq!(contexts.len(), 2);
        assert_eq!(contexts[1].families[0].samples[0].timestamp, 2);
    }

    #[test]
    fn errors_name_the_context_offset_and_the_field() {
        let first = metrics_context(&[], &[(1, &[], 1.0)]);
        let mut chunk = first.clone();
        chunk.extend_from_slice(b"\x81\xa4meta\x80");
        let err = decode_metrics(&chunk).unwrap_err();
        assert_eq!(err.offset, first.len(), "{err}");
        assert!(err.reason.contains("has no 'metrics'"), "{err}");

        let bad_type = metrics_context(&[], &[(1, &[], 1.0)]);
        let at = bad_type.windows(5).position(|w| w == b"\xa4type").unwrap() + 5;
        let mut chunk = bad_type.clone();
        chunk[at] = 9;
        let err = decode_metrics(&chunk).unwrap_err();
        assert!(err.reason.contains("metrics[].meta.type: 9 is no metric type"), "{err}");
    }
}

/// Fuzzing the decoder with proptest (bounded: `PROPTEST_CASES`, default 256 per property):
/// arbitrary bytes, and well-formed chunks cut or corrupted anywhere, never panic, and every
/// error names an offset inside the chunk; whatever decodes also renders as OTLP/JSON.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;
    use crate::test_chunks::metrics_context;

    fn check(chunk: &[u8]) {
        if let Err(err) = decode_metrics(chunk) {
            assert!(err.offset <= chunk.len(), "offset {} past the end of {} bytes", err.offset, chunk.len());
        }
        let mut out = Vec::new();
        if crate::otlp::render(crate::EventType::Metrics, chunk, &mut out).is_ok() {
            assert!(std::str::from_utf8(&out).is_ok(), "the rendering is UTF-8");
        }
    }

    fn chunk() -> impl Strategy<Value = Vec<u8>> {
        let sample = (any::<u64>(), "[a-z]{0,6}", any::<f64>());
        proptest::collection::vec(proptest::collection::vec(sample, 0..4), 1..3).prop_map(|contexts| {
            contexts
                .iter()
                .flat_map(|samples| {
                    let samples: Vec<(u64, Vec<&str>, f64)> =
                        samples.iter().map(|(ts, label, value)| (*ts, vec![label.as_str()], *value)).collect();
                    let samples: Vec<(u64, &[&str], f64)> =
                        samples.iter().map(|(ts, labels, value)| (*ts, labels.as_slice(), *value)).collect();
                    metrics_context(&["label"], &samples)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            check(&bytes);
        }

        #[test]
        fn well_formed_chunks_decode_whole(chunk in chunk()) {
            prop_assert!(decode_metrics(&chunk).is_ok());
        }

        #[test]
        fn cut_or_corrupted_chunks_fail_cleanly(
            chunk in chunk(),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let mut chunk = chunk;
            for (at, byte) in flips {
                let i = at.index(chunk.len());
                chunk[i] = byte;
            }
            let end = cut.index(chunk.len() + 1);
            check(&chunk[..end]);
        }
    }
}
