//! ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2): the builder the scanner
//! sends and the decoder the capture analyser and the emulator use. Every
//! field is explicit, so a probe can send anything a real client ever sent
//! (any version pair, SCSVs and GREASE in the suite list, a chosen
//! extension order, a chosen total length), and a decoded hello re-encodes
//! to the same bytes.

use crate::codepoints::{
    CipherSuite, CompressionMethod, ContentType, ExtensionType, NamedGroup, ProtocolVersion, SignatureScheme,
};
use crate::error::{DecodeError, EncodeError, Kind};
use crate::ext::{read_block, ClientExtension, KeyShareEntry};
use crate::handshake::{read_message, write_message, HandshakeType};
use crate::reader::Reader;
use crate::record::{Framing, RECORD_HEADER_LEN};
use crate::writer::Writer;

/// The header length belongs to the handshake framing; kept under this
/// path for callers that size a hello by hand.
pub use crate::handshake::HANDSHAKE_HEADER_LEN;

/// A ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ClientHello {
    /// `client_version` before TLS 1.3, `legacy_version` since.
    pub legacy_version: ProtocolVersion,
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub random: [u8; 32],
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub session_id: Vec<u8>,
    pub cipher_suites: Vec<CipherSuite>,
    pub compression_methods: Vec<CompressionMethod>,
    /// `None`: no extensions block at all (an SSLv3-style hello);
    /// `Some(vec![])`: an empty block (two zero bytes).
    pub extensions: Option<Vec<ClientExtension>>,
}

impl ClientHello {
    /// A hello with the given version and suites, null compression and an
    /// empty extensions list; the caller supplies the random.
    pub fn new(legacy_version: ProtocolVersion, random: [u8; 32], cipher_suites: Vec<CipherSuite>) -> Self {
        Self {
            legacy_version,
            random,
            session_id: Vec::new(),
            cipher_suites,
            compression_methods: vec![CompressionMethod::NULL],
            extensions: Some(Vec::new()),
        }
    }

    /// A hello offering every version from `min` to `max` (TLS 1.3 through
    /// supported_versions), with the usual extensions of a modern client:
    /// SNI when given, groups with key shares for the first two, point
    /// formats, signature algorithms, EMS, renegotiation_info, ETM and
    /// session ticket. The suite list is taken as given.
    pub fn typical(
        min: ProtocolVersion,
        max: ProtocolVersion,
        random: [u8; 32],
        cipher_suites: Vec<CipherSuite>,
        sni: Option<&str>,
    ) -> Self {
        let tls13 = max == ProtocolVersion::TLS13;
        let legacy = if tls13 { ProtocolVersion::TLS12 } else { max };
        let mut hello = Self::new(legacy, random, cipher_suites);
        let mut ext = Vec::new();
        if let Some(name) = sni {
            ext.push(ClientExtension::ServerName(name.to_owned()));
        }
        let groups = vec![
            NamedGroup::X25519,
            NamedGroup::SECP256R1,
            NamedGroup::X448,
            NamedGroup::SECP384R1,
            NamedGroup::SECP521R1,
            NamedGroup::FFDHE2048,
            NamedGroup::FFDHE3072,
        ];
        if max != ProtocolVersion::SSL3 {
            ext.push(ClientExtension::RenegotiationInfo(Vec::new()));
            ext.push(ClientExtension::SupportedGroups(groups.clone()));
            ext.push(ClientExtension::EcPointFormats(vec![
                crate::EcPointFormat::UNCOMPRESSED,
            ]));
            ext.push(ClientExtension::SessionTicket(Vec::new()));
            ext.push(ClientExtension::EncryptThenMac);
            ext.push(ClientExtension::ExtendedMasterSecret);
            if crate::catalog::version_rank(max) >= crate::catalog::version_rank(ProtocolVersion::TLS12) {
                ext.push(ClientExtension::SignatureAlgorithms(DEFAULT_SIGNATURE_SCHEMES.to_vec()));
            }
        }
        if tls13 {
            let versions = ProtocolVersion::SCANNED
                .iter()
                .rev()
                .copied()
                .filter(|v| {
                    crate::catalog::version_rank(*v) >= crate::catalog::version_rank(min) && *v != ProtocolVersion::SSL2
                })
                .collect();
            ext.push(ClientExtension::SupportedVersions(versions));
            ext.push(ClientExtension::PskKeyExchangeModes(vec![
                crate::PskKeyExchangeMode::PSK_DHE_KE,
            ]));
            ext.push(ClientExtension::KeyShare(key_shares(groups.get(..2).unwrap_or(&[]))));
        }
        hello.extensions = Some(ext);
        hello
    }

    /// The extension of type `typ`, if present.
    pub fn extension(&self, typ: ExtensionType) -> Option<&ClientExtension> {
        self.extensions.as_ref()?.iter().find(|e| e.typ() == typ)
    }

    /// The SNI host name, if any.
    pub fn sni(&self) -> Option<&str> {
        match self.extension(ExtensionType::SERVER_NAME)? {
            ClientExtension::ServerName(n) => Some(n),
            _ => None,
        }
    }

    /// The server name's bytes as sent, also when they are not UTF-8 (a
    /// name that is not UTF-8 stays a raw extension, so [`Self::sni`] is
    /// `None` for it).
    pub fn sni_bytes(&self) -> Option<&[u8]> {
        match self.extension(ExtensionType::SERVER_NAME)? {
            ClientExtension::ServerName(n) => Some(n.as_bytes()),
            ClientExtension::Raw { data, .. } => {
                let mut r = Reader::new(data);
                let mut list = r.nested_u16("server_name.server_name_list").ok()?;
                let typ = list.u8("server_name.name_type").ok()?;
                let name = list.nested_u16("server_name.host_name").ok()?.rest();
                (typ == crate::codepoints::ServerNameType::HOST_NAME.0).then_some(name)
            }
            _ => None,
        }
    }

    /// The versions offered, highest first: supported_versions when
    /// present, else the legacy version alone.
    pub fn offered_versions(&self) -> Vec<ProtocolVersion> {
        match self.extension(ExtensionType::SUPPORTED_VERSIONS) {
            Some(ClientExtension::SupportedVersions(v)) => v.clone(),
            _ => vec![self.legacy_version],
        }
    }

    /// Writes the handshake message (header and body).
    pub fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        write_message(w, HandshakeType::CLIENT_HELLO, "client_hello", |w| {
            w.u16(self.legacy_version.0);
            w.bytes(&self.random);
            w.u8_prefixed("client_hello.session_id", |w| {
                w.bytes(&self.session_id);
                Ok(())
            })?;
            w.u16_prefixed("client_hello.cipher_suites", |w| {
                self.cipher_suites.iter().for_each(|s| w.u16(s.0));
                Ok(())
            })?;
            w.u8_prefixed("client_hello.compression_methods", |w| {
                self.compression_methods.iter().for_each(|c| w.u8(c.0));
                Ok(())
            })?;
            if let Some(exts) = &self.extensions {
                w.u16_prefixed("client_hello.extensions", |w| exts.iter().try_for_each(|e| e.write(w)))?;
            }
            Ok(())
        })
    }

    /// The handshake message bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::with_capacity(self.size_hint());
        self.write(&mut w)?;
        Ok(w.into_bytes())
    }

    /// The hello as a single record with the given record-layer version.
    pub fn to_record(&self, record_version: ProtocolVersion) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::with_capacity(self.size_hint() + RECORD_HEADER_LEN);
        w.u8(ContentType::HANDSHAKE.0);
        w.u16(record_version.0);
        w.u16_prefixed("record.fragment", |w| self.write(w))?;
        Ok(w.into_bytes())
    }

    /// The hello framed as asked: the byte strings to write, in order.
    pub fn to_writes(&self, framing: &Framing) -> Result<Vec<Vec<u8>>, EncodeError> {
        framing.frame(ContentType::HANDSHAKE, &self.to_bytes()?)
    }

    /// Sets (or replaces) a padding extension so that the hello in one
    /// record is exactly `record_bytes` long (RFC 7685). The padding goes
    /// last: some servers insist that pre_shared_key stays last, and
    /// this builder never sends one.
    pub fn pad_to(&mut self, record_bytes: usize) -> Result<(), EncodeError> {
        let exts = self.extensions.get_or_insert_with(Vec::new);
        exts.retain(|e| !matches!(e, ClientExtension::Padding(_)));
        let len = RECORD_HEADER_LEN + self.to_bytes()?.len();
        if len == record_bytes {
            return Ok(());
        }
        // An extension costs four bytes of header even when empty.
        let need = record_bytes.checked_sub(len + 4).ok_or(EncodeError::Invalid {
            field: "padding",
            reason: "the hello is already longer than the requested size",
        })?;
        if let Some(exts) = self.extensions.as_mut() {
            exts.push(ClientExtension::Padding(need));
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        64 + self.session_id.len()
            + 2 * self.cipher_suites.len()
            + self.extensions.as_ref().map_or(0, |e| {
                16 * e.len() + 1300 * e.iter().filter(|e| matches!(e, ClientExtension::KeyShare(_))).count()
            })
    }

    /// Decodes a ClientHello body (after the handshake header); `base` is the
    /// body's offset in the caller's buffer, for error messages.
    pub fn read_body(body: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::at(body, base);
        let legacy_version = ProtocolVersion(r.u16("client_hello.legacy_version")?);
        let random = r.array::<32>("client_hello.random")?;
        let session_id = r
            .nested_u8("client_hello.session_id")?
            .rest_at_most(32, "client_hello.session_id")?
            .to_vec();
        let cipher_suites = r
            .nested_u16("client_hello.cipher_suites")?
            .u16_list("client_hello.cipher_suites")?
            .into_iter()
            .map(CipherSuite)
            .collect();
        let compression_methods: Vec<CompressionMethod> = r
            .nested_u8("client_hello.compression_methods")?
            .rest()
            .iter()
            .map(|&c| CompressionMethod(c))
            .collect();
        if compression_methods.is_empty() {
            return Err(r.error("client_hello.compression_methods", Kind::Empty));
        }
        let extensions = if r.is_empty() {
            None
        } else {
            Some(read_block(&mut r, "client_hello.extensions", ClientExtension::read)?)
        };
        r.finish("client_hello")?;
        Ok(Self {
            legacy_version,
            random,
            session_id,
            cipher_suites,
            compression_methods,
            extensions,
        })
    }

    /// Decodes a whole handshake message (header and body).
    pub fn read_message(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut body = read_message(bytes, HandshakeType::CLIENT_HELLO)?;
        let base = body.offset();
        Self::read_body(body.rest(), base)
    }
}

/// Signature schemes a modern client offers, in OpenSSL 3.0's order.
pub const DEFAULT_SIGNATURE_SCHEMES: [SignatureScheme; 17] = [
    SignatureScheme::ECDSA_SECP256R1_SHA256,
    SignatureScheme::ECDSA_SECP384R1_SHA384,
    SignatureScheme::ECDSA_SECP521R1_SHA512,
    SignatureScheme::ED25519,
    SignatureScheme::ED448,
    SignatureScheme::RSA_PSS_PSS_SHA256,
    SignatureScheme::RSA_PSS_PSS_SHA384,
    SignatureScheme::RSA_PSS_PSS_SHA512,
    SignatureScheme::RSA_PSS_RSAE_SHA256,
    SignatureScheme::RSA_PSS_RSAE_SHA384,
    SignatureScheme::RSA_PSS_RSAE_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::ECDSA_SHA1,
    SignatureScheme::RSA_PKCS1_SHA1,
    SignatureScheme(0x0402),
];

/// Key share entries for `groups`, skipping groups without a known share shape.
pub fn key_shares(groups: &[NamedGroup]) -> Vec<KeyShareEntry> {
    groups
        .iter()
        .filter_map(|&group| {
            crate::key_share::client_share(group).map(|key_exchange| KeyShareEntry { group, key_exchange })
        })
        .collect()
}
