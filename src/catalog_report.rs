//! `hsscan catalog`: the cipher suite catalog as a table or as JSON.

use hsscan_wire::catalog::{self, version_rank, Sslv2SpecInfo, SuiteInfo, SuiteKind};
use hsscan_wire::ProtocolVersion;
use serde::Serialize;
use std::fmt::Write as _;

/// One suite as `hsscan catalog --json` prints it.
#[derive(Debug, Serialize)]
pub struct SuiteRecord {
    pub id: String,
    pub name: &'static str,
    pub kind: SuiteKind,
    pub openssl_name: Option<&'static str>,
    pub gnutls_name: Option<&'static str>,
    /// The lowest version its RFC allows.
    pub min_version: Option<&'static str>,
    /// The highest version its RFC allows.
    pub max_version: Option<&'static str>,
    /// The lowest version a real implementation accepts it at.
    pub min_version_seen: Option<&'static str>,
    pub kx: Option<&'static str>,
    pub auth: Option<&'static str>,
    pub cipher: Option<&'static str>,
    pub mode: Option<&'static str>,
    pub bits: Option<u16>,
    pub mac: Option<&'static str>,
    pub aead: Option<bool>,
    pub forward_secrecy: Option<bool>,
    pub export: Option<bool>,
    pub iana_recommended: bool,
    pub grade: Option<&'static str>,
    pub grade_reason: Option<&'static str>,
}

impl From<&SuiteInfo> for SuiteRecord {
    fn from(s: &SuiteInfo) -> Self {
        let p = s.properties;
        Self {
            id: s.id.hex(),
            name: s.name,
            kind: s.kind,
            openssl_name: s.openssl_name,
            gnutls_name: s.gnutls_name,
            min_version: s.versions.and_then(|v| v.min.name()),
            max_version: s.versions.and_then(|v| v.max.name()),
            min_version_seen: s.versions.and_then(|v| v.min_seen.name()),
            kx: p.map(|p| p.kx),
            auth: p.map(|p| p.auth),
            cipher: p.map(|p| p.cipher),
            mode: p.map(|p| p.mode).filter(|m| !m.is_empty()),
            bits: p.map(|p| p.bits),
            mac: p.map(|p| p.mac),
            aead: p.map(|p| p.aead),
            forward_secrecy: p.map(|p| p.forward_secrecy),
            export: p.map(|p| p.export),
            iana_recommended: s.iana_recommended,
            grade: p.map(|p| p.grade.as_str()),
            grade_reason: p.map(|p| p.grade_reason),
        }
    }
}

/// One SSLv2 cipher spec as `hsscan catalog --protocol sslv2 --json` prints it.
#[derive(Debug, Serialize)]
pub struct Sslv2Record {
    pub id: String,
    pub name: &'static str,
    pub openssl_name: Option<&'static str>,
    pub cipher: &'static str,
    pub bits: u16,
    pub clear_key_bytes: u8,
    pub export: bool,
    pub grade: &'static str,
}

impl From<&Sslv2SpecInfo> for Sslv2Record {
    fn from(s: &Sslv2SpecInfo) -> Self {
        Self {
            id: s.id.hex(),
            name: s.name,
            openssl_name: s.openssl_name,
            cipher: s.cipher,
            bits: s.bits,
            clear_key_bytes: s.clear_key_bytes,
            export: s.export,
            // SSLv2 itself is broken (RFC 6176, DROWN): every spec is insecure.
            grade: "insecure",
        }
    }
}

/// The suites to list: all codepoints, or those worth offering at `protocol`.
pub fn select(protocol: Option<ProtocolVersion>) -> Vec<&'static SuiteInfo> {
    match protocol {
        None => catalog::SUITES.iter().collect(),
        Some(v) => catalog::suites_for(v).collect(),
    }
}

/// The JSON document: an array of suites (or of SSLv2 specs).
pub fn json(protocol: Option<ProtocolVersion>) -> serde_json::Result<String> {
    if protocol == Some(ProtocolVersion::SSL2) {
        let v: Vec<Sslv2Record> = catalog::SSLV2_SPECS.iter().map(Sslv2Record::from).collect();
        return serde_json::to_string_pretty(&v);
    }
    let v: Vec<SuiteRecord> = select(protocol).into_iter().map(SuiteRecord::from).collect();
    serde_json::to_string_pretty(&v)
}

fn versions(s: &SuiteInfo) -> String {
    let Some(r) = s.versions else { return "-".into() };
    let short = |v: ProtocolVersion| v.name().unwrap_or("?").replace("TLSv", "").replace("SSLv", "SSL");
    let lo = if version_rank(r.min_seen) < version_rank(r.min) {
        r.min_seen
    } else {
        r.min
    };
    if lo == r.max {
        short(lo)
    } else {
        format!("{}-{}", short(lo), short(r.max))
    }
}

/// The table for a terminal or a pipe, graded by colour when `colour`.
pub fn table(protocol: Option<ProtocolVersion>, colour: bool) -> String {
    let mut out = String::new();
    if protocol == Some(ProtocolVersion::SSL2) {
        let _ = writeln!(
            out,
            "{:<8}  {:<40}  {:<18}  {:>4}  {:<8}",
            "id", "name", "openssl", "bits", "grade"
        );
        for s in catalog::SSLV2_SPECS.iter() {
            let grade = crate::style::grade("insecure", Some(catalog::Grade::Insecure), colour);
            let _ = writeln!(
                out,
                "{:<8}  {:<40}  {:<18}  {:>4}  {}",
                s.id.hex(),
                s.name,
                s.openssl_name.unwrap_or("-"),
                s.bits,
                grade
            );
        }
        return out;
    }
    let rows = select(protocol);
    let _ = writeln!(
        out,
        "{:<6}  {:<52}  {:<32}  {:<9}  {:<14}  {:<20}  {:>4}  {:<7}  grade",
        "id", "name", "openssl", "versions", "kx/auth", "cipher", "bits", "mac"
    );
    for s in &rows {
        let (kxauth, cipher, bits, mac, grade) = match s.properties {
            Some(p) => {
                let cipher = if p.mode.is_empty() {
                    p.cipher.to_owned()
                } else {
                    format!("{}-{}", p.cipher, p.mode)
                };
                // TLS 1.3 suites leave key exchange and authentication to extensions.
                let kxauth = if p.kx.starts_with("any") {
                    "any".to_owned()
                } else {
                    format!("{}/{}", p.kx, p.auth)
                };
                (kxauth, cipher, p.bits.to_string(), p.mac.to_owned(), Some(p.grade))
            }
            None => ("-".into(), "-".into(), "-".into(), "-".into(), None),
        };
        let label = grade.map_or("signal", |g| g.as_str());
        let _ = writeln!(
            out,
            "{:<6}  {:<52}  {:<32}  {:<9}  {:<14}  {:<20}  {:>4}  {:<7}  {}",
            s.id.hex(),
            s.name,
            s.openssl_name.unwrap_or("-"),
            versions(s),
            kxauth,
            cipher,
            bits,
            mac,
            crate::style::grade(label, grade, colour)
        );
    }
    let _ = writeln!(out, "{} suites", rows.len());
    out
}
