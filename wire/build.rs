//! Generates the codepoint types and the cipher suite catalog from the data
//! files in `data/` (copied from the project's reference data, see
//! `data/README.md`). Every row is checked: ids unique, vocabulary known,
//! errors reported as `file:line: what`.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

type BuildResult<T> = Result<T, String>;

fn main() {
    if let Err(e) = run() {
        eprintln!("hsscan-wire build: {e}");
        std::process::exit(1);
    }
}

fn run() -> BuildResult<()> {
    let data = PathBuf::from("data");
    for f in ["tls-cipher-suites.csv", "sslv2-cipher-specs.csv", "tls-registries.json"] {
        println!("cargo:rerun-if-changed=data/{f}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);

    let mut codepoints = String::new();
    let mut catalog = String::new();
    cipher_suites(&data.join("tls-cipher-suites.csv"), &mut codepoints, &mut catalog)?;
    sslv2_specs(&data.join("sslv2-cipher-specs.csv"), &mut codepoints, &mut catalog)?;
    registries(&data.join("tls-registries.json"), &mut codepoints, &mut catalog)?;
    std::fs::write(out.join("codepoints_gen.rs"), codepoints).map_err(|e| e.to_string())?;
    std::fs::write(out.join("catalog_gen.rs"), catalog).map_err(|e| e.to_string())?;
    Ok(())
}

/// One codepoint: constant name, value, registry name.
struct Entry {
    ident: String,
    value: u32,
    name: String,
}

/// Turns a registry name into a SCREAMING_CASE identifier.
fn ident_of(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let s = s.trim_matches('_').to_string();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{s}")
    } else {
        s
    }
}

/// Writes one `codepoints!` invocation; identifiers made unique by suffixing
/// the value where two registry rows share a name (GREASE, the two paddings).
fn emit_codepoints(
    out: &mut String,
    doc: &str,
    ty: &str,
    repr: &str,
    entries: &mut [Entry],
    file: &str,
) -> BuildResult<()> {
    entries.sort_by_key(|e| e.value);
    let mut seen_values = HashSet::new();
    for e in entries.iter() {
        if !seen_values.insert(e.value) {
            return Err(format!("{file}: {ty}: duplicate value {:#x}", e.value));
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries.iter() {
        *counts.entry(e.ident.clone()).or_default() += 1;
    }
    let width = match repr {
        "u8" | "u16" => 4,
        _ => 6,
    };
    for e in entries.iter_mut() {
        if counts.get(&e.ident).copied().unwrap_or(0) > 1 {
            e.ident = format!("{}_{:0width$X}", e.ident, e.value);
        }
    }
    let mut idents = HashSet::new();
    for e in entries.iter() {
        if !idents.insert(e.ident.clone()) {
            return Err(format!("{file}: {ty}: identifier {} not unique", e.ident));
        }
    }
    writeln!(out, "codepoints! {{").ok();
    writeln!(out, "    /// {doc}").ok();
    writeln!(out, "    pub struct {ty}({repr}) {{").ok();
    for e in entries.iter() {
        writeln!(
            out,
            "        {} = {:#0w$x} => {:?},",
            e.ident,
            e.value,
            e.name,
            w = width + 2
        )
        .ok();
    }
    writeln!(out, "    }}\n}}\n").ok();
    Ok(())
}

fn parse_hex(s: &str) -> Option<u32> {
    let t = s.trim();
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))?;
    u32::from_str_radix(t, 16).ok()
}

fn version_code(s: &str) -> Option<&'static str> {
    Some(match s {
        "SSLv2" => "0x0002",
        "SSLv3" => "0x0300",
        "TLSv1.0" => "0x0301",
        "TLSv1.1" => "0x0302",
        "TLSv1.2" => "0x0303",
        "TLSv1.3" => "0x0304",
        _ => return None,
    })
}

fn yes_no(s: &str, file: &str, line: usize, field: &str) -> BuildResult<bool> {
    match s {
        "Y" => Ok(true),
        "N" => Ok(false),
        other => Err(format!("{file}:{line}: {field}: expected Y or N, found {other:?}")),
    }
}

/// Grades a suite from its properties; returns the grade and every reason
/// for it (the reasons of the worst grade that applies).
// One argument per catalog column the grade depends on; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
fn grade(
    kx: &str,
    auth: &str,
    enc: &str,
    mode: &str,
    bits: u32,
    mac: &str,
    aead: bool,
    pfs: bool,
    export: bool,
    iana_recommended: bool,
) -> (&'static str, String) {
    let mut insecure = Vec::new();
    if enc == "NULL" {
        insecure.push("no encryption (NULL cipher)");
    }
    if auth == "anon" || auth == "NULL" {
        insecure.push("no authentication (anonymous)");
    }
    if export {
        insecure.push("export grade");
    }
    if enc == "RC4" {
        insecure.push("RC4 (RFC 7465)");
    }
    if enc == "DES" {
        insecure.push("single DES");
    }
    if enc == "RC2" {
        insecure.push("RC2");
    }
    if mac == "MD5" {
        insecure.push("MD5 MAC");
    }
    if enc != "NULL" && bits > 0 && bits < 112 && !export && enc != "DES" && enc != "RC4" {
        insecure.push("key shorter than 112 bits");
    }
    if !insecure.is_empty() {
        return ("insecure", insecure.join("; "));
    }
    let mut weak = Vec::new();
    if enc == "3DES" {
        weak.push("3DES: 64-bit block (Sweet32)");
    }
    if enc == "IDEA" || enc == "SKIPJACK" || enc == "GOST28147" || enc == "MAGMA" {
        weak.push("64-bit block cipher");
    }
    if !pfs {
        if kx.starts_with("RSA") {
            weak.push("static RSA key exchange: no forward secrecy");
        } else {
            weak.push("no forward secrecy");
        }
    }
    if mode == "CBC" && mac == "SHA1" {
        weak.push("CBC with SHA-1 MAC");
    }
    if !weak.is_empty() {
        return ("weak", weak.join("; "));
    }
    if aead && iana_recommended {
        return ("recommended", "forward secrecy and AEAD, IANA recommended".to_string());
    }
    let mut why = Vec::new();
    if !aead {
        why.push("not AEAD");
    }
    if !iana_recommended {
        why.push("not IANA recommended");
    }
    ("secure", format!("forward secrecy; {}", why.join("; ")))
}

fn rust_str_opt(s: &str) -> String {
    if s.is_empty() {
        "None".to_string()
    } else {
        format!("Some({s:?})")
    }
}

fn cipher_suites(path: &Path, codepoints: &mut String, catalog: &mut String) -> BuildResult<()> {
    let file = "data/tls-cipher-suites.csv";
    let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("{file}: {e}"))?;
    let headers = rdr.headers().map_err(|e| format!("{file}: {e}"))?.clone();
    let col = |name: &str| -> BuildResult<usize> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{file}:1: missing column {name}"))
    };
    let c_code = col("code")?;
    let c_name = col("name")?;
    let c_status = col("iana_status")?;
    let c_rec = col("iana_recommended")?;
    let c_ossl = col("openssl_name")?;
    let c_gnutls = col("gnutls_name")?;
    let c_other = col("other_names")?;
    let c_family = col("protocol_family")?;
    let c_min = col("min_version_spec")?;
    let c_max = col("max_version_spec")?;
    let c_min_ossl = col("min_version_openssl")?;
    let c_kx = col("kx")?;
    let c_auth = col("auth")?;
    let c_enc = col("enc")?;
    let c_mode = col("enc_mode")?;
    let c_bits = col("enc_bits")?;
    let c_mac = col("mac")?;
    let c_aead = col("aead")?;
    let c_pfs = col("pfs")?;
    let c_export = col("export")?;
    let c_notes = col("notes")?;

    let mut entries = Vec::new();
    let mut rows = String::new();
    let mut last: Option<u32> = None;
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("{file}:{line}: {e}"))?;
        let get = |c: usize| rec.get(c).unwrap_or("").trim();
        let code = parse_hex(get(c_code)).ok_or_else(|| format!("{file}:{line}: code: not hex"))?;
        if code > 0xffff {
            return Err(format!("{file}:{line}: code: over 16 bits"));
        }
        if let Some(prev) = last {
            if code <= prev {
                return Err(format!("{file}:{line}: code {code:#06x} not sorted or duplicated"));
            }
        }
        last = Some(code);
        let name = get(c_name);
        if name.is_empty() {
            return Err(format!("{file}:{line}: name: empty"));
        }
        let kind = match get(c_status) {
            "iana-assigned" => "SuiteKind::Iana",
            "not-in-iana" => "SuiteKind::Legacy",
            "reserved-grease" => "SuiteKind::Grease",
            "scsv" => "SuiteKind::Scsv",
            other => return Err(format!("{file}:{line}: iana_status: unknown {other:?}")),
        };
        entries.push(Entry {
            ident: ident_of(name),
            value: code,
            name: name.to_string(),
        });
        let family = get(c_family);
        if !["SSLv3+", "TLS1.0+", "TLS1.2-only", "TLS1.3", "signal"].contains(&family) {
            return Err(format!("{file}:{line}: protocol_family: unknown {family:?}"));
        }
        let signal = family == "signal";
        let versions = if signal {
            "None".to_string()
        } else {
            let min = version_code(get(c_min)).ok_or_else(|| format!("{file}:{line}: min_version_spec: unknown"))?;
            let max = version_code(get(c_max)).ok_or_else(|| format!("{file}:{line}: max_version_spec: unknown"))?;
            let min_ossl = match get(c_min_ossl) {
                "" => min,
                v => version_code(v).ok_or_else(|| format!("{file}:{line}: min_version_openssl: unknown"))?,
            };
            format!("Some(VersionRange {{ min: ProtocolVersion({min}), max: ProtocolVersion({max}), min_seen: ProtocolVersion({min_ossl}) }})")
        };
        let props = if signal {
            "None".to_string()
        } else {
            let bits: u32 = get(c_bits)
                .parse()
                .map_err(|_| format!("{file}:{line}: enc_bits: not a number"))?;
            let aead = yes_no(get(c_aead), file, line, "aead")?;
            let pfs = yes_no(get(c_pfs), file, line, "pfs")?;
            let export = yes_no(get(c_export), file, line, "export")?;
            let recommended = get(c_rec) == "Y";
            let (kx, auth, enc, mode, mac) = (get(c_kx), get(c_auth), get(c_enc), get(c_mode), get(c_mac));
            for (field, v) in [("kx", kx), ("auth", auth), ("enc", enc), ("mac", mac)] {
                if v.is_empty() {
                    return Err(format!("{file}:{line}: {field}: empty for a cipher suite"));
                }
            }
            let (g, reason) = grade(kx, auth, enc, mode, bits, mac, aead, pfs, export, recommended);
            let grade = match g {
                "insecure" => "Grade::Insecure",
                "weak" => "Grade::Weak",
                "secure" => "Grade::Secure",
                _ => "Grade::Recommended",
            };
            format!(
                "Some(SuiteProperties {{ kx: {kx:?}, auth: {auth:?}, cipher: {enc:?}, mode: {mode:?}, bits: {bits}, mac: {mac:?}, aead: {aead}, forward_secrecy: {pfs}, export: {export}, grade: {grade}, grade_reason: {reason:?} }})"
            )
        };
        writeln!(
            rows,
            "    SuiteInfo {{ id: CipherSuite({code:#06x}), name: {name:?}, kind: {kind}, iana_recommended: {rec}, openssl_name: {ossl}, gnutls_name: {gnutls}, other_names: {other:?}, versions: {versions}, properties: {props}, notes: {notes:?} }},",
            rec = get(c_rec) == "Y",
            ossl = rust_str_opt(get(c_ossl)),
            gnutls = rust_str_opt(get(c_gnutls)),
            other = get(c_other),
            notes = get(c_notes),
        )
        .ok();
    }
    emit_codepoints(
        codepoints,
        "TLS cipher suite (IANA TLS Cipher Suites registry, GREASE, SCSVs and legacy non-IANA codes).",
        "CipherSuite",
        "u16",
        &mut entries,
        file,
    )?;
    writeln!(catalog, "/// Every cipher suite codepoint of the catalog, sorted by id.\npub static SUITES: [SuiteInfo; {}] = [\n{rows}];\n", entries.len()).ok();
    Ok(())
}

fn sslv2_specs(path: &Path, codepoints: &mut String, catalog: &mut String) -> BuildResult<()> {
    let file = "data/sslv2-cipher-specs.csv";
    let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("{file}: {e}"))?;
    let headers = rdr.headers().map_err(|e| format!("{file}: {e}"))?.clone();
    let col = |name: &str| -> BuildResult<usize> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{file}:1: missing column {name}"))
    };
    let (c_code, c_name, c_ossl, c_enc, c_bits, c_clear, c_export) = (
        col("code")?,
        col("name")?,
        col("openssl_name")?,
        col("enc")?,
        col("enc_bits")?,
        col("clear_key_bytes")?,
        col("export")?,
    );
    let mut entries = Vec::new();
    let mut rows = String::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("{file}:{line}: {e}"))?;
        let get = |c: usize| rec.get(c).unwrap_or("").trim();
        // The note row (0x00XXYY) explains how TLS suites appear in a v2 hello.
        let Some(code) = parse_hex(get(c_code)) else {
            continue;
        };
        let name = get(c_name);
        entries.push(Entry {
            ident: ident_of(name.trim_start_matches("SSL_CK_")),
            value: code,
            name: name.to_string(),
        });
        let bits: u32 = get(c_bits)
            .parse()
            .map_err(|_| format!("{file}:{line}: enc_bits: not a number"))?;
        let clear: u32 = match get(c_clear) {
            "" => 0,
            v => v
                .parse()
                .map_err(|_| format!("{file}:{line}: clear_key_bytes: not a number"))?,
        };
        let export = match get(c_export) {
            "yes" => true,
            "no" => false,
            other => return Err(format!("{file}:{line}: export: expected yes or no, found {other:?}")),
        };
        writeln!(
            rows,
            "    Sslv2SpecInfo {{ id: Sslv2CipherSpec({code:#08x}), name: {name:?}, openssl_name: {ossl}, cipher: {enc:?}, bits: {bits}, clear_key_bytes: {clear}, export: {export} }},",
            ossl = rust_str_opt(get(c_ossl)),
            enc = get(c_enc),
        )
        .ok();
    }
    emit_codepoints(
        codepoints,
        "SSLv2 CIPHER-SPEC (draft-hickman-netscape-ssl-00 and SSLeay additions), three bytes.",
        "Sslv2CipherSpec",
        "u32",
        &mut entries,
        file,
    )?;
    writeln!(
        catalog,
        "/// The SSLv2 cipher specs, sorted by id.\npub static SSLV2_SPECS: [Sslv2SpecInfo; {}] = [\n{rows}];\n",
        entries.len()
    )
    .ok();
    Ok(())
}

fn registries(path: &Path, codepoints: &mut String, catalog: &mut String) -> BuildResult<()> {
    let file = "data/tls-registries.json";
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;

    // (json key, type, repr, doc, how to clean a name)
    let tables: [(&str, &str, &str, &str); 17] = [
        (
            "protocol_versions",
            "ProtocolVersion",
            "u16",
            "Protocol version (SSLv2 to TLS 1.3, DTLS, TLS 1.3 drafts, GREASE).",
        ),
        (
            "content_types",
            "ContentType",
            "u8",
            "TLS record content type (RFC 8446 §5.1).",
        ),
        (
            "sslv2_message_types",
            "Sslv2MessageType",
            "u8",
            "SSLv2 message type (draft-hickman-netscape-ssl-00).",
        ),
        (
            "handshake_types",
            "HandshakeType",
            "u8",
            "TLS HandshakeType registry (RFC 8446 §4).",
        ),
        ("alert_levels", "AlertLevel", "u8", "TLS alert level (RFC 5246 §7.2)."),
        (
            "alert_descriptions",
            "AlertDescription",
            "u8",
            "TLS AlertDescription registry (RFC 8446 §6.2).",
        ),
        (
            "extension_types",
            "ExtensionType",
            "u16",
            "TLS ExtensionType registry, with non-IANA codes seen in the wild.",
        ),
        (
            "supported_groups",
            "NamedGroup",
            "u16",
            "TLS Supported Groups registry (RFC 8422, RFC 7919, ML-KEM and hybrids).",
        ),
        (
            "ec_point_formats",
            "EcPointFormat",
            "u8",
            "EC point format (RFC 8422 §5.1.2).",
        ),
        (
            "ec_curve_types",
            "EcCurveType",
            "u8",
            "EC curve type in a ServerKeyExchange (RFC 8422 §5.4).",
        ),
        (
            "signature_schemes",
            "SignatureScheme",
            "u16",
            "TLS SignatureScheme registry, with the TLS 1.2 hash/signature pairs.",
        ),
        (
            "compression_methods",
            "CompressionMethod",
            "u8",
            "TLS compression method (RFC 3749).",
        ),
        (
            "psk_key_exchange_modes",
            "PskKeyExchangeMode",
            "u8",
            "PSK key exchange mode (RFC 8446 §4.2.9).",
        ),
        (
            "certificate_compression_algorithms",
            "CertificateCompressionAlgorithm",
            "u16",
            "Certificate compression algorithm (RFC 8879).",
        ),
        (
            "certificate_status_types",
            "CertificateStatusType",
            "u8",
            "Certificate status type (RFC 6066 §8, RFC 6961).",
        ),
        (
            "client_certificate_types",
            "ClientCertificateType",
            "u8",
            "Client certificate type in a CertificateRequest (RFC 5246 §7.4.4).",
        ),
        ("heartbeat_modes", "HeartbeatMode", "u8", "Heartbeat mode (RFC 6520)."),
    ];
    for (key, ty, repr, doc) in tables {
        let list = json
            .get(key)
            .and_then(|v| v.as_array())
            .ok_or_else(|| format!("{file}: {key}: missing list"))?;
        let mut entries = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let where_ = format!("{file}: {key}[{i}]");
            let Some(obj) = item.as_object() else {
                return Err(format!("{where_}: not an object"));
            };
            let raw_name = obj
                .get("name")
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("{where_}: name missing"))?;
            // Ranges ("248-255", "0xFE00-0xFFFF") are registry notes, not codepoints.
            let value = match obj.get("value") {
                Some(serde_json::Value::Number(n)) => n.as_u64().map(|v| v as u32),
                Some(serde_json::Value::String(s)) => parse_hex(s),
                _ => None,
            };
            let Some(value) = value else { continue };
            if obj.get("iana").and_then(|v| v.as_str()) == Some("range") {
                continue;
            }
            let max = if repr == "u8" { 0xff } else { 0xffff };
            if value > max {
                return Err(format!("{where_}: value {value:#x} does not fit {repr}"));
            }
            // "rsa_md5 (TLS1.2 HashAlgorithm/SignatureAlgorithm pair)" -> "rsa_md5"
            let name = raw_name.split(" (").next().unwrap_or(raw_name).trim();
            let name = if key == "supported_groups" && name == "x25519" {
                "X25519"
            } else if key == "supported_groups" && name == "x448" {
                "X448"
            } else {
                name
            };
            entries.push(Entry {
                ident: ident_of(name),
                value,
                name: name.to_string(),
            });
        }
        emit_codepoints(codepoints, doc, ty, repr, &mut entries, file)?;
    }

    // Group facts: kind, key share sizes, TLS 1.3 use.
    let groups = json
        .get("supported_groups")
        .and_then(|v| v.as_array())
        .ok_or_else(|| format!("{file}: supported_groups: missing"))?;
    let mut rows = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        let Some(hex) = g.get("hex").and_then(|v| v.as_str()) else {
            continue;
        };
        let value = parse_hex(hex).ok_or_else(|| format!("{file}: supported_groups[{i}]: bad hex"))?;
        let kind = match g.get("kind").and_then(|v| v.as_str()).unwrap_or("") {
            "ec-char2" => "GroupKind::EcChar2",
            "ec-prime" => "GroupKind::EcPrime",
            k if k.starts_with("ec-brainpool") => "GroupKind::EcBrainpool",
            "ec-montgomery" => "GroupKind::Montgomery",
            "ec-gost" => "GroupKind::Gost",
            "ec-sm2" => "GroupKind::Sm2",
            "ffdhe" => "GroupKind::Ffdhe",
            "pq-kem" => "GroupKind::MlKem",
            "hybrid-pq" => "GroupKind::Hybrid",
            "grease" => "GroupKind::Grease",
            "explicit-curves" => "GroupKind::Explicit",
            other => return Err(format!("{file}: supported_groups[{i}]: unknown kind {other:?}")),
        };
        let len = |k: &str| {
            g.get(k)
                .and_then(|v| v.as_u64())
                .map_or("None".to_string(), |n| format!("Some({n})"))
        };
        let tls13 = g.get("tls13_usable").and_then(|v| v.as_str()) == Some("Y");
        let ossl = g.get("openssl_name").and_then(|v| v.as_str()).unwrap_or("");
        let ossl = ossl.split(" (").next().unwrap_or("");
        rows.insert(
            value,
            format!(
                "    GroupInfo {{ id: NamedGroup({value:#06x}), kind: {kind}, client_share_len: {}, server_share_len: {}, tls13: {tls13}, openssl_name: {} }},",
                len("key_share_len_client"),
                len("key_share_len_server"),
                rust_str_opt(ossl)
            ),
        );
    }
    writeln!(
        catalog,
        "/// Facts about each supported group, sorted by id.\npub static GROUPS: [GroupInfo; {}] = [",
        rows.len()
    )
    .ok();
    for r in rows.values() {
        writeln!(catalog, "{r}").ok();
    }
    writeln!(catalog, "];").ok();
    Ok(())
}
