//! Certificate (RFC 5246 §7.4.2 and RFC 8446 §4.4.2), CertificateStatus
//! (RFC 6066 §8) and CertificateRequest (RFC 5246 §7.4.4). Certificates
//! stay DER bytes here; the scanner parses them with x509-parser.

use crate::codepoints::{CertificateStatusType, ClientCertificateType, SignatureScheme};
use crate::error::{DecodeError, EncodeError, Kind};
use crate::handshake::{write_message, HandshakeType, MAX_CHAIN_BYTES, MAX_HANDSHAKE_LEN};
use crate::reader::Reader;
use crate::writer::Writer;

/// The chain caps live with the other handshake size caps.
pub use crate::handshake::MAX_CHAIN_CERTS;

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
    pub entries: Vec<CertificateEntry>,
}

impl Certificate {
    /// Decodes a Certificate body; `tls13` selects the RFC 8446 layout.
    pub fn read_body(body: &[u8], base: usize, tls13: bool) -> Result<Self, DecodeError> {
        let mut r = Reader::at(body, base);
        let context = if tls13 {
            Some(r.nested_u8("certificate.request_context")?.rest().to_vec())
        } else {
            None
        };
        let mut list = r.nested_u24("certificate.certificate_list", MAX_CHAIN_BYTES)?;
        let mut entries = Vec::new();
        while !list.is_empty() {
            if entries.len() == MAX_CHAIN_CERTS {
                return Err(list.error(
                    "certificate.certificate_list",
                    Kind::TooLong {
                        len: entries.len() + 1,
                        max: MAX_CHAIN_CERTS,
                    },
                ));
            }
            let mut der = list.nested_u24("certificate.cert_data", MAX_CHAIN_BYTES)?;
            if der.is_empty() {
                return Err(der.error("certificate.cert_data", Kind::Empty));
            }
            let der = der.rest().to_vec();
            let extensions = if tls13 {
                list.nested_u16("certificate.extensions")?.rest().to_vec()
            } else {
                Vec::new()
            };
            entries.push(CertificateEntry { der, extensions });
        }
        r.finish("certificate")?;
        Ok(Self { context, entries })
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
