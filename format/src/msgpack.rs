//! A bounds-checked, allocation-light msgpack reader over a borrowed chunk.
//!
//! Strings, binaries and extension payloads borrow from the chunk; only arrays and maps
//! allocate. Every error names the byte offset where decoding stopped.

use rmp::Marker;

use crate::error::DecodeError;
use crate::value::Value;

/// Nesting deeper than this is refused rather than recursed into: a hostile chunk must not
/// exhaust the guest's stack.
pub const MAX_DEPTH: usize = 256;

/// One step of [`Reader::token`].
#[derive(Clone, Debug, PartialEq)]
pub enum Token<'a> {
    /// Anything but an array or a map.
    Scalar(Value<'a>),
    /// An array header: that many values follow.
    Array(usize),
    /// A map header: that many key-value pairs follow.
    Map(usize),
}

/// Reads msgpack values one after another from a byte slice.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Offset of the next unread byte.
    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn error(&self, at: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError::new(at, reason)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let bytes: &'a [u8] = self.bytes;
        match bytes.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(slice) => {
                self.pos += n;
                Ok(slice)
            }
            None => Err(self.truncated(n, what)),
        }
    }

    #[cold]
    fn truncated(&self, n: usize, what: &str) -> DecodeError {
        self.error(self.pos, format!("truncated: {what} needs {n} bytes, {} left", self.bytes.len() - self.pos))
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N, what)?.try_into().expect("take returns N bytes"))
    }

    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads the marker of the next value without consuming anything else.
    pub fn peek_marker(&self) -> Option<Marker> {
        self.bytes.get(self.pos).map(|b| Marker::from_u8(*b))
    }

    /// Reads an array header, returning its length.
    pub fn array_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let at = self.pos;
        let len = match Marker::from_u8(self.u8("a marker")?) {
            Marker::FixArray(n) => n as usize,
            Marker::Array16 => self.u16("an array length")? as usize,
            Marker::Array32 => self.u32("an array length")? as usize,
            _ => {
                self.pos = at;
                return Ok(None);
            }
        };
        Ok(Some(len))
    }

    /// Reads one complete value.
    pub fn value(&mut self) -> Result<Value<'a>, DecodeError> {
        self.value_at_depth(0)
    }

    /// Reads the next token: a scalar value whole, or the header of an array or a map whose
    /// items follow. The one decoding step behind [`Reader::value`] and the renderers that
    /// walk a chunk in place, so both fail alike on the same bytes.
    pub fn token(&mut self) -> Result<Token<'a>, DecodeError> {
        let at = self.pos;
        let Some(&marker) = self.bytes.get(at) else {
            return Err(self.error(at, "truncated: a marker needs 1 bytes, 0 left"));
        };
        self.pos = at + 1;
        // The markers of everyday records first, without going through `Marker`.
        match marker {
            0x00..=0x7f => return Ok(Token::Scalar(Value::UInt(marker.into()))),
            0xa0..=0xbf => return Ok(Token::Scalar(Value::Str(self.take((marker & 0x1f).into(), "a string")?))),
            0x80..=0x8f => return self.map_header((marker & 0x0f).into(), at),
            0x90..=0x9f => return self.array_header((marker & 0x0f).into(), at),
            _ => {}
        }
        let value = match Marker::from_u8(marker) {
            Marker::Null => Value::Nil,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(n) => Value::UInt(n.into()),
            Marker::FixNeg(n) => Value::Int(n.into()),
            Marker::U8 => Value::UInt(self.u8("a u8")?.into()),
            Marker::U16 => Value::UInt(self.u16("a u16")?.into()),
            Marker::U32 => Value::UInt(self.u32("a u32")?.into()),
            Marker::U64 => Value::UInt(self.u64("a u64")?),
            Marker::I8 => Value::Int((self.u8("an i8")? as i8).into()),
            Marker::I16 => Value::Int((self.u16("an i16")? as i16).into()),
            Marker::I32 => Value::Int((self.u32("an i32")? as i32).into()),
            Marker::I64 => Value::Int(self.u64("an i64")? as i64),
            Marker::F32 => Value::Float(f32::from_bits(self.u32("a f32")?).into()),
            Marker::F64 => Value::Float(f64::from_bits(self.u64("a f64")?)),
            Marker::FixStr(n) => Value::Str(self.take(n.into(), "a string")?),
            Marker::Str8 => {
                let n = self.u8("a string length")?;
                Value::Str(self.take(n.into(), "a string")?)
            }
            Marker::Str16 => {
                let n = self.u16("a string length")?;
                Value::Str(self.take(n.into(), "a string")?)
            }
            Marker::Str32 => {
                let n = self.u32("a string length")?;
                Value::Str(self.take(n as usize, "a string")?)
            }
            Marker::Bin8 => {
                let n = self.u8("a binary length")?;
                Value::Bin(self.take(n.into(), "a binary")?)
            }
            Marker::Bin16 => {
                let n = self.u16("a binary length")?;
                Value::Bin(self.take(n.into(), "a binary")?)
            }
            Marker::Bin32 => {
                let n = self.u32("a binary length")?;
                Value::Bin(self.take(n as usize, "a binary")?)
            }
            Marker::FixArray(n) => return self.array_header(n.into(), at),
            Marker::Array16 => {
                let n = self.u16("an array length")?;
                return self.array_header(n.into(), at);
            }
            Marker::Array32 => {
                let n = self.u32("an array length")?;
                return self.array_header(n as usize, at);
            }
            Marker::FixMap(n) => return self.map_header(n.into(), at),
            Marker::Map16 => {
                let n = self.u16("a map length")?;
                return self.map_header(n.into(), at);
            }
            Marker::Map32 => {
                let n = self.u32("a map length")?;
                return self.map_header(n as usize, at);
            }
            Marker::FixExt1 => self.ext(1)?,
            Marker::FixExt2 => self.ext(2)?,
            Marker::FixExt4 => self.ext(4)?,
            Marker::FixExt8 => self.ext(8)?,
            Marker::FixExt16 => self.ext(16)?,
            Marker::Ext8 => {
                let n = self.u8("an extension length")?;
                self.ext(n.into())?
            }
            Marker::Ext16 => {
                let n = self.u16("an extension length")?;
                self.ext(n.into())?
            }
            Marker::Ext32 => {
                let n = self.u32("an extension length")?;
                self.ext(n as usize)?
            }
            Marker::Reserved => return Err(self.error(at, "reserved msgpack marker 0xc1")),
        };
        Ok(Token::Scalar(value))
    }

    /// The next value if it is a `fixstr` (most keys and short strings of records), consumed;
    /// `None`, consuming nothing, for anything else or a truncated one (which
    /// [`Reader::token`] then reports). A plain return value: the renderers' hot path does not
    /// go through [`Token`], which is returned through memory.
    #[inline]
    pub fn fixstr(&mut self) -> Option<&'a [u8]> {
        let marker = *self.bytes.get(self.pos)?;
        if marker & 0xe0 != 0xa0 {
            return None;
        }
        let start = self.pos + 1;
        let text = self.bytes.get(start..start + usize::from(marker & 0x1f))?;
        self.pos = start + text.len();
        Some(text)
    }

    /// The next value if it is a positive `fixint`, consumed; `None`, consuming nothing, else.
    #[inline]
    pub fn fixint(&mut self) -> Option<u8> {
        let marker = *self.bytes.get(self.pos).filter(|marker| **marker < 0x80)?;
        self.pos += 1;
        Some(marker)
    }

    /// Refuses nesting past [`MAX_DEPTH`] at the value starting at the current offset.
    pub fn check_depth(&self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.error(self.pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn value_at_depth(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        self.check_depth(depth)?;
        match self.token()? {
            Token::Scalar(value) => Ok(value),
            Token::Array(len) => {
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value_at_depth(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            Token::Map(len) => {
                let mut entries = Vec::with_capacity(len);
                for _ in 0..len {
                    let key = self.value_at_depth(depth + 1)?;
                    let value = self.value_at_depth(depth + 1)?;
                    entries.push((key, value));
                }
                Ok(Value::Map(entries))
            }
        }
    }

    fn array_header(&mut self, len: usize, at: usize) -> Result<Token<'a>, DecodeError> {
        // Every item takes at least one byte: a length beyond the rest of the chunk is a lie,
        // refused before it can drive a huge allocation.
        self.check_count(len, 1, "array", at)?;
        Ok(Token::Array(len))
    }

    fn map_header(&mut self, len: usize, at: usize) -> Result<Token<'a>, DecodeError> {
        self.check_count(len, 2, "map", at)?;
        Ok(Token::Map(len))
    }

    fn check_count(&self, len: usize, min_bytes: usize, what: &str, at: usize) -> Result<(), DecodeError> {
        let left = self.bytes.len() - self.pos;
        if len.saturating_mul(min_bytes) > left {
            return Err(self.error(at, format!("truncated: {what} of {len} entries, only {left} bytes left")));
        }
        Ok(())
    }

    fn ext(&mut self, len: usize) -> Result<Value<'a>, DecodeError> {
        let kind = self.u8("an extension type")? as i8;
        Ok(Value::Ext(kind, self.take(len, "an extension payload")?))
    }
}
