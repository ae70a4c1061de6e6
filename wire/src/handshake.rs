//! The handshake layer (RFC 8446 §4, RFC 5246 §7.4): the four-byte header
//! that frames every handshake message, and the caps on the sizes a peer
//! declares in one.
//!
//! It sits below the message modules (`client_hello`, `server_hello`,
//! `certificate`, `server_key_exchange`) and the `deframer` that
//! reassembles messages and hands their bodies to them. They all take
//! framing and limits from here, so none of them needs another, and the
//! deframer alone knows every message type.

use crate::error::{DecodeError, EncodeError, Kind};
use crate::reader::Reader;
use crate::writer::Writer;

/// The message types, from the IANA table behind `codepoints`.
pub use crate::codepoints::HandshakeType;

/// Bytes of a handshake message header: msg_type (u8) and length (u24).
pub const HANDSHAKE_HEADER_LEN: usize = 4;

/// A handshake message longer than this is refused. Real first flights
/// are under 16 KiB; 256 KiB leaves room for long chains and bounds memory
/// per connection at high concurrency.
pub const MAX_HANDSHAKE_LEN: usize = 256 * 1024;

/// A Certificate message may be as long as the u24 length allows (RFC
/// 8446 §4): it is read entry by entry, never buffered whole
/// (`certificate::CertificateReader`), so only the entries kept take memory.
pub const MAX_CERTIFICATE_LEN: usize = (1 << 24) - 1;

/// Certificate DER bytes kept per Certificate message; the entries past it
/// are counted, not kept. Real chains are a few KiB; this keeps the largest
/// seen (a 340 KB message) whole and bounds memory per connection.
pub const MAX_CHAIN_BYTES: usize = 512 * 1024;

/// Certificates kept per Certificate message; the ones after are counted,
/// not kept. Real chains have 2–4; this keeps a 300-certificate chain whole.
pub const MAX_CHAIN_CERTS: usize = 512;

/// The header in front of every handshake message (RFC 8446 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeHeader {
    pub typ: HandshakeType,
    /// The body length the header declares.
    pub length: usize,
}

impl HandshakeHeader {
    /// The header at the front of `bytes`; `None` until all four bytes are there.
    pub fn peek(bytes: &[u8]) -> Option<Self> {
        let &[typ, a, b, c] = bytes.get(..HANDSHAKE_HEADER_LEN)? else {
            return None;
        };
        Some(Self {
            typ: HandshakeType(typ),
            length: u32::from_be_bytes([0, a, b, c]) as usize,
        })
    }

    /// Refuses a declared length over [`MAX_HANDSHAKE_LEN`], before any of
    /// the body is buffered; `offset` is where the header starts.
    pub fn check_length(&self, offset: usize) -> Result<(), DecodeError> {
        if self.length > MAX_HANDSHAKE_LEN {
            return Err(DecodeError {
                field: "handshake.length",
                offset: offset + 1,
                kind: Kind::TooLong {
                    len: self.length,
                    max: MAX_HANDSHAKE_LEN,
                },
            });
        }
        Ok(())
    }

    /// Bytes of the whole message, header included.
    pub fn message_len(&self) -> usize {
        HANDSHAKE_HEADER_LEN + self.length
    }
}

/// Reads `bytes` as exactly one handshake message of type `expected`;
/// returns a reader over its body.
pub fn read_message(bytes: &[u8], expected: HandshakeType) -> Result<Reader<'_>, DecodeError> {
    let mut r = Reader::new(bytes);
    let typ = r.u8("handshake.msg_type")?;
    if typ != expected.0 {
        return Err(DecodeError {
            field: "handshake.msg_type",
            offset: 0,
            kind: Kind::Unexpected(u32::from(typ)),
        });
    }
    let body = r.nested_u24("handshake.body", MAX_HANDSHAKE_LEN)?;
    r.finish("handshake")?;
    Ok(body)
}

/// Writes a handshake message: its type, then what `body` writes behind a
/// u24 length; `field` names the message in an `EncodeError`.
pub fn write_message(
    w: &mut Writer,
    typ: HandshakeType,
    field: &'static str,
    body: impl FnOnce(&mut Writer) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    w.u8(typ.0);
    w.u24_prefixed(field, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_waits_for_the_whole_header() {
        assert_eq!(HandshakeHeader::peek(&[14, 0, 0]), None);
        let h = HandshakeHeader::peek(&[11, 0x01, 0x02, 0x03, 0xff]).unwrap();
        assert_eq!(h.typ, HandshakeType::CERTIFICATE);
        assert_eq!(h.length, 0x010203);
        assert_eq!(h.message_len(), 4 + 0x010203);
    }

    #[test]
    fn rejects_declared_length_over_cap_at_the_length_field() {
        let over = u32::try_from(MAX_HANDSHAKE_LEN + 1).unwrap().to_be_bytes();
        let h = HandshakeHeader::peek(&[1, over[1], over[2], over[3]]).unwrap();
        let e = h.check_length(100).unwrap_err();
        assert_eq!(e.offset, 101);
        assert!(matches!(e.kind, Kind::TooLong { max, .. } if max == MAX_HANDSHAKE_LEN));
        let at_cap = HandshakeHeader {
            length: MAX_HANDSHAKE_LEN,
            ..h
        };
        assert!(at_cap.check_length(0).is_ok());
    }

    #[test]
    fn written_message_reads_back_and_other_types_and_trailing_bytes_are_rejected() {
        let done = HandshakeType::SERVER_HELLO_DONE;
        let mut w = Writer::new();
        write_message(&mut w, done, "server_hello_done", |_| Ok(())).unwrap();
        let bytes = w.into_bytes();
        assert_eq!(bytes, [14, 0, 0, 0]);
        assert!(read_message(&bytes, done).unwrap().is_empty());
        let e = read_message(&bytes, HandshakeType::CLIENT_HELLO).unwrap_err();
        assert_eq!(e.kind, Kind::Unexpected(14));
        let e = read_message(&[14, 0, 0, 0, 0], done).unwrap_err();
        assert_eq!(e.kind, Kind::Trailing { extra: 1 });
    }
}
