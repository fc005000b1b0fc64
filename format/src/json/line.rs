//! Records as the agent's JSON lines (`format json_lines` of its stdout, file and http
//! outputs).

use crate::date::{DateFormat, date_value, formatted_date};
use crate::error::DecodeError;
use crate::event::{Event, Events, Timestamp};
use crate::json::object::{Entry, ObjectWriter, str_key};
use crate::json::stream::{render_entries, render_token};
use crate::msgpack::Token;
use crate::value::Value;

/// Appends `event` as one JSON line (with `\n`) exactly like the agent's `format json_lines`
/// (stdout, file and http outputs): the date under `date_key` (none if `None`), then
/// `__internal__` when the record has metadata or group attributes, then the body's keys.
pub fn write_json_line(
    out: &mut Vec<u8>,
    event: &Event<'_>,
    date_key: Option<&str>,
    date_format: DateFormat,
    escape_unicode: bool,
) {
    let mut entries = Vec::new();
    let line = LineHead { date_key, date_format, escape_unicode };
    let object = line.write(out, &mut entries, event.timestamp, &event.metadata, event.group_attributes.as_ref());
    match &event.body {
        Value::Map(body) => {
            for (key, value) in body {
                object.key(out, &mut entries, str_key(key));
                key.write_json(out, escape_unicode);
                out.push(b':');
                value.write_json(out, escape_unicode);
                object.value_end(out, &mut entries);
            }
        }
        other => {
            object.key(out, &mut entries, Some(b"log"));
            out.extend_from_slice(b"\"log\":");
            other.write_json(out, escape_unicode);
            object.value_end(out, &mut entries);
        }
    }
    object.close(out, &mut entries);
    out.push(b'\n');
}

/// Like [`write_json_line`] for the record whose header `events` has just read: the body is
/// rendered straight from the chunk's msgpack, without building [`Value`]s. On a malformed
/// body, `out` is left as it was and the error is the one [`Events`] gives for these bytes.
pub(crate) fn render_json_line<'a>(
    out: &mut Vec<u8>,
    entries: &mut Vec<Entry<'a>>,
    events: &mut Events<'a>,
    (timestamp, metadata): (Timestamp, Value<'a>),
    line: &LineHead<'a>,
) -> Result<(), DecodeError> {
    let start = out.len();
    let (reader, group) = events.parts();
    let object = line.write(out, entries, timestamp, &metadata, group);
    let body = reader.check_depth(0).and_then(|()| reader.token()).and_then(|token| match token {
        Token::Map(len) => render_entries(reader, len, &object, out, line.escape_unicode, 0, entries),
        token => {
            object.key(out, entries, Some(b"log"));
            out.extend_from_slice(b"\"log\":");
            render_token(reader, token, out, line.escape_unicode, 0, entries)?;
            object.value_end(out, entries);
            Ok(())
        }
    });
    if let Err(err) = body {
        out.truncate(start);
        entries.clear();
        return Err(err);
    }
    object.close(out, entries);
    out.push(b'\n');
    Ok(())
}

/// What comes before a record's body in its JSON line.
pub(crate) struct LineHead<'k> {
    pub date_key: Option<&'k str>,
    pub date_format: DateFormat,
    pub escape_unicode: bool,
}

impl<'k> LineHead<'k> {
    /// Opens the line's object and writes its date and `__internal__` entries.
    fn write(
        &self,
        out: &mut Vec<u8>,
        entries: &mut Vec<Entry<'k>>,
        timestamp: Timestamp,
        metadata: &Value<'_>,
        group: Option<&Value<'_>>,
    ) -> ObjectWriter {
        let object = ObjectWriter::open(out, entries);
        if let Some(key) = self.date_key {
            object.key(out, entries, Some(key.as_bytes()));
            Value::Str(key.as_bytes()).write_json(out, self.escape_unicode);
            out.push(b':');
            match self.date_format {
                DateFormat::JavaSqlTimestamp | DateFormat::Iso8601 => {
                    let text = formatted_date(timestamp, self.date_format);
                    Value::Str(text.as_bytes()).write_json(out, self.escape_unicode);
                }
                format => date_value(timestamp, format).write_json(out, self.escape_unicode),
            }
            object.value_end(out, entries);
        }
        let has_metadata = matches!(metadata, Value::Map(m) if !m.is_empty());
        let has_group = matches!(group, Some(Value::Map(m)) if !m.is_empty());
        if has_metadata || has_group {
            object.key(out, entries, Some(b"__internal__"));
            out.extend_from_slice(b"\"__internal__\":{");
            if let Some(group) = group {
                out.extend_from_slice(b"\"group_attributes\":");
                group.write_json(out, self.escape_unicode);
                out.push(b',');
            }
            out.extend_from_slice(b"\"log_metadata\":");
            metadata.write_json(out, self.escape_unicode);
            out.push(b'}');
            object.value_end(out, entries);
        }
        object
    }
}
