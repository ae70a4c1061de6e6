//! SSLv2 messages (draft-hickman-netscape-ssl-00): the CLIENT-HELLO we send
//! to detect SSLv2 (and, with a version of 0x0301 and TLS suites as
//! `0x00XXYY` specs, the SSLv2-compatible v3 hello of RFC 5246 §E.2), and
//! the SERVER-HELLO and ERROR a server answers with.

use crate::codepoints::{CipherSuite, ProtocolVersion, Sslv2CipherSpec, Sslv2MessageType};
use crate::error::{DecodeError, EncodeError, Kind};
use crate::reader::Reader;
use crate::record::MAX_SSLV2_RECORD_LEN;
use crate::writer::Writer;

/// An SSLv2 CLIENT-HELLO, or the SSLv2-compatible hello of SSLv3/TLS clients.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Sslv2ClientHello {
    /// 0x0002 for SSLv2; the highest version offered for a compatible hello.
    pub version: ProtocolVersion,
    pub cipher_specs: Vec<Sslv2CipherSpec>,
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub session_id: Vec<u8>,
    /// 16 to 32 bytes.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub challenge: Vec<u8>,
}

impl Sslv2ClientHello {
    /// An SSLv2 CLIENT-HELLO offering every SSLv2 cipher spec of the catalog,
    /// for SSLv2 detection. The caller supplies the 16-byte challenge.
    pub fn sslv2(challenge: [u8; 16]) -> Self {
        Self {
            version: ProtocolVersion::SSL2,
            cipher_specs: crate::catalog::SSLV2_SPECS.iter().map(|s| s.id).collect(),
            session_id: Vec::new(),
            challenge: challenge.to_vec(),
        }
    }

    /// The SSLv2-compatible hello of an SSLv3/TLS client (RFC 5246 §E.2):
    /// `version` is the highest offered, TLS suites travel as `0x00XXYY`
    /// specs, and `challenge` becomes the right end of the client random.
    pub fn compatible(version: ProtocolVersion, suites: &[CipherSuite], challenge: [u8; 32]) -> Self {
        Self {
            version,
            cipher_specs: suites.iter().map(|s| Sslv2CipherSpec(u32::from(s.0))).collect(),
            session_id: Vec::new(),
            challenge: challenge.to_vec(),
        }
    }

    /// The TLS suites listed as `0x00XXYY` specs (in a compatible hello).
    pub fn tls_suites(&self) -> Vec<CipherSuite> {
        self.cipher_specs
            .iter()
            .filter(|s| s.0 >> 16 == 0)
            .filter_map(|s| u16::try_from(s.0).ok().map(CipherSuite))
            .collect()
    }

    /// The hello as one SSLv2 record (two-byte header).
    pub fn to_record(&self) -> Result<Vec<u8>, EncodeError> {
        let mut body =
            Writer::with_capacity(9 + 3 * self.cipher_specs.len() + self.session_id.len() + self.challenge.len());
        body.u8(Sslv2MessageType::CLIENT_HELLO.0);
        body.u16(self.version.0);
        let len16 = |field, n: usize| {
            u16::try_from(n).map_err(|_| EncodeError::TooLong {
                field,
                len: n,
                max: 0xffff,
            })
        };
        body.u16(len16("sslv2.cipher_specs", 3 * self.cipher_specs.len())?);
        body.u16(len16("sslv2.session_id", self.session_id.len())?);
        body.u16(len16("sslv2.challenge", self.challenge.len())?);
        for s in &self.cipher_specs {
            let [_, a, b, c] = s.0.to_be_bytes();
            body.bytes(&[a, b, c]);
        }
        body.bytes(&self.session_id);
        body.bytes(&self.challenge);
        let len = body.len();
        if len > MAX_SSLV2_RECORD_LEN {
            return Err(EncodeError::TooLong {
                field: "sslv2.record",
                len,
                max: MAX_SSLV2_RECORD_LEN,
            });
        }
        let mut w = Writer::with_capacity(len + 2);
        w.u16(0x8000 | u16::try_from(len).unwrap_or(0x7fff));
        w.bytes(body.as_bytes());
        Ok(w.into_bytes())
    }

    /// Decodes the message body (after the two-byte record header, starting
    /// with the message type).
    pub fn read_body(body: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::at(body, base);
        let typ = r.u8("sslv2.msg_type")?;
        if typ != Sslv2MessageType::CLIENT_HELLO.0 {
            return Err(DecodeError {
                field: "sslv2.msg_type",
                offset: base,
                kind: Kind::Unexpected(u32::from(typ)),
            });
        }
        let version = ProtocolVersion(r.u16("sslv2.client_version")?);
        let specs_len = usize::from(r.u16("sslv2.cipher_specs_length")?);
        let sid_len = usize::from(r.u16("sslv2.session_id_length")?);
        let challenge_len = usize::from(r.u16("sslv2.challenge_length")?);
        if specs_len % 3 != 0 {
            return Err(r.error(
                "sslv2.cipher_specs_length",
                Kind::Misaligned {
                    len: specs_len,
                    unit: 3,
                },
            ));
        }
        let cipher_specs = r
            .bytes(specs_len, "sslv2.cipher_specs")?
            .chunks_exact(3)
            .filter_map(|c| <[u8; 3]>::try_from(c).ok())
            .map(|[a, b, c]| Sslv2CipherSpec(u32::from_be_bytes([0, a, b, c])))
            .collect();
        let session_id = r.bytes(sid_len, "sslv2.session_id")?.to_vec();
        let challenge = r.bytes(challenge_len, "sslv2.challenge")?.to_vec();
        r.finish("sslv2.client_hello")?;
        Ok(Self {
            version,
            cipher_specs,
            session_id,
            challenge,
        })
    }
}

/// An SSLv2 SERVER-HELLO.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Sslv2ServerHello {
    pub session_id_hit: bool,
    /// 1 = X.509 certificate.
    pub certificate_type: u8,
    pub version: ProtocolVersion,
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub certificate: Vec<u8>,
    pub cipher_specs: Vec<Sslv2CipherSpec>,
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub connection_id: Vec<u8>,
}

impl Sslv2ServerHello {
    /// Decodes the message body (starting with the message type).
    pub fn read_body(body: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::at(body, base);
        let typ = r.u8("sslv2.msg_type")?;
        if typ != Sslv2MessageType::SERVER_HELLO.0 {
            return Err(DecodeError {
                field: "sslv2.msg_type",
                offset: base,
                kind: Kind::Unexpected(u32::from(typ)),
            });
        }
        let session_id_hit = r.u8("sslv2.session_id_hit")? != 0;
        let certificate_type = r.u8("sslv2.certificate_type")?;
        let version = ProtocolVersion(r.u16("sslv2.server_version")?);
        let cert_len = usize::from(r.u16("sslv2.certificate_length")?);
        let specs_len = usize::from(r.u16("sslv2.cipher_specs_length")?);
        let cid_len = usize::from(r.u16("sslv2.connection_id_length")?);
        if specs_len % 3 != 0 {
            return Err(r.error(
                "sslv2.cipher_specs_length",
                Kind::Misaligned {
                    len: specs_len,
                    unit: 3,
                },
            ));
        }
        let certificate = r.bytes(cert_len, "sslv2.certificate")?.to_vec();
        let cipher_specs = r
            .bytes(specs_len, "sslv2.cipher_specs")?
            .chunks_exact(3)
            .filter_map(|c| <[u8; 3]>::try_from(c).ok())
            .map(|[a, b, c]| Sslv2CipherSpec(u32::from_be_bytes([0, a, b, c])))
            .collect();
        let connection_id = r.bytes(cid_len, "sslv2.connection_id")?.to_vec();
        r.finish("sslv2.server_hello")?;
        Ok(Self {
            session_id_hit,
            certificate_type,
            version,
            certificate,
            cipher_specs,
            connection_id,
        })
    }

    /// The message as one SSLv2 record (the emulator answers with it).
    pub fn to_record(&self) -> Result<Vec<u8>, EncodeError> {
        let mut body = Writer::new();
        body.u8(Sslv2MessageType::SERVER_HELLO.0);
        body.u8(u8::from(self.session_id_hit));
        body.u8(self.certificate_type);
        body.u16(self.version.0);
        let len16 = |field, n: usize| {
            u16::try_from(n).map_err(|_| EncodeError::TooLong {
                field,
                len: n,
                max: 0xffff,
            })
        };
        body.u16(len16("sslv2.certificate", self.certificate.len())?);
        body.u16(len16("sslv2.cipher_specs", 3 * self.cipher_specs.len())?);
        body.u16(len16("sslv2.connection_id", self.connection_id.len())?);
        body.bytes(&self.certificate);
        for s in &self.cipher_specs {
            let [_, a, b, c] = s.0.to_be_bytes();
            body.bytes(&[a, b, c]);
        }
        body.bytes(&self.connection_id);
        let len = body.len();
        if len > MAX_SSLV2_RECORD_LEN {
            return Err(EncodeError::TooLong {
                field: "sslv2.record",
                len,
                max: MAX_SSLV2_RECORD_LEN,
            });
        }
        let mut w = Writer::with_capacity(len + 2);
        w.u16(0x8000 | u16::try_from(len).unwrap_or(0x7fff));
        w.bytes(body.as_bytes());
        Ok(w.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_hello_carries_tls_suites_as_specs() {
        let h = Sslv2ClientHello::compatible(
            ProtocolVersion::TLS10,
            &[CipherSuite(0x002f), CipherSuite(0x000a)],
            [9; 32],
        );
        let rec = h.to_record().unwrap();
        // Two-byte header with the high bit set, then CLIENT-HELLO, version 3.1.
        assert_eq!(&rec[..5], &[0x80, (rec.len() - 2) as u8, 1, 3, 1]);
        assert_eq!(&rec[11..17], &[0, 0, 0x2f, 0, 0, 0x0a]);
        assert_eq!(
            Sslv2ClientHello::read_body(&rec[2..], 2).unwrap().tls_suites(),
            vec![CipherSuite(0x002f), CipherSuite(0x000a)]
        );
    }

    #[test]
    fn sslv2_hello_offers_every_spec() {
        let h = Sslv2ClientHello::sslv2([1; 16]);
        assert_eq!(h.cipher_specs.len(), crate::catalog::SSLV2_SPECS.len());
        assert_eq!(h.version, ProtocolVersion::SSL2);
    }
}
