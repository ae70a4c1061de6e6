//! Client and server hello fingerprints: JA3 and JA3S (Salesforce: the MD5
//! of decimal fields, GREASE left out) and JA4 and JA4S (FoxIO,
//! `technical_details/JA4.md` and `JA4S.md`: TLS over TCP only here).

use hsscan_wire::{ClientExtension, ClientHello, ExtensionType, ServerHello};
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// GREASE values (RFC 8701) are left out of every fingerprint.
fn grease(v: u16) -> bool {
    hsscan_wire::is_grease_u16(v)
}

fn md5_hex(s: &str) -> String {
    hsscan_wire::hex(&Md5::digest(s.as_bytes()))
}

/// The first 12 hex digits of SHA-256, or twelve zeros for an empty list
/// (JA4.md: "this makes it clear to the user when a field has no values").
fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".to_owned();
    }
    let mut h = hsscan_wire::hex(&Sha256::digest(s.as_bytes()));
    h.truncate(12);
    h
}

/// Decimal values joined with `-`. Written digit by digit: fingerprints
/// are computed for every connection of a capture, so this is hot.
fn join_dec(v: impl Iterator<Item = u64>) -> String {
    let mut s = String::with_capacity(128);
    for (i, mut x) in v.enumerate() {
        if i > 0 {
            s.push('-');
        }
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (x % 10) as u8;
            n += 1;
            x /= 10;
            if x == 0 {
                break;
            }
        }
        s.extend(digits[..n].iter().rev().map(|&d| char::from(d)));
    }
    s
}

fn extension_types(hello: &ClientHello) -> Vec<u16> {
    hello.extensions.iter().flatten().map(|e| e.typ().0).collect()
}

/// JA3: `version,ciphers,extensions,groups,point_formats`, and its MD5.
pub fn ja3(hello: &ClientHello) -> (String, String) {
    let groups: Vec<u16> = match hello.extension(ExtensionType::SUPPORTED_GROUPS) {
        Some(ClientExtension::SupportedGroups(g)) => g.iter().map(|g| g.0).collect(),
        _ => Vec::new(),
    };
    let formats: Vec<u8> = match hello.extension(ExtensionType::EC_POINT_FORMATS) {
        Some(ClientExtension::EcPointFormats(f)) => f.iter().map(|f| f.0).collect(),
        _ => Vec::new(),
    };
    let s = format!(
        "{},{},{},{},{}",
        hello.legacy_version.0,
        join_dec(
            hello
                .cipher_suites
                .iter()
                .map(|c| c.0)
                .filter(|c| !grease(*c))
                .map(u64::from)
        ),
        join_dec(
            extension_types(hello)
                .into_iter()
                .filter(|e| !grease(*e))
                .map(u64::from)
        ),
        join_dec(groups.into_iter().filter(|g| !grease(*g)).map(u64::from)),
        join_dec(formats.into_iter().map(u64::from)),
    );
    let h = md5_hex(&s);
    (s, h)
}

/// JA3S: `version,cipher,extensions`, and its MD5.
pub fn ja3s(hello: &ServerHello) -> (String, String) {
    let exts: Vec<u16> = hello.extensions.iter().flatten().map(|e| e.typ().0).collect();
    let s = format!(
        "{},{},{}",
        hello.legacy_version.0,
        hello.cipher_suite.0,
        join_dec(exts.into_iter().filter(|e| !grease(*e)).map(u64::from)),
    );
    let h = md5_hex(&s);
    (s, h)
}

/// JA4's two-character version: 0x0304 is "13", …, 0x0300 "s3", 0x0002 "s2".
fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 | 0x0200 => "s2",
        0x0100 => "s1",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// First and last character of the first ALPN value (JA4.md "ALPN
/// Extension Value"): "00" when there is none; the first and last hex
/// digits when either end is not alphanumeric.
fn alpn_code(first: Option<&[u8]>) -> String {
    let Some(p) = first.filter(|p| !p.is_empty()) else {
        return "00".to_owned();
    };
    let (a, z) = match (p.first(), p.last()) {
        (Some(&a), Some(&z)) => (a, z),
        _ => return "00".to_owned(),
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        format!("{}{}", char::from(a), char::from(z))
    } else {
        let hex = hsscan_wire::hex(p);
        let first = hex.chars().next().unwrap_or('0');
        let last = hex.chars().last().unwrap_or('0');
        format!("{first}{last}")
    }
}

/// The inputs of JA4, GREASE already removed.
#[derive(Debug, Clone, Default)]
pub struct Ja4Input {
    /// The highest supported_versions value, else the hello's legacy version.
    pub version: u16,
    pub sni: bool,
    pub ciphers: Vec<u16>,
    /// Extension types in wire order (SNI and ALPN included).
    pub extensions: Vec<u16>,
    pub first_alpn: Option<Vec<u8>>,
    /// Signature algorithms in wire order.
    pub signature_algorithms: Vec<u16>,
}

impl Ja4Input {
    pub fn from_hello(hello: &ClientHello) -> Self {
        let versions: Vec<u16> = match hello.extension(ExtensionType::SUPPORTED_VERSIONS) {
            Some(ClientExtension::SupportedVersions(v)) => v.iter().map(|v| v.0).filter(|v| !grease(*v)).collect(),
            Some(ClientExtension::Raw { .. }) | None | Some(_) => Vec::new(),
        };
        let has_supported_versions = hello.extension(ExtensionType::SUPPORTED_VERSIONS).is_some();
        let version = if has_supported_versions {
            versions.iter().copied().max().unwrap_or(0)
        } else {
            hello.legacy_version.0
        };
        let first_alpn = match hello.extension(ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION) {
            Some(ClientExtension::Alpn(list)) => list.first().cloned(),
            _ => None,
        };
        let signature_algorithms = match hello.extension(ExtensionType::SIGNATURE_ALGORITHMS) {
            Some(ClientExtension::SignatureAlgorithms(s)) => s.iter().map(|s| s.0).filter(|s| !grease(*s)).collect(),
            _ => Vec::new(),
        };
        Self {
            version,
            sni: hello.extension(ExtensionType::SERVER_NAME).is_some(),
            ciphers: hello
                .cipher_suites
                .iter()
                .map(|c| c.0)
                .filter(|c| !grease(*c))
                .collect(),
            extensions: extension_types(hello).into_iter().filter(|e| !grease(*e)).collect(),
            first_alpn,
            signature_algorithms,
        }
    }

    /// `(ja4, ja4_r)`.
    pub fn fingerprint(&self) -> (String, String) {
        let a = format!(
            "t{}{}{:02}{:02}{}",
            version_code(self.version),
            if self.sni { 'd' } else { 'i' },
            self.ciphers.len().min(99),
            self.extensions.len().min(99),
            alpn_code(self.first_alpn.as_deref()),
        );
        let mut ciphers = self.ciphers.clone();
        ciphers.sort_unstable();
        let b = hex_list(&ciphers);
        let mut exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|e| {
                *e != ExtensionType::SERVER_NAME.0 && *e != ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION.0
            })
            .collect();
        exts.sort_unstable();
        let sigs = hex_list(&self.signature_algorithms);
        let exts = hex_list(&exts);
        // "If there are no signature algorithms … the string ends without an underscore."
        let c = if sigs.is_empty() {
            exts.clone()
        } else {
            format!("{exts}_{sigs}")
        };
        // With no extensions there are no signature algorithms either, so
        // an empty `c` is exactly JA4.md's "no extensions": twelve zeros.
        let c_hash = hash12(&c);
        (format!("{a}_{}_{c_hash}", hash12(&b)), format!("{a}_{b}_{c}"))
    }
}

/// Four lowercase hex digits per value, comma-separated (hot, as above).
fn hex_list(v: &[u16]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(5 * v.len());
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        for shift in [12, 8, 4, 0] {
            s.push(char::from(DIGITS[usize::from((x >> shift) & 0xf)]));
        }
    }
    s
}

/// JA4S: version, extension count and ALPN, the chosen suite, and the hash
/// of the extensions in the order the server sent them.
pub fn ja4s(hello: &ServerHello) -> String {
    let exts: Vec<u16> = hello.extensions.iter().flatten().map(|e| e.typ().0).collect();
    let a = format!(
        "t{}{:02}{}",
        version_code(hello.selected_version().0),
        exts.len().min(99),
        alpn_code(hello.alpn()),
    );
    format!("{a}_{:04x}_{}", hello.cipher_suite.0, hash12(&hex_list(&exts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JA4.md "Example" and "Raw Output": the spec's own worked values.
    fn spec_example() -> Ja4Input {
        Ja4Input {
            version: 0x0304,
            sni: true,
            ciphers: vec![
                0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d,
                0x002f, 0x0035,
            ],
            extensions: vec![
                0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01,
                0x000b, 0x000a, 0x0015,
            ],
            first_alpn: Some(b"h2".to_vec()),
            signature_algorithms: vec![0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601],
        }
    }

    #[test]
    fn ja4_matches_the_specification_example() {
        let (ja4, raw) = spec_example().fingerprint();
        assert_eq!(ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(
            raw,
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601"
        );
    }

    #[test]
    fn ja4_without_signature_algorithms_ends_without_underscore() {
        let mut input = spec_example();
        input.signature_algorithms.clear();
        let (ja4, raw) = input.fingerprint();
        // JA4.md: "0005,…,ff01 = 6d807ffa2a79".
        assert!(ja4.ends_with("_6d807ffa2a79"), "{ja4}");
        assert!(raw.ends_with("4469,ff01"), "{raw}");
    }

    #[test]
    fn ja4_empty_lists_hash_to_zeros() {
        let input = Ja4Input {
            version: 0x0301,
            ..Default::default()
        };
        assert_eq!(input.fingerprint().0, "t10i000000_000000000000_000000000000");
    }

    #[test]
    fn alpn_rules() {
        assert_eq!(alpn_code(Some(b"h2")), "h2");
        assert_eq!(alpn_code(Some(b"http/1.1")), "h1");
        assert_eq!(alpn_code(Some(b"h")), "hh");
        assert_eq!(alpn_code(None), "00");
        assert_eq!(alpn_code(Some(b"")), "00");
        // JA4.md's hex examples.
        assert_eq!(alpn_code(Some(&[0xab])), "ab");
        assert_eq!(alpn_code(Some(&[0xab, 0xcd])), "ad");
        assert_eq!(alpn_code(Some(&[0x30, 0xab])), "3b");
        assert_eq!(alpn_code(Some(&[0x30, 0x31, 0xab, 0xcd])), "3d");
        assert_eq!(alpn_code(Some(&[0x30, 0xab, 0xcd, 0x31])), "01");
    }

    #[test]
    fn ja4s_matches_the_specification_example() {
        use hsscan_wire::{CipherSuite, CompressionMethod, ProtocolVersion, ServerExtension};
        // JA4S.md: TLS 1.2, suite c030, extensions 0005,0017,ff01,0000.
        let hello = ServerHello {
            legacy_version: ProtocolVersion::TLS12,
            random: [0; 32],
            session_id: Vec::new(),
            cipher_suite: CipherSuite(0xc030),
            compression: CompressionMethod::NULL,
            extensions: Some(vec![
                ServerExtension::StatusRequest,
                ServerExtension::ExtendedMasterSecret,
                ServerExtension::RenegotiationInfo(Vec::new()),
                ServerExtension::ServerName,
            ]),
        };
        assert_eq!(ja4s(&hello), "t120400_c030_4e8089b08790");
        let (s, _) = ja3s(&hello);
        assert_eq!(s, "771,49200,5-23-65281-0");
    }

    #[test]
    fn ja3_leaves_grease_out() {
        use hsscan_wire::{CipherSuite, NamedGroup, ProtocolVersion};
        let mut hello = ClientHello::new(
            ProtocolVersion::TLS12,
            [0; 32],
            vec![CipherSuite(0x0a0a), CipherSuite(0x1301), CipherSuite(0x002f)],
        );
        hello.extensions = Some(vec![
            ClientExtension::Raw {
                typ: ExtensionType(0x1a1a),
                data: Vec::new(),
            },
            ClientExtension::SupportedGroups(vec![NamedGroup(0x2a2a), NamedGroup::X25519]),
            ClientExtension::EcPointFormats(vec![hsscan_wire::EcPointFormat::UNCOMPRESSED]),
        ]);
        let (s, h) = ja3(&hello);
        assert_eq!(s, "771,4865-47,10-11,29,0");
        assert_eq!(h.len(), 32);
    }
}
