//! Traces contexts as one `ExportTraceServiceRequest`, as the agent's `stdout` output renders
//! them with `format otlp_json`: each context's resource spans, in chunk order. Empty lists,
//! zero counts and unset times are left out, as the agent does.

use super::{hex, key, key_value_count, key_values, push_fmt, string, u64_string};
use crate::ctraces::{Link, Span, SpanEvent, decode_traces};
use crate::error::DecodeError;
use crate::value::Value;

pub(super) fn render(chunk: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let contexts = decode_traces(chunk)?;
    out.extend_from_slice(b"{\"resourceSpans\":[");
    let mut first_resource = true;
    for resource in contexts.iter().flat_map(|c| &c.resource_spans) {
        if !std::mem::take(&mut first_resource) {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"resource\":{");
        let mut first = true;
        attributes(out, &mut first, &resource.attributes);
        count(out, &mut first, "droppedAttributesCount", resource.dropped_attributes_count);
        out.extend_from_slice(b"},\"scopeSpans\":[");
        for (i, scope_spans) in resource.scope_spans.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"scope\":{");
            let mut first = true;
            if let Some(scope) = &scope_spans.scope {
                optional_string(out, &mut first, "name", scope.name);
                optional_string(out, &mut first, "version", scope.version);
                attributes(out, &mut first, &scope.attributes);
                count(out, &mut first, "droppedAttributesCount", scope.dropped_attributes_count);
            }
            out.extend_from_slice(b"},\"spans\":[");
            for (j, span) in scope_spans.spans.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                span_json(out, span);
            }
            out.push(b']');
            let mut first = false;
            optional_string(out, &mut first, "schemaUrl", scope_spans.schema_url);
            out.push(b'}');
        }
        out.push(b']');
        let mut first = false;
        optional_string(out, &mut first, "schemaUrl", resource.schema_url);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

fn attributes(out: &mut Vec<u8>, first: &mut bool, attributes: &Value<'_>) {
    if let Value::Map(entries) = attributes
        && key_value_count(entries) > 0
    {
        key(out, first, "attributes");
        key_values(out, entries);
    }
}

fn count(out: &mut Vec<u8>, first: &mut bool, name: &str, n: u64) {
    if n > 0 {
        key(out, first, name);
        push_fmt(out, format_args!("{n}"));
    }
}

fn optional_string(out: &mut Vec<u8>, first: &mut bool, name: &str, text: Option<&[u8]>) {
    if let Some(text) = text {
        key(out, first, name);
        string(out, text);
    }
}

fn id(out: &mut Vec<u8>, first: &mut bool, name: &str, id: Option<&[u8]>) {
    if let Some(id) = id {
        key(out, first, name);
        hex(out, id);
    }
}

fn time(out: &mut Vec<u8>, first: &mut bool, name: &str, nanos: u64) {
    if nanos > 0 {
        key(out, first, name);
        u64_string(out, nanos);
    }
}

fn span_json(out: &mut Vec<u8>, span: &Span<'_>) {
    let mut first = true;
    out.push(b'{');
    id(out, &mut first, "traceId", span.trace_id.as_deref());
    id(out, &mut first, "spanId", span.span_id.as_deref());
    // The agent refuses a span without a name; an empty one is the OTLP default.
    key(out, &mut first, "name");
    string(out, span.name.unwrap_or(b""));
    id(out, &mut first, "parentSpanId", span.parent_span_id.as_deref());
    optional_string(out, &mut first, "traceState", span.trace_state);
    key(out, &mut first, "kind");
    push_fmt(out, format_args!("{}", span.kind));
    time(out, &mut first, "startTimeUnixNano", span.start_time_unix_nano);
    time(out, &mut first, "endTimeUnixNano", span.end_time_unix_nano);
    attributes(out, &mut first, &span.attributes);
    count(out, &mut first, "droppedAttributesCount", span.dropped_attributes_count);
    if !span.events.is_empty() {
        key(out, &mut first, "events");
        out.push(b'[');
        for (i, event) in span.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            event_json(out, event);
        }
        out.push(b']');
    }
    count(out, &mut first, "droppedEventsCount", span.dropped_events_count);
    if !span.links.is_empty() {
        key(out, &mut first, "links");
        out.push(b'[');
        for (i, link) in span.links.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            link_json(out, link);
        }
        out.push(b']');
    }
    count(out, &mut first, "droppedLinksCount", span.dropped_links_count);
    if span.status_code != 0 || span.status_message.is_some() {
        // OTLP/JSON wants the `StatusCode` number; the agent writes "OK" / "ERROR" / "UNSET".
        key(out, &mut first, "status");
        push_fmt(out, format_args!("{{\"code\":{}", span.status_code.clamp(0, 2)));
        let mut first = false;
        optional_string(out, &mut first, "message", span.status_message);
        out.push(b'}');
    }
    out.push(b'}');
}

fn event_json(out: &mut Vec<u8>, event: &SpanEvent<'_>) {
    let mut first = true;
    out.push(b'{');
    key(out, &mut first, "name");
    string(out, event.name.unwrap_or(b""));
    time(out, &mut first, "timeUnixNano", event.time_unix_nano);
    attributes(out, &mut first, &event.attributes);
    count(out, &mut first, "droppedAttributesCount", event.dropped_attributes_count);
    out.push(b'}');
}

fn link_json(out: &mut Vec<u8>, link: &Link<'_>) {
    let mut first = true;
    out.push(b'{');
    id(out, &mut first, "traceId", link.trace_id.as_deref());
    id(out, &mut first, "spanId", link.span_id.as_deref());
    optional_string(out, &mut first, "traceState", link.trace_state);
    attributes(out, &mut first, &link.attributes);
    count(out, &mut first, "droppedAttributesCount", link.dropped_attributes_count);
    out.push(b'}');
}
