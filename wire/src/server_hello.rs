//! ServerHello and HelloRetryRequest (RFC 8446 §4.1.3, §4.1.4; RFC 5246
//! §7.4.1.3). A HelloRetryRequest is a ServerHello whose random is the
//! SHA-256 of "HelloRetryRequest"; the TLS 1.3 downgrade sentinels sit in
//! the last eight bytes of the random.
//!
//! The TLS 1.3 drafts (draft-ietf-tls-tls13-NN, version 0x7f00 + NN) are
//! decoded too, as servers still answer with them:
//!
//! - before draft 22 the ServerHello is `version, random, cipher_suite,
//!   extensions`: no session id and no compression method, the draft's
//!   version in the version field;
//! - from draft 22 on it has RFC 8446's layout, the draft's version in
//!   supported_versions, and a HelloRetryRequest is a ServerHello;
//! - before draft 22 a HelloRetryRequest is its own message (type 6):
//!   `version, cipher_suite, extensions` from draft 19, `version,
//!   extensions` in drafts 13–18, `version, cipher_suite, selected_group,
//!   extensions` before;
//! - before draft 23 key_share is extension 40, not 51.

use crate::codepoints::{CipherSuite, CompressionMethod, ExtensionType, NamedGroup, ProtocolVersion};
use crate::error::{DecodeError, EncodeError};
use crate::ext::{read_block, ServerExtension};
use crate::handshake::{write_message, HandshakeType};

/// The handshake type of a HelloRetryRequest before TLS 1.3 draft 22.
pub const DRAFT_HELLO_RETRY_REQUEST: HandshakeType = HandshakeType(6);

/// The first draft whose ServerHello has a session id and a compression
/// method (and whose HelloRetryRequest is a ServerHello).
const FIRST_DRAFT_WITH_SESSION_ID: u8 = 22;

/// key_share's extension number before draft 23 (then 51, RFC 8446).
const DRAFT_KEY_SHARE: ExtensionType = ExtensionType(40);

/// The TLS 1.3 draft a version names (draft-ietf-tls-tls13-NN is 0x7f00 + NN).
pub fn draft_of(v: ProtocolVersion) -> Option<u8> {
    if v.0 & 0xff00 == 0x7f00 {
        u8::try_from(v.0 & 0xff).ok()
    } else {
        None
    }
}

/// Whether a version is TLS 1.3, one of its drafts, or one of the
/// experiment versions built on them (Google's 0x7e01–0x7e03, Facebook's
/// 0xfbNN): after such a ServerHello everything is encrypted.
pub fn is_tls13(v: ProtocolVersion) -> bool {
    v == ProtocolVersion::TLS13 || draft_of(v).is_some() || (0x7e01..=0x7e03).contains(&v.0) || v.0 & 0xff00 == 0xfb00
}

/// Whether a version in the version field means the pre-22 draft layout.
fn draft_layout(v: ProtocolVersion) -> bool {
    draft_of(v).is_some_and(|d| d < FIRST_DRAFT_WITH_SESSION_ID)
}
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

    /// The group of the server's key share, or the group a retry request
    /// asks for (in extension 40 before draft 23, where the group leads too).
    pub fn key_share_group(&self) -> Option<NamedGroup> {
        match self.extension(ExtensionType::KEY_SHARE) {
            Some(ServerExtension::KeyShare(e)) => Some(e.group),
            Some(ServerExtension::KeyShareRetry(g)) => Some(*g),
            _ => match self.extension(DRAFT_KEY_SHARE)? {
                ServerExtension::Raw { data, .. } => match data.get(..2)? {
                    &[a, b] => Some(NamedGroup(u16::from_be_bytes([a, b]))),
                    _ => None,
                },
                _ => None,
            },
        }
    }

    /// Whether the selected version is TLS 1.3 or a draft or experiment of it.
    pub fn is_tls13(&self) -> bool {
        is_tls13(self.selected_version())
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

    /// Decodes a ServerHello body (after the handshake header), in the
    /// layout its version field names (see the module documentation). A
    /// draft 22 or later in that field (where only supported_versions
    /// should name it) may come in the older layout, tried when RFC 8446's
    /// does not fit; a pre-22 draft is read in its own layout only, since
    /// RFC 8446's would take a cut one for a hello without extensions.
    pub fn read_body(body: &[u8], base: usize) -> Result<Self, DecodeError> {
        let version = match body {
            [a, b, ..] => ProtocolVersion(u16::from_be_bytes([*a, *b])),
            _ => ProtocolVersion(0),
        };
        if draft_layout(version) {
            Self::read_draft_body(body, base)
        } else if draft_of(version).is_some() {
            Self::read_rfc_body(body, base).or_else(|e| Self::read_draft_body(body, base).map_err(|_| e))
        } else {
            Self::read_rfc_body(body, base)
        }
    }

    /// A ServerHello before draft 22: no session id, no compression method.
    fn read_draft_body(body: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::at(body, base);
        let legacy_version = ProtocolVersion(r.u16("server_hello.version")?);
        let random = r.array::<32>("server_hello.random")?;
        let cipher_suite = CipherSuite(r.u16("server_hello.cipher_suite")?);
        let retry = random == HELLO_RETRY_REQUEST_RANDOM;
        let extensions = Some(read_block(&mut r, "server_hello.extensions", |t, d, b| {
            ServerExtension::read(t, d, b, retry)
        })?);
        r.finish("server_hello")?;
        Ok(Self {
            legacy_version,
            random,
            session_id: Vec::new(),
            cipher_suite,
            compression: CompressionMethod::NULL,
            extensions,
        })
    }

    /// A HelloRetryRequest message of the drafts before 22 (handshake type
    /// 6), as a ServerHello whose random is RFC 8446's retry constant (so
    /// that [`Self::is_retry_request`] holds). The layout follows the draft
    /// its version names; the other layouts are tried when it does not fit.
    /// Drafts before 13 name the group in a field of their own; it is not
    /// kept (no extension carries it).
    pub fn read_draft_retry_request(body: &[u8], base: usize) -> Result<Self, DecodeError> {
        #[derive(Clone, Copy)]
        enum Layout {
            Suite,
            Bare,
            SuiteAndGroup,
        }
        let version = match body {
            [a, b, ..] => ProtocolVersion(u16::from_be_bytes([*a, *b])),
            _ => ProtocolVersion(0),
        };
        let order = match draft_of(version) {
            Some(19..) | None => [Layout::Suite, Layout::Bare, Layout::SuiteAndGroup],
            Some(13..=18) => [Layout::Bare, Layout::Suite, Layout::SuiteAndGroup],
            Some(_) => [Layout::SuiteAndGroup, Layout::Suite, Layout::Bare],
        };
        let read = |layout: Layout| -> Result<Self, DecodeError> {
            let mut r = Reader::at(body, base);
            let legacy_version = ProtocolVersion(r.u16("hello_retry_request.version")?);
            let cipher_suite = match layout {
                Layout::Bare => CipherSuite(0),
                Layout::Suite | Layout::SuiteAndGroup => CipherSuite(r.u16("hello_retry_request.cipher_suite")?),
            };
            if let Layout::SuiteAndGroup = layout {
                r.u16("hello_retry_request.selected_group")?;
            }
            let extensions = Some(read_block(&mut r, "hello_retry_request.extensions", |t, d, b| {
                ServerExtension::read(t, d, b, true)
            })?);
            r.finish("hello_retry_request")?;
            Ok(Self {
                legacy_version,
                random: HELLO_RETRY_REQUEST_RANDOM,
                session_id: Vec::new(),
                cipher_suite,
                compression: CompressionMethod::NULL,
                extensions,
            })
        };
        let [a, b, c] = order;
        read(a).or_else(|e| read(b).or_else(|_| read(c)).map_err(|_| e))
    }

    /// RFC 8446's (and RFC 5246's) layout.
    fn read_rfc_body(body: &[u8], base: usize) -> Result<Self, DecodeError> {
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

    /// Writes the handshake message (header and body), in the pre-22 draft
    /// layout when the version field names such a draft.
    pub fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        if draft_layout(self.legacy_version) {
            return write_message(w, HandshakeType::SERVER_HELLO, "server_hello", |w| {
                w.u16(self.legacy_version.0);
                w.bytes(&self.random);
                w.u16(self.cipher_suite.0);
                let exts = self.extensions.as_deref().unwrap_or(&[]);
                w.u16_prefixed("server_hello.extensions", |w| exts.iter().try_for_each(|e| e.write(w)))
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deframer::{Deframer, Event, Side};

    /// A handshake message of `typ` around `body`.
    fn message(typ: u8, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        let mut m = vec![typ, len[1], len[2], len[3]];
        m.extend_from_slice(body);
        m
    }

    /// `extensions<..>`: each (type, data) behind its type and length.
    fn extensions(list: &[(u16, &[u8])]) -> Vec<u8> {
        let mut inner = Vec::new();
        for (t, d) in list {
            inner.extend_from_slice(&t.to_be_bytes());
            inner.extend_from_slice(&u16::try_from(d.len()).unwrap().to_be_bytes());
            inner.extend_from_slice(d);
        }
        let mut v = u16::try_from(inner.len()).unwrap().to_be_bytes().to_vec();
        v.extend_from_slice(&inner);
        v
    }

    /// An X25519 KeyShareEntry: group 29, a 32-byte key.
    fn x25519_share() -> Vec<u8> {
        let mut s = vec![0, 29, 0, 32];
        s.extend_from_slice(&[0x42; 32]);
        s
    }

    /// The ServerHello of drafts before 22 (draft-ietf-tls-tls13-14..-21
    /// §4.1.3): `ProtocolVersion version; Random random; CipherSuite
    /// cipher_suite; Extension extensions<6..2^16-1>;`, key_share as 40.
    fn draft_server_hello(draft: u8) -> Vec<u8> {
        let mut b = vec![0x7f, draft];
        b.extend_from_slice(&[0x11; 32]);
        b.extend_from_slice(&[0x13, 0x01]);
        b.extend_from_slice(&extensions(&[(40, &x25519_share())]));
        b
    }

    #[test]
    fn every_draft_server_hello_before_22_decodes_without_session_id_or_compression() {
        for draft in 0x10..=0x16 {
            let body = draft_server_hello(draft);
            let h = ServerHello::read_body(&body, 4).unwrap_or_else(|e| panic!("draft {draft}: {e}"));
            assert_eq!(h.legacy_version, ProtocolVersion(0x7f00 | u16::from(draft)));
            assert_eq!(h.selected_version(), h.legacy_version);
            assert!(h.is_tls13() && !h.is_retry_request());
            assert_eq!(h.cipher_suite, CipherSuite(0x1301));
            assert!(h.session_id.is_empty());
            assert_eq!(h.key_share_group(), Some(NamedGroup(29)), "draft {draft}");
            if draft < 22 {
                // And it is written back in the same layout.
                let mut w = Writer::new();
                h.write(&mut w).unwrap();
                assert_eq!(w.as_bytes(), message(2, &body).as_slice(), "draft {draft}");
            }
        }
    }

    #[test]
    fn every_prefix_of_a_draft_server_hello_is_rejected() {
        let body = draft_server_hello(0x12);
        for cut in 0..body.len() {
            assert!(
                ServerHello::read_body(&body[..cut], 0).is_err(),
                "accepted a {cut}-byte prefix"
            );
        }
    }

    /// Drafts 22 to 28 (and RFC 8446): the TLS 1.2 layout with the version
    /// in supported_versions; key_share is 40 in draft 22, 51 from 23.
    #[test]
    fn drafts_22_to_28_use_the_final_layout_with_the_version_in_supported_versions() {
        for (draft, key_share) in [(22u8, 40u16), (23, 51), (26, 51), (28, 51)] {
            let mut b = vec![3, 3];
            b.extend_from_slice(&[0x22; 32]);
            b.push(32);
            b.extend_from_slice(&[0x33; 32]);
            b.extend_from_slice(&[0x13, 0x02, 0]);
            b.extend_from_slice(&extensions(&[(43, &[0x7f, draft]), (key_share, &x25519_share())]));
            let h = ServerHello::read_body(&b, 0).unwrap();
            assert_eq!(h.selected_version(), ProtocolVersion(0x7f00 | u16::from(draft)));
            assert!(h.is_tls13());
            assert_eq!(h.session_id.len(), 32);
            assert_eq!(h.key_share_group(), Some(NamedGroup(29)), "draft {draft}");
        }
    }

    #[test]
    fn a_draft_22_version_in_the_version_field_is_read_in_either_layout() {
        // Some draft-22 stacks kept the older layout with the new number.
        let h = ServerHello::read_body(&draft_server_hello(22), 0).unwrap();
        assert_eq!(h.legacy_version, ProtocolVersion(0x7f16));
        let mut b = vec![0x7f, 0x16];
        b.extend_from_slice(&[0x22; 32]);
        b.extend_from_slice(&[0, 0x13, 0x01, 0]);
        b.extend_from_slice(&extensions(&[(40, &x25519_share())]));
        let h = ServerHello::read_body(&b, 0).unwrap();
        assert_eq!(
            (h.cipher_suite, h.key_share_group()),
            (CipherSuite(0x1301), Some(NamedGroup(29)))
        );
    }

    /// HelloRetryRequest (type 6) before draft 22: draft-19..-21 §4.1.4
    /// `version, cipher_suite, extensions`; draft-13..-18 `version,
    /// extensions`; before 13 `version, cipher_suite, selected_group,
    /// extensions`. The key_share extension (40) holds the group asked for.
    #[test]
    fn the_drafts_hello_retry_request_messages_decode_as_retry_requests() {
        let share = extensions(&[(40, &[0, 23]), (44, &[0, 2, 0xab, 0xcd])]);
        let forms: [(u8, Vec<u8>); 3] = [
            (0x15, [&[0x7f, 0x15, 0x13, 0x03][..], &share].concat()),
            (0x12, [&[0x7f, 0x12][..], &share].concat()),
            (0x0c, [&[0x7f, 0x0c, 0x13, 0x01, 0, 23][..], &share].concat()),
        ];
        for (draft, body) in forms {
            let mut d = Deframer::new(Side::Server);
            let msg = message(6, &body);
            let mut rec = vec![22, 3, 1, 0, u8::try_from(msg.len()).unwrap()];
            rec.extend_from_slice(&msg);
            d.push(&rec).unwrap();
            let Some(Event::HelloRetryRequest(h)) = d.next_event().unwrap() else {
                panic!("draft {draft}: no retry request");
            };
            assert!(h.is_retry_request() && h.is_tls13());
            assert_eq!(h.legacy_version, ProtocolVersion(0x7f00 | u16::from(draft)));
            assert_eq!(h.key_share_group(), Some(NamedGroup(23)), "draft {draft}");
            assert!(h.extension(ExtensionType::COOKIE).is_some(), "draft {draft}");
            let suite = if draft == 0x12 {
                0
            } else {
                u16::from_be_bytes([body[2], body[3]])
            };
            assert_eq!(h.cipher_suite, CipherSuite(suite), "draft {draft}");
        }
    }

    #[test]
    fn records_after_a_draft_server_hello_are_encrypted() {
        let msg = message(2, &draft_server_hello(0x12));
        let mut rec = vec![22, 3, 1, 0, u8::try_from(msg.len()).unwrap()];
        rec.extend_from_slice(&msg);
        rec.extend_from_slice(&[23, 3, 1, 0, 3, 1, 2, 3]);
        let mut d = Deframer::new(Side::Server);
        d.push(&rec).unwrap();
        assert!(matches!(d.next_event().unwrap(), Some(Event::ServerHello(_))));
        assert!(matches!(d.next_event().unwrap(), Some(Event::Encrypted { len: 3, .. })));
    }

    #[test]
    fn experiment_versions_count_as_tls13() {
        for v in [0x0304, 0x7f0e, 0x7f1c, 0x7e01, 0x7e03, 0xfb17, 0xfb1a] {
            assert!(is_tls13(ProtocolVersion(v)), "{v:#06x}");
        }
        for v in [0x0303, 0x0300, 0x7e04, 0x0002] {
            assert!(!is_tls13(ProtocolVersion(v)), "{v:#06x}");
        }
    }
}
