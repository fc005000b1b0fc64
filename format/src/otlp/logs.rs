//! Log records as an `ExportLogsServiceRequest`, as the agent's `stdout` output renders them
//! with `format otlp_json`.
//!
//! Records of an OpenTelemetry group (group metadata `schema: otlp` with `resource_id` and
//! `scope_id`; the group's body holds `resource` and `scope`) go under that resource and scope;
//! groups with the same ids and content share them. Every other record goes under one empty
//! resource and scope. A record's `otlp` metadata gives its timestamp, observed timestamp,
//! severity, attributes, trace and span ids; its body is the value under `log` or `message`
//! when the body map has one, else the whole body.

use super::{any_value, hex, key, key_value_count, key_values, string, u64_string};
use crate::document::lookup;
use crate::error::DecodeError;
use crate::event::{Event, Events};
use crate::value::Value;

/// The keys whose value is the log body, first match wins (the agent's `stdout` defaults).
const BODY_KEYS: [&str; 2] = ["log", "message"];

/// Where a group's records go: the resource and scope identities the agent compares.
#[derive(PartialEq)]
struct Identity<'a> {
    resource_id: i64,
    resource: Option<Value<'a>>,
    schema_url: Option<Value<'a>>,
    scope_id: i64,
    scope: Option<Value<'a>>,
}

struct Scope<'a> {
    id: i64,
    object: Option<Value<'a>>,
    records: Vec<u8>,
}

struct Resource<'a> {
    id: i64,
    object: Option<Value<'a>>,
    schema_url: Option<Value<'a>>,
    scopes: Vec<Scope<'a>>,
}

pub(super) fn render(chunk: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let mut resources: Vec<Resource<'_>> = Vec::new();
    for event in Events::new(chunk) {
        let event = event?;
        let identity = identity(&event);
        let resource = match resources.iter().position(|r| {
            r.id == identity.resource_id && r.object == identity.resource && r.schema_url == identity.schema_url
        }) {
            Some(i) => &mut resources[i],
            None => {
                resources.push(Resource {
                    id: identity.resource_id,
                    object: identity.resource,
                    schema_url: identity.schema_url,
                    scopes: Vec::new(),
                });
                resources.last_mut().expect("just pushed")
            }
        };
        let scope = match resource.scopes.iter().position(|s| s.id == identity.scope_id && s.object == identity.scope) {
            Some(i) => &mut resource.scopes[i],
            None => {
                resource.scopes.push(Scope { id: identity.scope_id, object: identity.scope, records: Vec::new() });
                resource.scopes.last_mut().expect("just pushed")
            }
        };
        if !scope.records.is_empty() {
            scope.records.push(b',');
        }
        record(&mut scope.records, &event);
    }

    out.extend_from_slice(b"{\"resourceLogs\":[");
    for (i, resource) in resources.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"resource\":");
        resource_json(out, resource.object.as_ref());
        out.extend_from_slice(b",\"scopeLogs\":[");
        for (j, scope) in resource.scopes.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"scope\":");
            scope_json(out, scope.object.as_ref());
            out.extend_from_slice(b",\"logRecords\":[");
            out.extend_from_slice(&scope.records);
            out.push(b']');
            if let Some(Value::Str(url)) = scope.object.as_ref().and_then(|s| s.get("schema_url")) {
                out.extend_from_slice(b",\"schemaUrl\":");
                string(out, url);
            }
            out.push(b'}');
        }
        out.push(b']');
        if let Some(Value::Str(url)) = &resource.schema_url {
            out.extend_from_slice(b",\"schemaUrl\":");
            string(out, url);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// The record's resource and scope: its OpenTelemetry group's, or the default (ids 0, nothing).
fn identity<'a>(event: &Event<'a>) -> Identity<'a> {
    let default = Identity { resource_id: 0, resource: None, schema_url: None, scope_id: 0, scope: None };
    let Some(Value::Map(metadata)) = &event.group_metadata else { return default };
    let int = |key| match lookup(metadata, key) {
        Some(Value::Int(n)) => Some(*n),
        Some(Value::UInt(n)) => Some(*n as i64),
        _ => None,
    };
    let (Some(Value::Str(b"otlp")), Some(resource_id), Some(scope_id)) =
        (lookup(metadata, "schema"), int("resource_id"), int("scope_id"))
    else {
        return default;
    };
    let body = match &event.group_attributes {
        Some(Value::Map(body)) => Some(body.as_slice()),
        _ => None,
    };
    let resource = body.and_then(|b| lookup(b, "resource")).cloned();
    let scope = body.and_then(|b| lookup(b, "scope")).cloned();
    let schema_url = body
        .and_then(|b| lookup(b, "schema_url"))
        .or_else(|| match &resource {
            Some(Value::Map(r)) => lookup(r, "schema_url"),
            _ => None,
        })
        .cloned();
    Identity { resource_id, resource, schema_url, scope_id, scope }
}

fn non_negative(value: Option<&Value<'_>>) -> Option<u64> {
    match value {
        Some(Value::UInt(n)) => Some(*n),
        Some(Value::Int(n)) if *n >= 0 => Some(*n as u64),
        _ => None,
    }
}

fn resource_json(out: &mut Vec<u8>, resource: Option<&Value<'_>>) {
    out.push(b'{');
    let mut first = true;
    if let Some(Value::Map(fields)) = resource {
        if let Some(Value::Map(attributes)) = lookup(fields, "attributes") {
            key(out, &mut first, "attributes");
            key_values(out, attributes);
        }
        if let Some(dropped) = non_negative(lookup(fields, "dropped_attributes_count")) {
            key(out, &mut first, "droppedAttributesCount");
            super::push_fmt(out, format_args!("{dropped}"));
        }
    }
    out.push(b'}');
}

fn scope_json(out: &mut Vec<u8>, scope: Option<&Value<'_>>) {
    out.push(b'{');
    let mut first = true;
    if let Some(Value::Map(fields)) = scope {
        for name in ["name", "version"] {
            if let Some(Value::Str(text)) = lookup(fields, name) {
                key(out, &mut first, name);
                string(out, text);
            }
        }
        if let Some(Value::Map(attributes)) = lookup(fields, "attributes") {
            key(out, &mut first, "attributes");
            key_values(out, attributes);
        }
        if let Some(Value::UInt(dropped)) = lookup(fields, "dropped_attributes_count") {
            key(out, &mut first, "droppedAttributesCount");
            super::push_fmt(out, format_args!("{dropped}"));
        }
    }
    out.push(b'}');
}

fn record(out: &mut Vec<u8>, event: &Event<'_>) {
    out.push(b'{');
    let mut first = true;
    let otlp = match event.metadata.get("otlp") {
        Some(Value::Map(fields)) => Some(fields.as_slice()),
        _ => None,
    };
    let timestamp = otlp
        .and_then(|o| non_negative(lookup(o, "timestamp")))
        .unwrap_or_else(|| u64::try_from(event.timestamp.unix_nanos()).unwrap_or(0));
    if timestamp > 0 {
        key(out, &mut first, "timeUnixNano");
        u64_string(out, timestamp);
    }
    if let Some(otlp) = otlp {
        if let Some(observed) = non_negative(lookup(otlp, "observed_timestamp")) {
            key(out, &mut first, "observedTimeUnixNano");
            u64_string(out, observed);
        }
        if let Some(severity) = non_negative(lookup(otlp, "severity_number")) {
            key(out, &mut first, "severityNumber");
            super::push_fmt(out, format_args!("{severity}"));
        }
        if let Some(Value::Str(text)) = lookup(otlp, "severity_text") {
            key(out, &mut first, "severityText");
            string(out, text);
        }
        if let Some(Value::Map(attributes)) = lookup(otlp, "attributes")
            && key_value_count(attributes) > 0
        {
            key(out, &mut first, "attributes");
            key_values(out, attributes);
        }
        for (name, field, len) in [("traceId", "trace_id", 16), ("spanId", "span_id", 8)] {
            if let Some(Value::Bin(id)) = lookup(otlp, field)
                && id.len() == len
            {
                key(out, &mut first, name);
                hex(out, id);
            }
        }
    }
    let body = match &event.body {
        Value::Map(fields) => BODY_KEYS.iter().find_map(|k| lookup(fields, k)).unwrap_or(&event.body),
        other => other,
    };
    if !matches!(body, Value::Nil) {
        key(out, &mut first, "body");
        any_value(out, body);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use crate::test_chunks::{map, str, uint};

    /// `[[EventTime(seconds), metadata], body]`, metadata and body written by the closures.
    fn record(out: &mut Vec<u8>, seconds: u32, metadata: impl FnOnce(&mut Vec<u8>), body: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(&[0x92, 0x92, 0xd7, 0x00]);
        out.extend_from_slice(&seconds.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        metadata(out);
        body(out);
    }

    fn group_start(out: &mut Vec<u8>, resource_id: u64, attribute: &str) {
        record(
            out,
            u32::MAX,
            |out| {
                map(out, 3);
                str(out, "schema");
                str(out, "otlp");
                str(out, "resource_id");
                uint(out, resource_id);
                str(out, "scope_id");
                uint(out, 0);
            },
            |out| {
                map(out, 2);
                str(out, "resource");
                map(out, 1);
                str(out, "attributes");
                map(out, 1);
                str(out, "service.name");
                str(out, attribute);
                str(out, "scope");
                map(out, 1);
                str(out, "name");
                str(out, "lib");
            },
        );
    }

    fn group_end(out: &mut Vec<u8>) {
        record(out, u32::MAX - 1, |out| map(out, 0), |out| map(out, 0));
    }

    fn plain(out: &mut Vec<u8>, text: &str) {
        record(
            out,
            1_700_000_000,
            |out| map(out, 0),
            |out| {
                map(out, 2);
                str(out, "message");
                str(out, text);
                str(out, "other");
                uint(out, 1);
            },
        );
    }

    #[test]
    fn groups_with_the_same_resource_and_scope_share_them_and_plain_records_get_an_empty_one() {
        let mut chunk = Vec::new();
        group_start(&mut chunk, 0, "a");
        plain(&mut chunk, "one");
        group_end(&mut chunk);
        group_start(&mut chunk, 0, "a");
        plain(&mut chunk, "two");
        group_end(&mut chunk);
        group_start(&mut chunk, 1, "b");
        plain(&mut chunk, "three");
        group_end(&mut chunk);
        plain(&mut chunk, "four");
        let mut out = Vec::new();
        super::render(&chunk, &mut out).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let resources = json["resourceLogs"].as_array().unwrap();
        assert_eq!(resources.len(), 3, "resource a (twice), b, and the empty one: {json}");
        let bodies = |r: usize| -> Vec<&str> {
            resources[r]["scopeLogs"][0]["logRecords"]
                .as_array()
                .unwrap()
                .iter()
                .map(|record| record["body"]["stringValue"].as_str().unwrap())
                .collect()
        };
        assert_eq!(bodies(0), ["one", "two"], "the same ids and content share a resource and scope");
        assert_eq!(resources[1]["resource"]["attributes"][0]["value"]["stringValue"], "b");
        assert_eq!(bodies(2), ["four"]);
        assert_eq!(resources[2]["resource"], serde_json::json!({}), "records outside groups");
        assert_eq!(resources[2]["scopeLogs"][0]["scope"], serde_json::json!({}));
        assert_eq!(
            resources[2]["scopeLogs"][0]["logRecords"][0]["timeUnixNano"], "1700000000000000000",
            "the record's time in nanoseconds, as a string"
        );
    }
}
