//! Certificate (RFC 5246 §7.4.2 and RFC 8446 §4.4.2), CertificateStatus
//! (RFC 6066 §8) and CertificateRequest (RFC 5246 §7.4.4). Certificates
//! stay DER bytes here; the scanner parses them with x509-parser.
//!
//! A Certificate message may be up to 2^24−1 bytes long, so it is read by
//! [`CertificateReader`] as its bytes arrive, one entry at a time: the
//! entries that fit in [`MAX_CHAIN_CERTS`] and [`MAX_CHAIN_BYTES`] are kept,
//! the others are counted in [`Certificate::omitted`], never dropped
//! silently and never an error.

use crate::codepoints::{CertificateStatusType, ClientCertificateType, SignatureScheme};
use crate::error::{DecodeError, EncodeError, Kind};
use crate::handshake::{write_message, HandshakeType, MAX_HANDSHAKE_LEN};
use crate::reader::Reader;
use crate::writer::Writer;

/// The chain caps live with the other handshake size caps.
pub use crate::handshake::{MAX_CERTIFICATE_LEN, MAX_CHAIN_BYTES, MAX_CHAIN_CERTS};

/// One certificate of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CertificateEntry {
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub der: Vec<u8>,
    /// TLS 1.3 per-certificate extensions, raw (empty before TLS 1.3).
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub extensions: Vec<u8>,
}

/// A Certificate message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Certificate {
    /// TLS 1.3 certificate_request_context; `None` in the TLS ≤ 1.2 layout.
    pub context: Option<Vec<u8>>,
    /// The entries kept, in order from the leaf.
    pub entries: Vec<CertificateEntry>,
    /// The entries after them that did not fit in the caps.
    pub omitted: Omitted,
}

/// Certificates of a chain that were read but not kept (over
/// [`MAX_CHAIN_CERTS`] or [`MAX_CHAIN_BYTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Omitted {
    pub certificates: usize,
    /// Their DER bytes.
    pub bytes: usize,
}

impl Omitted {
    pub fn is_empty(&self) -> bool {
        self.certificates == 0
    }
}

impl Certificate {
    /// Decodes a whole Certificate body; `tls13` selects the RFC 8446 layout.
    pub fn read_body(body: &[u8], base: usize, tls13: bool) -> Result<Self, DecodeError> {
        let mut reader = CertificateReader::new(body.len(), base, tls13);
        reader.push(body)?;
        reader.finish()
    }

    /// Writes the handshake message (header and body).
    pub fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        write_message(w, HandshakeType::CERTIFICATE, "certificate", |w| {
            if let Some(ctx) = &self.context {
                w.u8_prefixed("certificate.request_context", |w| {
                    w.bytes(ctx);
                    Ok(())
                })?;
            }
            w.u24_prefixed("certificate.certificate_list", |w| {
                for e in &self.entries {
                    w.u24_prefixed("certificate.cert_data", |w| {
                        w.bytes(&e.der);
                        Ok(())
                    })?;
                    if self.context.is_some() {
                        w.u16_prefixed("certificate.extensions", |w| {
                            w.bytes(&e.extensions);
                            Ok(())
                        })?;
                    }
                }
                Ok(())
            })
        })
    }
}

/// Which field of a Certificate body the reader is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// TLS 1.3: the request context's length, then the context.
    ContextLen,
    Context(usize),
    /// The certificate_list's u24 length.
    ListLen,
    /// An entry's u24 length.
    EntryLen,
    /// An entry's DER, kept or skipped.
    Der {
        len: usize,
        keep: bool,
    },
    /// TLS 1.3: an entry's extensions, their length, then their bytes.
    ExtLen {
        keep: bool,
    },
    Ext {
        len: usize,
        keep: bool,
    },
    /// The list is complete: no byte may follow.
    Done,
}

/// A Certificate body read as it arrives (see the module documentation):
/// [`push`](Self::push) what comes, [`finish`](Self::finish) when the
/// declared length is in. It holds one entry at a time and the entries
/// kept, never the whole message.
#[derive(Debug)]
pub struct CertificateReader {
    tls13: bool,
    /// Body bytes not yet pushed.
    remaining: usize,
    /// Stream offset of the next byte (for errors).
    offset: usize,
    field: Field,
    /// The bytes of the current field read so far (none of a skipped one).
    buf: Vec<u8>,
    /// How many bytes of the current field were read.
    got: usize,
    /// certificate_list bytes not yet read.
    list_left: usize,
    context: Option<Vec<u8>>,
    entries: Vec<CertificateEntry>,
    kept: usize,
    omitted: Omitted,
}

impl CertificateReader {
    /// A reader for a body of `len` bytes starting at stream offset `base`.
    pub fn new(len: usize, base: usize, tls13: bool) -> Self {
        Self {
            tls13,
            remaining: len,
            offset: base,
            field: if tls13 { Field::ContextLen } else { Field::ListLen },
            buf: Vec::new(),
            got: 0,
            list_left: 0,
            context: None,
            entries: Vec::new(),
            kept: 0,
            omitted: Omitted::default(),
        }
    }

    /// Body bytes still expected.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Bytes held: the entries kept and the field being read.
    pub fn held(&self) -> usize {
        self.kept + self.buf.len()
    }

    fn error(&self, field: &'static str, kind: Kind) -> DecodeError {
        DecodeError {
            field,
            offset: self.offset,
            kind,
        }
    }

    /// Bytes the current field needs in all.
    fn need(&self) -> usize {
        match self.field {
            Field::ContextLen => 1,
            Field::Context(n) | Field::Der { len: n, .. } | Field::Ext { len: n, .. } => n,
            Field::ListLen | Field::EntryLen => 3,
            Field::ExtLen { .. } => 2,
            Field::Done => 0,
        }
    }

    /// Reads what `input` holds of the body (at most what is still
    /// expected); returns the bytes used.
    pub fn push(&mut self, input: &[u8]) -> Result<usize, DecodeError> {
        let take = input.len().min(self.remaining);
        let mut data = input.get(..take).unwrap_or(&[]);
        while !data.is_empty() {
            if self.field == Field::Done {
                return Err(self.error("certificate", Kind::Trailing { extra: data.len() }));
            }
            let want = self.need() - self.got;
            let (now, rest) = data.split_at(want.min(data.len()));
            let skipping = matches!(
                self.field,
                Field::Der { keep: false, .. } | Field::Ext { keep: false, .. }
            );
            // A skipped entry is counted, not held.
            if !skipping {
                self.buf.extend_from_slice(now);
            }
            self.got += now.len();
            self.offset += now.len();
            self.remaining -= now.len();
            data = rest;
            if self.got == self.need() {
                self.field_done()?;
            }
        }
        Ok(take)
    }

    /// The current field is whole: decode it and move to the next.
    fn field_done(&mut self) -> Result<(), DecodeError> {
        let buf = std::mem::take(&mut self.buf);
        let got = std::mem::take(&mut self.got);
        let u24 = |b: &[u8]| b.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x));
        let field = self.field;
        if !matches!(field, Field::ContextLen | Field::Context(_) | Field::ListLen) {
            self.list_left = self.list_left.saturating_sub(got);
        }
        self.field = match field {
            Field::ContextLen => match buf.first() {
                Some(0) | None => {
                    self.context = Some(Vec::new());
                    Field::ListLen
                }
                Some(&n) => Field::Context(usize::from(n)),
            },
            Field::Context(_) => {
                self.context = Some(buf);
                Field::ListLen
            }
            Field::ListLen => {
                let len = u24(&buf);
                // The list is the rest of the body, exactly.
                if len > self.remaining {
                    return Err(self.error(
                        "certificate.certificate_list",
                        Kind::Truncated {
                            needed: len,
                            available: self.remaining,
                        },
                    ));
                }
                if len < self.remaining {
                    return Err(self.error(
                        "certificate",
                        Kind::Trailing {
                            extra: self.remaining - len,
                        },
                    ));
                }
                self.list_left = len;
                if len == 0 {
                    Field::Done
                } else {
                    Field::EntryLen
                }
            }
            Field::EntryLen => {
                let len = u24(&buf);
                if len == 0 {
                    return Err(self.error("certificate.cert_data", Kind::Empty));
                }
                if len > self.list_left {
                    return Err(self.error(
                        "certificate.cert_data",
                        Kind::Truncated {
                            needed: len,
                            available: self.list_left,
                        },
                    ));
                }
                let keep = self.entries.len() < MAX_CHAIN_CERTS && self.kept + len <= MAX_CHAIN_BYTES;
                Field::Der { len, keep }
            }
            Field::Der { len, keep } => {
                if keep {
                    self.kept += len;
                    self.entries.push(CertificateEntry {
                        der: buf,
                        extensions: Vec::new(),
                    });
                } else {
                    self.omitted.certificates += 1;
                    self.omitted.bytes += len;
                }
                if self.tls13 {
                    Field::ExtLen { keep }
                } else {
                    self.next_entry()
                }
            }
            Field::ExtLen { keep } => {
                let len = u24(&buf);
                if len > self.list_left {
                    return Err(self.error(
                        "certificate.extensions",
                        Kind::Truncated {
                            needed: len,
                            available: self.list_left,
                        },
                    ));
                }
                if len == 0 {
                    self.next_entry()
                } else {
                    Field::Ext { len, keep }
                }
            }
            Field::Ext { keep, .. } => {
                if keep {
                    if let Some(e) = self.entries.last_mut() {
                        e.extensions = buf;
                    }
                }
                self.next_entry()
            }
            Field::Done => Field::Done,
        };
        Ok(())
    }

    fn next_entry(&self) -> Field {
        if self.list_left == 0 {
            Field::Done
        } else {
            Field::EntryLen
        }
    }

    /// The message, once every declared byte was pushed.
    pub fn finish(self) -> Result<Certificate, DecodeError> {
        if self.field != Field::Done {
            let field = match self.field {
                Field::ContextLen | Field::Context(_) => "certificate.request_context",
                Field::ListLen => "certificate.certificate_list",
                Field::ExtLen { .. } | Field::Ext { .. } => "certificate.extensions",
                _ => "certificate.cert_data",
            };
            return Err(self.error(
                field,
                Kind::Truncated {
                    needed: self.need() - self.got,
                    available: 0,
                },
            ));
        }
        Ok(Certificate {
            context: self.context,
            entries: self.entries,
            omitted: self.omitted,
        })
    }
}

/// A stapled certificate status (RFC 6066 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CertificateStatus {
    pub status_type: CertificateStatusType,
    /// The DER OCSPResponse (for `ocsp`), or the raw body for other types.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub response: Vec<u8>,
}

impl CertificateStatus {
    pub fn read_body(body: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::at(body, base);
        let status_type = CertificateStatusType(r.u8("certificate_status.status_type")?);
        let response = if status_type == CertificateStatusType::OCSP {
            r.nested_u24("certificate_status.response", MAX_HANDSHAKE_LEN)?
                .rest()
                .to_vec()
        } else {
            r.rest().to_vec()
        };
        r.finish("certificate_status")?;
        Ok(Self { status_type, response })
    }

    pub fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        write_message(w, HandshakeType::CERTIFICATE_STATUS, "certificate_status", |w| {
            w.u8(self.status_type.0);
            w.u24_prefixed("certificate_status.response", |w| {
                w.bytes(&self.response);
                Ok(())
            })
        })
    }
}

/// A TLS ≤ 1.2 CertificateRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CertificateRequest {
    pub certificate_types: Vec<ClientCertificateType>,
    /// TLS 1.2 only; `None` before.
    pub signature_algorithms: Option<Vec<SignatureScheme>>,
    /// The acceptable CA names, each a DER DistinguishedName.
    pub certificate_authorities: Vec<Vec<u8>>,
}

impl CertificateRequest {
    pub fn read_body(body: &[u8], base: usize, tls12: bool) -> Result<Self, DecodeError> {
        let mut r = Reader::at(body, base);
        let certificate_types = r
            .nested_u8("certificate_request.certificate_types")?
            .rest()
            .iter()
            .map(|&b| ClientCertificateType(b))
            .collect();
        let signature_algorithms = if tls12 {
            Some(
                r.nested_u16("certificate_request.supported_signature_algorithms")?
                    .u16_list("certificate_request.supported_signature_algorithms")?
                    .into_iter()
                    .map(SignatureScheme)
                    .collect(),
            )
        } else {
            None
        };
        let mut cas = r.nested_u16("certificate_request.certificate_authorities")?;
        let mut certificate_authorities = Vec::new();
        while !cas.is_empty() {
            certificate_authorities.push(
                cas.nested_u16("certificate_request.distinguished_name")?
                    .rest()
                    .to_vec(),
            );
        }
        r.finish("certificate_request")?;
        Ok(Self {
            certificate_types,
            signature_algorithms,
            certificate_authorities,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deframer::{Deframer, Event, Side};

    /// A Certificate body: `n` entries of `size` DER bytes each (TLS 1.2
    /// layout, or TLS 1.3 with a context and per-entry extensions).
    fn chain_body(n: usize, size: usize, tls13: bool) -> Vec<u8> {
        let mut list = Vec::new();
        for i in 0..n {
            list.extend_from_slice(&u32::try_from(size).unwrap().to_be_bytes()[1..]);
            list.extend(std::iter::repeat_n(u8::try_from(i % 251).unwrap(), size));
            if tls13 {
                list.extend_from_slice(&[0, 2, 0xaa, 0xbb]);
            }
        }
        let mut body = if tls13 { vec![1, 7] } else { Vec::new() };
        body.extend_from_slice(&u32::try_from(list.len()).unwrap().to_be_bytes()[1..]);
        body.extend_from_slice(&list);
        body
    }

    /// The body as TLS records of at most 16 KiB, after a handshake header.
    fn records(body: &[u8]) -> Vec<u8> {
        let mut hs = vec![11];
        hs.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        hs.extend_from_slice(body);
        let mut out = Vec::new();
        for chunk in hs.chunks(16 * 1024) {
            out.extend_from_slice(&[22, 3, 3]);
            out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    /// The Certificate event a server-side deframer yields for `bytes`
    /// pushed in `pieces`, in the layout of TLS 1.3 or before.
    fn certificate_from_stream(bytes: &[u8], pieces: usize, tls13: bool) -> Certificate {
        let mut d = Deframer::new(Side::Server);
        if tls13 {
            d.set_negotiated(crate::ProtocolVersion::TLS13, None);
        }
        let mut got = None;
        for piece in bytes.chunks(bytes.len().div_ceil(pieces)) {
            d.push(piece).unwrap();
            while let Some(e) = d.next_event().unwrap() {
                if let Event::Certificate(c) = e {
                    got = Some(c);
                }
            }
        }
        assert!(!d.in_message());
        got.expect("a Certificate event")
    }

    #[test]
    fn a_340_kb_certificate_message_streams_in_whole() {
        // Four certificates of 85 000 bytes: 340 KB, over the buffering cap.
        let body = chain_body(4, 85_000, false);
        assert!(body.len() > MAX_HANDSHAKE_LEN);
        let c = certificate_from_stream(&records(&body), 7, false);
        assert_eq!(c.entries.len(), 4);
        assert!(c.entries.iter().all(|e| e.der.len() == 85_000));
        assert_eq!(c.entries[3].der[0], 3);
        assert!(c.omitted.is_empty());
    }

    #[test]
    fn a_300_certificate_chain_is_kept_whole_in_both_layouts() {
        for tls13 in [false, true] {
            let body = chain_body(300, 1200, tls13);
            let c = certificate_from_stream(&records(&body), 13, tls13);
            assert_eq!(c.entries.len(), 300, "tls13 {tls13}");
            assert!(c.omitted.is_empty());
            if tls13 {
                assert_eq!(c.context.as_deref(), Some(&[7][..]));
                assert_eq!(c.entries[299].extensions, [0xaa, 0xbb]);
            }
            assert_eq!(Certificate::read_body(&body, 0, tls13).unwrap(), c);
        }
    }

    #[test]
    fn entries_past_the_caps_are_counted_not_kept() {
        // Count cap: MAX_CHAIN_CERTS + 10 small certificates.
        let body = chain_body(MAX_CHAIN_CERTS + 10, 10, false);
        let c = Certificate::read_body(&body, 0, false).unwrap();
        assert_eq!(c.entries.len(), MAX_CHAIN_CERTS);
        assert_eq!(
            c.omitted,
            Omitted {
                certificates: 10,
                bytes: 100
            }
        );
        // Byte cap: 12 MiB of 1 MiB certificates in a message near 2^24.
        let body = chain_body(12, 1 << 20, false);
        let c = certificate_from_stream(&records(&body), 40, false);
        assert_eq!(c.entries.len(), MAX_CHAIN_BYTES >> 20);
        assert_eq!(c.omitted.certificates, 12 - c.entries.len());
    }

    #[test]
    fn a_streamed_certificate_is_followed_by_the_next_message() {
        let mut bytes = records(&chain_body(3, 100_000, false));
        bytes.extend_from_slice(&[22, 3, 3, 0, 4, 14, 0, 0, 0]);
        let mut d = Deframer::new(Side::Server);
        d.push(&bytes).unwrap();
        assert!(matches!(d.next_event().unwrap(), Some(Event::Certificate(c)) if c.entries.len() == 3));
        assert_eq!(d.next_event().unwrap(), Some(Event::ServerHelloDone));
    }

    #[test]
    fn damaged_lengths_in_a_streamed_certificate_are_errors_at_their_offset() {
        let mut body = chain_body(3, 100_000, false);
        // The second entry claims more than the list holds.
        let second = 3 + 3 + 100_000;
        body[second] = 0x7f;
        let mut r = CertificateReader::new(body.len(), 0, false);
        let e = r.push(&body).unwrap_err();
        assert_eq!(e.field, "certificate.cert_data");
        assert_eq!(e.offset, second + 3);
        // Every prefix of a whole body is refused.
        let small = chain_body(2, 5, true);
        for cut in 0..small.len() {
            assert!(
                Certificate::read_body(&small[..cut], 0, true).is_err(),
                "accepted {cut} bytes"
            );
        }
    }
}
