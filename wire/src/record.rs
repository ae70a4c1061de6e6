//! The record layer (RFC 5246 §6.2, RFC 8446 §5.1) and the SSLv2 record
//! header (draft-hickman-netscape-ssl-00 §1.2), plus the framing of an
//! outgoing handshake message over several records and several writes,
//! which intolerance probes need.

use crate::codepoints::{ContentType, ProtocolVersion};
use crate::error::{DecodeError, EncodeError, Kind};
use crate::reader::Reader;
use crate::writer::Writer;

/// Bytes of a TLS record header.
pub const RECORD_HEADER_LEN: usize = 5;
/// RFC 5246 §6.2.3: TLSCiphertext.length is at most 2^14 + 2048. Anything
/// longer is refused, which also bounds what one record can make us buffer.
pub const MAX_RECORD_LEN: usize = 16384 + 2048;
/// RFC 8446 §5.1: a plaintext fragment is at most 2^14 bytes.
pub const MAX_FRAGMENT_LEN: usize = 16384;
/// An SSLv2 two-byte header carries a 15-bit length.
pub const MAX_SSLV2_RECORD_LEN: usize = 0x7fff;

/// A TLS record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: ContentType,
    pub version: ProtocolVersion,
    pub length: u16,
}

/// One TLS record borrowed from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub header: RecordHeader,
    pub fragment: &'a [u8],
}

impl RecordHeader {
    /// Reads and checks a header: a content type of 20..=24 (others are
    /// not TLS as far as a handshake scanner is concerned), a version whose
    /// major byte is 3 (SSLv3 to TLS 1.3) and a length within the cap.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let content_type = ContentType(r.u8("record.content_type")?);
        if !(20..=24).contains(&content_type.0) {
            return Err(DecodeError {
                field: "record.content_type",
                offset: at,
                kind: Kind::Unexpected(u32::from(content_type.0)),
            });
        }
        let version = ProtocolVersion(r.u16("record.version")?);
        if version.0 >> 8 != 3 {
            return Err(DecodeError {
                field: "record.version",
                offset: at + 1,
                kind: Kind::Unexpected(u32::from(version.0)),
            });
        }
        let length = r.u16("record.length")?;
        if usize::from(length) > MAX_RECORD_LEN {
            return Err(DecodeError {
                field: "record.length",
                offset: at + 3,
                kind: Kind::TooLong {
                    len: usize::from(length),
                    max: MAX_RECORD_LEN,
                },
            });
        }
        Ok(Self {
            content_type,
            version,
            length,
        })
    }

    pub fn write(&self, w: &mut Writer) {
        w.u8(self.content_type.0);
        w.u16(self.version.0);
        w.u16(self.length);
    }
}

/// Reads one whole record from the front of `bytes`; returns it and the
/// number of bytes it took.
pub fn read_record(bytes: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    let mut r = Reader::new(bytes);
    let header = RecordHeader::read(&mut r)?;
    let fragment = r.bytes(usize::from(header.length), "record.fragment")?;
    Ok((Record { header, fragment }, RECORD_HEADER_LEN + fragment.len()))
}

/// Reads an SSLv2 two-byte record header (high bit set); returns the body
/// length. The three-byte form (with padding) is only used by block
/// ciphers after the handshake and is not accepted here.
pub fn read_sslv2_header(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let at = r.offset();
    let h = r.u16("sslv2.record_header")?;
    if h & 0x8000 == 0 {
        return Err(DecodeError {
            field: "sslv2.record_header",
            offset: at,
            kind: Kind::Unexpected(u32::from(h)),
        });
    }
    Ok(usize::from(h & 0x7fff))
}

/// How an outgoing handshake message is cut into records and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framing {
    /// The record-layer version (many clients send 0x0301 whatever they offer).
    pub record_version: ProtocolVersion,
    /// Sizes of the first records' fragments; the rest of the message goes
    /// into records of at most 2^14 bytes. Empty: as few records as possible.
    pub record_sizes: Vec<usize>,
    /// Sizes of the first writes of the record stream; the rest is one
    /// more write. Empty: one write.
    pub write_sizes: Vec<usize>,
}

impl Framing {
    /// One record (when it fits), one write.
    pub fn single(record_version: ProtocolVersion) -> Self {
        Self {
            record_version,
            record_sizes: Vec::new(),
            write_sizes: Vec::new(),
        }
    }

    /// Cuts the message into records of at most `size` bytes.
    pub fn records_of(record_version: ProtocolVersion, size: usize, message_len: usize) -> Self {
        let size = size.max(1);
        let n = message_len.div_ceil(size);
        Self {
            record_version,
            record_sizes: vec![size; n],
            write_sizes: Vec::new(),
        }
    }

    /// Frames `message` (of content type `content_type`) into writes.
    pub fn frame(&self, content_type: ContentType, message: &[u8]) -> Result<Vec<Vec<u8>>, EncodeError> {
        let mut stream = Writer::with_capacity(message.len() + RECORD_HEADER_LEN * (self.record_sizes.len() + 1));
        let mut rest = message;
        let mut sizes = self.record_sizes.iter().copied();
        // An empty message still makes one (empty) record.
        let mut first = true;
        while first || !rest.is_empty() {
            first = false;
            let want = sizes.next().unwrap_or(MAX_FRAGMENT_LEN);
            if want > MAX_FRAGMENT_LEN {
                return Err(EncodeError::TooLong {
                    field: "record.fragment",
                    len: want,
                    max: MAX_FRAGMENT_LEN,
                });
            }
            let (head, tail) = rest.split_at(want.min(rest.len()));
            rest = tail;
            stream.u8(content_type.0);
            stream.u16(self.record_version.0);
            stream.u16_prefixed("record.fragment", |w| {
                w.bytes(head);
                Ok(())
            })?;
        }
        let mut bytes = stream.as_bytes();
        let mut writes = Vec::with_capacity(self.write_sizes.len() + 1);
        for &n in &self.write_sizes {
            if bytes.is_empty() {
                break;
            }
            let (head, tail) = bytes.split_at(n.min(bytes.len()));
            writes.push(head.to_vec());
            bytes = tail;
        }
        if !bytes.is_empty() {
            writes.push(bytes.to_vec());
        }
        Ok(writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_tls_first_byte() {
        let e = read_record(b"220 mx.example ESMTP\r\n").unwrap_err();
        assert_eq!(e.field, "record.content_type");
        assert_eq!(e.kind, Kind::Unexpected(u32::from(b'2')));
    }

    #[test]
    fn rejects_oversized_record() {
        let e = read_record(&[22, 3, 3, 0xff, 0xff]).unwrap_err();
        assert!(matches!(e.kind, Kind::TooLong { .. }));
    }

    #[test]
    fn every_prefix_of_a_record_is_rejected() {
        let full = [21u8, 3, 3, 0, 2, 2, 40];
        for cut in 0..full.len() {
            assert!(read_record(&full[..cut]).is_err(), "accepted a {cut}-byte prefix");
        }
        assert_eq!(read_record(&full).unwrap().1, 7);
    }

    #[test]
    fn framing_splits_records_and_writes() {
        let msg: Vec<u8> = (0..10).collect();
        let f = Framing {
            record_version: ProtocolVersion::TLS10,
            record_sizes: vec![1, 4],
            write_sizes: vec![3],
        };
        let writes = f.frame(ContentType::HANDSHAKE, &msg).unwrap();
        let all: Vec<u8> = writes.concat();
        assert_eq!(writes[0], vec![22, 3, 1]);
        // three records: 1, 4 and the remaining 5 bytes
        let (r1, n1) = read_record(&all).unwrap();
        let (r2, n2) = read_record(&all[n1..]).unwrap();
        let (r3, n3) = read_record(&all[n1 + n2..]).unwrap();
        assert_eq!((r1.fragment.len(), r2.fragment.len(), r3.fragment.len()), (1, 4, 5));
        assert_eq!(n1 + n2 + n3, all.len());
        assert_eq!([r1.fragment, r2.fragment, r3.fragment].concat(), msg);
    }
}
