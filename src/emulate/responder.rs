//! What the emulated server answers to one ClientHello: pure logic, no I/O.
//! It chooses a version, a suite and a group the way the profile says, and
//! builds the first server flight (ServerHello … ServerHelloDone, or a
//! HelloRetryRequest, or a TLS 1.3 ServerHello) — or a refusal. Nothing is
//! ever signed or encrypted: the flight has the right shape, not valid
//! cryptography, and the connection ends after it.

use super::chain::Chains;
use super::profile::{Misbehave, Profile, Refusal};
use hsscan_wire::server_hello::HELLO_RETRY_REQUEST_RANDOM;
use hsscan_wire::server_key_exchange::{DigitallySigned, KeyExchangeLayout};
use hsscan_wire::{
    catalog, Certificate, CertificateEntry, CertificateStatus, CipherSuite, ClientExtension, ClientHello,
    CompressionMethod, ContentType, EcCurveType, EcPointFormat, ExtensionType, Framing, KeyShareEntry, NamedGroup,
    ProtocolVersion, ServerExtension, ServerHello, ServerKeyExchange, SignatureScheme, Sslv2ClientHello,
    Sslv2ServerHello, Writer,
};

/// TLS_FALLBACK_SCSV (RFC 7507) and TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746).
const FALLBACK_SCSV: CipherSuite = CipherSuite(0x5600);
const RENEGOTIATION_SCSV: CipherSuite = CipherSuite(0x00ff);

/// How the hello reached us, for the intolerances.
#[derive(Debug, Clone, Copy, Default)]
pub struct Arrival {
    /// The hello's bytes on the wire, record headers included.
    pub bytes: usize,
    /// Records the hello spanned.
    pub records: usize,
    /// Reads it took to get the whole hello.
    pub reads: usize,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send these bytes. `more` is set after a HelloRetryRequest: the client
    /// may send a second hello on the same connection.
    Flight {
        bytes: Vec<u8>,
        more: bool,
    },
    Refuse(Refusal),
}

/// An answer and why.
#[derive(Debug, Clone)]
pub struct Decision {
    pub answer: Answer,
    /// One line: what was chosen and why, or why nothing was.
    pub why: String,
    pub version: Option<ProtocolVersion>,
    pub cipher: Option<CipherSuite>,
    pub group: Option<NamedGroup>,
}

impl Decision {
    fn refuse(r: Refusal, version: Option<ProtocolVersion>, why: String) -> Self {
        Self {
            answer: Answer::Refuse(r),
            why,
            version,
            cipher: None,
            group: None,
        }
    }
}

/// A deterministic byte source for randoms and session ids (the emulator
/// needs unpredictability from nothing: these bytes protect no secret).
#[derive(Debug, Clone)]
pub struct Bytes(u64);

impl Bytes {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn fill<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in out.iter_mut() {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            *b = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
        out
    }
}

/// The versions a TLS ClientHello offers, highest first.
pub fn client_versions(hello: &ClientHello) -> Vec<ProtocolVersion> {
    let mut v = hello.offered_versions();
    v.retain(|x| !x.is_grease());
    v.sort_by_key(|x| std::cmp::Reverse(catalog::version_rank(*x)));
    v
}

/// A version as the log and JSON spell it: the registry's name.
pub fn label(v: ProtocolVersion) -> &'static str {
    v.name().unwrap_or("other")
}

fn rank(v: ProtocolVersion) -> u32 {
    catalog::version_rank(v)
}

fn client_groups(hello: &ClientHello) -> Option<Vec<NamedGroup>> {
    hello.extension(ExtensionType::SUPPORTED_GROUPS).and_then(|e| match e {
        ClientExtension::SupportedGroups(g) => Some(g.clone()),
        _ => None,
    })
}

fn client_shares(hello: &ClientHello) -> Vec<NamedGroup> {
    match hello.extension(ExtensionType::KEY_SHARE) {
        Some(ClientExtension::KeyShare(entries)) => entries.iter().map(|e| e.group).collect(),
        _ => Vec::new(),
    }
}

fn has(hello: &ClientHello, typ: ExtensionType) -> bool {
    hello.extension(typ).is_some()
}

/// The first of `ours ∩ theirs` in the deciding side's order.
fn pick<T: Copy + PartialEq>(ours: &[T], theirs: &[T], server_decides: bool) -> Option<T> {
    if server_decides {
        ours.iter().copied().find(|x| theirs.contains(x))
    } else {
        theirs.iter().copied().find(|x| ours.contains(x))
    }
}

fn name(s: CipherSuite) -> String {
    s.name().map_or_else(|| s.hex(), str::to_owned)
}

/// A server key share of the right size for `group`.
fn server_share(group: NamedGroup) -> Vec<u8> {
    let want = catalog::group(group).and_then(|g| g.server_share_len).map(usize::from);
    match (hsscan_wire::key_share::client_share(group), want) {
        (Some(s), Some(n)) if s.len() == n => s,
        (Some(s), None) => s,
        (_, Some(n)) => vec![0x42; n],
        (None, None) => vec![0x42; 32],
    }
}

/// The RFC 7919 ffdhe2048 prime, the modulus real servers send by default.
const FFDHE2048_P: &str = "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617AD3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797ABC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F619172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005C58EF1837D1683B2C6F34A26C1B2EFFA886B423861285C97FFFFFFFFFFFFFFFF";

/// A DH modulus of `bits` bits: ffdhe2048 for 2048, else an odd number of
/// that size (the emulator never computes with it).
fn dh_prime(bits: usize) -> Vec<u8> {
    if bits == 2048 {
        return (0..FFDHE2048_P.len() / 2)
            .filter_map(|i| FFDHE2048_P.get(2 * i..2 * i + 2))
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect();
    }
    let mut p = vec![0xc9u8; bits.div_ceil(8)];
    if let Some(first) = p.first_mut() {
        *first = 0xff;
    }
    if let Some(last) = p.last_mut() {
        *last = 0xff;
    }
    p
}

fn signature(version: ProtocolVersion, ecdsa: bool) -> Option<DigitallySigned> {
    let scheme = (rank(version) >= rank(ProtocolVersion::TLS12)).then_some(if ecdsa {
        SignatureScheme::ECDSA_SECP256R1_SHA256
    } else {
        SignatureScheme::RSA_PKCS1_SHA256
    });
    // Filler of the right shape: 256 bytes for RSA 2048, a DER
    // ECDSA-Sig-Value (two 32-byte INTEGERs) for P-256. Not valid.
    let signature = if ecdsa {
        let mut der = vec![0x30, 0x44, 0x02, 0x20];
        der.extend([0x5a; 32]);
        der.extend([0x02, 0x20]);
        der.extend([0x5a; 32]);
        der
    } else {
        vec![0x5a; 256]
    };
    Some(DigitallySigned { scheme, signature })
}

/// The ServerKeyExchange for `suite`, or `None` when the suite has none.
fn key_exchange(
    suite: CipherSuite,
    version: ProtocolVersion,
    group: Option<NamedGroup>,
    dh_bits: usize,
) -> Option<ServerKeyExchange> {
    let props = catalog::suite(suite).and_then(|s| s.properties)?;
    let ecdsa = props.auth == "ECDSA";
    match KeyExchangeLayout::of(suite) {
        KeyExchangeLayout::Ecdh { signed, .. } => {
            let g = group.unwrap_or(NamedGroup::SECP256R1);
            Some(ServerKeyExchange::Ecdh {
                psk_hint: Vec::new(),
                curve_type: EcCurveType::NAMED_CURVE,
                group: Some(g),
                public: server_share(g),
                signature: signed.then(|| signature(version, ecdsa)).flatten(),
            })
        }
        KeyExchangeLayout::Dh { signed, .. } => {
            let bits = match props.kx {
                "DHE(512)" | "DH(512)" => 512,
                "DHE(1024)" => 1024,
                _ => dh_bits,
            };
            let p = dh_prime(bits);
            let mut ys = vec![0u8; p.len()];
            if let Some(last) = ys.last_mut() {
                *last = 2;
            }
            Some(ServerKeyExchange::Dh {
                psk_hint: Vec::new(),
                p,
                g: vec![2],
                ys,
                signature: signed.then(|| signature(version, false)).flatten(),
            })
        }
        KeyExchangeLayout::RsaExport => Some(ServerKeyExchange::RsaExport {
            modulus: dh_prime(512),
            exponent: vec![1, 0, 1],
            signature: signature(version, false),
        }),
        KeyExchangeLayout::PskHint | KeyExchangeLayout::Other => None,
    }
}

/// Handshake messages into records of `version`.
fn records(version: ProtocolVersion, content: ContentType, bytes: &[u8]) -> Vec<u8> {
    Framing::single(version)
        .frame(content, bytes)
        .map(|writes| writes.concat())
        .unwrap_or_default()
}

/// Records an alert in `version`.
pub fn alert_record(version: ProtocolVersion, a: hsscan_wire::AlertDescription) -> Vec<u8> {
    records(version, ContentType::ALERT, &hsscan_wire::Alert::fatal(a).to_bytes())
}

pub struct Responder<'a> {
    pub profile: &'a Profile,
    pub chains: &'a Chains,
}

impl Responder<'_> {
    fn misbehave(&self) -> &Misbehave {
        &self.profile.misbehave
    }

    fn intolerance(&self, why: String) -> Decision {
        Decision::refuse(self.misbehave().intolerance.unwrap_or(Refusal::Reset), None, why)
    }

    /// Checks the intolerances a TLS hello can trip.
    fn intolerant(&self, hello: &ClientHello, arrival: Arrival) -> Option<Decision> {
        let m = self.misbehave();
        if let Some(max) = m.max_hello_bytes {
            if arrival.bytes > max {
                return Some(self.intolerance(format!("hello of {} bytes is longer than {max}", arrival.bytes)));
            }
        }
        if let Some((lo, hi)) = m.hello_size_window {
            if (lo..=hi).contains(&arrival.bytes) {
                return Some(self.intolerance(format!("hello of {} bytes is in the {lo}–{hi} window", arrival.bytes)));
            }
        }
        if m.split_records && arrival.records > 1 {
            return Some(self.intolerance(format!("hello split over {} records", arrival.records)));
        }
        if m.split_segments && arrival.reads > 1 {
            return Some(self.intolerance(format!("hello arrived in {} reads", arrival.reads)));
        }
        if m.tls13_supported_versions && client_versions(hello).contains(&ProtocolVersion::TLS13) {
            return Some(self.intolerance("supported_versions offers TLS 1.3".to_owned()));
        }
        if m.unknown_extensions {
            if let Some(e) = hello.extensions.iter().flatten().find(|e| e.typ().name().is_none()) {
                return Some(self.intolerance(format!("unknown extension {:#06x}", e.typ().0)));
            }
        }
        None
    }

    /// The answer to a TLS ClientHello. `retried`: this is the second hello
    /// after our HelloRetryRequest.
    pub fn tls(&self, hello: &ClientHello, arrival: Arrival, retried: bool, rng: &mut Bytes) -> Decision {
        if let Some(d) = self.intolerant(hello, arrival) {
            return d;
        }
        if let Some(r) = self.misbehave().after_hello {
            return Decision::refuse(r, None, "the profile answers every hello so".to_owned());
        }
        let tls = &self.profile.tls;
        let theirs = client_versions(hello);
        let ours: Vec<ProtocolVersion> = tls
            .versions
            .iter()
            .copied()
            .filter(|v| *v != ProtocolVersion::SSL2)
            .collect();
        let sv = has(hello, ExtensionType::SUPPORTED_VERSIONS);
        let version = if sv && ours.contains(&ProtocolVersion::TLS13) {
            // RFC 8446 §4.2.1: the highest version in both lists.
            theirs.iter().copied().find(|v| ours.contains(v))
        } else {
            // Without TLS 1.3 a server reads legacy_version: the highest of
            // ours at or below it.
            let max = hello.legacy_version;
            ours.iter()
                .rev()
                .copied()
                .find(|v| rank(*v) <= rank(max) && rank(*v) <= rank(ProtocolVersion::TLS12))
        };
        let record_version = if rank(hello.legacy_version) < rank(ProtocolVersion::TLS10) {
            hello.legacy_version
        } else {
            ProtocolVersion::TLS10
        };
        let Some(version) = version else {
            return Decision::refuse(
                tls.version_mismatch,
                Some(record_version),
                format!(
                    "no common version: client offers {}, profile speaks {}",
                    list_versions(&theirs),
                    list_versions(&ours)
                ),
            );
        };
        let our_max = ours.last().copied().unwrap_or(version);
        if tls.features.fallback_scsv && hello.cipher_suites.contains(&FALLBACK_SCSV) && rank(version) < rank(our_max) {
            return Decision::refuse(
                Refusal::Alert(hsscan_wire::AlertDescription::INAPPROPRIATE_FALLBACK),
                Some(version),
                format!(
                    "TLS_FALLBACK_SCSV at {} while {} is ours",
                    label(version),
                    label(our_max)
                ),
            );
        }
        let window = self.misbehave().suite_window.unwrap_or(usize::MAX);
        let seen: Vec<CipherSuite> = hello.cipher_suites.iter().take(window).copied().collect();
        let ignored = hello.cipher_suites.len().saturating_sub(seen.len());
        let window_note = if ignored > 0 {
            format!(" ({ignored} suites past the {window}th ignored)")
        } else {
            String::new()
        };
        let deciding = if tls.server_preference { "server" } else { "client" };
        if version == ProtocolVersion::TLS13 {
            return self.tls13(hello, &seen, retried, rng, deciding, &window_note);
        }
        // TLS ≤ 1.2: suites valid at the version, ECDHE only with a common curve.
        // ECDHE at TLS <= 1.2 takes elliptic curves only (RFC 8422 §5.1),
        // not finite-field or post-quantum groups.
        let ec: Vec<NamedGroup> = tls
            .groups
            .iter()
            .copied()
            .filter(|g| {
                use hsscan_wire::catalog::GroupKind as K;
                catalog::group(*g).is_some_and(|i| {
                    matches!(
                        i.kind,
                        K::EcChar2 | K::EcPrime | K::EcBrainpool | K::Montgomery | K::Sm2
                    )
                })
            })
            .collect();
        let curves = client_groups(hello);
        let curve = match &curves {
            Some(c) => pick(&ec, c, tls.server_preference),
            // RFC 4492 §4: without the extension any curve will do.
            None => ec.first().copied().or(Some(NamedGroup::SECP256R1)),
        };
        let usable: Vec<CipherSuite> = tls
            .ciphers
            .iter()
            .copied()
            .filter(|s| catalog::suite(*s).is_some_and(|i| i.offerable_in(version)))
            .filter(|s| {
                let ecdhe = catalog::suite(*s)
                    .and_then(|i| i.properties)
                    .is_some_and(|p| p.kx.starts_with("ECDH"));
                !ecdhe || curve.is_some()
            })
            .collect();
        let Some(suite) = pick(&usable, &seen, tls.server_preference) else {
            return Decision::refuse(
                tls.no_shared_cipher,
                Some(version),
                format!("no shared cipher suite at {}{window_note}", label(version)),
            );
        };
        let props = catalog::suite(suite).and_then(|s| s.properties);
        let ecc = props.is_some_and(|p| p.kx.starts_with("ECDH") || p.auth == "ECDSA");
        let group = props.filter(|p| p.kx.starts_with("ECDH")).and(curve);
        let f = tls.features;
        let mut exts = Vec::new();
        if f.secure_renegotiation
            && (has(hello, ExtensionType::RENEGOTIATION_INFO) || hello.cipher_suites.contains(&RENEGOTIATION_SCSV))
        {
            exts.push(ServerExtension::RenegotiationInfo(Vec::new()));
        }
        if has(hello, ExtensionType::SERVER_NAME) {
            exts.push(ServerExtension::ServerName);
        }
        if ecc && has(hello, ExtensionType::EC_POINT_FORMATS) {
            exts.push(ServerExtension::EcPointFormats(vec![EcPointFormat::UNCOMPRESSED]));
        }
        if f.extended_master_secret
            && has(hello, ExtensionType::EXTENDED_MASTER_SECRET)
            && version != ProtocolVersion::SSL3
        {
            exts.push(ServerExtension::ExtendedMasterSecret);
        }
        let cbc = props.is_some_and(|p| !p.aead && p.mode == "CBC");
        if f.encrypt_then_mac && cbc && has(hello, ExtensionType::ENCRYPT_THEN_MAC) {
            exts.push(ServerExtension::EncryptThenMac);
        }
        if f.session_ticket && has(hello, ExtensionType::SESSION_TICKET) {
            exts.push(ServerExtension::SessionTicket);
        }
        let staple = f.ocsp_stapling && has(hello, ExtensionType::STATUS_REQUEST);
        if staple {
            exts.push(ServerExtension::StatusRequest);
        }
        if f.heartbeat && has(hello, ExtensionType::HEARTBEAT) {
            exts.push(ServerExtension::Heartbeat(
                hsscan_wire::HeartbeatMode::PEER_ALLOWED_TO_SEND,
            ));
        }
        let compression = if f.compression && hello.compression_methods.contains(&CompressionMethod::DEFLATE) {
            CompressionMethod::DEFLATE
        } else {
            CompressionMethod::NULL
        };
        let mut random: [u8; 32] = rng.fill();
        // RFC 8446 §4.1.3: a TLS 1.3 server that negotiates lower says so.
        if our_max == ProtocolVersion::TLS13 {
            let tail: &[u8; 8] = if version == ProtocolVersion::TLS12 {
                b"DOWNGRD\x01"
            } else {
                b"DOWNGRD\x00"
            };
            if let Some(end) = random.get_mut(24..) {
                end.copy_from_slice(tail);
            }
        }
        let sh = ServerHello {
            legacy_version: version,
            random,
            session_id: rng.fill::<32>().to_vec(),
            cipher_suite: suite,
            compression,
            extensions: (hello.extensions.is_some() || !exts.is_empty()).then_some(exts),
        };
        let mut w = Writer::new();
        let anon = props.is_some_and(|p| p.auth == "anon");
        let mut ok = sh.write(&mut w).is_ok();
        if !anon {
            let chain = if props.is_some_and(|p| p.auth == "ECDSA") {
                &self.chains.ecdsa
            } else {
                &self.chains.rsa
            };
            let cert = Certificate {
                context: None,
                entries: chain
                    .iter()
                    .map(|der| CertificateEntry {
                        der: der.clone(),
                        extensions: Vec::new(),
                    })
                    .collect(),
                omitted: Default::default(),
            };
            ok &= cert.write(&mut w).is_ok();
        }
        if staple {
            // An OCSPResponse with status tryLater(3) and no body: the shape
            // of a staple, not a real one.
            let status = CertificateStatus {
                status_type: hsscan_wire::CertificateStatusType::OCSP,
                response: vec![0x30, 0x03, 0x0a, 0x01, 0x03],
            };
            ok &= status.write(&mut w).is_ok();
        }
        if let Some(ske) = key_exchange(suite, version, group, tls.dh_bits) {
            ok &= ske.write(&mut w).is_ok();
        }
        // ServerHelloDone.
        w.bytes(&[14, 0, 0, 0]);
        if !ok {
            return Decision::refuse(Refusal::Close, Some(version), "the flight did not encode".to_owned());
        }
        let why = format!(
            "{} {} ({deciding} preference{window_note}){}",
            label(version),
            name(suite),
            group.map(|g| format!(", group {}", group_name(g))).unwrap_or_default()
        );
        Decision {
            answer: Answer::Flight {
                bytes: records(version, ContentType::HANDSHAKE, w.as_bytes()),
                more: false,
            },
            why,
            version: Some(version),
            cipher: Some(suite),
            group,
        }
    }

    fn tls13(
        &self,
        hello: &ClientHello,
        seen: &[CipherSuite],
        retried: bool,
        rng: &mut Bytes,
        deciding: &str,
        window_note: &str,
    ) -> Decision {
        let tls = &self.profile.tls;
        let v = ProtocolVersion::TLS13;
        let ours: Vec<CipherSuite> = tls
            .ciphers
            .iter()
            .copied()
            .filter(|s| catalog::suite(*s).is_some_and(|i| i.valid_in(v)))
            .collect();
        let Some(suite) = pick(&ours, seen, tls.server_preference) else {
            return Decision::refuse(
                tls.no_shared_cipher,
                Some(ProtocolVersion::TLS12),
                format!("no shared TLS 1.3 cipher suite{window_note}"),
            );
        };
        let groups = client_groups(hello).unwrap_or_default();
        let shares = client_shares(hello);
        let common: Vec<NamedGroup> = tls.groups.iter().copied().filter(|g| groups.contains(g)).collect();
        let with_share: Vec<NamedGroup> = common.iter().copied().filter(|g| shares.contains(g)).collect();
        let session_id = hello.session_id.clone();
        let mk = |random: [u8; 32], ext: ServerExtension| ServerHello {
            legacy_version: ProtocolVersion::TLS12,
            random,
            session_id: session_id.clone(),
            cipher_suite: suite,
            compression: CompressionMethod::NULL,
            extensions: Some(vec![ServerExtension::SupportedVersions(v), ext]),
        };
        if let Some(g) = pick(&tls.groups, &with_share, true)
            .filter(|_| tls.server_preference)
            .or_else(|| {
                // Client preference: the client's first share we accept.
                shares.iter().copied().find(|s| common.contains(s))
            })
        {
            let sh = mk(
                rng.fill(),
                ServerExtension::KeyShare(KeyShareEntry {
                    group: g,
                    key_exchange: server_share(g),
                }),
            );
            let mut w = Writer::new();
            if sh.write(&mut w).is_err() {
                return Decision::refuse(Refusal::Close, Some(v), "the ServerHello did not encode".to_owned());
            }
            let mut bytes = records(ProtocolVersion::TLS12, ContentType::HANDSHAKE, w.as_bytes());
            // RFC 8446 §D.4: middlebox compatibility mode.
            if !hello.session_id.is_empty() {
                bytes.extend(records(ProtocolVersion::TLS12, ContentType::CHANGE_CIPHER_SPEC, &[1]));
            }
            return Decision {
                answer: Answer::Flight { bytes, more: false },
                why: format!(
                    "TLSv1.3 {} ({deciding} preference{window_note}), group {}; the rest of the flight is encrypted and never sent",
                    name(suite),
                    group_name(g)
                ),
                version: Some(v),
                cipher: Some(suite),
                group: Some(g),
            };
        }
        let Some(g) = pick(&tls.groups, &groups, tls.server_preference) else {
            return Decision::refuse(
                Refusal::Alert(hsscan_wire::AlertDescription::HANDSHAKE_FAILURE),
                Some(ProtocolVersion::TLS12),
                "no common TLS 1.3 group".to_owned(),
            );
        };
        if retried {
            return Decision::refuse(
                Refusal::Alert(hsscan_wire::AlertDescription::ILLEGAL_PARAMETER),
                Some(ProtocolVersion::TLS12),
                format!("the second hello still has no {} share", group_name(g)),
            );
        }
        let hrr = mk(HELLO_RETRY_REQUEST_RANDOM, ServerExtension::KeyShareRetry(g));
        let mut w = Writer::new();
        if hrr.write(&mut w).is_err() {
            return Decision::refuse(
                Refusal::Close,
                Some(v),
                "the HelloRetryRequest did not encode".to_owned(),
            );
        }
        let mut bytes = records(ProtocolVersion::TLS12, ContentType::HANDSHAKE, w.as_bytes());
        if !hello.session_id.is_empty() {
            bytes.extend(records(ProtocolVersion::TLS12, ContentType::CHANGE_CIPHER_SPEC, &[1]));
        }
        Decision {
            answer: Answer::Flight { bytes, more: true },
            why: format!(
                "HelloRetryRequest TLSv1.3 {} asking for {} ({deciding} preference{window_note}): no share for a common group",
                name(suite),
                group_name(g)
            ),
            version: Some(v),
            cipher: Some(suite),
            group: Some(g),
        }
    }

    /// The answer to an SSLv2-format hello.
    pub fn sslv2(&self, hello: &Sslv2ClientHello, arrival: Arrival, rng: &mut Bytes) -> Decision {
        if hello.version != ProtocolVersion::SSL2 {
            // An SSLv2-compatible hello of an SSLv3/TLS client.
            let mut random = [0u8; 32];
            let n = hello.challenge.len().min(32);
            if let (Some(dst), Some(src)) = (random.get_mut(32 - n..), hello.challenge.get(..n)) {
                dst.copy_from_slice(src);
            }
            let mut ch = ClientHello::new(hello.version, random, hello.tls_suites());
            ch.compression_methods = vec![CompressionMethod::NULL];
            ch.extensions = None;
            return self.tls(&ch, arrival, false, rng);
        }
        if let Some(r) = self.misbehave().after_hello {
            return Decision::refuse(r, None, "the profile answers every hello so".to_owned());
        }
        let tls = &self.profile.tls;
        if !tls.versions.contains(&ProtocolVersion::SSL2) {
            return Decision::refuse(
                tls.version_mismatch,
                Some(ProtocolVersion::TLS10),
                "SSLv2 hello; the profile does not speak SSLv2".to_owned(),
            );
        }
        let common: Vec<hsscan_wire::Sslv2CipherSpec> = tls
            .sslv2_ciphers
            .iter()
            .copied()
            .filter(|s| hello.cipher_specs.contains(s))
            .collect();
        if common.is_empty() {
            // SSLv2 ERROR NO-CIPHER-ERROR (0x0001).
            return Decision {
                answer: Answer::Flight {
                    bytes: vec![0x80, 0x03, 0x00, 0x00, 0x01],
                    more: false,
                },
                why: "SSLv2 hello with no common cipher spec: ERROR NO-CIPHER".to_owned(),
                version: Some(ProtocolVersion::SSL2),
                cipher: None,
                group: None,
            };
        }
        let sh = Sslv2ServerHello {
            session_id_hit: false,
            certificate_type: 1,
            version: ProtocolVersion::SSL2,
            certificate: self.chains.rsa.first().cloned().unwrap_or_default(),
            cipher_specs: common.clone(),
            connection_id: rng.fill::<16>().to_vec(),
        };
        match sh.to_record() {
            Ok(bytes) => Decision {
                answer: Answer::Flight { bytes, more: false },
                why: format!(
                    "SSLv2 SERVER-HELLO with {} common cipher specs ({})",
                    common.len(),
                    common
                        .iter()
                        .map(|s| catalog::sslv2_spec(*s).map_or("?", |i| i.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                version: Some(ProtocolVersion::SSL2),
                cipher: None,
                group: None,
            },
            Err(_) => Decision::refuse(Refusal::Close, None, "the SSLv2 SERVER-HELLO did not encode".to_owned()),
        }
    }
}

fn list_versions(v: &[ProtocolVersion]) -> String {
    if v.is_empty() {
        return "none".to_owned();
    }
    v.iter().map(|x| label(*x)).collect::<Vec<_>>().join(", ")
}

pub fn group_name(g: NamedGroup) -> String {
    g.name().map_or_else(|| format!("{:#06x}", g.0), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(tls: &str) -> Profile {
        Profile::parse("t", &format!("description = \"t\"\n[tls]\n{tls}")).expect("profile")
    }

    fn chains() -> Chains {
        Chains {
            rsa: vec![vec![0x30, 0x00]],
            ecdsa: vec![vec![0x30, 0x00]],
        }
    }

    fn answer(p: &Profile, hello: &ClientHello) -> Decision {
        let c = chains();
        Responder { profile: p, chains: &c }.tls(hello, Arrival::default(), false, &mut Bytes::new(1))
    }

    fn hello(max: ProtocolVersion, suites: &[u16], groups: &[NamedGroup]) -> ClientHello {
        let mut h = ClientHello::typical(
            ProtocolVersion::TLS10,
            max,
            [1; 32],
            suites.iter().map(|s| CipherSuite(*s)).collect(),
            None,
        );
        if let Some(exts) = h.extensions.as_mut() {
            for e in exts.iter_mut() {
                if let ClientExtension::SupportedGroups(g) = e {
                    *g = groups.to_vec();
                }
            }
        }
        h
    }

    #[test]
    fn fallback_scsv_below_our_best_is_inappropriate_fallback() {
        let p = profile(
            "versions = [\"TLSv1.0\", \"TLSv1.2\"]\nciphers = [\"AES128-SHA\"]\nfeatures = [\"fallback_scsv\"]\n",
        );
        let d = answer(
            &p,
            &hello(ProtocolVersion::TLS10, &[0x002f, 0x5600], &[NamedGroup::SECP256R1]),
        );
        assert_eq!(
            d.answer,
            Answer::Refuse(Refusal::Alert(hsscan_wire::AlertDescription::INAPPROPRIATE_FALLBACK))
        );
        // At our best version the signal is harmless.
        let d = answer(
            &p,
            &hello(ProtocolVersion::TLS12, &[0x002f, 0x5600], &[NamedGroup::SECP256R1]),
        );
        assert_eq!(
            (d.version, d.cipher),
            (Some(ProtocolVersion::TLS12), Some(CipherSuite(0x002f)))
        );
    }

    #[test]
    fn ecdhe_needs_a_common_curve_and_never_a_finite_field_group() {
        let p = profile(
            "versions = [\"TLSv1.2\"]\nciphers = [\"ECDHE-RSA-AES128-GCM-SHA256\", \"AES128-SHA\"]\ngroups = [\"ffdhe2048\", \"secp256r1\"]\n",
        );
        // The client offers only ffdhe2048: ECDHE is out, static RSA is chosen.
        let d = answer(
            &p,
            &hello(ProtocolVersion::TLS12, &[0xc02f, 0x002f], &[NamedGroup(0x0100)]),
        );
        assert_eq!(d.cipher, Some(CipherSuite(0x002f)), "{}", d.why);
        // With P-256 too, ECDHE on P-256 (not ffdhe2048, first in the profile).
        let d = answer(
            &p,
            &hello(
                ProtocolVersion::TLS12,
                &[0xc02f, 0x002f],
                &[NamedGroup(0x0100), NamedGroup::SECP256R1],
            ),
        );
        assert_eq!(
            (d.cipher, d.group),
            (Some(CipherSuite(0xc02f)), Some(NamedGroup::SECP256R1))
        );
    }

    #[test]
    fn a_server_without_tls13_reads_legacy_version() {
        let p = profile("versions = [\"SSLv3\", \"TLSv1.0\"]\nciphers = [\"RC4-SHA\", \"AES128-SHA\"]\n");
        let d = answer(
            &p,
            &hello(ProtocolVersion::TLS13, &[0x1301, 0x002f, 0x0005], &[NamedGroup::X25519]),
        );
        // legacy_version is TLS 1.2: the highest of ours below it, server order.
        assert_eq!(
            (d.version, d.cipher),
            (Some(ProtocolVersion::TLS10), Some(CipherSuite(0x0005)))
        );
    }
}
