//! Emulator profiles: what a receiver speaks and how it misbehaves. A
//! profile is a TOML file (format in the README); the shipped ones are
//! compiled in from `src/emulate/profiles/`.

use anyhow::{anyhow, bail, Context as _};
use hsscan_wire::{
    catalog, AlertDescription, CipherSuite, NamedGroup, ProtocolVersion, SignatureScheme, Sslv2CipherSpec,
};
use serde::Deserialize;

/// The shipped profiles: name and TOML text.
pub const SHIPPED: &[(&str, &str)] = &[
    ("exchange2007", include_str!("profiles/exchange2007.toml")),
    ("exchange2010", include_str!("profiles/exchange2010.toml")),
    ("exchange2016", include_str!("profiles/exchange2016.toml")),
    ("exchange2019", include_str!("profiles/exchange2019.toml")),
    ("postfix-default", include_str!("profiles/postfix-default.toml")),
    ("tls13-only", include_str!("profiles/tls13-only.toml")),
    ("lb-drop-after-hello", include_str!("profiles/lb-drop-after-hello.toml")),
    ("export-grade", include_str!("profiles/export-grade.toml")),
    ("sslv2", include_str!("profiles/sslv2.toml")),
    ("rate-limited", include_str!("profiles/rate-limited.toml")),
];

/// A profile file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    description: String,
    #[serde(default)]
    facts: String,
    smtp: Option<SmtpFile>,
    tls: TlsFile,
    #[serde(default)]
    misbehave: MisbehaveFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpFile {
    #[serde(default = "default_hostname")]
    hostname: String,
    /// `{hostname}` is replaced.
    #[serde(default = "default_banner")]
    banner: String,
    #[serde(default = "default_extensions")]
    extensions: Vec<String>,
    #[serde(default = "default_starttls")]
    starttls: String,
    #[serde(default)]
    greeting_delay_ms: u64,
    #[serde(default)]
    max_concurrent: usize,
    #[serde(default)]
    max_total: usize,
}

fn default_hostname() -> String {
    "mx.emulated.test".to_owned()
}
fn default_banner() -> String {
    "220 {hostname} ESMTP".to_owned()
}
fn default_extensions() -> Vec<String> {
    ["PIPELINING", "SIZE 10240000", "8BITMIME"].map(str::to_owned).to_vec()
}
fn default_starttls() -> String {
    "offer".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    versions: Vec<String>,
    #[serde(default)]
    ciphers: Vec<String>,
    #[serde(default)]
    sslv2_ciphers: Vec<String>,
    #[serde(default = "default_preference")]
    preference: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default = "default_dh_bits")]
    dh_bits: usize,
    #[serde(default)]
    signature_algorithms: Vec<String>,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default = "default_mismatch")]
    version_mismatch: String,
    #[serde(default = "default_no_cipher")]
    no_shared_cipher: String,
}

fn default_preference() -> String {
    "server".to_owned()
}
fn default_dh_bits() -> usize {
    2048
}
fn default_mismatch() -> String {
    "alert:protocol_version".to_owned()
}
fn default_no_cipher() -> String {
    "alert:handshake_failure".to_owned()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MisbehaveFile {
    after_hello: Option<String>,
    suite_window: Option<usize>,
    max_hello_bytes: Option<usize>,
    hello_size_window: Option<[usize; 2]>,
    #[serde(default)]
    split_records: bool,
    #[serde(default)]
    split_segments: bool,
    #[serde(default)]
    tls13_supported_versions: bool,
    #[serde(default)]
    unknown_extensions: bool,
    #[serde(default)]
    byte_delay_ms: u64,
    intolerance: Option<String>,
    max_key_share_bytes: Option<usize>,
    drop_extension: Option<String>,
    record_version: Option<String>,
    max_legacy_version: Option<String>,
    close_with_hello: Option<String>,
}

/// What the emulator does instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A fatal alert.
    Alert(AlertDescription),
    /// Close the connection (FIN) without a word.
    Close,
    /// Reset the connection (RST).
    Reset,
    /// Keep the connection open and say nothing until the client gives up.
    Silence,
}

impl Refusal {
    fn parse(s: &str, what: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "close" | "drop" => Self::Close,
            "reset" => Self::Reset,
            "silence" | "hang" => Self::Silence,
            _ => match s.strip_prefix("alert:") {
                Some(name) => Self::Alert(
                    AlertDescription::from_name(name)
                        .ok_or_else(|| anyhow!("{what}: unknown alert '{name}' (e.g. alert:handshake_failure)"))?,
                ),
                None => bail!("{what}: '{s}' is not close, reset, silence or alert:NAME"),
            },
        })
    }

    pub fn describe(self) -> String {
        match self {
            Self::Alert(a) => format!("alert {}", hsscan_wire::Alert::fatal(a)),
            Self::Close => "close".to_owned(),
            Self::Reset => "reset".to_owned(),
            Self::Silence => "silence".to_owned(),
        }
    }
}

/// The SMTP front of a profile.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub hostname: String,
    pub banner: String,
    pub extensions: Vec<String>,
    pub starttls: StartTls,
    pub greeting_delay_ms: u64,
    /// 421 past this many connections at once (0: no limit).
    pub max_concurrent: usize,
    /// 421 past this many connections in all (0: no limit).
    pub max_total: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    Offer,
    Absent,
    /// Advertised, then answered `454 4.7.0`.
    Reject,
}

/// Server features, each answered only when the client asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    pub secure_renegotiation: bool,
    pub extended_master_secret: bool,
    pub encrypt_then_mac: bool,
    pub session_ticket: bool,
    pub ocsp_stapling: bool,
    pub heartbeat: bool,
    pub compression: bool,
    pub fallback_scsv: bool,
}

/// The TLS responder of a profile.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Lowest first.
    pub versions: Vec<ProtocolVersion>,
    pub ciphers: Vec<CipherSuite>,
    pub sslv2_ciphers: Vec<Sslv2CipherSpec>,
    pub server_preference: bool,
    pub groups: Vec<NamedGroup>,
    pub dh_bits: usize,
    /// TLS 1.2 ServerKeyExchange schemes in the server's order; empty: the
    /// emulator's default order ([`super::keys::default_schemes`]).
    pub signature_algorithms: Vec<SignatureScheme>,
    pub features: Features,
    pub version_mismatch: Refusal,
    pub no_shared_cipher: Refusal,
}

/// Intolerances and other misbehaviour.
#[derive(Debug, Clone, Default)]
pub struct Misbehave {
    pub after_hello: Option<Refusal>,
    pub suite_window: Option<usize>,
    pub max_hello_bytes: Option<usize>,
    pub hello_size_window: Option<(usize, usize)>,
    pub split_records: bool,
    pub split_segments: bool,
    pub tls13_supported_versions: bool,
    pub unknown_extensions: bool,
    pub byte_delay_ms: u64,
    /// What an intolerance does (default: reset).
    pub intolerance: Option<Refusal>,
    /// Drops hellos whose key_share extension carries more bytes than this
    /// (a device that chokes on post-quantum shares).
    pub max_key_share_bytes: Option<usize>,
    /// Drops hellos carrying this one extension.
    pub drop_extension: Option<hsscan_wire::ExtensionType>,
    /// Drops hellos in records of any other version.
    pub record_version: Option<ProtocolVersion>,
    /// Drops hellos whose legacy_version (client_version) is above this:
    /// version intolerance, the servers that broke when clients first
    /// offered TLS 1.2.
    pub max_legacy_version: Option<ProtocolVersion>,
    /// What it does with a hello whose client closed its side with it
    /// (TCP half-close before the answer): a server or device that takes
    /// the early close for the end of the connection.
    pub close_with_hello: Option<Refusal>,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub facts: String,
    pub smtp: Option<Smtp>,
    pub tls: Tls,
    pub misbehave: Misbehave,
}

/// A suite by IANA name, OpenSSL name or `0x` code.
fn suite(s: &str) -> anyhow::Result<CipherSuite> {
    if let Some(hex) = s.strip_prefix("0x") {
        return u16::from_str_radix(hex, 16)
            .map(CipherSuite)
            .map_err(|_| anyhow!("cipher '{s}' is not a 16-bit hex code"));
    }
    catalog::suite_by_name(s)
        .map(|i| i.id)
        .ok_or_else(|| anyhow!("unknown cipher suite '{s}' (IANA or OpenSSL name, or 0xNNNN; see hsscan catalog)"))
}

fn group(s: &str) -> anyhow::Result<NamedGroup> {
    if let Some(hex) = s.strip_prefix("0x") {
        return u16::from_str_radix(hex, 16)
            .map(NamedGroup)
            .map_err(|_| anyhow!("group '{s}' is not a 16-bit hex code"));
    }
    let alias = match s.to_ascii_lowercase().as_str() {
        "x25519" => "x25519",
        "x448" => "x448",
        "p-256" | "prime256v1" | "secp256r1" => "secp256r1",
        "p-384" | "secp384r1" => "secp384r1",
        "p-521" | "secp521r1" => "secp521r1",
        _ => s,
    }
    .to_owned();
    NamedGroup::from_name(&alias)
        .or_else(|| catalog::GROUPS.iter().find(|g| g.openssl_name == Some(s)).map(|g| g.id))
        .ok_or_else(|| anyhow!("unknown group '{s}' (e.g. x25519, secp256r1, ffdhe2048)"))
}

/// A TLS 1.2 scheme the emulator can sign with, by registry name.
fn signature_scheme(s: &str) -> anyhow::Result<SignatureScheme> {
    use super::keys::{can_sign, Family};
    SignatureScheme::from_name(s)
        .filter(|v| can_sign(Family::Rsa, *v) || can_sign(Family::Ec, *v))
        .ok_or_else(|| {
            anyhow!(
                "tls.signature_algorithms: '{s}' is not one the emulator signs with (rsa_pkcs1_sha1/sha256/sha384/sha512, rsa_pss_rsae_sha256/sha384/sha512, ecdsa_sha1, ecdsa_secp256r1_sha256, ecdsa_secp384r1_sha384, ecdsa_secp521r1_sha512)"
            )
        })
}

fn sslv2_spec(s: &str) -> anyhow::Result<Sslv2CipherSpec> {
    catalog::SSLV2_SPECS
        .iter()
        .find(|i| i.name == s || i.openssl_name == Some(s))
        .map(|i| i.id)
        .ok_or_else(|| anyhow!("unknown SSLv2 cipher spec '{s}'"))
}

impl Profile {
    /// A shipped profile by name.
    pub fn shipped(name: &str) -> anyhow::Result<Self> {
        let (_, text) = SHIPPED.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
            anyhow!(
                "unknown profile '{name}'; shipped: {} (or --config FILE)",
                names.join(", ")
            )
        })?;
        Self::parse(name, text).with_context(|| format!("shipped profile {name}"))
    }

    /// A profile file.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading profile {}", path.display()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::parse(&name, &text).with_context(|| format!("reading profile {}", path.display()))
    }

    pub fn parse(name: &str, text: &str) -> anyhow::Result<Self> {
        let f: File = toml::from_str(text).map_err(|e| anyhow!("{}", e.message()))?;
        let smtp = f
            .smtp
            .map(|s| -> anyhow::Result<Smtp> {
                Ok(Smtp {
                    banner: s.banner.replace("{hostname}", &s.hostname),
                    hostname: s.hostname,
                    extensions: s.extensions,
                    starttls: match s.starttls.as_str() {
                        "offer" => StartTls::Offer,
                        "absent" => StartTls::Absent,
                        "reject" => StartTls::Reject,
                        o => bail!("smtp.starttls: '{o}' is not offer, absent or reject"),
                    },
                    greeting_delay_ms: s.greeting_delay_ms,
                    max_concurrent: s.max_concurrent,
                    max_total: s.max_total,
                })
            })
            .transpose()?;
        let t = f.tls;
        let mut versions = t
            .versions
            .iter()
            .map(|v| {
                ProtocolVersion::parse_user(v)
                    .ok_or_else(|| anyhow!("tls.versions: '{v}' is not SSLv2, SSLv3 or TLSv1.0 … TLSv1.3"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        versions.sort_by_key(|v| catalog::version_rank(*v));
        versions.dedup();
        if versions.is_empty() {
            bail!("tls.versions is empty");
        }
        let mut features = Features::default();
        for name in &t.features {
            let slot = match name.as_str() {
                "secure_renegotiation" | "renegotiation_info" => &mut features.secure_renegotiation,
                "extended_master_secret" => &mut features.extended_master_secret,
                "encrypt_then_mac" => &mut features.encrypt_then_mac,
                "session_ticket" => &mut features.session_ticket,
                "ocsp_stapling" => &mut features.ocsp_stapling,
                "heartbeat" => &mut features.heartbeat,
                "compression" => &mut features.compression,
                "fallback_scsv" => &mut features.fallback_scsv,
                o => bail!(
                    "tls.features: unknown '{o}' (secure_renegotiation, extended_master_secret, encrypt_then_mac, session_ticket, ocsp_stapling, heartbeat, compression, fallback_scsv)"
                ),
            };
            *slot = true;
        }
        let tls = Tls {
            versions,
            ciphers: t.ciphers.iter().map(|s| suite(s)).collect::<anyhow::Result<_>>()?,
            sslv2_ciphers: t
                .sslv2_ciphers
                .iter()
                .map(|s| sslv2_spec(s))
                .collect::<anyhow::Result<_>>()?,
            server_preference: match t.preference.as_str() {
                "server" => true,
                "client" => false,
                o => bail!("tls.preference: '{o}' is not server or client"),
            },
            groups: t.groups.iter().map(|s| group(s)).collect::<anyhow::Result<_>>()?,
            dh_bits: match super::kx::dh_group(t.dh_bits) {
                Some(g) => g.bits,
                None => bail!(
                    "tls.dh_bits: {} is none of {} (the sizes with a real DH group)",
                    t.dh_bits,
                    super::kx::dh_sizes()
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            signature_algorithms: t
                .signature_algorithms
                .iter()
                .map(|s| signature_scheme(s))
                .collect::<anyhow::Result<_>>()?,
            features,
            version_mismatch: Refusal::parse(&t.version_mismatch, "tls.version_mismatch")?,
            no_shared_cipher: Refusal::parse(&t.no_shared_cipher, "tls.no_shared_cipher")?,
        };
        let m = f.misbehave;
        let misbehave = Misbehave {
            after_hello: m
                .after_hello
                .as_deref()
                .map(|s| Refusal::parse(s, "misbehave.after_hello"))
                .transpose()?,
            suite_window: m.suite_window,
            max_hello_bytes: m.max_hello_bytes,
            hello_size_window: m.hello_size_window.map(|[a, b]| (a, b)),
            split_records: m.split_records,
            split_segments: m.split_segments,
            tls13_supported_versions: m.tls13_supported_versions,
            unknown_extensions: m.unknown_extensions,
            byte_delay_ms: m.byte_delay_ms,
            intolerance: m
                .intolerance
                .as_deref()
                .map(|s| Refusal::parse(s, "misbehave.intolerance"))
                .transpose()?,
            max_key_share_bytes: m.max_key_share_bytes,
            close_with_hello: m
                .close_with_hello
                .as_deref()
                .map(|s| Refusal::parse(s, "misbehave.close_with_hello"))
                .transpose()?,
            drop_extension: m
                .drop_extension
                .as_deref()
                .map(|s| {
                    s.strip_prefix("0x")
                        .and_then(|h| u16::from_str_radix(h, 16).ok())
                        .map(hsscan_wire::ExtensionType)
                        .or_else(|| hsscan_wire::ExtensionType::from_name(s))
                        .ok_or_else(|| anyhow!("misbehave.drop_extension: '{s}' is no extension name or 0x code"))
                })
                .transpose()?,
            record_version: m
                .record_version
                .as_deref()
                .map(|s| {
                    s.strip_prefix("0x")
                        .and_then(|h| u16::from_str_radix(h, 16).ok())
                        .map(ProtocolVersion)
                        .ok_or_else(|| anyhow!("misbehave.record_version: '{s}' is not a 0x code such as 0x0301"))
                })
                .transpose()?,
            max_legacy_version: m
                .max_legacy_version
                .as_deref()
                .map(|s| {
                    s.strip_prefix("0x")
                        .and_then(|h| u16::from_str_radix(h, 16).ok())
                        .map(ProtocolVersion)
                        .ok_or_else(|| anyhow!("misbehave.max_legacy_version: '{s}' is not a 0x code such as 0x0301"))
                })
                .transpose()?,
        };
        Ok(Self {
            name: name.to_owned(),
            description: f.description,
            facts: f.facts,
            smtp,
            tls,
            misbehave,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_parses() {
        for (name, _) in SHIPPED {
            let p = Profile::shipped(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!p.description.is_empty(), "{name}");
            assert!(!p.facts.is_empty(), "{name} names no facts");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = Profile::parse("x", "description = \"x\"\n[tls]\nversions = [\"TLSv9\"]\n").unwrap_err();
        assert!(format!("{e:#}").contains("tls.versions"), "{e:#}");
        let e = Profile::parse(
            "x",
            "description = \"x\"\n[tls]\nversions = [\"TLSv1.2\"]\nciphers = [\"NOPE\"]\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("NOPE"), "{e:#}");
        let e = Profile::parse(
            "x",
            "description = \"x\"\n[tls]\nversions = [\"TLSv1.2\"]\ndh_bits = 1000\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("1024, 1536, 2048"), "{e:#}");
        let e = Profile::parse(
            "x",
            "description = \"x\"\n[tls]\nversions = [\"TLSv1.2\"]\nsignature_algorithms = [\"ed25519\"]\n",
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("tls.signature_algorithms: 'ed25519'"),
            "{e:#}"
        );
    }
}
