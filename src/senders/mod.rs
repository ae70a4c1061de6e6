//! Sender profiles and the sender verdict (SPEC §8): a mail-sending TLS
//! client as it really behaves — the exact ClientHello it sends and what
//! it accepts in return — and, for one endpoint, whether that sender gets
//! TLS there, why not, and (in [`advice`]) the narrowest fix.
//!
//! Profiles are data files in `src/senders/profiles/` with their sources;
//! hellos that were captured from the real client are replayed byte for
//! byte (a fresh random aside) from `src/senders/captures/`. `local` is
//! built from this machine's `postconf` ([`local`]).

pub mod advice;
pub mod local;

use crate::finding::Finding;
use crate::hellos::{random32, Prepared};
use crate::outcome::Negotiated;
use crate::outcome::{FailureKind, Stage};
use crate::probe::ProbeResult;
use anyhow::{anyhow, bail, Context as _};
use hsscan_wire::catalog;
use hsscan_wire::{
    CipherSuite, ClientExtension, ClientHello, Deframer, Event, ExtensionType, NamedGroup, ProtocolVersion,
    ServerKeyExchange, Side,
};
use serde::{Deserialize, Serialize};

/// The shipped profiles: name and TOML text.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "postfix-3.7-openssl-3.0-may",
        include_str!("profiles/postfix-3.7-openssl-3.0-may.toml"),
    ),
    (
        "postfix-3.7-openssl-3.0-encrypt",
        include_str!("profiles/postfix-3.7-openssl-3.0-encrypt.toml"),
    ),
    (
        "postfix-3.7-openssl-3.0-verify",
        include_str!("profiles/postfix-3.7-openssl-3.0-verify.toml"),
    ),
    (
        "postfix-openssl-1.0.2-may",
        include_str!("profiles/postfix-openssl-1.0.2-may.toml"),
    ),
    (
        "postfix-openssl-1.0.2-verify",
        include_str!("profiles/postfix-openssl-1.0.2-verify.toml"),
    ),
    (
        "postfix-openssl-1.1.1-may",
        include_str!("profiles/postfix-openssl-1.1.1-may.toml"),
    ),
    (
        "postfix-openssl-1.1.1-verify",
        include_str!("profiles/postfix-openssl-1.1.1-verify.toml"),
    ),
    (
        "postfix-openssl-3.5-may",
        include_str!("profiles/postfix-openssl-3.5-may.toml"),
    ),
    (
        "postfix-openssl-3.5-verify",
        include_str!("profiles/postfix-openssl-3.5-verify.toml"),
    ),
    (
        "postfix-rhel9-default",
        include_str!("profiles/postfix-rhel9-default.toml"),
    ),
    ("exim-gnutls", include_str!("profiles/exim-gnutls.toml")),
    ("exchange-online", include_str!("profiles/exchange-online.toml")),
    ("gmail", include_str!("profiles/gmail.toml")),
    (
        "exchange2010-windows2008r2",
        include_str!("profiles/exchange2010-windows2008r2.toml"),
    ),
];

/// Captured hellos (a whole first record in hex), by name.
const CAPTURES: &[(&str, &str)] = &[
    (
        "postfix-3.7-openssl-3.0.19-may",
        include_str!("captures/postfix-3.7-openssl-3.0.19-may.hex"),
    ),
    (
        "postfix-3.7-openssl-3.0.19-encrypt",
        include_str!("captures/postfix-3.7-openssl-3.0.19-encrypt.hex"),
    ),
    (
        "postfix-3.7-openssl-3.0.19-verify",
        include_str!("captures/postfix-3.7-openssl-3.0.19-verify.hex"),
    ),
    (
        "postfix-openssl-1.0.2e-may",
        include_str!("captures/postfix-openssl-1.0.2e-may.hex"),
    ),
    (
        "postfix-openssl-1.0.2e-verify",
        include_str!("captures/postfix-openssl-1.0.2e-verify.hex"),
    ),
    (
        "postfix-openssl-1.1.1w-may-level0",
        include_str!("captures/postfix-openssl-1.1.1w-may-level0.hex"),
    ),
    (
        "postfix-openssl-1.1.1w-verify",
        include_str!("captures/postfix-openssl-1.1.1w-verify.hex"),
    ),
    (
        "exim-gnutls-3.7.9-normal",
        include_str!("captures/exim-gnutls-3.7.9-normal.hex"),
    ),
];

/// Suite lists of library builds: everything they can negotiate at all.
const LIBRARY_SUITES: &[(&str, &str)] = &[("openssl-3.0", include_str!("suites/openssl-3.0.txt"))];

/// The profile assumed when no sender is named and this machine has no
/// configured Postfix (SPEC §8).
pub const DEFAULT: &str = "postfix-3.7-openssl-3.0-may";

/// A Postfix TLS security level (or the equivalent for other senders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    None,
    May,
    Encrypt,
    Dane,
    /// Postfix `dane-only` (RFC 7672 §6, mandatory DANE): no usable
    /// secure TLSA records, no delivery.
    DaneOnly,
    Verify,
    Secure,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::May => "may",
            Level::Encrypt => "encrypt",
            Level::Dane => "dane",
            Level::DaneOnly => "dane-only",
            Level::Verify => "verify",
            Level::Secure => "secure",
        }
    }

    /// Whether a failed handshake still delivers the mail in plaintext.
    pub fn falls_back_to_plaintext(self) -> bool {
        matches!(self, Level::None | Level::May | Level::Dane)
    }
}

/// What the sender checks of the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertCheck {
    /// Any chain will do (opportunistic TLS, `encrypt`).
    Any,
    /// A trusted chain naming the MX host (`verify`, `secure`).
    Verify,
}

/// What a sender accepts in return.
#[derive(Debug, Clone, Serialize)]
pub struct Accept {
    pub min_version: ProtocolVersion,
    /// SHA-1/MD5 ServerKeyExchange signatures (TLS ≤ 1.1 (EC)DHE, or a
    /// SHA-1 scheme at TLS 1.2): OpenSSL 3 at security level 1 refuses them.
    pub legacy_signatures: bool,
    pub min_dh_bits: usize,
    pub min_rsa_bits: usize,
    pub certificate: CertCheck,
}

/// One sender profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub mta: String,
    pub mta_version: String,
    pub library: String,
    pub level: Level,
    pub derivation: String,
    pub sources: String,
    /// The hello it sends (random and SNI filled in per connection).
    pub hello: ClientHello,
    /// Whether it sends SNI (Postfix: only with smtp_tls_servername).
    pub sni: bool,
    pub accept: Accept,
    /// Suites its library build can negotiate at any setting; `None`: only
    /// what it offers is known.
    pub library_suites: Option<Vec<CipherSuite>>,
    /// Notes on how the profile was made (e.g. what `local` assumed).
    pub notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    id: String,
    name: String,
    mta: String,
    #[serde(default)]
    mta_version: String,
    library: String,
    level: Level,
    derivation: String,
    sources: String,
    hello: HelloFile,
    accept: AcceptFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HelloFile {
    capture: Option<String>,
    #[serde(default)]
    drop_anonymous: bool,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    key_shares: Vec<String>,
    #[serde(default)]
    sni: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptFile {
    min_version: String,
    legacy_signatures: bool,
    min_dh_bits: usize,
    min_rsa_bits: usize,
    certificate: CertCheck,
    library_suites: Option<String>,
}

fn version(s: &str) -> anyhow::Result<ProtocolVersion> {
    ProtocolVersion::parse_user(s)
        .or_else(|| ProtocolVersion::from_name(s))
        .ok_or_else(|| anyhow!("unknown protocol version {s:?}"))
}

fn hex16(s: &str) -> anyhow::Result<u16> {
    let h = s.strip_prefix("0x").ok_or_else(|| anyhow!("expected 0x…, got {s:?}"))?;
    u16::from_str_radix(h, 16).map_err(|_| anyhow!("not a hex code: {s:?}"))
}

/// Decodes a captured first record into its ClientHello.
pub fn hello_from_hex(hex: &str) -> anyhow::Result<ClientHello> {
    let hex = hex.trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("the capture is not hex"))?;
    let mut d = Deframer::new(Side::Client);
    d.push(&bytes)
        .map_err(|e| anyhow!("the capture does not deframe: {e}"))?;
    match d.next_event() {
        Ok(Some(Event::ClientHello(h))) => Ok(h),
        Ok(_) => bail!("the capture holds no ClientHello"),
        Err(e) => bail!("the capture does not decode: {e}"),
    }
}

fn library_suites(name: &str) -> anyhow::Result<Vec<CipherSuite>> {
    let (_, text) = LIBRARY_SUITES
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| anyhow!("unknown library suite list {name:?}"))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| hex16(l).map(CipherSuite))
        .collect()
}

/// A hello built from lists (profiles without a capture), as the
/// documented client would send it.
fn hello_from_lists(h: &HelloFile) -> anyhow::Result<ClientHello> {
    let versions: Vec<ProtocolVersion> = h.versions.iter().map(|v| version(v)).collect::<Result<_, _>>()?;
    let max = versions
        .iter()
        .copied()
        .max_by_key(|v| catalog::version_rank(*v))
        .ok_or_else(|| anyhow!("hello.versions is empty"))?;
    let min = versions
        .iter()
        .copied()
        .min_by_key(|v| catalog::version_rank(*v))
        .unwrap_or(max);
    let suites: Vec<CipherSuite> = h
        .cipher_suites
        .iter()
        .map(|s| hex16(s).map(CipherSuite))
        .collect::<Result<_, _>>()?;
    let groups: Vec<NamedGroup> = h
        .groups
        .iter()
        .map(|g| hex16(g).map(NamedGroup))
        .collect::<Result<_, _>>()?;
    let shares: Vec<NamedGroup> = h
        .key_shares
        .iter()
        .map(|g| hex16(g).map(NamedGroup))
        .collect::<Result<_, _>>()?;
    let mut suites = suites;
    suites.push(CipherSuite::TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
    let mut hello = ClientHello::typical(min, max, random32(), suites, None);
    if let Some(ext) = hello.extensions.as_mut() {
        for e in ext.iter_mut() {
            match e {
                ClientExtension::SupportedGroups(g) => *g = groups.clone(),
                ClientExtension::KeyShare(k) => *k = hsscan_wire::client_hello::key_shares(&shares),
                ClientExtension::SupportedVersions(v) => *v = versions.clone(),
                _ => {}
            }
        }
    }
    Ok(hello)
}

impl Profile {
    /// A shipped profile by id.
    pub fn shipped(id: &str) -> anyhow::Result<Self> {
        let (_, text) = SHIPPED
            .iter()
            .find(|(n, _)| *n == id)
            .ok_or_else(|| anyhow!("unknown sender {id:?}"))?;
        Self::parse(text).with_context(|| format!("reading sender profile {id}"))
    }

    /// Every shipped profile.
    pub fn all() -> anyhow::Result<Vec<Self>> {
        SHIPPED.iter().map(|(id, _)| Self::shipped(id)).collect()
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        let f: File = toml::from_str(text)?;
        let mut hello = match &f.hello.capture {
            Some(name) => {
                let (_, hex) = CAPTURES
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| anyhow!("unknown capture {name:?}"))?;
                hello_from_hex(hex)?
            }
            None => hello_from_lists(&f.hello)?,
        };
        if f.hello.drop_anonymous {
            hello.cipher_suites.retain(|s| {
                catalog::suite(*s)
                    .and_then(|i| i.properties)
                    .is_none_or(|p| p.auth != "anon")
            });
        }
        let sni = f.hello.sni.unwrap_or_else(|| hello.sni().is_some());
        // A captured SNI named the capture's server, not the target.
        if let Some(ext) = hello.extensions.as_mut() {
            ext.retain(|e| !matches!(e, ClientExtension::ServerName(_)));
        }
        let library_suites = f.accept.library_suites.as_deref().map(library_suites).transpose()?;
        Ok(Self {
            id: f.id,
            name: f.name,
            mta: f.mta,
            mta_version: f.mta_version,
            library: f.library,
            level: f.level,
            derivation: f.derivation,
            sources: f.sources,
            hello,
            sni,
            accept: Accept {
                min_version: version(&f.accept.min_version)?,
                legacy_signatures: f.accept.legacy_signatures,
                min_dh_bits: f.accept.min_dh_bits,
                min_rsa_bits: f.accept.min_rsa_bits,
                certificate: f.accept.certificate,
            },
            library_suites,
            notes: Vec::new(),
        })
    }

    /// The versions its hello offers, highest first.
    pub fn versions(&self) -> Vec<ProtocolVersion> {
        let mut v: Vec<ProtocolVersion> = match self.hello.extension(ExtensionType::SUPPORTED_VERSIONS) {
            Some(ClientExtension::SupportedVersions(list)) => list.iter().copied().filter(|v| !v.is_grease()).collect(),
            _ => {
                let max = catalog::version_rank(self.hello.legacy_version);
                [
                    ProtocolVersion::TLS12,
                    ProtocolVersion::TLS11,
                    ProtocolVersion::TLS10,
                    ProtocolVersion::SSL3,
                ]
                .into_iter()
                .filter(|v| catalog::version_rank(*v) <= max)
                .collect()
            }
        };
        v.retain(|x| catalog::version_rank(*x) >= catalog::version_rank(self.accept.min_version));
        v.sort_by_key(|x| std::cmp::Reverse(catalog::version_rank(*x)));
        v
    }

    /// The suites it offers (no signalling values).
    pub fn suites(&self) -> Vec<CipherSuite> {
        self.hello
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| !s.is_signal())
            .collect()
    }

    /// The hello to send to `sni` (when the sender sends SNI), with a
    /// fresh random and OpenSSL's padding rule re-applied.
    pub fn prepare(&self, sni: Option<&str>) -> Result<Prepared, hsscan_wire::EncodeError> {
        let mut hello = self.hello.clone();
        hello.random = random32();
        if let (true, Some(name)) = (self.sni, sni) {
            hello
                .extensions
                .get_or_insert_with(Vec::new)
                .insert(0, ClientExtension::ServerName(name.to_owned()));
        }
        let padded = hello
            .extensions
            .as_ref()
            .is_some_and(|e| e.iter().any(|x| matches!(x, ClientExtension::Padding(_))));
        if padded {
            if let Some(e) = hello.extensions.as_mut() {
                e.retain(|x| !matches!(x, ClientExtension::Padding(_)));
            }
            // OpenSSL (RFC 7685 §1) pads a ClientHello message of 256 to
            // 511 bytes to 512; the record adds its 5-byte header.
            let record = hello.to_record(ProtocolVersion::TLS10)?.len();
            if (256 + 5..512 + 5).contains(&record) {
                hello.pad_to((512 + 5).max(record + 4))?;
            }
        }
        let record_version = if hello.legacy_version == ProtocolVersion::SSL3 {
            ProtocolVersion::SSL3
        } else {
            ProtocolVersion::TLS10
        };
        let record = hello.to_record(record_version)?;
        let groups = match hello.extension(ExtensionType::SUPPORTED_GROUPS) {
            Some(ClientExtension::SupportedGroups(g)) => g.clone(),
            _ => Vec::new(),
        };
        let max = self.versions().first().copied().unwrap_or(hello.legacy_version);
        let max_is_13 = max == ProtocolVersion::TLS13;
        Ok(Prepared {
            hello_bytes: record.len(),
            cipher_count: hello.cipher_suites.iter().filter(|s| !s.is_signal()).count(),
            writes: vec![record],
            max_version: max,
            min_version: self.accept.min_version,
            suites: hello.cipher_suites.clone(),
            groups,
            // The sender answers a HelloRetryRequest with a second hello
            // sharing the group asked for, as the real client does.
            retry: max_is_13.then(|| crate::hellos::Retry::new(hello.clone(), record_version)),
        })
    }

    /// A copy offering versions from `min` up (protocols=>=…).
    pub fn with_min_version(&self, min: ProtocolVersion) -> Self {
        let mut p = self.clone();
        p.accept.min_version = min;
        let rank = catalog::version_rank;
        if let Some(ext) = p.hello.extensions.as_mut() {
            for e in ext.iter_mut() {
                if let ClientExtension::SupportedVersions(v) = e {
                    let highest = v.first().copied();
                    v.retain(|x| x.is_grease() || rank(*x) >= rank(min));
                    // Lowering the minimum adds the versions down to it.
                    for x in [ProtocolVersion::TLS11, ProtocolVersion::TLS10, ProtocolVersion::SSL3] {
                        if rank(x) >= rank(min) && !v.contains(&x) && highest.is_some() {
                            v.push(x);
                        }
                    }
                }
            }
        }
        p
    }

    /// A copy without the suites `drop` says.
    pub fn without_suites(&self, drop: impl Fn(CipherSuite) -> bool) -> Self {
        let mut p = self.clone();
        p.hello.cipher_suites.retain(|s| s.is_signal() || !drop(*s));
        p
    }
}

/// `outcome` of a sender result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Tls,
    NoTls,
    Inconclusive,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Tls => "tls",
            Outcome::NoTls => "no-tls",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// Why a sender gets no TLS (SPEC §8 `reason.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonKind {
    NoSharedProtocol,
    NoSharedCipher,
    LegacySignature,
    WeakDh,
    WeakKey,
    CertificateRejected,
    HelloIntolerance,
    Dropped,
    Alert,
    InvalidServerHello,
    StarttlsAbsent,
    StarttlsRejected,
    TlsExpected,
    PlaintextReply,
    NotTls,
    RateLimited,
    Unreachable,
    NotConfirmed,
}

impl ReasonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::NoSharedProtocol => "no-shared-protocol",
            ReasonKind::NoSharedCipher => "no-shared-cipher",
            ReasonKind::LegacySignature => "legacy-signature",
            ReasonKind::WeakDh => "weak-dh",
            ReasonKind::WeakKey => "weak-key",
            ReasonKind::CertificateRejected => "certificate-rejected",
            ReasonKind::HelloIntolerance => "hello-intolerance",
            ReasonKind::Dropped => "dropped",
            ReasonKind::Alert => "alert",
            ReasonKind::InvalidServerHello => "invalid-server-hello",
            ReasonKind::StarttlsAbsent => "starttls-absent",
            ReasonKind::StarttlsRejected => "starttls-rejected",
            ReasonKind::TlsExpected => "tls-expected",
            ReasonKind::PlaintextReply => "plaintext-reply",
            ReasonKind::NotTls => "not-tls",
            ReasonKind::RateLimited => "rate-limited",
            ReasonKind::Unreachable => "unreachable",
            ReasonKind::NotConfirmed => "not-confirmed",
        }
    }
}

/// `reason` of a sender result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub kind: ReasonKind,
    pub detail: String,
}

/// `sender_result` of SPEC §8.
#[derive(Debug, Clone, Serialize)]
pub struct SenderResult {
    pub sender: String,
    pub name: String,
    pub outcome: Outcome,
    pub negotiated: Option<Negotiated>,
    pub reason: Option<Reason>,
    pub confirmed: bool,
    /// Whether this sender refuses a chain that does not verify (`verify`,
    /// `secure`): what a certificate finding means for it.
    pub verifies_certificate: bool,
    /// How the profile was made (what `local` assumed), for the reader.
    pub notes: Vec<String>,
}

/// A certificate chain as the verdict needs it: its key and its findings.
pub struct Chain<'a> {
    /// `RSA 2048`, `EC P-256`, …
    pub key: &'a str,
    pub verdicts: &'a [Finding],
}

/// What else the scan knows when a sender's own hello is judged.
pub struct Context<'a> {
    /// The certificate chains seen (TLS ≤ 1.2 in clear).
    pub chains: Vec<Chain<'a>>,
    /// Whether some other hello of the scan drew a ServerHello.
    pub other_hello_answered: bool,
}

fn reason(kind: ReasonKind, detail: impl Into<String>) -> Option<Reason> {
    Some(Reason {
        kind,
        detail: detail.into(),
    })
}

/// SHA-1 or MD5 TLS 1.2 signature schemes (0x0201, 0x0202, 0x0203, 0x0101…).
fn legacy_scheme(s: hsscan_wire::SignatureScheme) -> bool {
    let [hash, _] = s.0.to_be_bytes();
    hash == 1 || hash == 2
}

/// Certificate findings (ids of [`crate::certs`]) that a verifying sender
/// refuses.
const REJECTING: &[&str] = &[
    "cert-untrusted",
    "cert-expired",
    "cert-not-yet-valid",
    "cert-hostname-mismatch",
    "cert-missing-intermediate",
    "cert-self-signed",
    "cert-no-certificate",
    "cert-unparsable",
];

/// Judges what the server answered to `profile`'s own hello (`p`).
pub fn judge(profile: &Profile, p: &Prepared, r: &ProbeResult, ctx: &Context<'_>) -> SenderResult {
    let mut out = SenderResult {
        sender: profile.id.clone(),
        name: profile.name.clone(),
        outcome: Outcome::NoTls,
        negotiated: None,
        reason: None,
        confirmed: true,
        verifies_certificate: profile.accept.certificate == CertCheck::Verify,
        notes: profile.notes.clone(),
    };
    let f = &r.flight;
    // After a HelloRetryRequest the sender's second hello decides: a
    // failure there (a second retry request, a close) is the outcome.
    let followed_and_failed = f.server_hello.is_none() && f.retry_request.is_some() && r.failure.is_some();
    let answer = f
        .server_hello
        .as_ref()
        .or(f.retry_request.as_ref())
        .filter(|_| !followed_and_failed);
    if let Some(h) = answer {
        let v = if f.server_hello.is_some() {
            h.selected_version()
        } else {
            ProtocolVersion::TLS13
        };
        let rank = catalog::version_rank;
        let name = |v: ProtocolVersion| v.name().map_or_else(|| v.hex(), str::to_owned);
        let offered = profile.versions();
        if !offered.contains(&v) {
            out.reason = if rank(v) < rank(profile.accept.min_version) {
                reason(
                    ReasonKind::NoSharedProtocol,
                    format!(
                        "the server answered with {}, below this sender's minimum {}",
                        name(v),
                        name(profile.accept.min_version)
                    ),
                )
            } else {
                reason(
                    ReasonKind::InvalidServerHello,
                    format!("the server selected {}, which this sender did not offer", name(v)),
                )
            };
            return out;
        }
        if f.server_hello.is_none() {
            // A HelloRetryRequest: the sender answers it only for a group it
            // listed and did not already share (RFC 8446 §4.1.4).
            let shared: Vec<NamedGroup> = match profile.hello.extension(ExtensionType::KEY_SHARE) {
                Some(ClientExtension::KeyShare(k)) => k.iter().map(|e| e.group).collect(),
                _ => Vec::new(),
            };
            match h.key_share_group() {
                Some(g) if !p.groups.contains(&g) || shared.contains(&g) => {
                    out.reason = reason(
                        ReasonKind::InvalidServerHello,
                        format!(
                            "a HelloRetryRequest asked for group {}, which this sender {}",
                            g.name().map_or_else(|| g.hex(), str::to_owned),
                            if shared.contains(&g) {
                                "had already sent a key share for"
                            } else {
                                "did not offer"
                            }
                        ),
                    );
                    return out;
                }
                _ => {}
            }
        }
        if !p.suites.contains(&h.cipher_suite) || h.cipher_suite.is_signal() {
            out.reason = reason(
                ReasonKind::InvalidServerHello,
                format!(
                    "the server chose {}, which this sender did not offer",
                    h.cipher_suite.hex()
                ),
            );
            return out;
        }
        let group = h
            .key_share_group()
            .or_else(|| f.server_key_exchange.as_ref().and_then(ServerKeyExchange::group));
        out.negotiated = Some(Negotiated {
            version: v,
            cipher: h.cipher_suite,
            group,
        });
        let props = catalog::suite(h.cipher_suite).and_then(|s| s.properties);
        let ephemeral = props.is_some_and(|p| p.kx.starts_with("ECDHE") || p.kx.starts_with("DHE"));
        let suite_name = h
            .cipher_suite
            .name()
            .map_or_else(|| h.cipher_suite.hex(), str::to_owned);
        if !profile.accept.legacy_signatures {
            if ephemeral && rank(v) < rank(ProtocolVersion::TLS12) {
                out.reason = reason(
                    ReasonKind::LegacySignature,
                    format!(
                        "{} {suite_name}: the ServerKeyExchange is signed with MD5+SHA-1 or SHA-1, which {} at this level refuses ('legacy sigalg disallowed or unsupported')",
                        name(v),
                        profile.library
                    ),
                );
                return out;
            }
            if let Some(scheme) = f
                .server_key_exchange
                .as_ref()
                .and_then(ServerKeyExchange::signature_scheme)
            {
                if legacy_scheme(scheme) {
                    out.reason = reason(
                        ReasonKind::LegacySignature,
                        format!(
                            "the ServerKeyExchange is signed with {}, a SHA-1/MD5 scheme this sender refuses",
                            scheme.name().map_or_else(|| scheme.hex(), str::to_owned)
                        ),
                    );
                    return out;
                }
            }
        }
        if let Some(bits) = f.server_key_exchange.as_ref().and_then(ServerKeyExchange::modulus_bits) {
            if bits < profile.accept.min_dh_bits {
                out.reason = reason(
                    ReasonKind::WeakDh,
                    format!(
                        "the server's DH group has {bits} bits; {} needs at least {}",
                        profile.library, profile.accept.min_dh_bits
                    ),
                );
                return out;
            }
        }
        let chain = ctx.chains.first();
        if let Some(bits) = chain.and_then(|c| rsa_bits(c.key)) {
            let rsa_used = props.is_some_and(|p| p.auth == "RSA" || p.kx == "RSA") || v == ProtocolVersion::TLS13;
            if rsa_used && bits < profile.accept.min_rsa_bits {
                out.reason = reason(
                    ReasonKind::WeakKey,
                    format!(
                        "the server's RSA key has {bits} bits; {} needs at least {}",
                        profile.library, profile.accept.min_rsa_bits
                    ),
                );
                return out;
            }
        }
        if profile.accept.certificate == CertCheck::Verify {
            let rejected: Vec<String> = ctx
                .chains
                .iter()
                .flat_map(|c| c.verdicts.iter())
                .filter(|f| REJECTING.contains(&f.id))
                .map(|f| format!("{} ({})", f.id, f.message))
                .collect();
            if let Some(first) = rejected.first() {
                out.reason = reason(
                    ReasonKind::CertificateRejected,
                    format!("at {} the chain must verify: {first}", profile.level.as_str()),
                );
                return out;
            }
            if ctx.chains.is_empty() {
                out.notes.push(
                    "the certificate chain was not seen (TLS 1.3 encrypts it): its verification is not judged"
                        .to_owned(),
                );
            }
        }
        out.outcome = Outcome::Tls;
        return out;
    }
    let Some(failure) = r.failure.as_ref() else {
        out.outcome = Outcome::Inconclusive;
        out.reason = reason(ReasonKind::NotConfirmed, "no answer and no failure");
        return out;
    };
    let detail = failure.detail.clone();
    use FailureKind as K;
    let (outcome, kind) = match (failure.stage, failure.kind) {
        (_, K::RateLimited | K::BudgetSpent | K::LocalError | K::InternalError) => {
            (Outcome::Inconclusive, ReasonKind::RateLimited)
        }
        (_, K::StarttlsAbsent) => (Outcome::NoTls, ReasonKind::StarttlsAbsent),
        (_, K::StarttlsRejected) => (Outcome::NoTls, ReasonKind::StarttlsRejected),
        (_, K::TlsExpected) => (Outcome::NoTls, ReasonKind::TlsExpected),
        (Stage::Handshake, K::Alert) => {
            let a = f.alerts.last().map(|a| a.description);
            match a {
                Some(hsscan_wire::AlertDescription::PROTOCOL_VERSION) => (Outcome::NoTls, ReasonKind::NoSharedProtocol),
                Some(
                    hsscan_wire::AlertDescription::HANDSHAKE_FAILURE
                    | hsscan_wire::AlertDescription::INSUFFICIENT_SECURITY,
                ) => (Outcome::NoTls, ReasonKind::NoSharedCipher),
                _ => (Outcome::NoTls, ReasonKind::Alert),
            }
        }
        (Stage::Handshake, K::NoSharedCipher) => (Outcome::NoTls, ReasonKind::NoSharedCipher),
        (Stage::Handshake, k) if k.is_drop_after_hello() => {
            if ctx.other_hello_answered {
                (Outcome::NoTls, ReasonKind::HelloIntolerance)
            } else {
                (Outcome::NoTls, ReasonKind::Dropped)
            }
        }
        (Stage::Handshake, K::PlaintextReply) => (Outcome::NoTls, ReasonKind::PlaintextReply),
        (Stage::Handshake, _) => (Outcome::NoTls, ReasonKind::NotTls),
        _ => (Outcome::Inconclusive, ReasonKind::Unreachable),
    };
    out.outcome = outcome;
    let detail = match kind {
        ReasonKind::HelloIntolerance => format!(
            "the server drops this sender's hello ({} bytes, {} suites) but answers a smaller one: {detail}",
            p.hello_bytes, p.cipher_count
        ),
        _ => detail,
    };
    out.reason = reason(kind, detail);
    out
}

/// `RSA 2048` → 2048.
fn rsa_bits(key: &str) -> Option<usize> {
    key.strip_prefix("RSA ")?.split_whitespace().next()?.parse().ok()
}

/// A result for a sender whose hello could not be sent.
pub fn unconfirmed(profile: &Profile, why: impl Into<String>) -> SenderResult {
    SenderResult {
        sender: profile.id.clone(),
        name: profile.name.clone(),
        outcome: Outcome::Inconclusive,
        negotiated: None,
        reason: reason(ReasonKind::NotConfirmed, why),
        confirmed: false,
        verifies_certificate: profile.accept.certificate == CertCheck::Verify,
        notes: profile.notes.clone(),
    }
}

/// `verdict` of SPEC §3: the headline sender's outcome in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub sender: String,
    pub outcome: Outcome,
    pub summary: String,
}

impl Verdict {
    pub fn of(r: &SenderResult, target: &str) -> Self {
        let summary = match (r.outcome, &r.negotiated, &r.reason) {
            (Outcome::Tls, Some(n), _) => format!(
                "{} gets TLS to {target}: {} {}",
                r.name,
                n.version.name().unwrap_or("?"),
                n.cipher.name().map_or_else(|| n.cipher.hex(), str::to_owned)
            ),
            (Outcome::Tls, None, _) => format!("{} gets TLS to {target}", r.name),
            (Outcome::NoTls, _, Some(why)) => {
                format!(
                    "{} gets no TLS to {target}: {} ({})",
                    r.name,
                    why.kind.as_str(),
                    why.detail
                )
            }
            (Outcome::NoTls, _, None) => format!("{} gets no TLS to {target}", r.name),
            (Outcome::Inconclusive, _, Some(why)) => format!(
                "whether {} gets TLS to {target} could not be settled: {} ({})",
                r.name,
                why.kind.as_str(),
                why.detail
            ),
            (Outcome::Inconclusive, _, None) => format!("whether {} gets TLS to {target} could not be settled", r.name),
        };
        Self {
            sender: r.sender.clone(),
            outcome: r.outcome,
            summary,
        }
    }
}

/// The senders a run judges: the headline first.
#[derive(Debug, Clone)]
pub struct Senders {
    pub profiles: Vec<Profile>,
}

impl Senders {
    /// From `--sender` names (`local`, `all`, profile ids); none given:
    /// `local` when this machine has a configured Postfix, else [`DEFAULT`].
    pub fn resolve(names: &[String]) -> anyhow::Result<Self> {
        let mut profiles: Vec<Profile> = Vec::new();
        let names: Vec<String> = if names.is_empty() {
            vec!["local".to_owned()]
        } else {
            names.to_vec()
        };
        for n in &names {
            match n.as_str() {
                "local" => profiles.push(local::profile()),
                "all" => {
                    profiles.push(local::profile());
                    profiles.extend(Profile::all()?);
                }
                id => match Profile::shipped(id) {
                    Ok(p) => profiles.push(p),
                    Err(_) => {
                        let valid: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
                        bail!(
                            "reading --sender '{id}': no such sender; use local, all or one of {}",
                            valid.join(", ")
                        );
                    }
                },
            }
        }
        let mut seen = std::collections::HashSet::new();
        profiles.retain(|p| seen.insert(p.id.clone()));
        Ok(Self { profiles })
    }

    pub fn headline(&self) -> Option<&Profile> {
        self.profiles.first()
    }
}

/// `hsscan senders`: one line per profile.
pub fn list() -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let local = local::profile();
    let _ = writeln!(out, "{:<32} {}", "local", local.name);
    for n in &local.notes {
        let _ = writeln!(out, "{:<32}   ({n})", "");
    }
    for p in Profile::all()? {
        let _ = writeln!(
            out,
            "{:<32} {} [{}; min {}; {}]",
            p.id,
            p.name,
            p.derivation,
            p.accept.min_version.name().unwrap_or("?"),
            match p.accept.certificate {
                CertCheck::Any => "any certificate",
                CertCheck::Verify => "verifies the certificate",
            }
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_parses_and_encodes() {
        for p in Profile::all().expect("profiles") {
            let h = p.prepare(Some("mx.example.net")).expect("encodes");
            assert!(h.cipher_count > 0, "{}", p.id);
            assert!(!p.versions().is_empty(), "{}", p.id);
        }
    }

    #[test]
    fn the_captured_postfix_hello_is_replayed_with_its_suites_and_padding() {
        let p = Profile::shipped("postfix-3.7-openssl-3.0-may").expect("profile");
        let h = p.prepare(Some("mx.example.net")).expect("encodes");
        assert_eq!(h.cipher_count, 86, "87 with the renegotiation SCSV");
        assert_eq!(h.hello_bytes, 517, "padded to 512 bytes as OpenSSL does");
        assert!(!p.sni, "Postfix sends no SNI by default");
        let v = Profile::shipped("postfix-3.7-openssl-3.0-verify").expect("profile");
        assert_eq!(v.prepare(None).expect("encodes").cipher_count, 74);
    }

    /// Every id a verifying sender refuses is one the certificate checks
    /// really emit (a misspelt id would never match and let a verifying
    /// sender "accept" a chain for another name).
    #[test]
    fn rejecting_ids_are_ids_the_certificate_checks_emit() {
        let source = include_str!("../certs.rs");
        for id in REJECTING {
            assert!(
                source.contains(&format!("\"{id}\"")),
                "{id} is not a finding of certs.rs"
            );
        }
    }

    #[test]
    fn a_higher_minimum_removes_versions() {
        let p = Profile::shipped("postfix-3.7-openssl-3.0-may")
            .expect("profile")
            .with_min_version(ProtocolVersion::TLS12);
        assert_eq!(p.versions(), vec![ProtocolVersion::TLS13, ProtocolVersion::TLS12]);
    }
}
