//! Msgpack values borrowed from a chunk: what the reader yields and the JSON writer renders.

/// One msgpack value. Strings, binaries and extension payloads borrow from the chunk.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Nil,
    Bool(bool),
    /// A negative integer (msgpack `int` types with a negative value).
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float (`float 32` values are widened, as the agent does).
    Float(f64),
    /// A msgpack `str`: UTF-8 by convention, not validated (see [`Value::as_str`]).
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(Vec<Value<'a>>),
    /// Entries in wire order; duplicate keys are kept.
    Map(Vec<(Value<'a>, Value<'a>)>),
    /// Extension type and payload.
    Ext(i8, &'a [u8]),
}

impl<'a> Value<'a> {
    /// The text of a `str` value, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::Str(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// The value under string key `key` of a map (the last one, if the key repeats).
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| matches!(k, Value::Str(bytes) if *bytes == key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Bin(_) => "a binary",
            Value::Array(_) => "an array",
            Value::Map(_) => "a map",
            Value::Ext(..) => "an extension",
        }
    }
}
