//! `Reader`: the only way peer bytes are read. Every read moves the cursor
//! forward or returns a [`DecodeError`] naming the field and the offset; no
//! method can panic.

use crate::error::{DecodeError, Kind};

/// A cursor over untrusted bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, offsets counted from 0.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes, offset: 0 }
    }

    /// A reader over `bytes` that reports offsets from `base`.
    pub fn at(bytes: &'a [u8], base: usize) -> Self {
        Self {
            rest: bytes,
            offset: base,
        }
    }

    /// The offset of the next byte.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// An error at the current offset.
    pub fn error(&self, field: &'static str, kind: Kind) -> DecodeError {
        DecodeError {
            field,
            offset: self.offset,
            kind,
        }
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let Some((head, tail)) = self.rest.split_at_checked(n) else {
            return Err(self.error(
                field,
                Kind::Truncated {
                    needed: n,
                    available: self.rest.len(),
                },
            ));
        };
        (self.rest, self.offset) = (tail, self.offset + n);
        Ok(head)
    }

    /// Every byte left.
    pub fn rest(&mut self) -> &'a [u8] {
        let all = self.rest;
        self.offset += all.len();
        self.rest = &[];
        all
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array::<2>(field)?))
    }

    pub fn u24(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let [a, b, c] = self.array::<3>(field)?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array::<4>(field)?))
    }

    /// A reader over exactly `len` bytes taken from this one.
    pub fn nested(&mut self, len: usize, field: &'static str) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset;
        let body = self.bytes(len, field)?;
        Ok(Reader::at(body, base))
    }

    /// A reader over a body with a one-byte length prefix.
    pub fn nested_u8(&mut self, field: &'static str) -> Result<Reader<'a>, DecodeError> {
        let len = self.u8(field)?;
        self.nested(usize::from(len), field)
    }

    /// A reader over a body with a two-byte length prefix.
    pub fn nested_u16(&mut self, field: &'static str) -> Result<Reader<'a>, DecodeError> {
        let len = self.u16(field)?;
        self.nested(usize::from(len), field)
    }

    /// A reader over a body with a three-byte length prefix, refused past `max`.
    pub fn nested_u24(&mut self, field: &'static str, max: usize) -> Result<Reader<'a>, DecodeError> {
        let at = self.offset;
        let len = self.u24(field)? as usize;
        if len > max {
            return Err(DecodeError {
                field,
                offset: at,
                kind: Kind::TooLong { len, max },
            });
        }
        self.nested(len, field)
    }

    /// The rest as bytes, refused past `max` (e.g. a session id over 32).
    pub fn rest_at_most(&mut self, max: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() > max {
            return Err(self.error(
                field,
                Kind::TooLong {
                    len: self.rest.len(),
                    max,
                },
            ));
        }
        Ok(self.rest())
    }

    /// The rest as big-endian u16 values (cipher suites, groups, schemes).
    pub fn u16_list(&mut self, field: &'static str) -> Result<Vec<u16>, DecodeError> {
        if self.rest.len() % 2 != 0 {
            return Err(self.error(
                field,
                Kind::Misaligned {
                    len: self.rest.len(),
                    unit: 2,
                },
            ));
        }
        let out = self
            .rest
            .chunks_exact(2)
            .filter_map(|c| <[u8; 2]>::try_from(c).ok())
            .map(u16::from_be_bytes)
            .collect();
        self.rest();
        Ok(out)
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.error(field, Kind::Trailing { extra: self.rest.len() }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_names_field_and_offset() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a").unwrap(), 0x0102);
        let e = r.u16("b").unwrap_err();
        assert_eq!(e.field, "b");
        assert_eq!(e.offset, 2);
        assert_eq!(
            e.kind,
            Kind::Truncated {
                needed: 2,
                available: 1
            }
        );
    }

    #[test]
    fn nested_reports_absolute_offsets() {
        let mut r = Reader::new(&[9, 2, 0xaa, 0xbb, 7]);
        r.u8("x").unwrap();
        let mut n = r.nested_u8("body").unwrap();
        n.u8("first").unwrap();
        assert_eq!(n.offset(), 3);
        assert!(n.finish("body").is_err());
        assert_eq!(r.u8("tail").unwrap(), 7);
        r.finish("all").unwrap();
    }

    #[test]
    fn rejects_odd_u16_list() {
        let mut r = Reader::new(&[0, 1, 2]);
        assert!(matches!(r.u16_list("l").unwrap_err().kind, Kind::Misaligned { .. }));
    }
}
