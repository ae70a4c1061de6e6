//! `Writer`: builds messages we send. Length prefixes are filled in by
//! closures, so a length is never computed apart from its body.

use crate::error::EncodeError;

/// An append-only byte buffer with length-prefixed sections.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// The low three bytes of `v`; callers check `v < 2^24`.
    pub fn u24(&mut self, v: u32) {
        let [_, a, b, c] = v.to_be_bytes();
        self.buf.extend_from_slice(&[a, b, c]);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Writes `n` zero bytes.
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    fn prefixed(
        &mut self,
        field: &'static str,
        width: usize,
        body: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let at = self.buf.len();
        self.zeros(width);
        body(self)?;
        let len = self.buf.len() - at - width;
        let max = (1usize << (8 * width)) - 1;
        if len > max {
            return Err(EncodeError::TooLong { field, len, max });
        }
        let be = len.to_be_bytes();
        let src = be.get(be.len() - width..).unwrap_or(&[]);
        if let Some(dst) = self.buf.get_mut(at..at + width) {
            dst.copy_from_slice(src);
        }
        Ok(())
    }

    pub fn u8_prefixed(
        &mut self,
        field: &'static str,
        body: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.prefixed(field, 1, body)
    }

    pub fn u16_prefixed(
        &mut self,
        field: &'static str,
        body: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.prefixed(field, 2, body)
    }

    pub fn u24_prefixed(
        &mut self,
        field: &'static str,
        body: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.prefixed(field, 3, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_filled_in() {
        let mut w = Writer::new();
        w.u16_prefixed("outer", |w| {
            w.u8_prefixed("inner", |w| {
                w.bytes(&[1, 2, 3]);
                Ok(())
            })
        })
        .unwrap();
        assert_eq!(w.as_bytes(), &[0, 4, 3, 1, 2, 3]);
    }

    #[test]
    fn overlong_body_is_an_error() {
        let mut w = Writer::new();
        let e = w.u8_prefixed("x", |w| {
            w.zeros(256);
            Ok(())
        });
        assert_eq!(
            e,
            Err(EncodeError::TooLong {
                field: "x",
                len: 256,
                max: 255
            })
        );
    }
}
