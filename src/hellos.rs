//! The hellos a scan sends, built with hsscan-wire: the modern and legacy
//! hellos of the quick check, and the per-protocol hellos of enumeration.
//! Randomness for ClientHello randoms comes from here, not from the codec.

use hsscan_wire::catalog;
use hsscan_wire::{
    CipherSuite, ClientExtension, ClientHello, EcPointFormat, EncodeError, Framing, NamedGroup, ProtocolVersion,
    ServerHello, Sslv2ClientHello,
};
use std::hash::{BuildHasher, Hasher};

/// 32 random bytes for a ClientHello random. Not secret: nothing is ever
/// derived from it, but servers should see distinct hellos.
pub fn random32() -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// TLS 1.2 suites of OpenSSL 3.0's default list, in its order (from the
/// captured `openssl-3.0.19-default` hello), after the TLS 1.3 ones.
const MODERN_SUITES: [u16; 30] = [
    0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x009f, 0xcca9, 0xcca8, 0xccaa, 0xc02b, 0xc02f, 0x009e, 0xc024, 0xc028,
    0x006b, 0xc023, 0xc027, 0x0067, 0xc00a, 0xc014, 0x0039, 0xc009, 0xc013, 0x0033, 0x009d, 0x009c, 0x003d, 0x003c,
    0x0035, 0x002f,
];

/// What legacy receivers most often choose, first: the old Schannel and
/// OpenSSL 0.9.8/1.0 defaults (RC4, 3DES, AES-CBC, export), so a server that
/// reads only the first 64 suites still finds its own.
const LEGACY_FIRST: [u16; 36] = [
    0x0005, 0x0004, 0x000a, 0x002f, 0x0035, 0xc013, 0xc014, 0xc009, 0xc00a, 0x0033, 0x0039, 0x0016, 0x0032, 0x0038,
    0x0013, 0xc011, 0xc007, 0x0041, 0x0084, 0x0045, 0x0088, 0x0096, 0x0009, 0x0015, 0x0012, 0x0064, 0x0062, 0x0063,
    0x0003, 0x0006, 0x0008, 0x0014, 0x0011, 0x0060, 0x0061, 0x0065,
];

/// Groups a modern client lists; key shares go for the first two.
pub const MODERN_GROUPS: [NamedGroup; 7] = [
    NamedGroup::X25519,
    NamedGroup::SECP256R1,
    NamedGroup::X448,
    NamedGroup::SECP521R1,
    NamedGroup::SECP384R1,
    NamedGroup::FFDHE2048,
    NamedGroup::FFDHE3072,
];

/// A hello ready to send, with what it offered: an answer only counts
/// when it selects a version between `min_version` and `max_version`, and a
/// suite and group among those offered (SPEC §3 `attempt`).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub writes: Vec<Vec<u8>>,
    pub max_version: ProtocolVersion,
    /// The lowest version the sender behind this hello accepts.
    pub min_version: ProtocolVersion,
    pub cipher_count: usize,
    pub hello_bytes: usize,
    /// The suites offered, signalling values included.
    pub suites: Vec<CipherSuite>,
    /// The groups of `supported_groups` (empty when absent).
    pub groups: Vec<NamedGroup>,
    /// How to answer a HelloRetryRequest on the same connection; `None`:
    /// the retry request itself is the answer (the planners read the suite
    /// and group it names, and close).
    pub retry: Option<Retry>,
}

/// The second ClientHello of a connection, for a HelloRetryRequest (RFC
/// 8446 §4.1.2): the first one with one key share, for the group the
/// server asked for, and its cookie echoed.
#[derive(Debug, Clone)]
pub struct Retry {
    hello: ClientHello,
    record_version: ProtocolVersion,
}

impl Retry {
    /// The retry of `hello`, sent in records of `record_version`.
    pub fn new(hello: ClientHello, record_version: ProtocolVersion) -> Self {
        Self { hello, record_version }
    }

    /// The record of the second hello answering `hrr`, or why `hrr` is
    /// not a request a client may follow (RFC 8446 §4.1.4): it asks for a
    /// group the hello never offered, or one it already sent a share of,
    /// or it would change nothing.
    pub fn second_hello(&self, hrr: &ServerHello) -> Result<Vec<u8>, String> {
        let name = |g: NamedGroup| g.name().map_or_else(|| g.hex(), str::to_owned);
        let cookie = match hrr.extension(hsscan_wire::ExtensionType::COOKIE) {
            Some(hsscan_wire::ServerExtension::Cookie(c)) => Some(c.clone()),
            _ => None,
        };
        let mut hello = self.hello.clone();
        let ext = hello.extensions.get_or_insert_with(Vec::new);
        match hrr.key_share_group() {
            Some(g) => {
                let offered = ext
                    .iter()
                    .any(|e| matches!(e, ClientExtension::SupportedGroups(groups) if groups.contains(&g)));
                if !offered {
                    return Err(format!(
                        "a HelloRetryRequest asked for group {}, which was not offered",
                        name(g)
                    ));
                }
                let shared = ext
                    .iter()
                    .any(|e| matches!(e, ClientExtension::KeyShare(shares) if shares.iter().any(|s| s.group == g)));
                if shared {
                    return Err(format!(
                        "a HelloRetryRequest asked for group {}, whose key share the hello already sent (RFC 8446 §4.1.4)",
                        name(g)
                    ));
                }
                for e in ext.iter_mut() {
                    if let ClientExtension::KeyShare(shares) = e {
                        *shares = hsscan_wire::client_hello::key_shares(&[g]);
                    }
                }
            }
            None if cookie.is_none() => {
                return Err("a HelloRetryRequest that changes nothing in the hello (RFC 8446 §4.1.4)".to_owned());
            }
            None => {}
        }
        if let Some(c) = cookie {
            let mut data = u16::try_from(c.len())
                .map_err(|_| "a cookie over 64 KiB".to_owned())?
                .to_be_bytes()
                .to_vec();
            data.extend(c);
            ext.push(ClientExtension::Raw {
                typ: hsscan_wire::ExtensionType::COOKIE,
                data,
            });
        }
        hello
            .to_record(self.record_version)
            .map_err(|e| format!("building the second hello: {e}"))
    }
}

/// RFC 7685 §1: some middleboxes hang on hellos of 256 to 511 bytes;
/// padding to 512 avoids the window, as browsers and OpenSSL do.
fn pad_out_of_window(hello: &mut ClientHello, record_version: ProtocolVersion) -> Result<(), EncodeError> {
    let len = hello.to_record(record_version)?.len();
    if (256..512).contains(&len) {
        // The padding extension needs four bytes even when empty: a hello of
        // 509 to 511 bytes goes just past 512 instead.
        hello.pad_to(512.max(len + 4))?;
    }
    Ok(())
}

fn prepare(
    hello: &ClientHello,
    record_version: ProtocolVersion,
    min: ProtocolVersion,
    max: ProtocolVersion,
) -> Result<Prepared, EncodeError> {
    let record = hello.to_record(record_version)?;
    let groups = match hello.extension(hsscan_wire::ExtensionType::SUPPORTED_GROUPS) {
        Some(ClientExtension::SupportedGroups(g)) => g.clone(),
        _ => Vec::new(),
    };
    Ok(Prepared {
        hello_bytes: record.len(),
        cipher_count: hello.cipher_suites.iter().filter(|s| !s.is_signal()).count(),
        writes: vec![record],
        max_version: max,
        min_version: min,
        suites: hello.cipher_suites.clone(),
        groups,
        retry: None,
    })
}

/// Every group a TLS 1.3 hello may list, the common ones first: a server
/// whose only group is P-521 or ffdhe2048 answers with a HelloRetryRequest
/// naming it instead of refusing.
pub fn every_tls13_group() -> Vec<NamedGroup> {
    let mut out: Vec<NamedGroup> = MODERN_GROUPS.to_vec();
    out.extend(
        catalog::GROUPS
            .iter()
            .filter(|g| g.tls13 && g.kind != catalog::GroupKind::Grease && !MODERN_GROUPS.contains(&g.id))
            .map(|g| g.id),
    );
    out
}

/// The quick check's modern hello: TLS 1.3 and 1.2, common suites, X25519
/// and P-256 shares.
pub fn modern(sni: Option<&str>) -> Result<Prepared, EncodeError> {
    let mut suites: Vec<CipherSuite> = MODERN_SUITES.iter().map(|&s| CipherSuite(s)).collect();
    // The CCM suites OpenSSL leaves out of its defaults: a server with only
    // those still answers.
    suites.extend([CipherSuite(0x1304), CipherSuite(0x1305)]);
    suites.push(CipherSuite::TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
    let mut hello = ClientHello::typical(ProtocolVersion::TLS12, ProtocolVersion::TLS13, random32(), suites, sni);
    if let Some(ext) = hello.extensions.as_mut() {
        for e in ext.iter_mut() {
            if let ClientExtension::SupportedGroups(g) = e {
                *g = every_tls13_group();
            }
        }
    }
    pad_out_of_window(&mut hello, ProtocolVersion::TLS10)?;
    let mut p = prepare(
        &hello,
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS12,
        ProtocolVersion::TLS13,
    )?;
    // A server whose groups are none of the two shared asks for another
    // with a HelloRetryRequest: the probe follows it once, as a sender
    // does, so that only a ServerHello counts as TLS 1.3.
    p.retry = Some(Retry {
        hello,
        record_version: ProtocolVersion::TLS10,
    });
    Ok(p)
}

/// The quick check's last resort when both its hellos fail: up to TLS 1.2
/// with every suite and every elliptic curve valid there, so a server with
/// only TLS 1.1, or only ARIA, CCM or Camellia suites, is not taken for one
/// without TLS. `limit`: offer only the first suites (for servers that
/// drop long hellos).
pub fn wide(sni: Option<&str>, limit: Option<usize>) -> Result<Prepared, EncodeError> {
    let mut suites: Vec<CipherSuite> = legacy_suites(ProtocolVersion::TLS12);
    // At TLS 1.2 the AEAD suites come first, as a modern server prefers them.
    suites.sort_by_key(|s| !catalog::suite(*s).and_then(|i| i.properties).is_some_and(|p| p.aead));
    if let Some(n) = limit {
        suites.truncate(n);
    }
    let groups: Vec<NamedGroup> = catalog::GROUPS
        .iter()
        .filter(|g| {
            matches!(
                g.kind,
                catalog::GroupKind::EcPrime
                    | catalog::GroupKind::EcChar2
                    | catalog::GroupKind::EcBrainpool
                    | catalog::GroupKind::Montgomery
            ) && !(0x001f..=0x0021).contains(&g.id.0)
        })
        .map(|g| g.id)
        .collect();
    let mut p = for_version(ProtocolVersion::TLS12, &suites, &groups, &[], sni)?;
    p.min_version = ProtocolVersion::SSL3;
    Ok(p)
}

/// The legacy suite order: the usual legacy choices first, then every other
/// suite the catalog offers at `version`.
pub fn legacy_suites(version: ProtocolVersion) -> Vec<CipherSuite> {
    let offerable: Vec<CipherSuite> = catalog::suites_for(version).map(|s| s.id).collect();
    let mut out: Vec<CipherSuite> = LEGACY_FIRST
        .iter()
        .map(|&s| CipherSuite(s))
        .filter(|s| offerable.contains(s))
        .collect();
    out.extend(offerable.iter().filter(|s| !LEGACY_FIRST.contains(&s.0)));
    out
}

/// The quick check's legacy hello: up to TLS 1.0 with every catalog suite
/// valid there (RC4, 3DES and export included), few extensions.
pub fn legacy(sni: Option<&str>) -> Result<Prepared, EncodeError> {
    let mut suites = legacy_suites(ProtocolVersion::TLS10);
    suites.push(CipherSuite::TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
    let mut hello = ClientHello::new(ProtocolVersion::TLS10, random32(), suites);
    let mut ext = Vec::new();
    if let Some(name) = sni {
        ext.push(ClientExtension::ServerName(name.to_owned()));
    }
    ext.push(ClientExtension::SupportedGroups(vec![
        NamedGroup::SECP256R1,
        NamedGroup::SECP384R1,
        NamedGroup::SECP521R1,
    ]));
    ext.push(ClientExtension::EcPointFormats(vec![EcPointFormat::UNCOMPRESSED]));
    hello.extensions = Some(ext);
    pad_out_of_window(&mut hello, ProtocolVersion::TLS10)?;
    prepare(
        &hello,
        ProtocolVersion::TLS10,
        ProtocolVersion::SSL3,
        ProtocolVersion::TLS10,
    )
}

/// The smallest hello worth sending when every other one was dropped: up
/// to TLS 1.2, the TLS 1.2 suites of the modern hello and the legacy
/// RC4/3DES ones, four extensions, no padding (about 200 bytes). A
/// receiver that drops long hellos answers it, and the drops can then be
/// bisected against it.
pub fn small(sni: Option<&str>) -> Result<Prepared, EncodeError> {
    let mut suites: Vec<CipherSuite> = MODERN_SUITES
        .iter()
        .filter(|s| (**s >> 8) != 0x13)
        .map(|&s| CipherSuite(s))
        .collect();
    suites.extend([0x000a, 0x0005, 0x0004].map(CipherSuite));
    suites.push(CipherSuite::TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
    let mut hello = ClientHello::new(ProtocolVersion::TLS12, random32(), suites);
    let mut ext = Vec::new();
    if let Some(name) = sni {
        ext.push(ClientExtension::ServerName(name.to_owned()));
    }
    ext.push(ClientExtension::SupportedGroups(vec![
        NamedGroup::X25519,
        NamedGroup::SECP256R1,
        NamedGroup::SECP384R1,
    ]));
    ext.push(ClientExtension::EcPointFormats(vec![EcPointFormat::UNCOMPRESSED]));
    ext.push(ClientExtension::SignatureAlgorithms(
        hsscan_wire::client_hello::DEFAULT_SIGNATURE_SCHEMES.to_vec(),
    ));
    hello.extensions = Some(ext);
    prepare(
        &hello,
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS12,
    )
}

/// Extras of an enumeration hello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HelloOptions {
    /// Offer DEFLATE before null compression (TLS ≤ 1.2), to see whether the
    /// server would compress (CRIME).
    pub deflate: bool,
    /// Append TLS_FALLBACK_SCSV (RFC 7507).
    pub fallback_scsv: bool,
    /// TLS 1.3: answer the HelloRetryRequest the hello draws with a second
    /// hello carrying a share for the group it names, so that only a
    /// ServerHello proves the protocol (SPEC §4) and a server that asks
    /// again, or for ever, is `invalid-server-hello`.
    pub follow_retry: bool,
}

/// A hello offering exactly `suites` at `version` (enumeration). TLS 1.3
/// goes through supported_versions with `shares` as key shares (empty: draw
/// a HelloRetryRequest); SSLv3 carries no extensions at all.
pub fn for_version(
    version: ProtocolVersion,
    suites: &[CipherSuite],
    groups: &[NamedGroup],
    shares: &[NamedGroup],
    sni: Option<&str>,
) -> Result<Prepared, EncodeError> {
    for_version_with(version, suites, groups, shares, sni, &HelloOptions::default())
}

/// [`for_version`] with extras.
pub fn for_version_with(
    version: ProtocolVersion,
    suites: &[CipherSuite],
    groups: &[NamedGroup],
    shares: &[NamedGroup],
    sni: Option<&str>,
    options: &HelloOptions,
) -> Result<Prepared, EncodeError> {
    let tls13 = version == ProtocolVersion::TLS13;
    let mut suites = suites.to_vec();
    if !tls13 {
        suites.push(CipherSuite::TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
    }
    if options.fallback_scsv {
        suites.push(CipherSuite::TLS_FALLBACK_SCSV);
    }
    let legacy = if tls13 { ProtocolVersion::TLS12 } else { version };
    let mut hello = ClientHello::new(legacy, random32(), suites);
    if options.deflate && !tls13 {
        hello.compression_methods = vec![
            hsscan_wire::CompressionMethod::DEFLATE,
            hsscan_wire::CompressionMethod::NULL,
        ];
    }
    if version == ProtocolVersion::SSL3 {
        hello.extensions = None;
    } else {
        let mut ext = Vec::new();
        if let Some(name) = sni {
            ext.push(ClientExtension::ServerName(name.to_owned()));
        }
        if !groups.is_empty() {
            ext.push(ClientExtension::SupportedGroups(groups.to_vec()));
            ext.push(ClientExtension::EcPointFormats(vec![EcPointFormat::UNCOMPRESSED]));
        }
        if version == ProtocolVersion::TLS12 || tls13 {
            ext.push(ClientExtension::SignatureAlgorithms(
                hsscan_wire::client_hello::DEFAULT_SIGNATURE_SCHEMES.to_vec(),
            ));
        }
        ext.push(ClientExtension::StatusRequest);
        if !tls13 {
            ext.push(ClientExtension::RenegotiationInfo(Vec::new()));
            ext.push(ClientExtension::ExtendedMasterSecret);
            ext.push(ClientExtension::EncryptThenMac);
            ext.push(ClientExtension::SessionTicket(Vec::new()));
            ext.push(ClientExtension::Heartbeat(
                hsscan_wire::HeartbeatMode::PEER_ALLOWED_TO_SEND,
            ));
        } else {
            ext.push(ClientExtension::SupportedVersions(vec![ProtocolVersion::TLS13]));
            ext.push(ClientExtension::PskKeyExchangeModes(vec![
                hsscan_wire::PskKeyExchangeMode::PSK_DHE_KE,
            ]));
            ext.push(ClientExtension::KeyShare(hsscan_wire::client_hello::key_shares(shares)));
        }
        hello.extensions = Some(ext);
    }
    let record_version = if version == ProtocolVersion::SSL3 {
        ProtocolVersion::SSL3
    } else {
        ProtocolVersion::TLS10
    };
    if version != ProtocolVersion::SSL3 {
        pad_out_of_window(&mut hello, record_version)?;
    }
    let mut p = prepare(&hello, record_version, version, version)?;
    if tls13 && options.follow_retry {
        p.retry = Some(Retry { hello, record_version });
    }
    Ok(p)
}

/// The SSLv2 CLIENT-HELLO offering every SSLv2 cipher spec.
pub fn sslv2() -> Result<Prepared, EncodeError> {
    let r = random32();
    let mut challenge = [0u8; 16];
    challenge.copy_from_slice(r.get(..16).unwrap_or(&[0; 16]));
    let hello = Sslv2ClientHello::sslv2(challenge);
    let record = hello.to_record()?;
    Ok(Prepared {
        hello_bytes: record.len(),
        cipher_count: hello.cipher_specs.len(),
        writes: vec![record],
        max_version: ProtocolVersion::SSL2,
        min_version: ProtocolVersion::SSL2,
        suites: Vec::new(),
        groups: Vec::new(),
        retry: None,
    })
}

/// Reframes a prepared single-record hello into records of at most
/// `record_size` bytes of handshake data (intolerance probes).
pub fn split(prepared: &Prepared, record_size: usize) -> Result<Prepared, EncodeError> {
    let Some(record) = prepared.writes.first() else {
        return Ok(prepared.clone());
    };
    let message = record.get(5..).unwrap_or(&[]);
    let version = hsscan_wire::ProtocolVersion(u16::from_be_bytes([
        *record.get(1).unwrap_or(&3),
        *record.get(2).unwrap_or(&1),
    ]));
    let framing = Framing::records_of(version, record_size, message.len());
    let writes = vec![framing.frame(hsscan_wire::ContentType::HANDSHAKE, message)?.concat()];
    Ok(Prepared {
        writes,
        ..prepared.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsscan_wire::{Deframer, Event, Side};

    fn decode(p: &Prepared) -> ClientHello {
        let mut d = Deframer::new(Side::Client);
        d.push(&p.writes.concat()).unwrap();
        match d.next_event().unwrap() {
            Some(Event::ClientHello(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn modern_and_legacy_hellos_stay_out_of_the_f5_window() {
        for p in [
            modern(Some("mx.example.net")).unwrap(),
            legacy(Some("mx.example.net")).unwrap(),
            legacy(None).unwrap(),
        ] {
            assert!(!(256..512).contains(&p.hello_bytes), "{}", p.hello_bytes);
            assert_eq!(p.writes.concat().len(), p.hello_bytes);
        }
    }

    #[test]
    fn every_hello_size_near_the_window_edge_encodes() {
        // Grow the suite list one by one across the 256-511 window.
        let all: Vec<CipherSuite> = catalog::suites_for(ProtocolVersion::TLS12).map(|s| s.id).collect();
        for n in 60..all.len().min(260) {
            let p = for_version(
                ProtocolVersion::TLS12,
                &all[..n],
                &MODERN_GROUPS,
                &[],
                Some("mx.example.net"),
            )
            .unwrap();
            assert!(
                !(256..512).contains(&p.hello_bytes),
                "{n} suites: {} bytes",
                p.hello_bytes
            );
        }
    }

    #[test]
    fn legacy_hello_offers_every_tls10_suite_with_the_usual_ones_first() {
        let p = legacy(None).unwrap();
        let h = decode(&p);
        assert_eq!(h.legacy_version, ProtocolVersion::TLS10);
        assert_eq!(
            &h.cipher_suites[..3],
            &[CipherSuite(0x0005), CipherSuite(0x0004), CipherSuite(0x000a)]
        );
        let all: Vec<CipherSuite> = catalog::suites_for(ProtocolVersion::TLS10).map(|s| s.id).collect();
        assert_eq!(p.cipher_count, all.len());
        assert!(all.iter().all(|s| h.cipher_suites.contains(s)));
    }

    #[test]
    fn ssl3_hello_has_no_extensions_and_tls13_no_renegotiation_info() {
        let s = [CipherSuite(0x000a)];
        let h = decode(&for_version(ProtocolVersion::SSL3, &s, &[], &[], Some("x.example")).unwrap());
        assert_eq!(h.extensions, None);
        let h = decode(
            &for_version(
                ProtocolVersion::TLS13,
                &[CipherSuite(0x1301)],
                &MODERN_GROUPS,
                &[],
                None,
            )
            .unwrap(),
        );
        assert!(h.extension(hsscan_wire::ExtensionType::RENEGOTIATION_INFO).is_none());
        assert_eq!(h.offered_versions(), vec![ProtocolVersion::TLS13]);
    }
}
