//! Traces chunks: concatenated ctraces msgpack contexts, decoded as Fluent Bit 5.1's
//! `ctr_decode_msgpack` reads them (the layout `ctr_encode_msgpack` writes). Zero bytes after
//! the last context (left by output processors) are padding.
//!
//! Strings and attributes borrow from the chunk; ids are decoded from the hex the encoder
//! writes. An error names the byte offset of the context and the path to the bad field.

use crate::document::{Doc, lookup};
use crate::error::DecodeError;
use crate::msgpack::Reader;
use crate::value::Value;

/// One ctraces context.
#[derive(Clone, Debug, PartialEq)]
pub struct TracesContext<'a> {
    pub resource_spans: Vec<ResourceSpans<'a>>,
}

/// Spans of one resource.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceSpans<'a> {
    /// The resource's attributes: a map, or nil.
    pub attributes: Value<'a>,
    pub dropped_attributes_count: u64,
    pub schema_url: Option<&'a [u8]>,
    pub scope_spans: Vec<ScopeSpans<'a>>,
}

/// Spans of one instrumentation scope.
#[derive(Clone, Debug, PartialEq)]
pub struct ScopeSpans<'a> {
    pub scope: Option<Scope<'a>>,
    pub schema_url: Option<&'a [u8]>,
    pub spans: Vec<Span<'a>>,
}

/// An instrumentation scope.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope<'a> {
    pub name: Option<&'a [u8]>,
    pub version: Option<&'a [u8]>,
    pub attributes: Value<'a>,
    pub dropped_attributes_count: u64,
}

/// A trace or span id, as the bytes its hex stands for.
pub type Id = Vec<u8>;

/// One span.
#[derive(Clone, Debug, PartialEq)]
pub struct Span<'a> {
    pub trace_id: Option<Id>,
    pub span_id: Option<Id>,
    pub parent_span_id: Option<Id>,
    pub trace_state: Option<&'a [u8]>,
    pub name: Option<&'a [u8]>,
    /// The OTLP `SpanKind` number.
    pub kind: u64,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Value<'a>,
    pub dropped_attributes_count: u64,
    pub dropped_events_count: u64,
    pub dropped_links_count: u64,
    pub events: Vec<SpanEvent<'a>>,
    pub links: Vec<Link<'a>>,
    pub schema_url: Option<&'a [u8]>,
    /// The OTLP `StatusCode` number (0 unset, 1 ok, 2 error).
    pub status_code: i64,
    pub status_message: Option<&'a [u8]>,
}

/// An event of a span.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanEvent<'a> {
    pub time_unix_nano: u64,
    pub name: Option<&'a [u8]>,
    pub attributes: Value<'a>,
    pub dropped_attributes_count: u64,
}

/// A link from a span to another.
#[derive(Clone, Debug, PartialEq)]
pub struct Link<'a> {
    pub trace_id: Option<Id>,
    pub span_id: Option<Id>,
    pub trace_state: Option<&'a [u8]>,
    pub attributes: Value<'a>,
    pub dropped_attributes_count: u64,
}

/// Decodes every context of a traces chunk. An empty chunk (or only padding) has none.
pub fn decode_traces(chunk: &[u8]) -> Result<Vec<TracesContext<'_>>, DecodeError> {
    let mut reader = Reader::new(chunk);
    let mut contexts = Vec::new();
    while !reader.is_empty() {
        let at = reader.offset();
        if chunk[at..].iter().all(|b| *b == 0) {
            break;
        }
        let doc = Doc { at, what: "traces context" };
        let root = reader.value()?;
        contexts.push(context(doc, &root)?);
    }
    Ok(contexts)
}

fn context<'a>(doc: Doc, root: &Value<'a>) -> Result<TracesContext<'a>, DecodeError> {
    let root = doc.map(root, "the context")?;
    let resource_spans =
        lookup(root, "resourceSpans").ok_or_else(|| doc.error("the context", "has no 'resourceSpans'"))?;
    let resource_spans = doc
        .array(resource_spans, "resourceSpans")?
        .iter()
        .map(|entry| resource(doc, entry))
        .collect::<Result<_, _>>()?;
    Ok(TracesContext { resource_spans })
}

fn resource<'a>(doc: Doc, value: &Value<'a>) -> Result<ResourceSpans<'a>, DecodeError> {
    const PATH: &str = "resourceSpans[]";
    let mut out = ResourceSpans {
        attributes: Value::Nil,
        dropped_attributes_count: 0,
        schema_url: None,
        scope_spans: Vec::new(),
    };
    for (key, value) in doc.fields(doc.map(value, PATH)?, PATH)? {
        match key {
            b"resource" => {
                let fields = doc.map(value, "resourceSpans[].resource")?;
                for (key, value) in doc.fields(fields, "resourceSpans[].resource")? {
                    match key {
                        b"attributes" => {
                            out.attributes = attributes(doc, value, "resourceSpans[].resource.attributes")?
                        }
                        b"dropped_attributes_count" => {
                            out.dropped_attributes_count =
                                doc.uint(value, "resourceSpans[].resource.dropped_attributes_count")?
                        }
                        _ => {}
                    }
                }
            }
            b"schema_url" => out.schema_url = doc.str_or_nil(value, "resourceSpans[].schema_url")?,
            b"scope_spans" => {
                out.scope_spans = doc
                    .array(value, "resourceSpans[].scope_spans")?
                    .iter()
                    .map(|entry| scope_spans(doc, entry))
                    .collect::<Result<_, _>>()?;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Attributes are a map (values of any type) or nil.
fn attributes<'a>(doc: Doc, value: &Value<'a>, path: &str) -> Result<Value<'a>, DecodeError> {
    doc.map_or_nil(value, path)?;
    Ok(value.clone())
}

fn scope_spans<'a>(doc: Doc, value: &Value<'a>) -> Result<ScopeSpans<'a>, DecodeError> {
    const PATH: &str = "resourceSpans[].scope_spans[]";
    let mut out = ScopeSpans { scope: None, schema_url: None, spans: Vec::new() };
    for (key, value) in doc.fields(doc.map(value, PATH)?, PATH)? {
        match key {
            b"scope" => out.scope = scope(doc, value)?,
            b"schema_url" => out.schema_url = doc.str_or_nil(value, "resourceSpans[].scope_spans[].schema_url")?,
            b"spans" => {
                out.spans = doc
                    .array(value, "resourceSpans[].scope_spans[].spans")?
                    .iter()
                    .map(|entry| span(doc, entry))
                    .collect::<Result<_, _>>()?;
            }
            _ => {}
        }
    }
    Ok(out)
}

fn scope<'a>(doc: Doc, value: &Value<'a>) -> Result<Option<Scope<'a>>, DecodeError> {
    const PATH: &str = "resourceSpans[].scope_spans[].scope";
    let Some(fields) = doc.map_or_nil(value, PATH)? else { return Ok(None) };
    let mut out = Scope { name: None, version: None, attributes: Value::Nil, dropped_attributes_count: 0 };
    for (key, value) in doc.fields(fields, PATH)? {
        match key {
            b"name" => out.name = doc.str_or_nil(value, PATH)?,
            b"version" => out.version = doc.str_or_nil(value, PATH)?,
            b"attributes" => out.attributes = attributes(doc, value, PATH)?,
            b"dropped_attributes_count" => out.dropped_attributes_count = doc.uint(value, PATH)?,
            _ => {}
        }
    }
    Ok(Some(out))
}

fn span<'a>(doc: Doc, value: &Value<'a>) -> Result<Span<'a>, DecodeError> {
    const PATH: &str = "resourceSpans[].scope_spans[].spans[]";
    let mut out = Span {
        trace_id: None,
        span_id: None,
        parent_span_id: None,
        trace_state: None,
        name: None,
        kind: 0,
        start_time_unix_nano: 0,
        end_time_unix_nano: 0,
        attributes: Value::Nil,
        dropped_attributes_count: 0,
        dropped_events_count: 0,
        dropped_links_count: 0,
        events: Vec::new(),
        links: Vec::new(),
        schema_url: None,
        status_code: 0,
        status_message: None,
    };
    for (key, value) in doc.fields(doc.map(value, PATH)?, PATH)? {
        let path = || format!("{PATH}.{}", String::from_utf8_lossy(key));
        match key {
            b"trace_id" => out.trace_id = id(doc, value, &path())?,
            b"span_id" => out.span_id = id(doc, value, &path())?,
            b"parent_span_id" => out.parent_span_id = id(doc, value, &path())?,
            b"trace_state" => out.trace_state = doc.str_or_nil(value, &path())?,
            b"name" => out.name = doc.str_or_nil(value, &path())?,
            b"kind" => out.kind = doc.uint(value, &path())?,
            b"start_time_unix_nano" => out.start_time_unix_nano = doc.uint(value, &path())?,
            b"end_time_unix_nano" => out.end_time_unix_nano = doc.uint(value, &path())?,
            b"attributes" => out.attributes = attributes(doc, value, &path())?,
            b"dropped_attributes_count" => out.dropped_attributes_count = doc.uint(value, &path())?,
            b"dropped_events_count" => out.dropped_events_count = doc.uint(value, &path())?,
            b"dropped_links_count" => out.dropped_links_count = doc.uint(value, &path())?,
            b"events" => {
                out.events = doc.array(value, &path())?.iter().map(|e| event(doc, e)).collect::<Result<_, _>>()?;
            }
            b"links" => {
                out.links = doc.array(value, &path())?.iter().map(|l| link(doc, l)).collect::<Result<_, _>>()?;
            }
            b"schema_url" => out.schema_url = doc.str_or_nil(value, &path())?,
            b"status" => {
                let status = doc.map(value, &path())?;
                for (key, value) in doc.fields(status, &path())? {
                    match key {
                        b"code" => out.status_code = doc.int(value, &path())?,
                        b"message" => out.status_message = doc.str_or_nil(value, &path())?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn event<'a>(doc: Doc, value: &Value<'a>) -> Result<SpanEvent<'a>, DecodeError> {
    const PATH: &str = "resourceSpans[].scope_spans[].spans[].events[]";
    let mut out = SpanEvent { time_unix_nano: 0, name: None, attributes: Value::Nil, dropped_attributes_count: 0 };
    for (key, value) in doc.fields(doc.map(value, PATH)?, PATH)? {
        match key {
            b"time_unix_nano" => out.time_unix_nano = doc.uint(value, PATH)?,
            b"name" => out.name = doc.str_or_nil(value, PATH)?,
            b"attributes" => out.attributes = attributes(doc, value, PATH)?,
            b"dropped_attributes_count" => out.dropped_attributes_count = doc.uint(value, PATH)?,
            _ => {}
        }
    }
    Ok(out)
}

fn link<'a>(doc: Doc, value: &Value<'a>) -> Result<Link<'a>, DecodeError> {
    const PATH: &str = "resourceSpans[].scope_spans[].spans[].links[]";
    let mut out =
        Link { trace_id: None, span_id: None, trace_state: None, attributes: Value::Nil, dropped_attributes_count: 0 };
    for (key, value) in doc.fields(doc.map(value, PATH)?, PATH)? {
        match key {
            b"trace_id" => out.trace_id = id(doc, value, PATH)?,
            b"span_id" => out.span_id = id(doc, value, PATH)?,
            b"trace_state" => out.trace_state = doc.str_or_nil(value, PATH)?,
            b"attributes" => out.attributes = attributes(doc, value, PATH)?,
            b"dropped_attributes_count" => out.dropped_attributes_count = doc.uint(value, PATH)?,
            _ => {}
        }
    }
    Ok(out)
}

/// An id written as hex (either case), or nil.
fn id(doc: Doc, value: &Value<'_>, path: &str) -> Result<Option<Id>, DecodeError> {
    let Some(hex) = doc.str_or_nil(value, path)? else { return Ok(None) };
    if hex.len() % 2 != 0 {
        return Err(doc.error(path, format_args!("id of {} hex digits", hex.len())));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .map(Some)
        .ok_or_else(|| doc.error(path, "id is not hex"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chunks::traces_context;

    #[test]
    fn decodes_spans_ids_and_trailing_padding() {
        let mut chunk = traces_context(&[("a", 1)], 0);
        chunk.extend(traces_context(&[("b", 2), ("c", 3)], 7));
        let contexts = decode_traces(&chunk).unwrap();
        assert_eq!(contexts.len(), 2, "two contexts, then zero bytes");
        let span = &contexts[1].resource_spans[0].scope_spans[0].spans[1];
        assert_eq!(span.name, Some(&b"c"[..]));
        assert_eq!(
            span.trace_id.as_deref(),
            Some(&[0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c][..])
        );
        assert_eq!(span.span_id.as_deref(), Some(&[0, 0, 0, 0, 0, 0, 0, 2][..]));
        assert_eq!(span.parent_span_id, None);
        assert_eq!((span.kind, span.status_code), (2, 1));
        assert_eq!(span.events[0].name, Some(&b"event"[..]));
    }

    #[test]
    fn errors_name_the_context_offset_and_the_field() {
        let first = traces_context(&[("a", 1)], 0);
        let mut chunk = first.clone();
        let second = traces_context(&[("b", 2)], 0);
        let at = second.windows(9).position(|w| w == b"\xa8trace_id").unwrap() + 11;
        let mut second = second;
        second[at] = b'x';
        chunk.extend(second);
        let err = decode_traces(&chunk).unwrap_err();
        assert_eq!(err.offset, first.len(), "{err}");
        assert!(err.reason.contains("spans[].trace_id: id is not hex"), "{err}");
        assert!(decode_traces(b"\x81\xadresourceSpans\x01").unwrap_err().reason.contains("not an array"));
    }
}

/// Fuzzing the decoder with proptest, as for metrics: arbitrary bytes and cut or corrupted
/// well-formed chunks never panic, errors stay inside the chunk, renderings are UTF-8.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;
    use crate::test_chunks::traces_context;

    fn check(chunk: &[u8]) {
        if let Err(err) = decode_traces(chunk) {
            assert!(err.offset <= chunk.len(), "offset {} past the end of {} bytes", err.offset, chunk.len());
        }
        let mut out = Vec::new();
        if crate::otlp::render(crate::EventType::Traces, chunk, &mut out).is_ok() {
            assert!(std::str::from_utf8(&out).is_ok(), "the rendering is UTF-8");
        }
    }

    fn chunk() -> impl Strategy<Value = Vec<u8>> {
        let spans = proptest::collection::vec(("[a-zé]{0,8}", any::<i64>()), 0..4);
        (proptest::collection::vec(spans, 1..3), 0usize..4).prop_map(|(contexts, padding)| {
            let mut chunk: Vec<u8> = contexts
                .iter()
                .flat_map(|spans| {
                    let spans: Vec<(&str, i64)> = spans.iter().map(|(n, a)| (n.as_str(), *a)).collect();
                    traces_context(&spans, 0)
                })
                .collect();
            chunk.extend(std::iter::repeat_n(0, padding));
            chunk
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            check(&bytes);
        }

        #[test]
        fn well_formed_chunks_decode_whole(chunk in chunk()) {
            prop_assert!(decode_traces(&chunk).is_ok());
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
