//! Certificate chains (SPEC §3 `certificates`): a readable [`CertInfo`] for
//! each certificate the server sent, and the verdicts on the chain as
//! [`Finding`]s with stable ids.
//!
//! Peer bytes never panic or abort here: a certificate x509-parser cannot
//! read stays in the chain as `unparsable: …` and the other checks go on
//! without it. Dates are judged at the caller's instant (`--at`), never at
//! the clock. Signatures are checked with x509-parser's `verify_signature`
//! (ring). Where ring cannot decide (MD5, DSA, P-521, Ed448, ECDSA with SHA-1
//! or SHA-512, RSA keys outside 2048–8192 bits) a subject is linked to its
//! issuer by name alone, and `cert-signature-unverified` says so whenever the
//! path to a trust anchor depends on such a link.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::nom;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::RSAPublicKey;
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo, X509Name};

use crate::finding::{Finding, Severity};

/// Trust bundles tried by [`TrustStore::system`], in order: Debian/Ubuntu,
/// Fedora/RHEL, then the Alpine/BSD/macOS layout.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Signature verifications per chain. A real chain of 2–5 certificates needs
/// under 30; this bounds what a hostile chain of many same-named
/// certificates can cost (a few ms) at `-j` in the thousands. Past it, links
/// count as unverified rather than as proven or broken.
const MAX_SIGNATURE_CHECKS: usize = 256;

/// Names quoted in a hostname-mismatch evidence, so that a certificate with
/// hundreds of SANs doesn't flood the report.
const MAX_NAMES_IN_EVIDENCE: usize = 10;

// Object identifiers, as x509-parser prints them (`Oid::to_id_string`).
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_DSA: &str = "1.2.840.10040.4.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";
const OID_SHA1: &str = "1.3.14.3.2.26";

/// Signature algorithms by OID, with OpenSSL's names (RSASSA-PSS excepted:
/// OpenSSL says `rsassaPss`) and the broken hash they use, if any.
const SIGNATURE_ALGORITHMS: &[(&str, &str, Option<&str>)] = &[
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption", Some("MD2")),
    ("1.2.840.113549.1.1.3", "md4WithRSAEncryption", Some("MD4")),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption", Some("MD5")),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption", Some("SHA-1")),
    ("1.3.14.3.2.29", "sha1WithRSA", Some("SHA-1")),
    ("1.2.840.113549.1.1.14", "sha224WithRSAEncryption", None),
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption", None),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption", None),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption", None),
    (OID_RSASSA_PSS, "RSASSA-PSS", None), // the hash is in the parameters: see `weak_hash`
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1", Some("SHA-1")),
    ("1.2.840.10045.4.3.1", "ecdsa-with-SHA224", None),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256", None),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384", None),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512", None),
    (OID_ED25519, "ED25519", None),
    (OID_ED448, "ED448", None),
    ("1.2.840.10040.4.3", "dsa-with-SHA1", Some("SHA-1")),
    ("2.16.840.1.101.3.4.3.1", "dsa_with_SHA224", None),
    ("2.16.840.1.101.3.4.3.2", "dsa_with_SHA256", None),
];

/// Named curves by OID. Brainpool curves are listed because German mail
/// operators use them.
const CURVES: &[(&str, &str)] = &[
    ("1.2.840.10045.3.1.7", "P-256"),
    ("1.3.132.0.34", "P-384"),
    ("1.3.132.0.35", "P-521"),
    ("1.3.132.0.10", "secp256k1"),
    ("1.3.36.3.3.2.8.1.1.7", "brainpoolP256r1"),
    ("1.3.36.3.3.2.8.1.1.11", "brainpoolP384r1"),
    ("1.3.36.3.3.2.8.1.1.13", "brainpoolP512r1"),
];

/// One certificate as sent (SPEC §3 `certificates[].chain[]`).
///
/// A certificate x509-parser cannot read has `subject` = `unparsable: <why>`,
/// its `sha256`, `key` = `unknown`, and empty strings and list elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Distinguished name in certificate order, e.g. `O=Example, CN=mx.example.net`.
    pub subject: String,
    pub issuer: String,
    /// Lowercase hex without colons or leading zero bytes, as `openssl x509 -serial` prints it.
    pub serial: String,
    /// RFC 3339, UTC.
    pub not_before: String,
    pub not_after: String,
    /// `RSA 2048`, `EC P-256`, `Ed25519`, `DSA 1024`, … or `unknown`.
    pub key: String,
    /// `sha256WithRSAEncryption`, `ecdsa-with-SHA256`, … else the dotted OID.
    pub signature_algorithm: String,
    /// Lowercase hex SHA-256 of the DER: the certificate's fingerprint.
    pub sha256: String,
    /// Lowercase hex SHA-256 of the SubjectPublicKeyInfo (what a `3 1 1`
    /// TLSA record holds); empty when the certificate does not parse.
    pub spki_sha256: String,
    /// subjectAltName DNS names and IP addresses, in certificate order.
    pub san: Vec<String>,
}

impl CertInfo {
    /// Describes one DER certificate; never fails (see the type's doc).
    pub fn from_der(der: &[u8]) -> Self {
        let sha256 = hex(&Sha256::digest(der));
        match parse_certificate(der) {
            Ok(cert) => {
                let validity = cert.validity();
                let (dns, ips) = san_entries(&cert);
                Self {
                    subject: cert.subject().to_string(),
                    issuer: cert.issuer().to_string(),
                    serial: serial_hex(cert.raw_serial()),
                    not_before: rfc3339(validity.not_before.to_datetime()),
                    not_after: rfc3339(validity.not_after.to_datetime()),
                    key: describe_key(cert.public_key()),
                    signature_algorithm: signature_name(&cert.signature_algorithm),
                    sha256,
                    spki_sha256: hex(&Sha256::digest(cert.public_key().raw)),
                    san: dns
                        .into_iter()
                        .map(str::to_owned)
                        .chain(ips.iter().map(IpAddr::to_string))
                        .collect(),
                }
            }
            Err(why) => Self {
                subject: format!("unparsable: {why}"),
                issuer: String::new(),
                serial: String::new(),
                not_before: String::new(),
                not_after: String::new(),
                key: "unknown".to_owned(),
                signature_algorithm: String::new(),
                sha256,
                spki_sha256: String::new(),
                san: Vec::new(),
            },
        }
    }
}

/// The leaf's key label, for SPEC §3 `certificates[].key`: `unknown` for an
/// empty chain.
pub fn key_label(chain: &[CertInfo]) -> String {
    chain
        .first()
        .map_or_else(|| "unknown".to_owned(), |leaf| leaf.key.clone())
}

/// Why a CA file could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("reading CA file {}: {kind}", path.display())]
pub struct TrustStoreError {
    pub path: PathBuf,
    pub kind: TrustStoreErrorKind,
}

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TrustStoreErrorKind {
    #[error("{0}")]
    Io(Arc<std::io::Error>),
    #[error("no certificate found")]
    NoCertificate,
    /// `block` counts PEM blocks from 1, whatever their label.
    #[error("PEM block {block}: {reason}")]
    Pem { block: usize, reason: String },
    #[error("certificate in PEM block {block}: {reason}")]
    Certificate { block: usize, reason: String },
}

/// Trust anchors: the certificates a path from the leaf must reach.
///
/// Anchors are kept as owned DER and re-parsed when a chain names one as
/// issuer (a lookup by subject makes that a handful of parses per chain).
#[derive(Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Anchor>,
    /// Normalised subject name (see `name_key`) → indexes into `anchors`.
    by_subject: HashMap<String, Vec<usize>>,
    source: Option<PathBuf>,
}

#[derive(Clone)]
struct Anchor {
    der: Vec<u8>,
    /// The raw SubjectPublicKeyInfo, to verify with and to recognise a sent
    /// copy of the anchor (same subject, same key).
    spki: Vec<u8>,
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore")
            .field("anchors", &self.anchors.len())
            .field("source", &self.source)
            .finish()
    }
}

impl TrustStore {
    /// A store without anchors: chains are not judged for trust.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The system bundle: the first of [`SYSTEM_BUNDLES`] that exists.
    /// Infallible by design, since no `--ca-file` was asked for: a missing or
    /// unreadable bundle gives an empty store (see [`Self::is_empty`]), which
    /// `check_chain` reports as `trust-store-empty`, and certificates in it
    /// that x509-parser cannot read are skipped.
    pub fn system() -> Self {
        SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find(|path| path.exists())
            .and_then(|path| Self::load(path, false).ok())
            .unwrap_or_default()
    }

    /// Every `CERTIFICATE` block of a PEM file (`--ca-file`); other blocks
    /// (keys, CRLs) are ignored. Fails on an unreadable file, a broken PEM
    /// block, a certificate that doesn't parse, or no certificate at all.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, TrustStoreError> {
        Self::load(path.as_ref(), true)
    }

    /// True when there is no anchor, so trust cannot be judged.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// The file the anchors came from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    fn load(path: &Path, strict: bool) -> Result<Self, TrustStoreError> {
        let error = |kind| TrustStoreError {
            path: path.to_path_buf(),
            kind,
        };
        let bytes = std::fs::read(path).map_err(|e| error(TrustStoreErrorKind::Io(Arc::new(e))))?;
        let mut store = Self {
            source: Some(path.to_path_buf()),
            ..Self::default()
        };
        for (index, block) in Pem::iter_from_buffer(&bytes).enumerate() {
            let block_number = index + 1;
            let pem = block.map_err(|e| {
                error(TrustStoreErrorKind::Pem {
                    block: block_number,
                    reason: e.to_string(),
                })
            })?;
            // "TRUSTED CERTIFICATE" (OpenSSL's form with trust settings) has
            // trailing auxiliary data and is not a plain certificate.
            if pem.label != "CERTIFICATE" && pem.label != "X509 CERTIFICATE" {
                continue;
            }
            match store.add(pem.contents) {
                Ok(()) => {}
                Err(reason) if strict => {
                    return Err(error(TrustStoreErrorKind::Certificate {
                        block: block_number,
                        reason,
                    }))
                }
                Err(_) => {}
            }
        }
        if store.is_empty() {
            return Err(error(TrustStoreErrorKind::NoCertificate));
        }
        Ok(store)
    }

    fn add(&mut self, der: Vec<u8>) -> Result<(), String> {
        let cert = parse_certificate(&der)?;
        let subject = name_key(cert.subject());
        let spki = cert.public_key().raw.to_vec();
        drop(cert);
        self.by_subject.entry(subject).or_default().push(self.anchors.len());
        self.anchors.push(Anchor { der, spki });
        Ok(())
    }

    /// Whether `cert` is itself an anchor: the same DER, or the same subject
    /// and key (a re-issued or cross-signed copy of the anchor).
    fn contains(&self, subject_key: &str, der: &[u8], spki: &[u8]) -> bool {
        self.anchors_named(subject_key).any(|a| a.der == der || a.spki == spki)
    }

    fn anchors_named<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s Anchor> + 's {
        self.by_subject
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.anchors.get(i))
    }

    /// How an anchor named as `cert`'s issuer signed it: `None` if no anchor
    /// of that name verifies it.
    fn issuer_link(&self, cert: &X509Certificate<'_>, issuer_key: &str, verifier: &mut Verifier) -> Option<Signature> {
        let mut best = None;
        for anchor in self.anchors_named(issuer_key) {
            let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(&anchor.spki) else {
                continue;
            };
            match verifier.check(cert, &spki) {
                Signature::Valid => return Some(Signature::Valid),
                Signature::Unverified => best = Some(Signature::Unverified),
                Signature::Invalid => {}
            }
        }
        best
    }

    fn describe(&self) -> String {
        match &self.source {
            Some(path) => format!("{} trust anchors from {}", self.anchors.len(), path.display()),
            None => format!("{} trust anchors", self.anchors.len()),
        }
    }
}

/// True when the hostname `host` matches the certificate name `pattern`
/// (RFC 6125 §6.4): ASCII case-insensitive, a trailing dot ignored, and a
/// wildcard only as the whole leftmost label, standing for exactly one
/// non-empty label (`*.example.net` matches `mx.example.net`, not
/// `a.b.example.net` nor `example.net`). A wildcard over a single label
/// (`*.net`) matches nothing.
pub fn matches_hostname(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host.contains('*') {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(parent) => {
            if !parent.contains('.') || parent.contains('*') {
                return false;
            }
            host.split_once('.')
                .is_some_and(|(first, rest)| !first.is_empty() && rest == parent)
        }
        None => pattern == host,
    }
}

/// The verdicts on a chain as sent (leaf first), with certificate dates
/// judged at `at`. `host` is the name the client expects; `None` (an IP
/// target without a name) skips the hostname check.
///
/// Stable ids: `cert-no-certificate`, `cert-unparsable`, `cert-expired`,
/// `cert-not-yet-valid`, `cert-hostname-mismatch`, `cert-self-signed`,
/// `cert-chain-order`, `cert-missing-intermediate`, `cert-untrusted`,
/// `trust-store-empty`, `cert-signature-unverified`, `cert-weak-signature`,
/// `cert-rsa-key-short`.
pub fn check_chain(ders: &[Vec<u8>], host: Option<&str>, at: OffsetDateTime, trust: &TrustStore) -> Vec<Finding> {
    let mut findings = Vec::new();
    if ders.is_empty() {
        findings.push(Finding::new(
            "cert-no-certificate",
            Severity::High,
            "The server sent no certificate.",
            "empty Certificate message",
        ));
        return findings;
    }
    let mut verifier = Verifier {
        remaining: MAX_SIGNATURE_CHECKS,
    };
    let mut nodes = Vec::with_capacity(ders.len());
    for (pos, der) in ders.iter().enumerate() {
        match parse_certificate(der) {
            Ok(cert) => nodes.push(Node::new(pos, der, cert, trust, &mut verifier)),
            Err(why) => findings.push(Finding::new(
                "cert-unparsable",
                Severity::Medium,
                "A certificate in the chain could not be parsed.",
                format!(
                    "position {pos} ({} bytes, sha256 {}): {why}",
                    der.len(),
                    hex(&Sha256::digest(der))
                ),
            )),
        }
    }
    let graph = Graph::new(&nodes, trust, &mut verifier);
    // The checks that start from the leaf need it parsed.
    let leaf = nodes.first().filter(|n| n.pos == 0);

    findings.extend(check_dates(&nodes, at));
    if let (Some(leaf), Some(host)) = (leaf, host) {
        findings.extend(check_hostname(leaf, host));
    }
    if let Some(leaf) = leaf.filter(|l| l.self_signed) {
        findings.push(Finding::new(
            "cert-self-signed",
            Severity::Medium,
            "The server certificate is self-signed.",
            match leaf.self_signature {
                Some(Signature::Valid) => format!("{} is its own issuer and is signed by its own key", leaf.label()),
                _ => format!(
                    "{} is its own issuer (its signature algorithm could not be checked)",
                    leaf.label()
                ),
            },
        ));
    }
    findings.extend(check_order(&nodes, &graph));
    if trust.is_empty() {
        findings.push(Finding::new(
            "trust-store-empty",
            Severity::Info,
            "No trust anchors were loaded, so the chain was not checked for trust or completeness.",
            "no CA bundle found (give one with --ca-file)",
        ));
    } else {
        findings.extend(check_missing_intermediate(&nodes, &graph, trust, leaf.is_some()));
        if leaf.is_some() {
            findings.extend(check_trust(&nodes, &graph, trust));
        }
    }
    findings.extend(check_signatures_and_keys(&nodes));
    findings
}

/// A parsed certificate of the chain.
struct Node<'a> {
    /// Position in the chain as sent, counting unparsable ones.
    pos: usize,
    cert: X509Certificate<'a>,
    subject_key: String,
    issuer_key: String,
    /// Issuer = subject and the signature doesn't fail with its own key.
    self_signed: bool,
    /// How its own key checks its signature, when issuer = subject.
    self_signature: Option<Signature>,
    /// The certificate is one of the trust anchors.
    anchor: bool,
}

impl<'a> Node<'a> {
    fn new(pos: usize, der: &[u8], cert: X509Certificate<'a>, trust: &TrustStore, verifier: &mut Verifier) -> Self {
        let subject_key = name_key(cert.subject());
        let issuer_key = name_key(cert.issuer());
        let self_signature = (subject_key == issuer_key).then(|| verifier.check(&cert, cert.public_key()));
        let self_signed = self_signature.is_some_and(|sig| sig != Signature::Invalid);
        let anchor = trust.contains(&subject_key, der, cert.public_key().raw);
        Self {
            pos,
            cert,
            subject_key,
            issuer_key,
            self_signed,
            self_signature,
            anchor,
        }
    }

    /// `position 1 (O=Example, CN=Example CA)`, for evidence.
    fn label(&self) -> String {
        format!("position {} ({})", self.pos, display_name(self.cert.subject()))
    }
}

/// Who signed what among the parsed certificates and the anchors.
struct Graph {
    /// `issuers[i]`: the nodes `j != i` that issued node `i`, and how sure.
    issuers: Vec<Vec<(usize, Signature)>>,
    /// `anchor_issuer[i]`: how a trust anchor issued node `i`, if one did.
    anchor_issuer: Vec<Option<Signature>>,
}

impl Graph {
    fn new(nodes: &[Node<'_>], trust: &TrustStore, verifier: &mut Verifier) -> Self {
        let issuers = nodes
            .iter()
            .enumerate()
            .map(|(i, child)| {
                let mut found = Vec::new();
                for (j, parent) in nodes.iter().enumerate() {
                    if j == i || child.issuer_key != parent.subject_key {
                        continue;
                    }
                    match verifier.check(&child.cert, parent.cert.public_key()) {
                        Signature::Invalid => {}
                        sig => found.push((j, sig)),
                    }
                }
                found
            })
            .collect();
        let anchor_issuer = nodes
            .iter()
            .map(|node| trust.issuer_link(&node.cert, &node.issuer_key, verifier))
            .collect();
        Self { issuers, anchor_issuer }
    }

    fn issuers_of(&self, i: usize) -> &[(usize, Signature)] {
        self.issuers.get(i).map_or(&[], Vec::as_slice)
    }

    fn anchor_issuer_of(&self, i: usize) -> Option<Signature> {
        self.anchor_issuer.get(i).copied().flatten()
    }
}

/// The outcome of one signature check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signature {
    Valid,
    Invalid,
    /// ring cannot check this algorithm or key size (or the budget is spent).
    Unverified,
}

/// Signature checks with a budget (see [`MAX_SIGNATURE_CHECKS`]).
struct Verifier {
    remaining: usize,
}

impl Verifier {
    fn check(&mut self, cert: &X509Certificate<'_>, signer: &SubjectPublicKeyInfo<'_>) -> Signature {
        let Some(remaining) = self.remaining.checked_sub(1) else {
            return Signature::Unverified;
        };
        self.remaining = remaining;
        match cert.verify_signature(Some(signer)) {
            Ok(()) => Signature::Valid,
            Err(X509Error::SignatureUnsupportedAlgorithm) => Signature::Unverified,
            // ring refuses RSA keys outside 2048–8192 bits (1024 for SHA-1)
            // with the same error as a bad signature, so such a failure
            // proves nothing.
            Err(_) if rsa_bits(signer).is_some_and(|bits| !(2048..=8192).contains(&bits)) => Signature::Unverified,
            Err(_) => Signature::Invalid,
        }
    }
}

fn check_dates(nodes: &[Node<'_>], at: OffsetDateTime) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Sub-second digits of `now` would only clutter the evidence.
    let at_text = rfc3339(at.replace_nanosecond(0).unwrap_or(at));
    for node in nodes {
        let validity = node.cert.validity();
        let (not_before, not_after) = (validity.not_before.to_datetime(), validity.not_after.to_datetime());
        if at < not_before {
            findings.push(Finding::new(
                "cert-not-yet-valid",
                Severity::High,
                "A certificate in the chain is not valid yet.",
                format!("{}: notBefore {} is after {at_text}", node.label(), rfc3339(not_before)),
            ));
        }
        if at > not_after {
            findings.push(Finding::new(
                "cert-expired",
                Severity::High,
                "A certificate in the chain has expired.",
                format!("{}: notAfter {} is before {at_text}", node.label(), rfc3339(not_after)),
            ));
        }
    }
    findings
}

fn check_hostname(leaf: &Node<'_>, host: &str) -> Option<Finding> {
    let (dns, ips) = san_entries(&leaf.cert);
    let (matched, presented) = match host.trim_end_matches('.').parse::<IpAddr>() {
        // An IP is matched against iPAddress entries only (RFC 6125 §1.7.2).
        Ok(ip) => (
            ips.contains(&ip),
            ips.iter().map(|ip| format!("IP:{ip}")).collect::<Vec<_>>(),
        ),
        Err(_) if !dns.is_empty() => (
            dns.iter().any(|name| matches_hostname(name, host)),
            dns.iter().map(|name| format!("DNS:{name}")).collect(),
        ),
        // The CN counts only when there is no DNS name (RFC 6125 §6.4.4).
        Err(_) => {
            let cns: Vec<&str> = leaf
                .cert
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .collect();
            (
                cns.iter().any(|cn| matches_hostname(cn, host)),
                cns.iter().map(|cn| format!("CN:{cn}")).collect(),
            )
        }
    };
    if matched {
        return None;
    }
    let names = match presented.len() {
        0 => "no name for it".to_owned(),
        n if n > MAX_NAMES_IN_EVIDENCE => format!(
            "{} (and {} more)",
            presented.get(..MAX_NAMES_IN_EVIDENCE).unwrap_or_default().join(", "),
            n - MAX_NAMES_IN_EVIDENCE
        ),
        _ => presented.join(", "),
    };
    Some(Finding::new(
        "cert-hostname-mismatch",
        Severity::High,
        "The server certificate does not name the host.",
        format!("expected {host}; the certificate has {names}"),
    ))
}

fn check_order(nodes: &[Node<'_>], graph: &Graph) -> Option<Finding> {
    let mut misplaced = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let issuers = graph.issuers_of(i);
        if node.self_signed || issuers.is_empty() {
            continue;
        }
        let next = node.pos + 1;
        if issuers
            .iter()
            .any(|&(j, _)| nodes.get(j).is_some_and(|n| n.pos == next))
        {
            continue;
        }
        let found: Vec<String> = issuers
            .iter()
            .filter_map(|&(j, _)| nodes.get(j))
            .map(|n| n.label())
            .collect();
        let instead = match nodes.iter().find(|n| n.pos == next) {
            Some(n) => n.label(),
            None if next < nodes.last().map_or(0, |n| n.pos + 1) => format!("position {next} (unparsable)"),
            None => "nothing".to_owned(),
        };
        misplaced.push(format!(
            "{} is issued by {}, but {instead} follows it",
            node.label(),
            found.join(" and ")
        ));
    }
    (!misplaced.is_empty()).then(|| {
        Finding::new(
            "cert-chain-order",
            Severity::Low,
            "The chain is not sent in order: each certificate should be followed by its issuer.",
            misplaced.join("; "),
        )
    })
}

/// An issuer that should have been sent: where the leaf's path stops short
/// of a trust anchor at a certificate that is not self-signed. Following
/// the path rather than looking at the last certificate keeps an extra
/// certificate appended to a complete chain from looking incomplete, and
/// finds the gap when an unrelated certificate comes last. Without a parsed
/// leaf, the last certificate sent is judged.
fn check_missing_intermediate(
    nodes: &[Node<'_>],
    graph: &Graph,
    trust: &TrustStore,
    from_leaf: bool,
) -> Option<Finding> {
    let candidates = if from_leaf {
        if find_anchor_path(nodes, graph, true).is_some() {
            return None;
        }
        reachable_from_leaf(graph, nodes.len())
    } else {
        vec![nodes.len().checked_sub(1)?]
    };
    let gaps: Vec<String> = candidates
        .into_iter()
        .filter_map(|i| {
            let node = nodes.get(i)?;
            let ends_here = !node.self_signed
                && !node.anchor
                && graph.issuers_of(i).is_empty()
                && graph.anchor_issuer_of(i).is_none();
            ends_here.then(|| format!("{} is issued by {}", node.label(), quoted_name(node.cert.issuer())))
        })
        .collect();
    (!gaps.is_empty()).then(|| {
        Finding::new(
            "cert-missing-intermediate",
            Severity::High,
            "The chain is incomplete: an intermediate certificate was not sent.",
            format!(
                "{}, which was not sent and is not among the {}",
                gaps.join("; "),
                trust.describe()
            ),
        )
    })
}

/// `cert-untrusted` when no path from the leaf reaches an anchor, and
/// `cert-signature-unverified` when the only path takes a link that could be
/// matched by name only.
fn check_trust(nodes: &[Node<'_>], graph: &Graph, trust: &TrustStore) -> Option<Finding> {
    if find_anchor_path(nodes, graph, false).is_some() {
        return None;
    }
    if let Some(unverified) = find_anchor_path(nodes, graph, true) {
        return Some(Finding::new(
            "cert-signature-unverified",
            Severity::Info,
            "The chain reaches a trust anchor only through signatures this tool cannot verify.",
            unverified.join("; "),
        ));
    }
    // Explain where each branch from the leaf stops.
    let mut dead_ends = Vec::new();
    for i in reachable_from_leaf(graph, nodes.len()) {
        let Some(node) = nodes.get(i) else { continue };
        if !graph.issuers_of(i).is_empty() {
            continue;
        }
        dead_ends.push(if node.self_signed {
            format!(
                "the path ends at self-signed {}, which is not a trust anchor",
                node.label()
            )
        } else {
            format!(
                "the path ends at {}, whose issuer {} was not sent and is not a trust anchor",
                node.label(),
                quoted_name(node.cert.issuer())
            )
        });
    }
    if dead_ends.is_empty() {
        dead_ends.push("no path from the leaf reaches a trust anchor".to_owned());
    }
    Some(Finding::new(
        "cert-untrusted",
        Severity::High,
        "The chain does not lead to a trusted root.",
        format!("{} (checked against {})", dead_ends.join("; "), trust.describe()),
    ))
}

/// Breadth-first search from the leaf (node 0) to a node that is an anchor
/// or is issued by one. `Some(links)` lists the links taken by name only
/// (empty when every signature on the path verified).
fn find_anchor_path(nodes: &[Node<'_>], graph: &Graph, allow_unverified: bool) -> Option<Vec<String>> {
    let usable = |sig: Signature| sig == Signature::Valid || (allow_unverified && sig == Signature::Unverified);
    // came_from[j] = (i, sig): node j was reached as the issuer of node i.
    let mut came_from: Vec<Option<(usize, Signature)>> = vec![None; nodes.len()];
    let mut seen = vec![false; nodes.len()];
    let mut queue = VecDeque::from([0]);
    *seen.first_mut()? = true;
    while let Some(i) = queue.pop_front() {
        let node = nodes.get(i)?;
        let end = if node.anchor {
            Some(None)
        } else {
            graph.anchor_issuer_of(i).filter(|&sig| usable(sig)).map(Some)
        };
        if let Some(anchor_sig) = end {
            let mut unverified = Vec::new();
            if anchor_sig == Some(Signature::Unverified) {
                unverified.push(format!(
                    "{} by trust anchor {}",
                    node.label(),
                    quoted_name(node.cert.issuer())
                ));
            }
            let mut at = i;
            while let Some(Some((child, sig))) = came_from.get(at).copied() {
                if sig == Signature::Unverified {
                    let (Some(c), Some(p)) = (nodes.get(child), nodes.get(at)) else {
                        break;
                    };
                    unverified.push(format!("{} by {}", c.label(), p.label()));
                }
                at = child;
            }
            unverified.reverse();
            return Some(unverified);
        }
        for &(j, sig) in graph.issuers_of(i) {
            if usable(sig) && !seen.get(j).copied().unwrap_or(true) {
                if let (Some(s), Some(c)) = (seen.get_mut(j), came_from.get_mut(j)) {
                    *s = true;
                    *c = Some((i, sig));
                }
                queue.push_back(j);
            }
        }
    }
    None
}

/// Node indexes reachable from the leaf through issuer links of any kind.
fn reachable_from_leaf(graph: &Graph, len: usize) -> Vec<usize> {
    let mut seen = vec![false; len];
    let mut order = Vec::new();
    let mut stack = vec![0];
    while let Some(i) = stack.pop() {
        match seen.get_mut(i) {
            Some(s) if !*s => *s = true,
            _ => continue,
        }
        order.push(i);
        stack.extend(graph.issuers_of(i).iter().map(|&(j, _)| j));
    }
    order
}

fn check_signatures_and_keys(nodes: &[Node<'_>]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for node in nodes {
        // An anchor's or a root's own signature is never checked by anyone.
        if !node.anchor && !node.self_signed {
            if let Some(hash) = weak_hash(&node.cert.signature_algorithm) {
                findings.push(Finding::new(
                    "cert-weak-signature",
                    Severity::Medium,
                    format!("A certificate in the chain is signed with {hash}, which is broken."),
                    format!("{}: {}", node.label(), signature_name(&node.cert.signature_algorithm)),
                ));
            }
        }
    }
    for node in nodes {
        if let Some(bits) = rsa_bits(node.cert.public_key()).filter(|&bits| bits < 2048) {
            findings.push(Finding::new(
                "cert-rsa-key-short",
                Severity::Medium,
                "A certificate in the chain has an RSA key shorter than 2048 bits.",
                format!("{}: RSA {bits}", node.label()),
            ));
        }
    }
    findings
}

/// Parses one DER certificate, which must fill `der` exactly: OpenSSL
/// rejects a certificate entry with trailing bytes.
fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!("{} trailing bytes after the certificate", rest.len())),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.to_string()),
        Err(nom::Err::Incomplete(_)) => Err("truncated certificate".to_owned()),
    }
}

/// A name normalised for issuer/subject matching (RFC 5280 §7.1, simplified):
/// attributes compared by type and by value with case and runs of spaces
/// folded, so a PrintableString issuer matches a UTF8String subject.
fn name_key(name: &X509Name<'_>) -> String {
    let mut key = String::new();
    for rdn in name.iter() {
        let mut attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let value = match attribute.as_str() {
                    Ok(s) => format!(
                        "s:{}",
                        s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
                    ),
                    Err(_) => format!("x:{}", hex(attribute.as_slice())),
                };
                format!("{}={value}", attribute.attr_type().to_id_string())
            })
            .collect();
        attributes.sort();
        key.push_str(&attributes.join("+"));
        key.push('/');
    }
    key
}

/// A name standing alone in a sentence: quoted, since it holds commas.
fn quoted_name(name: &X509Name<'_>) -> String {
    format!("\"{}\"", name)
}

fn display_name(name: &X509Name<'_>) -> String {
    let text = name.to_string();
    if text.is_empty() {
        "an empty name".to_owned()
    } else {
        text
    }
}

/// subjectAltName DNS names and IP addresses. An unreadable or duplicated
/// extension counts as none.
fn san_entries<'a>(cert: &X509Certificate<'a>) -> (Vec<&'a str>, Vec<IpAddr>) {
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(name) => dns.push(*name),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

fn describe_key(spki: &SubjectPublicKeyInfo<'_>) -> String {
    let unknown = || "unknown".to_owned();
    match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_RSA_ENCRYPTION | OID_RSASSA_PSS => rsa_bits(spki).map_or_else(unknown, |bits| format!("RSA {bits}")),
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve {
                Some(oid) => match CURVES.iter().find(|(o, _)| *o == oid) {
                    Some((_, name)) => format!("EC {name}"),
                    None => format!("EC {oid}"),
                },
                None => unknown(),
            }
        }
        OID_ED25519 => "Ed25519".to_owned(),
        OID_ED448 => "Ed448".to_owned(),
        OID_DSA => dsa_bits(spki).map_or_else(unknown, |bits| format!("DSA {bits}")),
        _ => unknown(),
    }
}

/// The modulus size of an RSA (or RSASSA-PSS) key. Not x509-parser's
/// `key_size`, which is off for a modulus without a leading zero byte.
fn rsa_bits(spki: &SubjectPublicKeyInfo<'_>) -> Option<usize> {
    let oid = spki.algorithm.algorithm.to_id_string();
    if oid != OID_RSA_ENCRYPTION && oid != OID_RSASSA_PSS {
        return None;
    }
    let (_, key) = RSAPublicKey::from_der(&spki.subject_public_key.data).ok()?;
    Some(bit_length(key.modulus)).filter(|&bits| bits > 0)
}

/// The size of a DSA key is that of its prime p, the first of the
/// Dss-Parms (RFC 3279 §2.3.2). Parameters inherited from the issuer (absent
/// here) make it unknown.
fn dsa_bits(spki: &SubjectPublicKeyInfo<'_>) -> Option<usize> {
    let parameters = spki.algorithm.parameters.as_ref()?;
    let (_, p) = der_parser::der::parse_der_integer(parameters.data).ok()?;
    Some(bit_length(p.as_slice().ok()?)).filter(|&bits| bits > 0)
}

fn bit_length(big_endian: &[u8]) -> usize {
    let Some(start) = big_endian.iter().position(|&b| b != 0) else {
        return 0;
    };
    let (first, rest) = (
        big_endian.get(start).copied().unwrap_or(0),
        big_endian.len() - start - 1,
    );
    rest * 8 + (8 - first.leading_zeros() as usize)
}

fn signature_name(algorithm: &AlgorithmIdentifier<'_>) -> String {
    let oid = algorithm.algorithm.to_id_string();
    SIGNATURE_ALGORITHMS
        .iter()
        .find(|(o, _, _)| *o == oid)
        .map_or(oid, |(_, name, _)| (*name).to_owned())
}

/// The broken hash (`MD5`, `SHA-1`, …) a signature algorithm uses, if any.
fn weak_hash(algorithm: &AlgorithmIdentifier<'_>) -> Option<&'static str> {
    let oid = algorithm.algorithm.to_id_string();
    if oid == OID_RSASSA_PSS {
        // The hash defaults to SHA-1 when the parameters leave it out (RFC 4055 §3.1).
        let uses_sha1 = match &algorithm.parameters {
            Some(parameters) => {
                RsaSsaPssParams::try_from(parameters).is_ok_and(|p| p.hash_algorithm_oid().to_id_string() == OID_SHA1)
            }
            None => true,
        };
        return uses_sha1.then_some("SHA-1");
    }
    SIGNATURE_ALGORITHMS
        .iter()
        .find(|(o, _, _)| *o == oid)
        .and_then(|(_, _, weak)| *weak)
}

/// Hex of a serial number without its leading zero bytes (DER adds one
/// before a high bit), keeping one byte for zero.
fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len().saturating_sub(1));
    hex(raw.get(start..).unwrap_or_default())
}

fn rfc3339(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    utc.format(&Rfc3339).unwrap_or_else(|_| utc.to_string())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;
    use time::Duration;

    /// The test PKI, generated once per test run by `openssl` and kept in
    /// memory (its directory is removed right after).
    struct Pki {
        root_pem: Vec<u8>,
        int_pem: Vec<u8>,
        rsa_key_pem: Vec<u8>,
        self_signed_pem: Vec<u8>,
        root: Vec<u8>,
        int: Vec<u8>,
        /// Same subject as `int`, another key, signed by the root.
        impostor_int: Vec<u8>,
        /// RSA-2048, CN=cn-only.test.example, SAN mx.test.example,
        /// *.wild.test.example, 127.0.0.1, serial 0x9f0e1d2c3b4a5968.
        rsa: Vec<u8>,
        ecdsa: Vec<u8>,
        /// Valid 2020-01-01 to 2021-01-01.
        expired: Vec<u8>,
        /// Valid from `not_yet_valid_from`, about 400 days from now.
        not_yet_valid: Vec<u8>,
        not_yet_valid_from: OffsetDateTime,
        /// CN=selfsigned.test.example, no SAN.
        self_signed: Vec<u8>,
        /// ECDSA P-256, CN=selfsigned-ec.test.example.
        self_signed_ec: Vec<u8>,
        rsa1024: Vec<u8>,
        sha1: Vec<u8>,
        /// Signed with md5WithRSAEncryption, which ring cannot verify.
        md5: Vec<u8>,
        /// `openssl x509 -noout -subject -issuer -serial -dates -fingerprint -sha256 -ext subjectAltName` of `rsa`.
        rsa_openssl_text: String,
    }

    fn pki() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(|| {
            let dir = TempDir::new("pki");
            generate(&dir.0)
        })
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(what: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
            let path = std::env::temp_dir().join(format!("hsscan-certs-{what}-{}-{nanos}-{n}", std::process::id()));
            std::fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn openssl(dir: &Path, args: &[&str]) -> String {
        let output = match Command::new("openssl").args(args).current_dir(dir).output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "these tests generate their certificates with the `openssl` command, which is not installed: \
                 install the `openssl` package (Debian: apt-get install openssl)"
            ),
            Err(e) => panic!("running openssl {args:?}: {e}"),
        };
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn generate(dir: &Path) -> Pki {
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"));
        write(
            "ca.ext",
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
        );
        write(
            "int.ext",
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n",
        );
        write(
            "leaf.ext",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:mx.test.example,DNS:*.wild.test.example,IP:127.0.0.1\n",
        );
        let rsa_key = |name: &str, bits: u32| {
            openssl(
                dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    &format!("rsa_keygen_bits:{bits}"),
                    "-out",
                    name,
                ],
            );
        };
        let csr = |key: &str, subject: &str, out: &str| {
            openssl(dir, &["req", "-new", "-key", key, "-subj", subject, "-out", out]);
        };
        let sign = |csr: &str, ca: &str, ext: &str, out: &str, extra: &[&str]| {
            let ca_pem = format!("{ca}.pem");
            let ca_key = format!("{ca}.key");
            let mut args = vec![
                "x509", "-req", "-in", csr, "-CA", &ca_pem, "-CAkey", &ca_key, "-days", "825",
            ];
            args.extend(["-extfile", ext, "-out", out]);
            args.extend(extra);
            openssl(dir, &args);
        };

        const INT_SUBJECT: &str = "/O=hsscan test/CN=hsscan test intermediate CA";
        rsa_key("ca.key", 2048);
        csr("ca.key", "/O=hsscan test/CN=hsscan test root CA", "ca.csr");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "ca.csr",
                "-signkey",
                "ca.key",
                "-days",
                "3650",
                "-sha256",
                "-set_serial",
                "1",
            ]
            .into_iter()
            .chain(["-extfile", "ca.ext", "-out", "ca.pem"])
            .collect::<Vec<_>>(),
        );
        rsa_key("int.key", 2048);
        csr("int.key", INT_SUBJECT, "int.csr");
        sign(
            "int.csr",
            "ca",
            "int.ext",
            "int.pem",
            &["-sha256", "-set_serial", "2", "-days", "3650"],
        );
        rsa_key("impostor.key", 2048);
        csr("impostor.key", INT_SUBJECT, "impostor.csr");
        sign(
            "impostor.csr",
            "ca",
            "int.ext",
            "impostor.pem",
            &["-sha256", "-set_serial", "3", "-days", "3650"],
        );

        rsa_key("rsa.key", 2048);
        csr("rsa.key", "/O=hsscan test/CN=cn-only.test.example", "rsa.csr");
        sign(
            "rsa.csr",
            "int",
            "leaf.ext",
            "rsa.pem",
            &["-sha256", "-set_serial", "0x9f0e1d2c3b4a5968"],
        );
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "ec.key",
            ],
        );
        csr("ec.key", "/O=hsscan test/CN=ecdsa.test.example", "ec.csr");
        sign(
            "ec.csr",
            "int",
            "leaf.ext",
            "ecdsa.pem",
            &["-sha256", "-set_serial", "5"],
        );
        rsa_key("rsa1024.key", 1024);
        csr("rsa1024.key", "/O=hsscan test/CN=rsa1024.test.example", "rsa1024.csr");
        sign(
            "rsa1024.csr",
            "int",
            "leaf.ext",
            "rsa1024.pem",
            &["-sha256", "-set_serial", "6"],
        );
        sign("rsa.csr", "int", "leaf.ext", "sha1.pem", &["-sha1", "-set_serial", "7"]);
        sign("rsa.csr", "int", "leaf.ext", "md5.pem", &["-md5", "-set_serial", "8"]);

        // `openssl x509` in OpenSSL 3.0 cannot set explicit dates;
        // `openssl ca -startdate/-enddate` can.
        std::fs::create_dir(dir.join("newcerts")).unwrap();
        write("index.txt", "");
        write("serial.txt", "1000\n");
        write(
            "ca.cnf",
            &format!(
                "[ca]\ndefault_ca = test_ca\n[test_ca]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}/newcerts\n\
                 serial = {d}/serial.txt\ndefault_md = sha256\npolicy = policy_any\nunique_subject = no\n\
                 [policy_any]\norganizationName = optional\ncommonName = supplied\n",
                d = dir.display()
            ),
        );
        let ca_sign = |out: &str, start: &str, end: &str| {
            openssl(
                dir,
                &[
                    "ca", "-batch", "-config", "ca.cnf", "-cert", "int.pem", "-keyfile", "int.key", "-in", "rsa.csr",
                ]
                .into_iter()
                .chain(["-out", out, "-notext", "-preserveDN", "-extfile", "leaf.ext"])
                .chain(["-startdate", start, "-enddate", end])
                .collect::<Vec<_>>(),
            );
        };
        ca_sign("expired.pem", "20200101000000Z", "20210101000000Z");
        let stamp = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let (from, until) = (now + Duration::days(400), now + Duration::days(800));
        ca_sign("nyv.pem", &from.format(&stamp).unwrap(), &until.format(&stamp).unwrap());

        let self_signed = |key: &str, cn: &str, out: &str| {
            openssl(
                dir,
                &[
                    "req", "-x509", "-new", "-key", key, "-subj", cn, "-days", "30", "-sha256", "-out", out,
                ],
            );
        };
        self_signed("rsa.key", "/CN=selfsigned.test.example", "ss.pem");
        self_signed("ec.key", "/CN=selfsigned-ec.test.example", "ssec.pem");

        let der = |name: &str| {
            let out = format!("{name}.der");
            openssl(
                dir,
                &["x509", "-in", &format!("{name}.pem"), "-outform", "DER", "-out", &out],
            );
            read(&out)
        };
        Pki {
            root_pem: read("ca.pem"),
            int_pem: read("int.pem"),
            rsa_key_pem: read("rsa.key"),
            self_signed_pem: read("ss.pem"),
            root: der("ca"),
            int: der("int"),
            impostor_int: der("impostor"),
            rsa: der("rsa"),
            ecdsa: der("ecdsa"),
            expired: der("expired"),
            not_yet_valid: der("nyv"),
            not_yet_valid_from: from,
            self_signed: der("ss"),
            self_signed_ec: der("ssec"),
            rsa1024: der("rsa1024"),
            sha1: der("sha1"),
            md5: der("md5"),
            rsa_openssl_text: openssl(
                dir,
                &[
                    "x509", "-in", "rsa.pem", "-noout", "-subject", "-issuer", "-serial", "-dates",
                ]
                .into_iter()
                .chain(["-fingerprint", "-sha256", "-ext", "subjectAltName"])
                .collect::<Vec<_>>(),
            ),
        }
    }

    /// A store loaded, as `--ca-file` would, from a file holding `pems`.
    fn store(pems: &[&[u8]]) -> TrustStore {
        let dir = TempDir::new("store");
        let path = dir.0.join("anchors.pem");
        std::fs::write(&path, pems.concat()).unwrap();
        TrustStore::from_pem_file(&path).unwrap()
    }

    fn root_store() -> TrustStore {
        store(&[&pki().root_pem])
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn ids(findings: &[Finding]) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = findings.iter().map(|f| f.id).collect();
        ids.sort_unstable();
        ids
    }

    fn check(chain: &[&Vec<u8>], host: Option<&str>) -> Vec<Finding> {
        let ders: Vec<Vec<u8>> = chain.iter().map(|d| (*d).clone()).collect();
        check_chain(&ders, host, now(), &root_store())
    }

    #[test]
    fn good_chains_with_root_anchor_have_no_findings() {
        let p = pki();
        assert_eq!(check(&[&p.rsa, &p.int], Some("mx.test.example")), vec![]);
        assert_eq!(check(&[&p.ecdsa, &p.int], Some("mx.test.example")), vec![]);
        // The root sent as well is an anchor itself: still nothing to say.
        assert_eq!(check(&[&p.rsa, &p.int, &p.root], Some("mx.test.example")), vec![]);
    }

    #[test]
    fn an_intermediate_anchor_is_enough() {
        let p = pki();
        let ders = vec![p.rsa.clone()];
        assert_eq!(
            check_chain(&ders, Some("mx.test.example"), now(), &store(&[&p.int_pem])),
            vec![]
        );
    }

    #[test]
    fn leaf_alone_is_missing_its_intermediate_and_untrusted() {
        let findings = check(&[&pki().rsa], Some("mx.test.example"));
        assert_eq!(ids(&findings), ["cert-missing-intermediate", "cert-untrusted"]);
        let missing = findings.iter().find(|f| f.id == "cert-missing-intermediate").unwrap();
        assert!(
            missing.evidence.contains("position 0") && missing.evidence.contains("intermediate CA"),
            "{missing:?}"
        );
    }

    #[test]
    fn leaf_root_intermediate_is_out_of_order() {
        let p = pki();
        let findings = check(&[&p.rsa, &p.root, &p.int], Some("mx.test.example"));
        assert_eq!(ids(&findings), ["cert-chain-order"]);
        assert!(findings[0]
            .evidence
            .starts_with("position 0 (O=hsscan test, CN=cn-only.test.example) is issued by position 2"));
    }

    #[test]
    fn intermediate_before_leaf_is_out_of_order_and_mismatched() {
        let p = pki();
        // The intermediate sits where the leaf should: it names no host.
        let findings = check(&[&p.int, &p.rsa], Some("mx.test.example"));
        assert_eq!(ids(&findings), ["cert-chain-order", "cert-hostname-mismatch"]);
    }

    #[test]
    fn same_issuer_name_with_another_key_is_not_an_issuer() {
        let p = pki();
        // The impostor chains to the root, but the leaf's real issuer is missing.
        let findings = check(&[&p.rsa, &p.impostor_int], Some("mx.test.example"));
        assert_eq!(ids(&findings), ["cert-missing-intermediate", "cert-untrusted"]);
        let missing = findings.iter().find(|f| f.id == "cert-missing-intermediate").unwrap();
        assert!(missing.evidence.starts_with("position 0 "), "{missing:?}");
    }

    #[test]
    fn extra_certificate_after_a_complete_path_is_not_a_gap() {
        let p = pki();
        // The leaf reaches the intermediate anchor; the impostor after it,
        // whose issuer (the root) is unknown here, doesn't matter.
        let ders = vec![p.rsa.clone(), p.impostor_int.clone()];
        assert_eq!(
            check_chain(&ders, Some("mx.test.example"), now(), &store(&[&p.int_pem])),
            vec![]
        );
    }

    #[test]
    fn expired_leaf_is_reported_with_its_date() {
        let p = pki();
        let findings = check(&[&p.expired, &p.int], Some("mx.test.example"));
        assert_eq!(ids(&findings), ["cert-expired"]);
        let evidence = &findings[0].evidence;
        assert!(
            evidence.starts_with("position 0 (O=hsscan test, CN=cn-only.test.example)"),
            "{evidence}"
        );
        assert!(evidence.contains("notAfter 2021-01-01T00:00:00Z"), "{evidence}");
    }

    #[test]
    fn not_yet_valid_leaf_is_judged_at_the_given_instant() {
        let p = pki();
        let ders = vec![p.not_yet_valid.clone(), p.int.clone()];
        let trust = root_store();
        let findings = check_chain(&ders, Some("mx.test.example"), now(), &trust);
        assert_eq!(ids(&findings), ["cert-not-yet-valid"]);
        assert!(
            findings[0].evidence.contains(&rfc3339(p.not_yet_valid_from)),
            "{:?}",
            findings[0]
        );
        // --at inside the validity window: nothing left to say.
        let inside = p.not_yet_valid_from + Duration::days(1);
        assert_eq!(check_chain(&ders, Some("mx.test.example"), inside, &trust), vec![]);
        // --at moves the expired leaf back into its window too (the
        // intermediate, made today, is then the one not yet valid).
        let ders = vec![p.expired.clone(), p.int.clone()];
        let in_2020 = time::macros::datetime!(2020-06-01 00:00 UTC);
        let findings = check_chain(&ders, Some("mx.test.example"), in_2020, &trust);
        assert_eq!(ids(&findings), ["cert-not-yet-valid"]);
        assert!(findings[0].evidence.starts_with("position 1 "), "{:?}", findings[0]);
    }

    #[test]
    fn hostname_is_checked_against_san_with_single_label_wildcards() {
        let p = pki();
        for host in [
            "mx.test.example",
            "MX.Test.Example.",
            "a.wild.test.example",
            "127.0.0.1",
        ] {
            assert_eq!(check(&[&p.rsa, &p.int], Some(host)), vec![], "{host}");
        }
        for host in [
            "other.test.example",
            "a.b.wild.test.example",
            "wild.test.example",
            "127.0.0.2",
        ] {
            assert_eq!(
                ids(&check(&[&p.rsa, &p.int], Some(host))),
                ["cert-hostname-mismatch"],
                "{host}"
            );
        }
        // The CN is ignored when there are DNS names in the SAN.
        let findings = check(&[&p.rsa, &p.int], Some("cn-only.test.example"));
        assert_eq!(ids(&findings), ["cert-hostname-mismatch"]);
        assert_eq!(
            findings[0].evidence,
            "expected cn-only.test.example; the certificate has DNS:mx.test.example, DNS:*.wild.test.example"
        );
        // No name to check for an IP target without one.
        assert_eq!(check(&[&p.rsa, &p.int], None), vec![]);
    }

    #[test]
    fn hostname_falls_back_to_cn_without_san() {
        let p = pki();
        let trust = store(&[&p.self_signed_pem]);
        let ders = vec![p.self_signed.clone()];
        assert_eq!(
            ids(&check_chain(&ders, Some("selfsigned.test.example"), now(), &trust)),
            ["cert-self-signed"]
        );
        let findings = check_chain(&ders, Some("mx.test.example"), now(), &trust);
        assert_eq!(ids(&findings), ["cert-hostname-mismatch", "cert-self-signed"]);
        assert!(
            findings
                .iter()
                .any(|f| f.evidence.ends_with("has CN:selfsigned.test.example")),
            "{findings:?}"
        );
    }

    #[test]
    fn matcher_follows_rfc_6125() {
        let cases = [
            ("mx.example.net", "mx.example.net", true),
            ("MX.Example.NET", "mx.example.net.", true),
            ("mx.example.net.", "MX.EXAMPLE.NET", true),
            ("*.example.net", "mx.example.net", true),
            ("*.example.net", "MX.example.net", true),
            ("*.example.net", "a.b.example.net", false),
            ("*.example.net", "example.net", false),
            ("*.example.net", ".example.net", false),
            ("*.net", "example.net", false),
            ("mx.*.net", "mx.example.net", false),
            ("m*.example.net", "mx.example.net", false),
            ("*.*.net", "a.b.net", false),
            ("*.example.net", "*.example.net", false),
            ("mx.example.net", "mx.example.org", false),
            ("mx.example.net", "", false),
            ("", "", false),
        ];
        for (pattern, host, expected) in cases {
            assert_eq!(matches_hostname(pattern, host), expected, "{pattern} vs {host}");
        }
    }

    #[test]
    fn self_signed_leaf_is_reported_and_untrusted() {
        let p = pki();
        let findings = check(&[&p.self_signed], Some("selfsigned.test.example"));
        assert_eq!(ids(&findings), ["cert-self-signed", "cert-untrusted"]);
        let findings = check(&[&p.self_signed_ec], Some("selfsigned-ec.test.example"));
        assert_eq!(ids(&findings), ["cert-self-signed", "cert-untrusted"]);
        let info = CertInfo::from_der(&p.self_signed_ec);
        assert_eq!(
            (info.key.as_str(), info.signature_algorithm.as_str()),
            ("EC P-256", "ecdsa-with-SHA256")
        );
    }

    #[test]
    fn rsa_1024_key_is_short() {
        let p = pki();
        let findings = check(&[&p.rsa1024, &p.int], Some("mx.test.example"));
        assert_eq!(ids(&findings), ["cert-rsa-key-short"]);
        assert!(findings[0].evidence.ends_with("RSA 1024"), "{:?}", findings[0]);
        assert_eq!(CertInfo::from_der(&p.rsa1024).key, "RSA 1024");
    }

    #[test]
    fn sha1_signature_is_weak_but_not_on_a_root() {
        let p = pki();
        let findings = check(&[&p.sha1, &p.int], Some("mx.test.example"));
        assert_eq!(ids(&findings), ["cert-weak-signature"]);
        assert!(
            findings[0].evidence.ends_with("sha1WithRSAEncryption"),
            "{:?}",
            findings[0]
        );
        assert_eq!(CertInfo::from_der(&p.sha1).signature_algorithm, "sha1WithRSAEncryption");
    }

    #[test]
    fn md5_signature_is_weak_and_links_by_name_only() {
        let p = pki();
        let findings = check(&[&p.md5, &p.int], Some("mx.test.example"));
        assert_eq!(ids(&findings), ["cert-signature-unverified", "cert-weak-signature"]);
        assert!(findings.iter().any(|f| f.message.contains("MD5")), "{findings:?}");
        assert_eq!(CertInfo::from_der(&p.md5).signature_algorithm, "md5WithRSAEncryption");
        // Name-only links still don't invent a missing issuer.
        assert_eq!(
            ids(&check(&[&p.md5], Some("mx.test.example"))),
            ["cert-missing-intermediate", "cert-untrusted", "cert-weak-signature"]
        );
    }

    #[test]
    fn garbage_is_data_not_a_crash() {
        let p = pki();
        let garbage = b"not a certificate at all".to_vec();
        let info = CertInfo::from_der(&garbage);
        assert!(info.subject.starts_with("unparsable: "), "{info:?}");
        assert_eq!(info.sha256, hex(&Sha256::digest(&garbage)));
        assert_eq!(info.key, "unknown");
        assert_eq!(ids(&check(&[&garbage], Some("mx.test.example"))), ["cert-unparsable"]);
        // Unparsable in the middle: the rest is still judged.
        assert_eq!(
            ids(&check(&[&p.rsa, &garbage, &p.int], Some("mx.test.example"))),
            ["cert-chain-order", "cert-unparsable"]
        );
        // Every prefix and a trailing byte: never a panic.
        let mut long = p.rsa.clone();
        long.push(0);
        // The leaf unparsable: only what needs no leaf is judged.
        assert_eq!(
            ids(&check(&[&long, &p.int], Some("mx.test.example"))),
            ["cert-unparsable"]
        );
        for cut in 0..p.rsa.len() {
            let prefix = p.rsa[..cut].to_vec();
            assert!(
                CertInfo::from_der(&prefix).subject.starts_with("unparsable: "),
                "{cut}-byte prefix parsed"
            );
            let _ = check_chain(
                &[prefix, p.int.clone()],
                Some("mx.test.example"),
                now(),
                &TrustStore::empty(),
            );
        }
    }

    #[test]
    fn empty_chain_has_no_certificate() {
        assert_eq!(ids(&check(&[], Some("mx.test.example"))), ["cert-no-certificate"]);
        assert_eq!(key_label(&[]), "unknown");
    }

    #[test]
    fn empty_store_says_so_instead_of_untrusted() {
        let p = pki();
        let ders = vec![p.rsa.clone()];
        let findings = check_chain(&ders, Some("mx.test.example"), now(), &TrustStore::empty());
        assert_eq!(ids(&findings), ["trust-store-empty"]);
    }

    #[test]
    fn cert_info_matches_openssl() {
        let p = pki();
        let info = CertInfo::from_der(&p.rsa);
        let text = &p.rsa_openssl_text;
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in openssl output:\n{text}"))
                .to_owned()
        };
        // OpenSSL 3 prints "O = hsscan test, CN = …".
        assert_eq!(info.subject, field("subject=").replace(" = ", "="));
        assert_eq!(info.issuer, field("issuer=").replace(" = ", "="));
        assert_eq!(info.serial, field("serial=").to_ascii_lowercase());
        assert_eq!(info.serial, "9f0e1d2c3b4a5968");
        let fingerprint = text
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("sha256 fingerprint=")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no fingerprint in openssl output:\n{text}"));
        assert_eq!(info.sha256, fingerprint.replace(':', ""));
        let openssl_date = time::macros::format_description!(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
        );
        let instant = |s: &str| time::PrimitiveDateTime::parse(s, &openssl_date).unwrap().assume_utc();
        let ours = |s: &str| OffsetDateTime::parse(s, &Rfc3339).unwrap();
        assert_eq!(ours(&info.not_before), instant(&field("notBefore=")));
        assert_eq!(ours(&info.not_after), instant(&field("notAfter=")));
        assert!(info.not_after.ends_with('Z'), "{}", info.not_after);
        let san_line = text
            .lines()
            .skip_while(|l| !l.contains("Subject Alternative Name"))
            .nth(1)
            .unwrap();
        let openssl_san: BTreeSet<String> = san_line
            .trim()
            .split(", ")
            .map(|entry| {
                entry
                    .strip_prefix("DNS:")
                    .or_else(|| entry.strip_prefix("IP Address:"))
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(info.san.iter().cloned().collect::<BTreeSet<_>>(), openssl_san);
        assert_eq!(info.key, "RSA 2048");
        assert_eq!(info.signature_algorithm, "sha256WithRSAEncryption");
    }

    #[test]
    fn key_labels_name_the_leaf_key() {
        let p = pki();
        let chain: Vec<CertInfo> = [&p.ecdsa, &p.int].iter().map(|d| CertInfo::from_der(d)).collect();
        assert_eq!(key_label(&chain), "EC P-256");
        let chain: Vec<CertInfo> = [&p.rsa, &p.int].iter().map(|d| CertInfo::from_der(d)).collect();
        assert_eq!(key_label(&chain), "RSA 2048");
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let p = pki();
        let dir = TempDir::new("errors");
        let missing = dir.0.join("missing.pem");
        let err = TrustStore::from_pem_file(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("reading CA file {}: ", missing.display())),
            "{err}"
        );
        let key_only = dir.0.join("key.pem");
        std::fs::write(&key_only, &p.rsa_key_pem).unwrap();
        assert_eq!(
            TrustStore::from_pem_file(&key_only).unwrap_err().to_string(),
            format!("reading CA file {}: no certificate found", key_only.display())
        );
        let broken = dir.0.join("broken.pem");
        std::fs::write(
            &broken,
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = TrustStore::from_pem_file(&broken).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("reading CA file {}: PEM block 1: ", broken.display())),
            "{err}"
        );
        let not_der = dir.0.join("notder.pem");
        std::fs::write(
            &not_der,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = TrustStore::from_pem_file(&not_der).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "reading CA file {}: certificate in PEM block 1: ",
                not_der.display()
            )),
            "{err}"
        );
        // Keys and certificates mixed: the certificates count.
        let bundle = store(&[&p.rsa_key_pem, &p.root_pem, &p.int_pem]);
        assert_eq!(bundle.len(), 2);
        assert!(!bundle.is_empty());
    }

    #[test]
    fn system_store_loads_without_panicking() {
        let system = TrustStore::system();
        if let Some(source) = system.source() {
            assert!(SYSTEM_BUNDLES.iter().any(|b| Path::new(b) == source));
            assert!(!system.is_empty());
        } else {
            assert!(system.is_empty());
        }
    }
}

/// One certificate chain and its verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateReport {
    pub key: String,
    /// The protocol of the hello that showed this chain ("TLSv1.2",
    /// "TLSv1.3" when decrypted from a TLS 1.3 first flight, …).
    pub version: Option<&'static str>,
    pub chain: Vec<CertInfo>,
    pub verdicts: Vec<crate::finding::Finding>,
    /// The chain as sent (DER, leaf first), for DANE matching; not in the JSON.
    #[serde(skip)]
    pub der: Vec<Vec<u8>>,
}
