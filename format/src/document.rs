//! Reading fields of a decoded msgpack document (a cmetrics or ctraces context), with errors
//! that name the byte offset of the document and the path to the field.

use crate::error::DecodeError;
use crate::value::Value;

/// Where in a chunk the document being read starts, for errors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Doc {
    pub at: usize,
    pub what: &'static str,
}

impl Doc {
    pub fn error(&self, path: &str, reason: impl std::fmt::Display) -> DecodeError {
        DecodeError::new(self.at, format!("{} at byte offset {}: {path}: {reason}", self.what, self.at))
    }

    pub fn map<'v, 'a>(&self, value: &'v Value<'a>, path: &str) -> Result<&'v [(Value<'a>, Value<'a>)], DecodeError> {
        match value {
            Value::Map(entries) => Ok(entries),
            other => Err(self.error(path, format_args!("is {}, not a map", other.kind()))),
        }
    }

    /// A map, or `None` for nil.
    pub fn map_or_nil<'v, 'a>(
        &self,
        value: &'v Value<'a>,
        path: &str,
    ) -> Result<Option<&'v [(Value<'a>, Value<'a>)]>, DecodeError> {
        match value {
            Value::Nil => Ok(None),
            other => self.map(other, path).map(Some),
        }
    }

    pub fn array<'v, 'a>(&self, value: &'v Value<'a>, path: &str) -> Result<&'v [Value<'a>], DecodeError> {
        match value {
            Value::Array(items) => Ok(items),
            other => Err(self.error(path, format_args!("is {}, not an array", other.kind()))),
        }
    }

    pub fn uint(&self, value: &Value<'_>, path: &str) -> Result<u64, DecodeError> {
        match value {
            Value::UInt(n) => Ok(*n),
            Value::Int(n) if *n >= 0 => Ok(*n as u64),
            other => Err(self.error(path, format_args!("is {}, not an unsigned integer", other.kind()))),
        }
    }

    pub fn int(&self, value: &Value<'_>, path: &str) -> Result<i64, DecodeError> {
        match value {
            Value::Int(n) => Ok(*n),
            Value::UInt(n) => i64::try_from(*n).map_err(|_| self.error(path, format_args!("{n} is out of range"))),
            other => Err(self.error(path, format_args!("is {}, not an integer", other.kind()))),
        }
    }

    pub fn float(&self, value: &Value<'_>, path: &str) -> Result<f64, DecodeError> {
        match value {
            Value::Float(f) => Ok(*f),
            other => Err(self.error(path, format_args!("is {}, not a float", other.kind()))),
        }
    }

    pub fn str<'a>(&self, value: &Value<'a>, path: &str) -> Result<&'a [u8], DecodeError> {
        match value {
            Value::Str(bytes) => Ok(bytes),
            other => Err(self.error(path, format_args!("is {}, not a string", other.kind()))),
        }
    }

    /// A string, or `None` for nil.
    pub fn str_or_nil<'a>(&self, value: &Value<'a>, path: &str) -> Result<Option<&'a [u8]>, DecodeError> {
        match value {
            Value::Nil => Ok(None),
            other => self.str(other, path).map(Some),
        }
    }

    /// The entries of a map whose keys are strings, as `(key, value)`.
    pub fn fields<'v, 'a>(
        &self,
        entries: &'v [(Value<'a>, Value<'a>)],
        path: &str,
    ) -> Result<Vec<(&'a [u8], &'v Value<'a>)>, DecodeError> {
        entries
            .iter()
            .map(|(key, value)| match key {
                Value::Str(name) => Ok((*name, value)),
                other => Err(self.error(path, format_args!("has a key that is {}, not a string", other.kind()))),
            })
            .collect()
    }
}

/// The value under `key` of a map's entries (the first, like the agent's kvlist lookups).
pub(crate) fn lookup<'v, 'a>(entries: &'v [(Value<'a>, Value<'a>)], key: &str) -> Option<&'v Value<'a>> {
    entries.iter().find(|(k, _)| matches!(k, Value::Str(name) if *name == key.as_bytes())).map(|(_, v)| v)
}
