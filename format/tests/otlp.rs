//! OTLP/JSON renderings of real chunks (captured from Fluent Bit 5.1.1, see data/README.md),
//! checked two ways:
//!
//! - against the OpenTelemetry protobuf schema: each request deserializes into the
//!   `opentelemetry-proto` message of its kind, survives a protobuf encode/decode, and every
//!   field and value rendered is still there when the message is written back as JSON (so no
//!   field is misnamed, misplaced or mis-encoded: serde would silently drop an unknown one);
//! - against the agent's own rendering of the same chunk (`stdout` with `format otlp_json`):
//!   byte for byte, except where the agent's text is not valid OTLP/JSON (status codes as
//!   names, `hasSum`), where the two agree once the agent's text is corrected.

use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use out_wasm_format::{EventType, event_type, otlp};
use serde_json::Value as Json;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every captured chunk: (file name, bytes).
fn chunks() -> Vec<(String, Vec<u8>)> {
    let mut chunks: Vec<_> = std::fs::read_dir(data())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "msgpack"))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        .collect();
    chunks.sort();
    assert!(chunks.len() >= 6, "the captured chunks are in {}", data().display());
    chunks
}

fn render(chunk: &[u8]) -> (EventType, Vec<u8>) {
    let kind = event_type(chunk);
    let mut out = Vec::new();
    otlp::render(kind, chunk, &mut out).unwrap_or_else(|err| panic!("rendering a {kind:?} chunk: {err}"));
    (kind, out)
}

/// Deserializes `json` as the request of `kind`, round-trips it through protobuf, and writes it
/// back as JSON.
fn through_schema(kind: EventType, json: &[u8]) -> Json {
    fn round_trip<T>(json: &[u8]) -> Json
    where
        T: serde::de::DeserializeOwned + serde::Serialize + prost::Message + Default + PartialEq + std::fmt::Debug,
    {
        let request: T = serde_json::from_slice(json)
            .unwrap_or_else(|err| panic!("not accepted by the schema: {err}\n{}", String::from_utf8_lossy(json)));
        let wire = request.encode_to_vec();
        let decoded = T::decode(wire.as_slice()).expect("protobuf decodes what it encoded");
        assert_eq!(decoded, request, "protobuf round trip");
        serde_json::to_value(&decoded).unwrap()
    }
    match kind {
        EventType::Logs => round_trip::<ExportLogsServiceRequest>(json),
        EventType::Metrics => round_trip::<ExportMetricsServiceRequest>(json),
        EventType::Traces => round_trip::<ExportTraceServiceRequest>(json),
    }
}

/// Every member of `ours` is in `theirs` with the same value. 64-bit integers may be a string
/// on one side and a number on the other (both are valid OTLP/JSON).
fn assert_contained(ours: &Json, theirs: &Json, path: &str) {
    match (ours, theirs) {
        (Json::Object(ours), Json::Object(theirs)) => {
            for (key, value) in ours {
                let theirs = theirs.get(key).unwrap_or_else(|| panic!("{path}.{key}: not a field of the schema"));
                assert_contained(value, theirs, &format!("{path}.{key}"));
            }
        }
        (Json::Array(ours), Json::Array(theirs)) => {
            assert_eq!(ours.len(), theirs.len(), "{path}: list length");
            for (i, (ours, theirs)) in ours.iter().zip(theirs).enumerate() {
                assert_contained(ours, theirs, &format!("{path}[{i}]"));
            }
        }
        (Json::String(text), Json::Number(n)) | (Json::Number(n), Json::String(text)) => {
            assert_eq!(text.parse::<f64>().ok(), n.as_f64(), "{path}: {text} vs {n}");
        }
        (Json::Number(ours), Json::Number(theirs)) => assert_eq!(ours.as_f64(), theirs.as_f64(), "{path}"),
        _ => assert_eq!(ours, theirs, "{path}"),
    }
}

#[test]
fn every_rendering_is_accepted_by_the_protobuf_schema() {
    for (name, chunk) in chunks() {
        let (kind, json) = render(&chunk);
        let ours: Json = serde_json::from_slice(&json).unwrap_or_else(|err| panic!("{name}: not JSON: {err}"));
        let theirs = through_schema(kind, &json);
        assert_contained(&ours, &theirs, &name);
    }
}

/// The agent's text, with what is not valid OTLP/JSON replaced by what the mapping wants.
/// Returns whether anything was replaced.
fn correct_agent(json: &mut Json) -> bool {
    let mut changed = false;
    match json {
        Json::Object(map) => {
            if map.remove("hasSum").is_some() {
                changed = true;
            }
            if let Some(Json::Object(status)) = map.get_mut("status")
                && let Some(Json::String(code)) = status.get("code")
            {
                let number = match code.as_str() {
                    "OK" => 1,
                    "ERROR" => 2,
                    _ => 0,
                };
                status.insert("code".into(), number.into());
                changed = true;
            }
            for value in map.values_mut() {
                changed |= correct_agent(value);
            }
        }
        Json::Array(items) => {
            for item in items {
                changed |= correct_agent(item);
            }
        }
        _ => {}
    }
    changed
}

#[test]
fn renderings_match_the_agents_own() {
    let agent = std::fs::read_to_string(data().join("agent-otlp.jsonl")).unwrap();
    let agent: Vec<(&str, Json, bool)> = agent
        .lines()
        .map(|line| {
            let mut json: Json = serde_json::from_str(line).unwrap();
            let corrected = correct_agent(&mut json);
            (line, json, corrected)
        })
        .collect();
    for (name, chunk) in chunks() {
        let (_, json) = render(&chunk);
        let ours: Json = serde_json::from_slice(&json).unwrap();
        let (line, _, corrected) = agent
            .iter()
            .find(|(_, theirs, _)| *theirs == ours)
            .unwrap_or_else(|| panic!("{name}: the agent rendered no chunk as\n{}", String::from_utf8_lossy(&json)));
        if !corrected {
            assert_eq!(String::from_utf8_lossy(&json), *line, "{name}: byte for byte");
        }
    }
}

#[test]
fn real_chunks_render_what_they_hold() {
    let render_file = |name: &str| -> Json {
        let (_, json) = render(&std::fs::read(data().join(name)).unwrap());
        serde_json::from_slice(&json).unwrap()
    };
    let traces = render_file("v1_traces.msgpack");
    let spans = &traces["resourceSpans"][0]["scopeSpans"][0]["spans"];
    assert_eq!(spans[0]["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(spans[0]["kind"], 2);
    assert_eq!(spans[1]["parentSpanId"], "eee19b7ec3c1b174");
    assert_eq!(spans[1]["status"], serde_json::json!({"code": 2, "message": "timeout"}), "status codes are numbers");
    assert_eq!(spans[0]["startTimeUnixNano"], "1700000000000000000", "64-bit times are strings");

    let metrics = render_file("fluentbit_metrics.msgpack");
    let names: Vec<&str> = metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"fluentbit_uptime"), "{names:?}");

    let logs = render_file("v1_logs.msgpack");
    let resource = &logs["resourceLogs"][0];
    assert_eq!(resource["resource"]["attributes"][0]["key"], "service.name", "the OTLP group's resource");
    assert_eq!(resource["scopeLogs"][0]["scope"]["name"], "capture.py");
    assert_eq!(resource["scopeLogs"][0]["logRecords"][0]["traceId"], "5b8efff798038103d269b633813fc60c");
}
