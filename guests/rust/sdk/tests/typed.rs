//! Typed metrics and traces through the SDK, on real chunks captured from Fluent Bit 5.1.1
//! (format/tests/data): the families and spans a guest sees in the msgpack event format.

use std::path::Path;

use out_wasm_guest::cmetrics::{MetricKind, SampleValue};
use out_wasm_guest::{Chunk, EventType};

fn data(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../format/tests/data").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("failed to read {}: {err}", path.display()))
}

#[test]
fn a_metrics_chunk_decodes_into_families_and_samples() {
    let bytes = data("fluentbit_metrics.msgpack");
    let chunk = Chunk::with_context("fluentbit_metrics", &bytes, EventType::Metrics, None);
    let contexts = chunk.metrics().expect("the agent's own metrics decode");
    assert_eq!(contexts.len(), 1, "the fluentbit_metrics input flushes one context a chunk");
    let uptime = contexts[0]
        .families
        .iter()
        .find(|f| f.full_name() == b"fluentbit_uptime")
        .expect("the agent's uptime counter is among its metrics");
    assert_eq!(uptime.kind, MetricKind::Counter);
    assert!(!uptime.samples.is_empty(), "the uptime has a sample");
    for sample in &uptime.samples {
        let seconds = match sample.value {
            SampleValue::Double(v) => v,
            SampleValue::Int(v) => v as f64,
            SampleValue::UInt(v) => v as f64,
            ref other => panic!("the uptime is a number, not {other:?}"),
        };
        assert!(seconds >= 0.0, "the uptime is not negative: {seconds}");
        assert!(sample.timestamp > 0, "the sample has a time: {sample:?}");
    }
}

#[test]
fn a_traces_chunk_decodes_into_spans() {
    let bytes = data("v1_traces.msgpack");
    let chunk = Chunk::with_context("v1_traces", &bytes, EventType::Traces, None);
    let contexts = chunk.traces().expect("the opentelemetry input's traces decode");
    let spans: Vec<_> =
        contexts.iter().flat_map(|c| &c.resource_spans).flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
    assert_eq!(spans.len(), 2, "the captured trace has two spans: {spans:?}");
    let child = spans.iter().find(|s| s.parent_span_id.is_some()).expect("one span has a parent");
    let parent = spans.iter().find(|s| s.span_id == child.parent_span_id).expect("its parent is the other span");
    assert_eq!(child.trace_id, parent.trace_id, "both spans are of one trace");
    assert_eq!(child.trace_id.as_ref().map(Vec::len), Some(16), "trace ids are 16 bytes");
}
