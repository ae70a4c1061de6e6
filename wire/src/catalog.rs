//! The cipher suite catalog: every 2-byte suite codepoint we know (IANA,
//! GREASE, SCSVs and the legacy non-IANA codes scanners still probe), the
//! SSLv2 cipher specs, and group facts, generated from `data/`.
//!
//! Version ranges follow the defining RFCs (`min`/`max`); `min_seen` is the
//! lowest version a mainstream stack accepts the suite at (OpenSSL allows
//! most SHA-1 suites over SSLv3), which is what an exact enumeration must
//! offer.

use crate::codepoints::{CipherSuite, NamedGroup, ProtocolVersion, Sslv2CipherSpec};

/// Where a suite codepoint comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "kebab-case"))]
pub enum SuiteKind {
    /// Assigned in the IANA registry.
    Iana,
    /// Not in the IANA registry: drafts, vendor and legacy codes.
    Legacy,
    /// A GREASE value (RFC 8701).
    Grease,
    /// A signalling value (RFC 5746, RFC 7507).
    Scsv,
}

/// The protocol range where a suite is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VersionRange {
    /// The lowest version its RFC allows.
    pub min: ProtocolVersion,
    /// The highest version its RFC allows (TLS 1.0 for export suites).
    pub max: ProtocolVersion,
    /// The lowest version an implementation is known to accept it at.
    pub min_seen: ProtocolVersion,
}

/// A strength grade, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "kebab-case"))]
pub enum Grade {
    Insecure,
    Weak,
    Secure,
    Recommended,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Insecure => "insecure",
            Grade::Weak => "weak",
            Grade::Secure => "secure",
            Grade::Recommended => "recommended",
        }
    }
}

/// What a real cipher suite is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SuiteProperties {
    /// Key exchange, e.g. `ECDHE`, `RSA`, `RSA(512)` (export), `any(TLS1.3)`.
    pub kx: &'static str,
    /// Authentication, e.g. `RSA`, `ECDSA`, `anon`, `PSK`.
    pub auth: &'static str,
    /// Bulk cipher family, e.g. `AES`, `3DES`, `RC4`, `NULL`.
    pub cipher: &'static str,
    /// Cipher mode, e.g. `GCM`, `CBC`, `stream` (empty when not applicable).
    pub mode: &'static str,
    /// Nominal key bits (3DES: 168; RC4_40 export: 40).
    pub bits: u16,
    /// Record MAC, or `AEAD`.
    pub mac: &'static str,
    pub aead: bool,
    pub forward_secrecy: bool,
    pub export: bool,
    pub grade: Grade,
    /// Why it has this grade, e.g. `RC4 (RFC 7465); MD5 MAC`.
    pub grade_reason: &'static str,
}

/// One catalog row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SuiteInfo {
    pub id: CipherSuite,
    /// The IANA name, or the best-known name of a non-IANA code.
    pub name: &'static str,
    pub kind: SuiteKind,
    pub iana_recommended: bool,
    pub openssl_name: Option<&'static str>,
    pub gnutls_name: Option<&'static str>,
    /// Aliases used by other tools, `tool:name` separated by `;`.
    pub other_names: &'static str,
    /// `None` for signalling values.
    pub versions: Option<VersionRange>,
    /// `None` for signalling values.
    pub properties: Option<SuiteProperties>,
    pub notes: &'static str,
}

impl SuiteInfo {
    /// Valid at `v` according to its defining RFC.
    pub fn valid_in(&self, v: ProtocolVersion) -> bool {
        self.versions
            .is_some_and(|r| version_rank(r.min) <= version_rank(v) && version_rank(v) <= version_rank(r.max))
    }

    /// Worth offering at `v` in an enumeration: valid by the RFC, or
    /// accepted there by a real implementation. SSLv3 and TLS 1.0 share a
    /// handshake, and stacks accept TLS 1.0 suites over SSLv3 (OpenSSL the
    /// SHA-1 ones, tlslite-ng ECDHE-RSA-AES too), so at SSLv3 every suite
    /// valid at TLS 1.0 is offered.
    pub fn offerable_in(&self, v: ProtocolVersion) -> bool {
        let ssl3 = version_rank(ProtocolVersion::SSL3);
        let tls10 = version_rank(ProtocolVersion::TLS10);
        // TLS_NULL_WITH_NULL_NULL is the initial state, never negotiable.
        self.id != CipherSuite(0x0000)
            && self.versions.is_some_and(|r| {
                let mut lo = version_rank(r.min).min(version_rank(r.min_seen));
                if lo <= tls10 {
                    lo = lo.min(ssl3);
                }
                lo <= version_rank(v) && version_rank(v) <= version_rank(r.max)
            })
    }

    pub fn grade(&self) -> Option<Grade> {
        self.properties.map(|p| p.grade)
    }
}

/// Orders versions: SSLv2 < SSLv3 < TLS 1.0 < … < TLS 1.3; anything else
/// (drafts, DTLS, GREASE) ranks after TLS 1.3 so that it never falls in a
/// range by accident.
pub fn version_rank(v: ProtocolVersion) -> u32 {
    match v.0 {
        0x0002 => 1,
        0x0300..=0x0304 => u32::from(v.0 - 0x0300) + 2,
        _ => u32::MAX,
    }
}

include!(concat!(env!("OUT_DIR"), "/catalog_gen.rs"));

/// Looks up a suite by codepoint.
pub fn suite(id: CipherSuite) -> Option<&'static SuiteInfo> {
    SUITES
        .binary_search_by_key(&id, |s| s.id)
        .ok()
        .and_then(|i| SUITES.get(i))
}

/// Looks up a suite by its IANA, OpenSSL or GnuTLS name (case-insensitive),
/// or by a `0x…` id.
pub fn suite_by_name(name: &str) -> Option<&'static SuiteInfo> {
    let n = name.trim();
    if let Some(hex) = n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
        return u16::from_str_radix(hex, 16).ok().and_then(|v| suite(CipherSuite(v)));
    }
    let eq = |s: Option<&str>| s.is_some_and(|s| s.eq_ignore_ascii_case(n));
    SUITES
        .iter()
        .find(|s| eq(Some(s.name)))
        .or_else(|| SUITES.iter().find(|s| eq(s.openssl_name)))
        .or_else(|| SUITES.iter().find(|s| eq(s.gnutls_name)))
        .or_else(|| {
            SUITES.iter().find(|s| {
                s.other_names
                    .split(';')
                    .any(|o| eq(Some(o.split_once(':').map_or(o, |(_, v)| v))))
            })
        })
}

/// Every real suite worth offering at `v` (no GREASE, no SCSV), in id order.
pub fn suites_for(v: ProtocolVersion) -> impl Iterator<Item = &'static SuiteInfo> {
    SUITES.iter().filter(move |s| s.offerable_in(v))
}

/// What kind of group a codepoint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "kebab-case"))]
pub enum GroupKind {
    EcChar2,
    EcPrime,
    EcBrainpool,
    Montgomery,
    Gost,
    Sm2,
    Ffdhe,
    MlKem,
    Hybrid,
    Grease,
    Explicit,
}

/// Facts about a supported group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GroupInfo {
    pub id: NamedGroup,
    pub kind: GroupKind,
    /// Bytes of a client key share (RFC 8446 §4.2.8), where known.
    pub client_share_len: Option<u16>,
    /// Bytes of a server key share, where known.
    pub server_share_len: Option<u16>,
    /// Usable in TLS 1.3.
    pub tls13: bool,
    pub openssl_name: Option<&'static str>,
}

/// Looks up a group.
pub fn group(id: NamedGroup) -> Option<&'static GroupInfo> {
    GROUPS
        .binary_search_by_key(&id, |g| g.id)
        .ok()
        .and_then(|i| GROUPS.get(i))
}

/// One SSLv2 cipher spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Sslv2SpecInfo {
    pub id: Sslv2CipherSpec,
    pub name: &'static str,
    pub openssl_name: Option<&'static str>,
    pub cipher: &'static str,
    /// Secret key bits.
    pub bits: u16,
    /// Key bytes sent in clear (export specs: 11 of 16).
    pub clear_key_bytes: u8,
    pub export: bool,
}

/// Looks up an SSLv2 cipher spec.
pub fn sslv2_spec(id: Sslv2CipherSpec) -> Option<&'static Sslv2SpecInfo> {
    SSLV2_SPECS
        .binary_search_by_key(&id, |s| s.id)
        .ok()
        .and_then(|i| SSLV2_SPECS.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_every_row_sorted() {
        assert_eq!(SUITES.len(), 433);
        assert!(SUITES.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(SUITES.iter().filter(|s| s.kind == SuiteKind::Grease).count(), 16);
        assert_eq!(SUITES.iter().filter(|s| s.kind == SuiteKind::Scsv).count(), 2);
        assert_eq!(SUITES.iter().filter(|s| s.kind == SuiteKind::Iana).count(), 350);
        assert_eq!(SSLV2_SPECS.len(), 13);
    }

    #[test]
    fn lookup_by_either_name() {
        let s = suite_by_name("ECDHE-RSA-AES128-GCM-SHA256").unwrap();
        assert_eq!(s.id, CipherSuite(0xc02f));
        assert_eq!(
            suite_by_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").unwrap().id,
            CipherSuite(0xc02f)
        );
        assert_eq!(suite_by_name("aes128-sha").unwrap().id, CipherSuite(0x002f));
        assert_eq!(suite_by_name("0x1301").unwrap().name, "TLS_AES_128_GCM_SHA256");
        assert!(suite_by_name("NOPE").is_none());
    }

    #[test]
    fn version_ranges_follow_the_traps_in_the_data() {
        let v = |id| suite(CipherSuite(id)).unwrap();
        // TLS 1.3-only suites outside 0x13xx.
        for id in [
            0x00c6, 0x00c7, 0xc0b4, 0xc0b5, 0xc103, 0xc104, 0xc105, 0xc106, 0x1306, 0x1307,
        ] {
            assert!(v(id).valid_in(ProtocolVersion::TLS13), "{id:#x}");
            assert!(!v(id).valid_in(ProtocolVersion::TLS12), "{id:#x}");
        }
        // Export suites stop at TLS 1.0 (RFC 4346).
        assert!(v(0x0003).valid_in(ProtocolVersion::TLS10));
        assert!(!v(0x0003).valid_in(ProtocolVersion::TLS11));
        // SHA-256 PSK CBC suites work with TLS 1.0 (RFC 5487).
        assert!(v(0x00ae).valid_in(ProtocolVersion::TLS10));
        // AES-SHA is TLS 1.0+ by RFC, but OpenSSL accepts it over SSLv3.
        assert!(!v(0x002f).valid_in(ProtocolVersion::SSL3));
        assert!(v(0x002f).offerable_in(ProtocolVersion::SSL3));
        assert!(!v(0xc02f).offerable_in(ProtocolVersion::TLS11));
        // ECDHE-RSA-AES128-SHA: TLS 1.0 by RFC, taken over SSLv3 by tlslite-ng.
        assert!(v(0xc013).offerable_in(ProtocolVersion::SSL3));
        // TLS 1.2-only and TLS 1.3 suites never are.
        assert!(!v(0xc02f).offerable_in(ProtocolVersion::SSL3));
        assert!(!v(0x1301).offerable_in(ProtocolVersion::SSL3));
        // Signals and the initial NULL state are never offerable as suites.
        assert!(!v(0x0000).offerable_in(ProtocolVersion::TLS10));
        assert!(!v(0x5600).offerable_in(ProtocolVersion::TLS12));
    }

    #[test]
    fn grades_name_their_reason() {
        let p = |id| suite(CipherSuite(id)).unwrap().properties.unwrap();
        assert_eq!(p(0x0005).grade, Grade::Insecure); // RC4-SHA
        assert!(p(0x0005).grade_reason.contains("RC4"));
        assert_eq!(p(0x0003).grade, Grade::Insecure); // export
        assert_eq!(p(0x000a).grade, Grade::Weak); // 3DES, static RSA
        assert!(p(0x000a).grade_reason.contains("Sweet32"));
        assert_eq!(p(0x002f).grade, Grade::Weak); // static RSA
        assert_eq!(p(0xc013).grade, Grade::Weak); // CBC-SHA1
        assert_eq!(p(0xc027).grade, Grade::Secure); // ECDHE CBC-SHA256
        assert_eq!(p(0xc02f).grade, Grade::Recommended);
        assert_eq!(p(0x1301).grade, Grade::Recommended);
        assert_eq!(p(0x0018).grade, Grade::Insecure); // ADH-RC4-MD5
        assert_eq!(p(0xc0b4).grade, Grade::Insecure); // integrity only
    }

    #[test]
    fn group_share_sizes() {
        assert_eq!(group(NamedGroup::X25519).unwrap().client_share_len, Some(32));
        assert_eq!(group(NamedGroup::SECP384R1).unwrap().client_share_len, Some(97));
        assert_eq!(group(NamedGroup(0x11ec)).unwrap().client_share_len, Some(1216));
        assert_eq!(group(NamedGroup(0x0100)).unwrap().kind, GroupKind::Ffdhe);
    }

    #[test]
    fn sslv2_specs() {
        let s = sslv2_spec(Sslv2CipherSpec(0x020080)).unwrap();
        assert!(s.export);
        assert_eq!(s.clear_key_bytes, 11);
    }
}
