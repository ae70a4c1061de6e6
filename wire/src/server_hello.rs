//! ServerHello and HelloRetryRequest (RFC 8446 §4.1.3, §4.1.4; RFC 5246
//! §7.4.1.3). A HelloRetryRequest is a ServerHello whose random is the
//! SHA-256 of "HelloRetryRequest"; the TLS 1.3 downgrade sentinels sit in
//! the last eight bytes of the random.

use crate::codepoints::{CipherSuite, CompressionMethod, ExtensionType, NamedGroup, ProtocolVersion};
use crate::error::{DecodeError, EncodeError};
use crate::ext::{read_block, ServerExtension};
use crate::handshake::{write_message, HandshakeType};
use crate::reader::Reader;
use crate::writer::Writer;

/// RFC 8446 §4.1.3: the random of a HelloRetryRequest.
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// RFC 8446 §4.1.3: "DOWNGRD" then 0x01 (the server negotiated TLS 1.2
/// while supporting 1.3) or 0x00 (TLS 1.1 or below).
const DOWNGRADE_PREFIX: [u8; 7] = *b"DOWNGRD";

/// What the downgrade sentinel in a ServerHello random says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "kebab-case"))]
pub enum Downgrade {
    /// The server supports TLS 1.3 but negotiated TLS 1.2.
    Tls12,
    /// The server supports TLS 1.2 or better but negotiated TLS 1.1 or below.
    Tls11OrBelow,
}

/// A ServerHello or HelloRetryRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ServerHello {
    pub legacy_version: ProtocolVersion,
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub random: [u8; 32],
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub session_id: Vec<u8>,
    pub cipher_suite: CipherSuite,
    pub compression: CompressionMethod,
    /// `None` when the hello ends after the compression method.
    pub extensions: Option<Vec<ServerExtension>>,
}

impl ServerHello {
    /// Whether this is a HelloRetryRequest.
    pub fn is_retry_request(&self) -> bool {
        self.random == HELLO_RETRY_REQUEST_RANDOM
    }

    /// The extension of type `typ`, if present.
    pub fn extension(&self, typ: ExtensionType) -> Option<&ServerExtension> {
        self.extensions.as_ref()?.iter().find(|e| e.typ() == typ)
    }

    /// The negotiated version: supported_versions when present, else the
    /// legacy version.
    pub fn selected_version(&self) -> ProtocolVersion {
        match self.extension(ExtensionType::SUPPORTED_VERSIONS) {
            Some(ServerExtension::SupportedVersions(v)) => *v,
            _ => self.legacy_version,
        }
    }

    /// The group of the server's key share, or the group a retry request asks for.
    pub fn key_share_group(&self) -> Option<NamedGroup> {
        match self.extension(ExtensionType::KEY_SHARE)? {
            ServerExtension::KeyShare(e) => Some(e.group),
            ServerExtension::KeyShareRetry(g) => Some(*g),
            _ => None,
        }
    }

    /// The ALPN protocol the server selected.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self.extension(ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION)? {
            ServerExtension::Alpn(p) => Some(p),
            _ => None,
        }
    }

    /// The downgrade sentinel, if the random carries one.
    pub fn downgrade(&self) -> Option<Downgrade> {
        let tail = self.random.get(24..)?;
        if tail.get(..7)? != DOWNGRADE_PREFIX {
            return None;
        }
        match tail.get(7)? {
            1 => Some(Downgrade::Tls12),
            0 => Some(Downgrade::Tls11OrBelow),
            _ => None,
        }
    }

    /// Decodes a ServerHello body (after the handshake header).
    pub fn read_body(body: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::at(body, base);
        let legacy_version = ProtocolVersion(r.u16("server_hello.legacy_version")?);
        let random = r.array::<32>("server_hello.random")?;
        let session_id = r
            .nested_u8("server_hello.session_id")?
            .rest_at_most(32, "server_hello.session_id")?
            .to_vec();
        let cipher_suite = CipherSuite(r.u16("server_hello.cipher_suite")?);
        let compression = CompressionMethod(r.u8("server_hello.compression_method")?);
        let retry = random == HELLO_RETRY_REQUEST_RANDOM;
        let extensions = if r.is_empty() {
            None
        } else {
            Some(read_block(&mut r, "server_hello.extensions", |t, d, b| {
                ServerExtension::read(t, d, b, retry)
            })?)
        };
        r.finish("server_hello")?;
        Ok(Self {
            legacy_version,
            random,
            session_id,
            cipher_suite,
            compression,
            extensions,
        })
    }

    /// Writes the handshake message (header and body).
    pub fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        write_message(w, HandshakeType::SERVER_HELLO, "server_hello", |w| {
            w.u16(self.legacy_version.0);
            w.bytes(&self.random);
            w.u8_prefixed("server_hello.session_id", |w| {
                w.bytes(&self.session_id);
                Ok(())
            })?;
            w.u16(self.cipher_suite.0);
            w.u8(self.compression.0);
            if let Some(exts) = &self.extensions {
                w.u16_prefixed("server_hello.extensions", |w| exts.iter().try_for_each(|e| e.write(w)))?;
            }
            Ok(())
        })
    }
}
