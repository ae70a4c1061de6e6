//! What the emulated server answers to one ClientHello: pure logic, no I/O.
//! It chooses a version, a suite and a group the way the profile says, and
//! builds the first server flight (ServerHello … ServerHelloDone, or a
//! HelloRetryRequest, or a TLS 1.3 ServerHello) — or a refusal. The
//! ServerKeyExchange carries real parameters (an ephemeral public key, a
//! real DH group) signed with the chain's key (the signer comes with the
//! [`Chains`]), so a real client gets as far as its ClientKeyExchange;
//! nothing is ever encrypted and no handshake is completed.

use super::chain::{Chains, Credential};
use super::keys::{self, Family, Method};
use super::kx;
use super::profile::{Misbehave, Profile, Refusal, Tls};
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
    /// The version in its first record header (`None`: not known).
    pub record_version: Option<ProtocolVersion>,
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
    /// How the ServerKeyExchange was signed, when one was sent signed:
    /// "rsa_pkcs1_sha1 with the RSA 2048 key", or why it is filler.
    pub signature: Option<String>,
}

impl Decision {
    fn refuse(r: Refusal, version: Option<ProtocolVersion>, why: String) -> Self {
        Self {
            answer: Answer::Refuse(r),
            why,
            version,
            cipher: None,
            group: None,
            signature: None,
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

/// The certificate slot a suite authenticates with: ECDSA suites take the
/// ECDSA chain, every other one the RSA chain. (The emulator has no DSA
/// key: a client that is answered with a DHE_DSS suite refuses the flight.)
fn family(suite: CipherSuite) -> Family {
    match catalog::suite(suite).and_then(|s| s.properties) {
        Some(p) if p.auth == "ECDSA" => Family::Ec,
        _ => Family::Rsa,
    }
}

fn client_schemes(hello: &ClientHello) -> Option<&[SignatureScheme]> {
    match hello.extension(ExtensionType::SIGNATURE_ALGORITHMS) {
        Some(ClientExtension::SignatureAlgorithms(s)) => Some(s),
        _ => None,
    }
}

/// Whether a suite's ServerKeyExchange is signed.
fn signs(suite: CipherSuite) -> bool {
    match KeyExchangeLayout::of(suite) {
        KeyExchangeLayout::Ecdh { signed, .. } | KeyExchangeLayout::Dh { signed, .. } => signed,
        KeyExchangeLayout::RsaExport => true,
        KeyExchangeLayout::PskHint | KeyExchangeLayout::Other => false,
    }
}

/// How a ServerKeyExchange is signed at `version` with a key of `family`;
/// `None` at TLS 1.2 when no scheme of the client's fits the key.
fn signing_method(version: ProtocolVersion, family: Family, hello: &ClientHello, tls: &Tls) -> Option<Method> {
    if rank(version) < rank(ProtocolVersion::TLS12) {
        return Some(match family {
            Family::Rsa => Method::Md5Sha1,
            Family::Ec => Method::Sha1,
        });
    }
    // RFC 5246 §7.4.1.4.1: without the extension, {sha1, the key's type}.
    let sha1 = match family {
        Family::Rsa => [SignatureScheme::RSA_PKCS1_SHA1],
        Family::Ec => [SignatureScheme::ECDSA_SHA1],
    };
    let theirs = client_schemes(hello).unwrap_or(&sha1);
    let ours: Vec<SignatureScheme> = if tls.signature_algorithms.is_empty() {
        keys::default_schemes(family).to_vec()
    } else {
        tls.signature_algorithms
            .iter()
            .copied()
            .filter(|s| keys::can_sign(family, *s))
            .collect()
    };
    pick(&ours, theirs, tls.server_preference).map(Method::Scheme)
}

/// Filler of a signature's shape, for a chain without its private key:
/// 256 bytes for RSA 2048, a DER ECDSA-Sig-Value (two 32-byte INTEGERs)
/// for P-256. A client refuses it.
fn filler(family: Family) -> Vec<u8> {
    match family {
        Family::Ec => {
            let mut der = vec![0x30, 0x44, 0x02, 0x20];
            der.extend([0x5a; 32]);
            der.extend([0x02, 0x20]);
            der.extend([0x5a; 32]);
            der
        }
        Family::Rsa => vec![0x5a; 256],
    }
}

/// Signs `params` as RFC 5246 §7.4.3 says: over client_random ‖
/// server_random ‖ params. Returns the signature and how it was made.
fn sign(
    credential: &Credential,
    family: Family,
    method: Method,
    randoms: (&[u8; 32], &[u8; 32]),
    params: &[u8],
) -> (DigitallySigned, String) {
    let scheme = match method {
        Method::Scheme(s) => Some(s),
        Method::Md5Sha1 | Method::Sha1 => None,
    };
    let mut message = Vec::with_capacity(64 + params.len());
    message.extend_from_slice(randoms.0);
    message.extend_from_slice(randoms.1);
    message.extend_from_slice(params);
    let (signature, how) = match &credential.key {
        Some(key) => match key.sign(method, &message) {
            Ok(sig) => (sig, format!("{} with the {} key", method.name(), key.describe())),
            Err(e) => (filler(family), format!("filler ({}: {e:#})", method.name())),
        },
        None => (
            filler(family),
            format!("filler ({}; no private key for this chain)", method.name()),
        ),
    };
    (DigitallySigned { scheme, signature }, how)
}

/// A ServerKeyExchange, how it was signed, and its DH group's name.
struct Built {
    ske: ServerKeyExchange,
    signature: Option<String>,
    dh_group: Option<&'static str>,
}

/// What a ServerKeyExchange is made from.
struct KeyExchange<'a> {
    suite: CipherSuite,
    version: ProtocolVersion,
    group: Option<NamedGroup>,
    hello: &'a ClientHello,
    server_random: &'a [u8; 32],
    credential: &'a Credential,
    tls: &'a Tls,
}

impl KeyExchange<'_> {
    /// The ServerKeyExchange and how it was signed; `Ok(None)` when the
    /// suite has none, `Err` (why) when none can be made.
    fn build(&self, rng: &mut Bytes) -> Result<Option<Built>, String> {
        let Some(props) = catalog::suite(self.suite).and_then(|s| s.properties) else {
            return Ok(None);
        };
        let family = family(self.suite);
        let mut dh_group = None;
        let mut ske = match KeyExchangeLayout::of(self.suite) {
            KeyExchangeLayout::Ecdh { .. } => {
                let g = self.group.unwrap_or(NamedGroup::SECP256R1);
                ServerKeyExchange::Ecdh {
                    psk_hint: Vec::new(),
                    curve_type: EcCurveType::NAMED_CURVE,
                    group: Some(g),
                    public: kx::ecdh_public(g, rng).unwrap_or_else(|| server_share(g)),
                    signature: None,
                }
            }
            KeyExchangeLayout::Dh { .. } => {
                let bits = match props.kx {
                    "DHE(512)" | "DH(512)" => 512,
                    "DHE(1024)" => 1024,
                    _ => self.tls.dh_bits,
                };
                let group = kx::dh_group(bits).ok_or_else(|| format!("no {bits}-bit DH group"))?;
                dh_group = Some(group.name);
                ServerKeyExchange::Dh {
                    psk_hint: Vec::new(),
                    p: group.p.clone(),
                    g: vec![2],
                    ys: kx::dh_public(group, rng),
                    signature: None,
                }
            }
            // The temporary key's modulus is of the export size, not a
            // real RSA modulus: no client here negotiates export suites.
            KeyExchangeLayout::RsaExport => ServerKeyExchange::RsaExport {
                modulus: kx::dh_group(512).map(|g| g.p.clone()).unwrap_or_else(|| vec![0xff; 64]),
                exponent: vec![1, 0, 1],
                signature: None,
            },
            KeyExchangeLayout::PskHint | KeyExchangeLayout::Other => return Ok(None),
        };
        if !signs(self.suite) {
            return Ok(Some(Built {
                ske,
                signature: None,
                dh_group,
            }));
        }
        let method = signing_method(self.version, family, self.hello, self.tls)
            .ok_or_else(|| "no signature algorithm of the client fits the key".to_owned())?;
        let params = ske
            .signed_params()
            .map_err(|e| format!("the key exchange parameters did not encode: {e}"))?;
        let (signature, how) = sign(
            self.credential,
            family,
            method,
            (&self.hello.random, self.server_random),
            &params,
        );
        match &mut ske {
            ServerKeyExchange::Ecdh { signature: s, .. }
            | ServerKeyExchange::Dh { signature: s, .. }
            | ServerKeyExchange::RsaExport { signature: s, .. } => *s = Some(signature),
            ServerKeyExchange::PskHint(_) | ServerKeyExchange::Opaque(_) => {}
        }
        Ok(Some(Built {
            ske,
            signature: Some(how),
            dh_group,
        }))
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
        if let Some(max) = m.max_key_share_bytes {
            if let Some(ClientExtension::KeyShare(shares)) = hello.extension(ExtensionType::KEY_SHARE) {
                let n: usize = shares.iter().map(|s| s.key_exchange.len() + 4).sum();
                if n > max {
                    return Some(self.intolerance(format!("key_share of {n} bytes is longer than {max}")));
                }
            }
        }
        if let Some(t) = m.drop_extension {
            if hello.extension(t).is_some() {
                return Some(self.intolerance(format!("the hello carries extension {:#06x}", t.0)));
            }
        }
        if let Some(max) = m.max_legacy_version {
            if rank(hello.legacy_version) > rank(max) {
                return Some(self.intolerance(format!(
                    "legacy_version {} is above {}",
                    hello.legacy_version.hex(),
                    max.hex()
                )));
            }
        }
        if let (Some(want), Some(got)) = (m.record_version, arrival.record_version) {
            if want != got {
                return Some(self.intolerance(format!("record version {} instead of {}", got.hex(), want.hex())));
            }
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
            // A TLS 1.2 server signs only with a scheme the client offers
            // (RFC 5246 §7.4.1.4.1), so a suite it cannot sign is out.
            .filter(|s| !signs(*s) || signing_method(version, family(*s), hello, tls).is_some())
            // RFC 8422 §5.1: an ECDSA certificate's curve must be one the
            // client lists (a client checks: OpenSSL says "wrong curve").
            .filter(|s| {
                let ecdsa_curve = self.chains.ecdsa.curve.filter(|_| family(*s) == Family::Ec);
                match (ecdsa_curve, &curves) {
                    (Some(c), Some(theirs)) => theirs.contains(&c),
                    _ => true,
                }
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
        let credential = match family(suite) {
            Family::Ec => &self.chains.ecdsa,
            Family::Rsa => &self.chains.rsa,
        };
        let mut ok = sh.write(&mut w).is_ok();
        if !anon {
            let cert = Certificate {
                context: None,
                entries: credential
                    .chain
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
        let exchange = KeyExchange {
            suite,
            version,
            group,
            hello,
            server_random: &random,
            credential,
            tls,
        };
        let (signature, dh_group) = match exchange.build(rng) {
            Ok(Some(built)) => {
                ok &= built.ske.write(&mut w).is_ok();
                (built.signature, built.dh_group)
            }
            Ok(None) => (None, None),
            Err(why) => return Decision::refuse(Refusal::Close, Some(version), why),
        };
        // ServerHelloDone.
        w.bytes(&[14, 0, 0, 0]);
        if !ok {
            return Decision::refuse(Refusal::Close, Some(version), "the flight did not encode".to_owned());
        }
        let why = format!(
            "{} {} ({deciding} preference{window_note}){}{}",
            label(version),
            name(suite),
            group
                .map(group_name)
                .or(dh_group.map(str::to_owned))
                .map(|g| format!(", group {g}"))
                .unwrap_or_default(),
            signature.as_ref().map(|s| format!(", signed {s}")).unwrap_or_default()
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
            signature,
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
                signature: None,
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
            signature: None,
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
                signature: None,
            };
        }
        let sh = Sslv2ServerHello {
            session_id_hit: false,
            certificate_type: 1,
            version: ProtocolVersion::SSL2,
            certificate: self.chains.rsa.chain.first().cloned().unwrap_or_default(),
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
                signature: None,
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
        Chains::generate("mx.emulated.test").expect("chains")
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

    /// The flight's ServerHello random, leaf certificate and ServerKeyExchange.
    fn flight(d: &Decision) -> ([u8; 32], Vec<u8>, ServerKeyExchange) {
        use hsscan_wire::{Deframer, Event, Side};
        let Answer::Flight { bytes, .. } = &d.answer else {
            panic!("no flight: {}", d.why);
        };
        let mut de = Deframer::new(Side::Server);
        de.push(bytes).unwrap();
        let (mut random, mut leaf, mut ske) = (None, None, None);
        while let Some(e) = de.next_event().unwrap() {
            match e {
                Event::ServerHello(sh) => random = Some(sh.random),
                Event::Certificate(c) => leaf = c.entries.first().map(|e| e.der.clone()),
                Event::ServerKeyExchange(k) => ske = Some(k),
                _ => {}
            }
        }
        (random.unwrap(), leaf.unwrap(), ske.unwrap())
    }

    fn rsa_key(leaf: &[u8]) -> rsa::RsaPublicKey {
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).unwrap();
        rsa::RsaPublicKey::from_pkcs1_der(&cert.public_key().subject_public_key.data).unwrap()
    }

    /// client_random ‖ server_random ‖ params, and the signature.
    fn signed(hello: &ClientHello, d: &Decision) -> (Vec<u8>, DigitallySigned, Vec<u8>, ServerKeyExchange) {
        let (server_random, leaf, ske) = flight(d);
        let mut m = hello.random.to_vec();
        m.extend(server_random);
        m.extend(ske.signed_params().unwrap());
        let sig = match &ske {
            ServerKeyExchange::Ecdh { signature, .. } | ServerKeyExchange::Dh { signature, .. } => signature.clone(),
            other => panic!("{other:?}"),
        };
        (m, sig.unwrap(), leaf, ske)
    }

    #[test]
    fn tls10_ecdhe_rsa_is_signed_over_md5_sha1_with_the_leaf_key() {
        use sha2::Digest as _;
        let p = Profile::shipped("exchange2010").unwrap();
        let h = hello(ProtocolVersion::TLS10, &[0xc014, 0x002f], &[NamedGroup::SECP256R1]);
        let d = answer(&p, &h);
        assert_eq!(d.cipher, Some(CipherSuite(0xc014)), "{}", d.why);
        assert_eq!(d.signature.as_deref(), Some("RSA MD5-SHA1 with the RSA 2048 key"));
        let (m, sig, leaf, ske) = signed(&h, &d);
        assert_eq!(sig.scheme, None, "no SignatureAndHashAlgorithm before TLS 1.2");
        let mut digest = md5::Md5::digest(&m).to_vec();
        digest.extend(sha1::Sha1::digest(&m));
        rsa_key(&leaf)
            .verify(rsa::Pkcs1v15Sign::new_unprefixed(), &digest, &sig.signature)
            .unwrap();
        let ServerKeyExchange::Ecdh { public, .. } = ske else {
            unreachable!()
        };
        assert!(p256::PublicKey::from_sec1_bytes(&public).is_ok(), "a real P-256 point");
    }

    #[test]
    fn tls12_scheme_is_the_profiles_first_that_the_client_offers_and_the_key_fits() {
        use sha2::Digest as _;
        let p = profile(
            "versions = [\"TLSv1.2\"]\nciphers = [\"ECDHE-RSA-AES128-GCM-SHA256\", \"AES128-SHA\"]\ngroups = [\"secp256r1\"]\nsignature_algorithms = [\"ecdsa_sha1\", \"rsa_pkcs1_sha1\", \"rsa_pkcs1_sha256\"]\n",
        );
        let mut h = hello(ProtocolVersion::TLS12, &[0xc02f, 0x002f], &[NamedGroup::SECP256R1]);
        let d = answer(&p, &h);
        assert_eq!(d.cipher, Some(CipherSuite(0xc02f)), "{}", d.why);
        let (m, sig, leaf, _) = signed(&h, &d);
        assert_eq!(sig.scheme, Some(SignatureScheme::RSA_PKCS1_SHA1));
        rsa_key(&leaf)
            .verify(
                rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(&m),
                &sig.signature,
            )
            .unwrap();
        let set = |h: &mut ClientHello, schemes: Vec<SignatureScheme>| {
            for e in h.extensions.iter_mut().flatten() {
                if let ClientExtension::SignatureAlgorithms(s) = e {
                    *s = schemes.clone();
                }
            }
        };
        // Without SHA-1 on offer, the profile's next.
        set(
            &mut h,
            vec![SignatureScheme::RSA_PSS_RSAE_SHA256, SignatureScheme::RSA_PKCS1_SHA256],
        );
        let (_, sig, _, _) = signed(&h, &answer(&p, &h));
        assert_eq!(sig.scheme, Some(SignatureScheme::RSA_PKCS1_SHA256));
        // No RSA scheme on offer: ECDHE-RSA cannot be signed, static RSA is chosen.
        set(&mut h, vec![SignatureScheme::ECDSA_SECP256R1_SHA256]);
        assert_eq!(answer(&p, &h).cipher, Some(CipherSuite(0x002f)));
        // A profile without a list prefers SHA-256, PSS first.
        let p = profile(
            "versions = [\"TLSv1.2\"]\nciphers = [\"ECDHE-RSA-AES128-GCM-SHA256\"]\ngroups = [\"secp256r1\"]\n",
        );
        set(&mut h, hsscan_wire::client_hello::DEFAULT_SIGNATURE_SCHEMES.to_vec());
        let d = answer(&p, &h);
        let (m, sig, leaf, _) = signed(&h, &d);
        assert_eq!(sig.scheme, Some(SignatureScheme::RSA_PSS_RSAE_SHA256), "{}", d.why);
        rsa_key(&leaf)
            .verify(
                rsa::Pss::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(&m),
                &sig.signature,
            )
            .unwrap();
    }

    #[test]
    fn ecdsa_suites_need_the_leaf_curve_among_the_clients_groups() {
        let p = profile(
            "versions = [\"TLSv1.2\"]\nciphers = [\"ECDHE-ECDSA-AES128-GCM-SHA256\", \"ECDHE-RSA-AES128-GCM-SHA256\"]\ngroups = [\"secp384r1\", \"secp256r1\"]\n",
        );
        // The P-256 leaf is out when the client lists only P-384.
        let d = answer(
            &p,
            &hello(ProtocolVersion::TLS12, &[0xc02b, 0xc02f], &[NamedGroup::SECP384R1]),
        );
        assert_eq!(d.cipher, Some(CipherSuite(0xc02f)), "{}", d.why);
        let d = answer(
            &p,
            &hello(
                ProtocolVersion::TLS12,
                &[0xc02b, 0xc02f],
                &[NamedGroup::SECP384R1, NamedGroup::SECP256R1],
            ),
        );
        assert_eq!(
            (d.cipher, d.group),
            (Some(CipherSuite(0xc02b)), Some(NamedGroup::SECP384R1))
        );
    }

    #[test]
    fn dhe_sends_the_real_group_of_dh_bits() {
        let p = profile("versions = [\"TLSv1.2\"]\nciphers = [\"DHE-RSA-AES128-GCM-SHA256\"]\ndh_bits = 1024\n");
        let h = hello(ProtocolVersion::TLS12, &[0x009e], &[]);
        let d = answer(&p, &h);
        assert!(d.why.contains("group rfc2409-group2"), "{}", d.why);
        let (_, _, _, ske) = signed(&h, &d);
        let ServerKeyExchange::Dh { p, g, ys, .. } = ske else {
            unreachable!()
        };
        assert_eq!(p, kx::dh_group(1024).unwrap().p);
        assert_eq!((g, ys.len()), (vec![2], 128));
    }
}
