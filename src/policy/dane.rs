//! DANE for SMTP (RFC 7672, RFC 7671): the `_PORT._tcp.HOST` TLSA RRset of
//! an MX host with its DNSSEC status, each record matched against every
//! chain of every IP of the host, rollover readiness (a matching record for
//! every key type the server presents), and the result in RFC 8460 terms.
//!
//! The lookup ([`lookup`]) asks the resolver once per host and port; the
//! judgement ([`evaluate`]) is a pure function of that answer and the
//! chains, so every case is a unit test.
//!
//! RFC 7672 rules kept here: only DANE-TA(2) and DANE-EE(3) are usable
//! for SMTP; names are ignored for DANE-EE and checked for DANE-TA;
//! TLSA records of an insecure zone, or of an MX host whose address (or
//! whose domain's MX RRset) is not secure, are listed and matched for
//! diagnosis but do not apply (`no-tlsa`); SERVFAIL is `error`, never
//! "no TLSA".

use super::dnssec::{Answer, Resolver, Security};
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};
use std::net::IpAddr;

/// One TLSA record (RFC 6698 §2.1), with whether an SMTP client may use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsaRecord {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    /// Lowercase hex.
    pub data: String,
    /// Usage 2 or 3, selector 0 or 1, matching 0, 1 or 2 (RFC 7672 §3.1.3).
    pub usable: bool,
    #[serde(skip)]
    raw: Vec<u8>,
}

impl TlsaRecord {
    pub fn new(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Self {
        Self {
            usage,
            selector,
            matching,
            data: hsscan_wire::hex(&data),
            usable: matches!(usage, 2 | 3) && matches!(selector, 0 | 1) && matches!(matching, 0..=2),
            raw: data,
        }
    }

    /// Whether this record matches `cert` as RFC 6698 §2.1 says: from
    /// the DER when it is at hand, else from the digests an earlier
    /// record kept (SHA-256 matching only; `None` for the others).
    fn matches(&self, cert: &Cert) -> Option<bool> {
        if let Some(der) = &cert.der {
            return Some(self.matches_der(der));
        }
        match (self.selector, self.matching) {
            (0, 1) if !cert.sha256.is_empty() => Some(cert.sha256 == self.raw),
            (1, 1) if !cert.spki_sha256.is_empty() => Some(cert.spki_sha256 == self.raw),
            _ => None,
        }
    }

    /// Whether this record matches `cert` (DER) as RFC 6698 §2.1 says.
    fn matches_der(&self, cert: &[u8]) -> bool {
        let selected: Vec<u8> = match self.selector {
            0 => cert.to_vec(),
            1 => match spki(cert) {
                Some(s) => s,
                None => return false,
            },
            _ => return false,
        };
        let digest = match self.matching {
            0 => selected,
            1 => Sha256::digest(&selected).to_vec(),
            2 => Sha512::digest(&selected).to_vec(),
            _ => return false,
        };
        digest == self.raw
    }
}

/// What DANE matching needs of one certificate: its DER when the scan
/// saw it, or — for an endpoint record read back by `--resume`, which
/// keeps no DER — the `sha256` and `spki_sha256` digests, key and names
/// the record gives (SPEC §3 `certificates[].chain[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cert {
    pub der: Option<Vec<u8>>,
    pub sha256: Vec<u8>,
    pub spki_sha256: Vec<u8>,
    /// `RSA 2048`, `EC P-256`, … or `unknown`.
    pub key: String,
    /// subjectAltName entries, for DANE-TA's name check.
    pub san: Vec<String>,
}

impl Cert {
    /// From a certificate as sent.
    pub fn of_der(der: &[u8]) -> Self {
        let info = crate::certs::CertInfo::from_der(der);
        Self {
            der: Some(der.to_vec()),
            sha256: unhex(&info.sha256).unwrap_or_default(),
            spki_sha256: unhex(&info.spki_sha256).unwrap_or_default(),
            key: info.key,
            san: info.san,
        }
    }

    /// From a `certificates[].chain[]` entry of an earlier record; `None`
    /// when it holds no usable digest.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        let sha256 = unhex(v["sha256"].as_str()?)?;
        let spki_sha256 = v["spki_sha256"].as_str().and_then(unhex).unwrap_or_default();
        Some(Self {
            der: None,
            sha256,
            spki_sha256,
            key: v["key"].as_str().unwrap_or("unknown").to_owned(),
            san: v["san"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        })
    }
}

/// Lowercase or uppercase hex to bytes; `None` unless it is hex of whole bytes.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// The SubjectPublicKeyInfo of a DER certificate, as encoded.
fn spki(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, c) = x509_parser::parse_x509_certificate(cert).ok()?;
    Some(c.tbs_certificate.subject_pki.raw.to_vec())
}

/// The RFC 8460 result types DANE can give (SPEC §3c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every IP presents a chain that a usable record matches.
    Valid,
    /// Secure TLSA records, and an IP whose chains none of them match
    /// (or no usable record at all).
    TlsaInvalid,
    /// The TLSA answer does not validate (bogus).
    DnssecInvalid,
    /// A sender that requires DANE (Postfix `dane-only`, RFC 7672 §6)
    /// finds no TLSA records that apply here (RFC 8460 §4.3.2): given only
    /// when the run judges such a sender, where the result would otherwise
    /// be `no-tlsa`.
    DaneRequired,
    /// No TLSA records that apply: none, or only insecure ones.
    NoTlsa,
    /// Secure TLSA records, but an IP gave no chain to match (no TLS).
    ValidationFailure,
    /// The lookup failed: nothing is known (SERVFAIL is never "no TLSA").
    Error,
}

impl Outcome {
    /// Whether a sender at `dane` fails delivery here.
    pub fn fails_dane(self) -> bool {
        matches!(
            self,
            Self::TlsaInvalid | Self::DnssecInvalid | Self::ValidationFailure | Self::Error
        )
    }

    /// The RFC 8460 name, as the JSON gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::TlsaInvalid => "tlsa-invalid",
            Self::DnssecInvalid => "dnssec-invalid",
            Self::DaneRequired => "dane-required",
            Self::NoTlsa => "no-tlsa",
            Self::ValidationFailure => "validation-failure",
            Self::Error => "error",
        }
    }

    /// Whether a sender at `dane-only` fails delivery here: where one at
    /// `dane` does, and where no TLSA records apply.
    pub fn fails_dane_only(self) -> bool {
        self.fails_dane() || matches!(self, Self::NoTlsa | Self::DaneRequired)
    }
}

/// `d` as a sender that requires DANE sees it: `no-tlsa` (no records,
/// only insecure ones, or a host or MX RRset that is not secure) is
/// `dane-required`, the detail saying why there are none.
pub fn required(mut d: Dane) -> Dane {
    if d.result == Outcome::NoTlsa {
        d.result = Outcome::DaneRequired;
        d.detail = format!(
            "{}; a sender that requires DANE (smtp_tls_security_level = dane-only) defers mail to this host",
            d.detail
        );
    }
    d
}

/// One chain of one IP, matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointMatch {
    pub ip: String,
    /// The leaf's key type, e.g. `RSA 2048` (`null`: no chain).
    pub key: Option<String>,
    /// Indexes into `records` of the usable records that match.
    pub matched: Vec<usize>,
    pub result: Outcome,
}

/// Whether the records cover every key type the server presents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollover {
    /// Key types of the chains presented, e.g. `["EC P-256", "RSA 2048"]`.
    pub key_types: Vec<String>,
    /// Those no usable record matches.
    pub missing: Vec<String>,
    pub ready: bool,
}

/// `policy.dane` of SPEC §3c for one MX host and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dane {
    pub tlsa_name: String,
    /// The validating resolver asked.
    pub resolver: String,
    pub dnssec: Security,
    pub records: Vec<TlsaRecord>,
    /// The DNSSEC status of the host's address records (RFC 7672 §2.2.2).
    pub host_dnssec: Security,
    /// The DNSSEC status of the domain's MX RRset (`null`: no domain, a
    /// single target).
    pub mx_dnssec: Option<Security>,
    pub per_endpoint: Vec<EndpointMatch>,
    pub rollover: Option<Rollover>,
    pub result: Outcome,
    /// Why, in a sentence: which record, host or answer decided.
    pub detail: String,
}

/// What the resolver said about one host and port, looked up once.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub tlsa_name: String,
    pub resolver: String,
    pub tlsa: Answer,
    pub host: Security,
    pub mx: Option<Security>,
}

/// `_PORT._tcp.HOST` (RFC 7672 §2.2.3).
pub fn tlsa_name(host: &str, port: u16) -> String {
    format!("_{port}._tcp.{}", crate::dns::normalise(host))
}

/// The worse of the A and AAAA answers' statuses: an address that is not
/// secure makes the host not secure.
fn address_security(a: &Answer, aaaa: &Answer) -> Security {
    use Security::*;
    let rank = |s: Security| match s {
        Secure => 0,
        Insecure => 1,
        Bogus => 2,
        Error => 3,
    };
    if rank(a.security) >= rank(aaaa.security) {
        a.security
    } else {
        aaaa.security
    }
}

/// Looks up the TLSA RRset of `host`:`port` and the DNSSEC status of the
/// host's addresses; `mx` is that of the domain's MX RRset, when there is
/// a domain.
pub async fn lookup(resolver: &Resolver, host: &str, port: u16, mx: Option<Security>) -> Lookup {
    let name = tlsa_name(host, port);
    let (tlsa, a, aaaa) = tokio::join!(
        resolver.lookup(&name, RecordType::TLSA),
        resolver.lookup(host, RecordType::A),
        resolver.lookup(host, RecordType::AAAA),
    );
    Lookup {
        tlsa_name: name,
        resolver: resolver.server.to_string(),
        tlsa,
        host: address_security(&a, &aaaa),
        mx,
    }
}

/// The RRset's records in a fixed order (an RRset has none; resolvers
/// rotate it), so that a report, and the indexes into it, do not change
/// from one lookup to the next.
fn records(answer: &Answer) -> Vec<TlsaRecord> {
    let mut out: Vec<TlsaRecord> = answer
        .records
        .iter()
        .filter_map(|r| match r {
            RData::TLSA(t) => Some(TlsaRecord::new(
                u8::from(t.cert_usage()),
                u8::from(t.selector()),
                u8::from(t.matching()),
                t.cert_data().to_vec(),
            )),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| (a.usage, a.selector, a.matching, &a.data).cmp(&(b.usage, b.selector, b.matching, &b.data)));
    out
}

/// The usable records that match `chain` (leaf first) for `host`:
/// DANE-EE against the leaf, names ignored; DANE-TA against any
/// certificate of the chain, with the leaf's names checked. Also the
/// usable records that could not be judged (a resumed chain's digests do
/// not serve that matching type).
fn matching(records: &[TlsaRecord], chain: &[Cert], host: &str) -> (Vec<usize>, Vec<usize>) {
    let Some(leaf) = chain.first() else {
        return (Vec::new(), Vec::new());
    };
    let named = || leaf.san.iter().any(|n| crate::certs::matches_hostname(n, host));
    let (mut matched, mut unknown) = (Vec::new(), Vec::new());
    for (i, r) in records.iter().enumerate().filter(|(_, r)| r.usable) {
        let m = match r.usage {
            3 => r.matches(leaf),
            2 => {
                let each: Vec<Option<bool>> = chain.iter().map(|c| r.matches(c)).collect();
                if each.contains(&Some(true)) {
                    Some(named())
                } else if each.contains(&None) {
                    None
                } else {
                    Some(false)
                }
            }
            _ => Some(false),
        };
        match m {
            Some(true) => matched.push(i),
            Some(false) => {}
            None => unknown.push(i),
        }
    }
    (matched, unknown)
}

/// The chains of one IP: `(ip, chains)`, each chain DER leaf first; no
/// chain at all when the IP negotiated no TLS.
pub type IpChains = (IpAddr, Vec<Vec<Vec<u8>>>);

/// The chains of one IP as DANE matching needs them (see [`Cert`]).
pub type IpCerts = (IpAddr, Vec<Vec<Cert>>);

/// Judges `lookup` against the chains (DER) every IP of the host presented.
pub fn evaluate(lookup: &Lookup, host: &str, ips: &[IpChains]) -> Dane {
    let ips: Vec<IpCerts> = ips
        .iter()
        .map(|(ip, chains)| {
            (
                *ip,
                chains
                    .iter()
                    .map(|c| c.iter().map(|d| Cert::of_der(d)).collect())
                    .collect(),
            )
        })
        .collect();
    evaluate_certs(lookup, host, &ips)
}

/// [`evaluate`] of chains given as [`Cert`]s.
pub fn evaluate_certs(lookup: &Lookup, host: &str, ips: &[IpCerts]) -> Dane {
    let records = records(&lookup.tlsa);
    let key_of = |chain: &[Cert]| {
        chain
            .first()
            .map(|c| c.key.clone())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let mut unjudged: Vec<usize> = Vec::new();
    let mut per_endpoint = Vec::new();
    let mut key_types: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut every_ip_matches = true;
    let mut some_ip_without_tls = false;
    for (ip, chains) in ips {
        if chains.is_empty() {
            some_ip_without_tls = true;
            per_endpoint.push(EndpointMatch {
                ip: ip.to_string(),
                key: None,
                matched: Vec::new(),
                result: Outcome::ValidationFailure,
            });
            continue;
        }
        let mut ip_matches = false;
        for chain in chains {
            let key = key_of(chain);
            let (matched, unknown) = matching(&records, chain, host);
            for u in unknown {
                if !unjudged.contains(&u) {
                    unjudged.push(u);
                }
            }
            ip_matches |= !matched.is_empty();
            if !key_types.contains(&key) {
                key_types.push(key.clone());
            }
            if matched.is_empty() && !missing.contains(&key) {
                missing.push(key.clone());
            }
            per_endpoint.push(EndpointMatch {
                ip: ip.to_string(),
                key: Some(key),
                result: if matched.is_empty() {
                    Outcome::TlsaInvalid
                } else {
                    Outcome::Valid
                },
                matched,
            });
        }
        every_ip_matches &= ip_matches;
    }
    // A key type matched on one IP but not another is still missing there.
    missing.retain(|k| {
        per_endpoint
            .iter()
            .any(|e| e.key.as_deref() == Some(k.as_str()) && e.matched.is_empty())
    });
    let rollover = (!key_types.is_empty()).then(|| Rollover {
        ready: missing.is_empty(),
        key_types: key_types.clone(),
        missing: missing.clone(),
    });
    let usable = records.iter().filter(|r| r.usable).count();
    let secure_host = lookup.host == Security::Secure && lookup.mx.is_none_or(|m| m == Security::Secure);
    let (result, detail) = match lookup.tlsa.security {
        Security::Error => (
            Outcome::Error,
            format!(
                "the TLSA lookup of {} failed: {}",
                lookup.tlsa_name,
                lookup.tlsa.detail.clone().unwrap_or_default()
            ),
        ),
        Security::Bogus => (
            Outcome::DnssecInvalid,
            format!(
                "the TLSA answer for {} does not validate (bogus): {}",
                lookup.tlsa_name,
                lookup.tlsa.detail.clone().unwrap_or_default()
            ),
        ),
        Security::Insecure if records.is_empty() => (
            Outcome::NoTlsa,
            format!("no TLSA records at {} (insecure zone)", lookup.tlsa_name),
        ),
        Security::Insecure => (
            Outcome::NoTlsa,
            format!(
                "{} TLSA records at {} are in an insecure zone: ignored (RFC 7672 §2.2)",
                records.len(),
                lookup.tlsa_name
            ),
        ),
        Security::Secure if records.is_empty() => (
            Outcome::NoTlsa,
            format!("no TLSA records at {} (a validated denial)", lookup.tlsa_name),
        ),
        Security::Secure if !secure_host => {
            let what = if lookup.mx.is_some_and(|m| m != Security::Secure) {
                "the domain's MX records are"
            } else {
                "the host's address records are"
            };
            (
                Outcome::NoTlsa,
                format!(
                    "{what} not DNSSEC-secure, so the TLSA records at {} do not apply (RFC 7672 §2.2)",
                    lookup.tlsa_name
                ),
            )
        }
        Security::Secure if usable == 0 => (
            Outcome::TlsaInvalid,
            format!(
                "none of the {} TLSA records at {} is usable for SMTP (only DANE-TA(2) and DANE-EE(3) with selector 0/1 and matching 0/1/2 are, RFC 7672 §3.1.3)",
                records.len(),
                lookup.tlsa_name
            ),
        ),
        Security::Secure if some_ip_without_tls => (
            Outcome::ValidationFailure,
            format!(
                "secure TLSA records at {}, but an address of the host negotiated no TLS to match them against",
                lookup.tlsa_name
            ),
        ),
        Security::Secure if !every_ip_matches => {
            let bad: Vec<String> = per_endpoint
                .iter()
                .filter(|e| e.matched.is_empty())
                .map(|e| format!("{} ({})", e.ip, e.key.as_deref().unwrap_or("?")))
                .collect();
            let usable: Vec<String> = records
                .iter()
                .filter(|r| r.usable)
                .map(|r| format!("{} {} {} {}", r.usage, r.selector, r.matching, r.data))
                .collect();
            (
                Outcome::TlsaInvalid,
                format!(
                    "no TLSA record at {} ({}) matches the chain of {}",
                    lookup.tlsa_name,
                    usable.join("; "),
                    bad.join(", ")
                ),
            )
        }
        Security::Secure if !missing.is_empty() => (
            Outcome::Valid,
            format!(
                "every address presents a matching chain, but no record matches its {} chain: a sender that gets that one fails, and a key rollover is not ready",
                missing.join(", ")
            ),
        ),
        Security::Secure => (
            Outcome::Valid,
            format!("every chain presented matches a TLSA record at {}", lookup.tlsa_name),
        ),
    };
    let detail = if unjudged.is_empty() {
        detail
    } else {
        unjudged.sort_unstable();
        let which: Vec<String> = unjudged.iter().map(usize::to_string).collect();
        format!(
            "{detail} (records {} could not be matched: the chains come from an earlier record, which keeps only SHA-256 digests)",
            which.join(", ")
        )
    };
    Dane {
        tlsa_name: lookup.tlsa_name.clone(),
        resolver: lookup.resolver.clone(),
        dnssec: lookup.tlsa.security,
        records,
        host_dnssec: lookup.host,
        mx_dnssec: lookup.mx,
        per_endpoint,
        rollover,
        result,
        detail,
    }
}

/// Findings of a DANE result, for the endpoint or domain record.
pub fn findings(d: &Dane) -> Vec<crate::finding::Finding> {
    use crate::finding::{Finding, Severity};
    let mut out = Vec::new();
    let (id, severity) = match d.result {
        Outcome::Valid => ("", Severity::Info),
        Outcome::TlsaInvalid => ("dane-tlsa-invalid", Severity::Critical),
        Outcome::DnssecInvalid => ("dane-dnssec-invalid", Severity::Critical),
        Outcome::ValidationFailure => ("dane-validation-failure", Severity::Critical),
        Outcome::Error => ("dane-lookup-error", Severity::High),
        Outcome::DaneRequired => ("dane-required", Severity::High),
        Outcome::NoTlsa => ("", Severity::Info),
    };
    if !id.is_empty() {
        let message = if d.result == Outcome::DaneRequired {
            "a sender at smtp_tls_security_level = dane-only defers mail to this MX: no DNSSEC-secure TLSA records apply to it"
        } else {
            "a sender at smtp_tls_security_level = dane defers mail to this MX"
        };
        out.push(Finding::new(id, severity, message, d.detail.clone()));
    }
    if d.dnssec == Security::Insecure && !d.records.is_empty() {
        out.push(Finding::new(
            "dane-tlsa-insecure",
            Severity::Low,
            "TLSA records are published in a zone that is not DNSSEC-signed: senders ignore them",
            d.detail.clone(),
        ));
    }
    if d.result == Outcome::Valid && d.rollover.as_ref().is_some_and(|r| !r.ready) {
        out.push(Finding::new(
            "dane-rollover-not-ready",
            Severity::Medium,
            "not every key type the server presents has a matching TLSA record",
            d.detail.clone(),
        ));
    }
    out
}

#[cfg(test)]
#[path = "dane_tests.rs"]
mod tests;
