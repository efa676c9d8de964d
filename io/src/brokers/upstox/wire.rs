//! A protobuf wire-format reader over borrowed bytes: varints, fixed 64/32-bit values and
//! length-delimited fields, one `(field number, value)` at a time, never allocating and never
//! panicking. `decode.rs` walks Upstox's `FeedResponse` with it straight into ticks.
//!
//! Written by hand because prost's generated types own their strings, maps and repeated fields:
//! decoding one `FeedResponse` through them allocates a `HashMap`, a `String` per instrument key
//! and a `Vec` per depth and OHLC list, on every frame. prost stays the schema's oracle in tests and
//! the mock's encoder (`docs/decisions.md`).

use std::fmt;

/// Why a message could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The bytes ended inside a field.
    Truncated,
    /// A varint longer than 10 bytes.
    BadVarint,
    /// Wire types 3 and 4 (groups, unused by proto3) or 6 and 7 (undefined).
    BadWireType(u8),
    /// Field number 0.
    BadFieldNumber,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("protobuf truncated"),
            WireError::BadVarint => f.write_str("protobuf varint over 10 bytes"),
            WireError::BadWireType(t) => write!(f, "protobuf wire type {t}"),
            WireError::BadFieldNumber => f.write_str("protobuf field number 0"),
        }
    }
}

/// One field's value, as the wire types give it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0: int32/64, uint, bool, enum.
    Varint(u64),
    /// Wire type 1: double, fixed64.
    Fixed64(u64),
    /// Wire type 2: string, bytes, an embedded message, a packed list.
    Bytes(&'a [u8]),
    /// Wire type 5: float, fixed32.
    Fixed32(u32),
}

impl<'a> Value<'a> {
    /// As a `double` (0.0 if the field has another wire type: proto3 readers skip mismatches).
    #[inline]
    pub fn f64(self) -> f64 {
        match self {
            Value::Fixed64(b) => f64::from_bits(b),
            _ => 0.0,
        }
    }

    /// As an `int64` (two's complement in the varint).
    #[inline]
    pub fn i64(self) -> i64 {
        match self {
            Value::Varint(v) => v as i64,
            _ => 0,
        }
    }

    /// As embedded bytes (empty for another wire type).
    #[inline]
    pub fn bytes(self) -> &'a [u8] {
        match self {
            Value::Bytes(b) => b,
            _ => &[],
        }
    }
}

/// Iterates the fields of one message.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    /// The fields of the message in `buf`.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(WireError::Truncated)?;
            self.buf = rest;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::BadVarint)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), WireError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let r = (|| {
            let key = self.varint()?;
            let field = (key >> 3) as u32;
            if field == 0 {
                return Err(WireError::BadFieldNumber);
            }
            let v = match (key & 7) as u8 {
                0 => Value::Varint(self.varint()?),
                1 => Value::Fixed64(u64::from_le_bytes(
                    self.take(8)?.try_into().map_err(|_| WireError::Truncated)?,
                )),
                2 => {
                    let n = self.varint()?;
                    let n = usize::try_from(n).map_err(|_| WireError::Truncated)?;
                    Value::Bytes(self.take(n)?)
                }
                5 => Value::Fixed32(u32::from_le_bytes(
                    self.take(4)?.try_into().map_err(|_| WireError::Truncated)?,
                )),
                t => return Err(WireError::BadWireType(t)),
            };
            Ok((field, v))
        })();
        if r.is_err() {
            self.buf = &[]; // nothing after a broken field can be trusted
        }
        Some(r)
    }
}

/// Protobuf encoding helpers for building test frames by hand (the golden frames in the tests
/// are written as bytes; these help the fuzz seeds and benchmarks).
pub mod enc {
    /// Appends a varint.
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// Appends a length-delimited field.
    pub fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
        varint(out, (field as u64) << 3 | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    /// Appends a double field.
    pub fn double(out: &mut Vec<u8>, field: u32, v: f64) {
        varint(out, (field as u64) << 3 | 1);
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a varint field.
    pub fn int(out: &mut Vec<u8>, field: u32, v: i64) {
        varint(out, (field as u64) << 3);
        varint(out, v as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_wire_type_and_stops_at_damage() {
        // field 1 varint 300, field 2 double 1.5, field 3 bytes "ab", field 4 fixed32 7
        let mut b = vec![0x08, 0xac, 0x02, 0x11];
        b.extend_from_slice(&1.5f64.to_le_bytes());
        b.extend_from_slice(&[0x1a, 0x02, b'a', b'b', 0x25, 7, 0, 0, 0]);
        let f: Vec<_> = Fields::new(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            f,
            vec![
                (1, Value::Varint(300)),
                (2, Value::Fixed64(1.5f64.to_bits())),
                (3, Value::Bytes(b"ab")),
                (4, Value::Fixed32(7)),
            ]
        );
        // a length past the end, a group, field 0, an endless varint
        for bad in [
            &[0x1a, 0x05, b'a'][..],
            &[0x0b],
            &[0x00, 0x01],
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ] {
            let mut it = Fields::new(bad);
            assert!(matches!(it.next(), Some(Err(_))), "{bad:?}");
            assert!(it.next().is_none(), "stops after damage");
        }
    }
}
