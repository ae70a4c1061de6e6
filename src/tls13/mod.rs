//! TLS 1.3 hides the server's certificate (SPEC §4): to judge the chain of
//! a TLS 1.3 server, hsscan sends one hello with a real X25519 key share
//! (P-256 when a HelloRetryRequest asks for it), derives the server's
//! handshake keys and decrypts its first flight — EncryptedExtensions,
//! Certificate, CertificateVerify — and then closes. It still never sends
//! a Finished: no handshake is completed.
//!
//! [`schedule`] is the key schedule and record protection, [`flight`] the
//! sans-I/O client of the certificate hello, [`fetch`] the async driver
//! that runs it over one gated connection.

pub mod fetch;
pub mod flight;
pub mod schedule;

use crate::finding::{Finding, Severity};
use crate::gate::HostGate;
use crate::probe::{Endpoint, ProbeConfig};
use hsscan_wire::SignatureScheme;

/// The signature schemes of a modern client: the server picks its usual
/// certificate.
pub fn default_schemes() -> Vec<SignatureScheme> {
    hsscan_wire::client_hello::DEFAULT_SIGNATURE_SCHEMES.to_vec()
}

/// The schemes that a certificate of another key type than `key` (a
/// [`crate::certs::key_label`] such as "RSA 2048" or "EC P-256") can
/// sign with: a server with an RSA and an ECDSA certificate then shows the
/// other one. `None` for key types we cannot steer away from.
pub fn other_key_type_schemes(key: &str) -> Option<Vec<SignatureScheme>> {
    let rsa = key.starts_with("RSA");
    let ec = key.starts_with("EC");
    let keep = |s: &SignatureScheme| {
        let n = s.name().unwrap_or("");
        let is_rsa = n.starts_with("rsa");
        let is_ec = n.starts_with("ecdsa") || n.starts_with("ed");
        (rsa && is_ec) || (ec && is_rsa)
    };
    (rsa || ec).then(|| default_schemes().into_iter().filter(keep).collect())
}

/// The chains a TLS 1.3 server hides, decrypted for a scan.
#[derive(Debug, Clone, Default)]
pub struct Chains {
    /// DER chains, leaf first, in the order fetched.
    pub chains: Vec<Vec<Vec<u8>>>,
    /// A warning when a chain could not be decrypted.
    pub findings: Vec<Finding>,
}

/// The id of the warning for a TLS 1.3 chain that could not be read.
pub const NOT_DECRYPTED: &str = "tls13-certificate-not-decrypted";

/// Fetches the TLS 1.3 chain of an endpoint (one connection), and with
/// `every_key_type` a second chain of another key type when the server
/// has one (one more connection): a TLS 1.3-only server with RSA and
/// ECDSA certificates shows both, as DANE rollover checks need.
pub async fn scan_chains(
    gate: &HostGate,
    endpoint: &Endpoint,
    sni: Option<&str>,
    cfg: &ProbeConfig,
    every_key_type: bool,
) -> Chains {
    let mut out = Chains::default();
    let Some(first) = fetch::fetch(gate, endpoint, sni, &default_schemes(), cfg).await else {
        return out;
    };
    match first.decrypted.as_ref().filter(|d| !d.certificates.is_empty()) {
        Some(d) => out.chains.push(d.certificates.clone()),
        None => {
            let why = first.why_not().unwrap_or_default();
            out.findings.push(Finding::new(
                NOT_DECRYPTED,
                Severity::Low,
                "the server negotiates TLS 1.3, but its certificate chain could not be decrypted from the first flight, so the chain a TLS 1.3 sender sees is not judged",
                why,
            ));
        }
    }
    if every_key_type {
        other_key_type(gate, endpoint, sni, cfg, &mut out).await;
    }
    out
}

/// The second half of [`scan_chains`] with `every_key_type`: given the
/// chains fetched so far, the chain of another key type, when the server
/// has one (one connection).
pub async fn other_key_type(
    gate: &HostGate,
    endpoint: &Endpoint,
    sni: Option<&str>,
    cfg: &ProbeConfig,
    out: &mut Chains,
) {
    let leaf_key = out
        .chains
        .first()
        .and_then(|c| c.first())
        .map(|c| crate::certs::key_label(&[crate::certs::CertInfo::from_der(c)]));
    let Some(schemes) = leaf_key.as_deref().and_then(other_key_type_schemes) else {
        return;
    };
    // A server with a single certificate refuses this hello; that is the
    // answer, not a failure.
    if let Some(second) = fetch::fetch(gate, endpoint, sni, &schemes, cfg).await {
        if let Some(d) = second.decrypted.filter(|d| !d.certificates.is_empty()) {
            if !out.chains.contains(&d.certificates) {
                out.chains.push(d.certificates);
            }
        }
    }
}
