//! JSON objects written entry by entry, with the agent's rule for repeated keys.

use crate::value::Value;

pub(crate) fn str_key<'k>(key: &Value<'k>) -> Option<&'k [u8]> {
    match key {
        Value::Str(bytes) => Some(bytes),
        _ => None,
    }
}

/// One entry of an object being written: its string key (`None` for other keys, which are
/// never merged) and where its `"key":value` text lies in the output.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'k> {
    key: Option<&'k [u8]>,
    start: usize,
    end: usize,
}

/// A JSON object written entry by entry as the msgpack map is read. Like the agent, an entry
/// whose string key comes again later in the same map is left out (the last one wins, in its
/// own position): entries are recorded in a stack shared by nested objects, and the rare
/// object with a repeated key is rewritten when it closes.
pub(crate) struct ObjectWriter {
    /// Offset just after the `{`.
    open: usize,
    /// This object's first entry in the stack.
    base: usize,
}

impl ObjectWriter {
    pub(crate) fn open(out: &mut Vec<u8>, entries: &[Entry<'_>]) -> Self {
        out.push(b'{');
        Self { open: out.len(), base: entries.len() }
    }

    /// Starts an entry; its key and value are written next.
    pub(crate) fn key<'k>(&self, out: &mut Vec<u8>, entries: &mut Vec<Entry<'k>>, key: Option<&'k [u8]>) {
        if entries.len() > self.base {
            out.push(b',');
        }
        entries.push(Entry { key, start: out.len(), end: out.len() });
    }

    pub(crate) fn value_end(&self, out: &[u8], entries: &mut [Entry<'_>]) {
        if let Some(entry) = entries.last_mut() {
            entry.end = out.len();
        }
    }

    pub(crate) fn close(self, out: &mut Vec<u8>, entries: &mut Vec<Entry<'_>>) {
        let mine = &entries[self.base..];
        let repeated =
            |i: usize| mine[i].key.is_some_and(|key| mine[i + 1..].iter().any(|later| later.key == Some(key)));
        if (0..mine.len()).any(repeated) {
            let text = out.split_off(self.open);
            let mut written = 0;
            for (i, entry) in mine.iter().enumerate() {
                if repeated(i) {
                    continue;
                }
                if written > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&text[entry.start - self.open..entry.end - self.open]);
                written += 1;
            }
        }
        entries.truncate(self.base);
        out.push(b'}');
    }
}
