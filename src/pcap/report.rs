//! The capture result (SPEC §3b): one record per TCP connection that
//! carried TLS or an SMTP dialog, as JSON Lines, a readable block, or one
//! line (`--brief`).

use crate::certs::CertInfo;
use crate::outcome::FailureKind;
use hsscan_wire::{
    AlertDescription, AlertLevel, CipherSuite, CompressionMethod, EcPointFormat, ExtensionType, NamedGroup,
    ProtocolVersion, SignatureScheme, Sslv2CipherSpec,
};
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// Codepoints in a record, written as JSON: each value's `{"id": …,
/// "name": …}` is rendered once per thread and copied after that. A
/// record is mostly codepoints, and serde_json escapes every string (keys
/// too) as it writes it: this was the largest part of writing `--json`.
mod cp {
    use serde::{Serialize, Serializer};
    use serde_json::value::RawValue;
    use std::any::{Any, TypeId};
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::Hash;

    /// Values rendered per codepoint type at most (a damaged capture could
    /// show every u16); past that a value is written directly.
    const MAX_PER_TYPE: usize = 4096;

    thread_local! {
        static RENDERED: RefCell<HashMap<TypeId, Box<dyn Any>>> = RefCell::default();
    }

    /// One codepoint, written from the rendered copy.
    struct Cp<T>(T);

    impl<T: Serialize + Copy + Eq + Hash + 'static> Serialize for Cp<T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let v = self.0;
            // Written while the cache is borrowed: a raw value is copied out
            // as it is, without reaching the cache again.
            RENDERED.with(|cell| {
                let mut all = cell.borrow_mut();
                let map = all
                    .entry(TypeId::of::<T>())
                    .or_insert_with(|| Box::new(HashMap::<T, Box<RawValue>>::new()));
                let Some(map) = map.downcast_mut::<HashMap<T, Box<RawValue>>>() else {
                    return v.serialize(s);
                };
                if !map.contains_key(&v) && map.len() < MAX_PER_TYPE {
                    let rendered = serde_json::to_string(&v)
                        .ok()
                        .and_then(|j| RawValue::from_string(j).ok());
                    if let Some(r) = rendered {
                        map.insert(v, r);
                    }
                }
                match map.get(&v) {
                    Some(r) => r.serialize(s),
                    None => v.serialize(s),
                }
            })
        }
    }

    pub fn one<T: Serialize + Copy + Eq + Hash + 'static, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        Cp(*v).serialize(s)
    }

    pub fn opt<T: Serialize + Copy + Eq + Hash + 'static, S: Serializer>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.map(Cp).serialize(s)
    }

    pub fn list<T: Serialize + Copy + Eq + Hash + 'static, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| Cp(*x)))
    }
}

/// One connection (SPEC §3b).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRecord {
    pub record: &'static str,
    /// The capture file, as named on the command line.
    pub capture: String,
    pub client_ip: String,
    pub client_port: u16,
    pub server_ip: String,
    pub server_port: u16,
    /// Capture timestamp of the connection's first packet, RFC 3339 UTC.
    pub started: String,
    /// `smtp` when the client sent STARTTLS and TLS followed it, else `none`
    /// (a banner followed by a ClientHello is implicit TLS).
    pub starttls: &'static str,
    pub smtp: Option<SmtpSeen>,
    /// Cleartext before the TLS, text or binary; null when the connection
    /// began with TLS.
    pub preamble: Option<Preamble>,
    pub client_hello: Option<ClientHelloSeen>,
    /// ClientHellos the client sent (2 after a HelloRetryRequest).
    pub client_hellos: u32,
    pub hello_retry_request: bool,
    /// The group a HelloRetryRequest asked for.
    #[serde(serialize_with = "cp::opt")]
    pub retry_group: Option<NamedGroup>,
    pub server_hello: Option<ServerHelloSeen>,
    #[serde(serialize_with = "cp::opt")]
    pub negotiated_version: Option<ProtocolVersion>,
    pub server_key_exchange: Option<KeyExchangeSeen>,
    pub alerts: Vec<AlertSeen>,
    /// Null: no Certificate message seen in the clear; `[]`: an empty one.
    /// Shared with the analysis's certificate cache: a capture shows the
    /// same few certificates over and over.
    pub server_certificates: Option<Vec<Arc<CertInfo>>>,
    pub client_certificates: Option<Vec<Arc<CertInfo>>>,
    pub ja3: Option<String>,
    pub ja3_string: Option<String>,
    pub ja3s: Option<String>,
    pub ja3s_string: Option<String>,
    pub ja4: Option<String>,
    pub ja4_r: Option<String>,
    pub ja4s: Option<String>,
    pub ended: Ended,
    pub verdict: Verdict,
    /// Bytes each way on the wire (TCP payload, as captured).
    pub bytes: Bytes,
    /// What could not be read for this connection: missing segments, a
    /// mid-stream start, anything over a cap.
    pub warnings: Vec<String>,
    /// The first hello's bytes as the client's segments carried them (kept for --replay).
    #[serde(skip)]
    pub hello_writes: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Bytes {
    pub client: u64,
    pub server: u64,
}

/// The SMTP dialog before TLS.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SmtpSeen {
    /// The greeting, lines joined with `\n`.
    pub banner: Option<String>,
    /// The EHLO (or HELO) name the client sent.
    pub ehlo: Option<String>,
    /// The reply to EHLO, verbatim.
    pub ehlo_reply: Option<String>,
    /// EHLO keywords with their parameters.
    pub extensions: Vec<String>,
    /// Whether the client sent STARTTLS.
    pub starttls_sent: bool,
    /// The reply to STARTTLS, verbatim.
    pub starttls_reply: Option<String>,
}

/// Cleartext before the TLS, text or binary.
#[derive(Debug, Clone, Serialize)]
pub struct Preamble {
    /// `smtp`, `imap`, `pop3`, `xmpp`, `irc`, `ftp`, `ldap`, `socks4`,
    /// `socks5`, `http-connect` or `other`.
    pub protocol: &'static str,
    /// Cleartext bytes each way before the TLS (all of them when no TLS followed).
    pub client_bytes: u64,
    pub server_bytes: u64,
    /// The first line each way when the preamble is text, byte-exact.
    pub client: Option<String>,
    pub server: Option<String>,
}

/// The first ClientHello.
#[derive(Debug, Clone, Serialize)]
pub struct ClientHelloSeen {
    /// The record-layer version of its first record (SSLv2 for an SSLv2-format hello).
    #[serde(serialize_with = "cp::one")]
    pub record_version: ProtocolVersion,
    #[serde(serialize_with = "cp::one")]
    pub legacy_version: ProtocolVersion,
    #[serde(serialize_with = "cp::list")]
    pub supported_versions: Vec<ProtocolVersion>,
    #[serde(serialize_with = "cp::list")]
    pub cipher_suites: Vec<CipherSuite>,
    /// SSLv2-format hellos: every cipher spec, SSLv2 kinds included.
    pub sslv2_cipher_specs: Option<Vec<Sslv2CipherSpec>>,
    #[serde(serialize_with = "cp::list")]
    pub extensions: Vec<ExtensionType>,
    /// Byte-exact (`\xNN` for bytes that are not UTF-8), as is each ALPN name.
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    #[serde(serialize_with = "cp::list")]
    pub supported_groups: Vec<NamedGroup>,
    #[serde(serialize_with = "cp::list")]
    pub ec_point_formats: Vec<EcPointFormat>,
    #[serde(serialize_with = "cp::list")]
    pub signature_algorithms: Vec<SignatureScheme>,
    #[serde(serialize_with = "cp::list")]
    pub key_share_groups: Vec<NamedGroup>,
    #[serde(serialize_with = "cp::list")]
    pub compression_methods: Vec<CompressionMethod>,
    /// On the wire, record headers included.
    pub bytes: usize,
    /// Records the hello spanned.
    pub records: usize,
    pub sslv2_format: bool,
}

/// The ServerHello (the last one that is not a retry request).
#[derive(Debug, Clone, Serialize)]
pub struct ServerHelloSeen {
    /// 0x0002 for an SSLv2 SERVER-HELLO.
    #[serde(serialize_with = "cp::one")]
    pub legacy_version: ProtocolVersion,
    #[serde(serialize_with = "cp::one")]
    pub selected_version: ProtocolVersion,
    /// Null for an SSLv2 SERVER-HELLO, which lists cipher specs instead.
    #[serde(serialize_with = "cp::opt")]
    pub cipher_suite: Option<CipherSuite>,
    /// An SSLv2 SERVER-HELLO's cipher specs; null for a TLS ServerHello.
    pub sslv2_cipher_specs: Option<Vec<Sslv2CipherSpec>>,
    #[serde(serialize_with = "cp::list")]
    pub extensions: Vec<ExtensionType>,
    /// Byte-exact (`\xNN` for bytes that are not UTF-8).
    pub alpn: Option<String>,
    #[serde(serialize_with = "cp::opt")]
    pub key_share_group: Option<NamedGroup>,
    /// Null for an SSLv2 SERVER-HELLO.
    #[serde(serialize_with = "cp::opt")]
    pub compression: Option<CompressionMethod>,
    /// The TLS 1.3 downgrade sentinel, when the random carries one.
    pub downgrade: Option<&'static str>,
}

/// What a TLS ≤ 1.2 ServerKeyExchange says.
#[derive(Debug, Clone, Serialize)]
pub struct KeyExchangeSeen {
    /// `ecdhe`, `dhe`, `rsa-export`, `psk` or `opaque`.
    pub kind: &'static str,
    #[serde(serialize_with = "cp::opt")]
    pub group: Option<NamedGroup>,
    pub dh_bits: Option<usize>,
    #[serde(serialize_with = "cp::opt")]
    pub signature_scheme: Option<SignatureScheme>,
}

/// A cleartext alert and who sent it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertSeen {
    pub from: &'static str,
    #[serde(serialize_with = "cp::one")]
    pub level: AlertLevel,
    #[serde(serialize_with = "cp::one")]
    pub description: AlertDescription,
}

/// How and by whom the connection ended.
#[derive(Debug, Clone, Serialize)]
pub struct Ended {
    /// `client`, `server` or `capture-end`.
    pub by: &'static str,
    /// `fin`, `rst` or `none`.
    pub how: &'static str,
    /// The last handshake message seen before the end (either side).
    pub after: Option<String>,
}

/// The verdict (SPEC §3 failure kinds).
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `established`, `failed` or `incomplete`.
    pub outcome: &'static str,
    /// The failure kind; null when established or incomplete.
    pub kind: Option<FailureKind>,
    pub message: String,
}

fn cp_name(name: Option<&'static str>, hex: String) -> String {
    name.map_or(hex, str::to_owned)
}

fn suite_name(h: &ServerHelloSeen) -> String {
    match h.cipher_suite {
        Some(c) => cp_name(c.name(), c.hex()),
        None => "(SSLv2 cipher specs)".to_owned(),
    }
}

/// Network bytes as text, byte-exact: UTF-8 as is, every byte that is not
/// part of valid UTF-8 as `\xNN` (SPEC §3).
pub fn text_of(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// The readable block for a terminal.
pub fn block(r: &ConnectionRecord) -> String {
    let mut s = String::new();
    let transport = match (r.starttls, &r.preamble, &r.client_hello) {
        ("smtp", _, _) => "SMTP STARTTLS".to_owned(),
        (_, Some(p), Some(_)) => format!("{} cleartext, then TLS", p.protocol),
        (_, Some(p), None) => format!("{} cleartext", p.protocol),
        _ => "implicit TLS".to_owned(),
    };
    let _ = writeln!(
        s,
        "{} {}:{} -> {}:{}  {}  {}",
        r.started,
        bracket(&r.client_ip),
        r.client_port,
        bracket(&r.server_ip),
        r.server_port,
        transport,
        crate::style::escape(&r.capture)
    );
    // Every line's text may hold what the capture's peers sent: escaped
    // for the terminal (SPEC §2).
    let line = |s: &mut String, label: &str, text: &str| {
        let _ = writeln!(s, "  {label:<14}{}", crate::style::escape(text));
    };
    if let Some(smtp) = &r.smtp {
        if let Some(b) = &smtp.banner {
            line(&mut s, "banner", &b.replace('\n', " / "));
        }
        if let Some(e) = &smtp.ehlo {
            let ext = if smtp.extensions.is_empty() {
                String::new()
            } else {
                format!(" -> {}", smtp.extensions.join(", "))
            };
            line(&mut s, "ehlo", &format!("{e}{ext}"));
        }
        if smtp.starttls_sent {
            line(
                &mut s,
                "starttls",
                smtp.starttls_reply.as_deref().unwrap_or("(no reply captured)"),
            );
        }
    }
    if let Some(p) = r.preamble.as_ref().filter(|p| p.protocol != "smtp") {
        let mut t = format!(
            "{}, {} bytes from the client, {} from the server",
            p.protocol, p.client_bytes, p.server_bytes
        );
        if let Some(c) = &p.client {
            let _ = write!(t, "; client {c:?}");
        }
        if let Some(sv) = &p.server {
            let _ = write!(t, "; server {sv:?}");
        }
        line(&mut s, "preamble", &t);
    }
    if let Some(h) = &r.client_hello {
        let max = h
            .supported_versions
            .iter()
            .filter(|v| !v.is_grease())
            .max_by_key(|v| hsscan_wire::catalog::version_rank(**v))
            .copied()
            .unwrap_or(h.legacy_version);
        let mut t = format!(
            "{} max, {} suites, {} bytes in {} record{}",
            max,
            h.cipher_suites.len(),
            h.bytes,
            h.records,
            if h.records == 1 { "" } else { "s" }
        );
        if h.sslv2_format {
            t.push_str(", SSLv2 format");
        }
        if let Some(sni) = &h.sni {
            let _ = write!(t, ", SNI {sni}");
        }
        if !h.alpn.is_empty() {
            let _ = write!(t, ", ALPN {}", h.alpn.join(","));
        }
        if !h.key_share_groups.is_empty() {
            let g: Vec<String> = h.key_share_groups.iter().map(|g| g.to_string()).collect();
            let _ = write!(t, ", shares {}", g.join(" "));
        }
        line(&mut s, "client hello", &t);
    }
    if r.hello_retry_request {
        let g = r.retry_group.map_or_else(|| "?".to_owned(), |g| g.to_string());
        line(&mut s, "retry", &format!("HelloRetryRequest for group {g}"));
    }
    if let Some(h) = &r.server_hello {
        let mut t = format!("{} {}", h.selected_version, suite_name(h));
        if let Some(g) = h.key_share_group {
            let _ = write!(t, ", group {g}");
        }
        if let Some(a) = &h.alpn {
            let _ = write!(t, ", ALPN {a}");
        }
        if let Some(d) = h.downgrade {
            let _ = write!(t, ", downgrade sentinel {d}");
        }
        line(&mut s, "server hello", &t);
    }
    if let Some(k) = &r.server_key_exchange {
        let mut t = k.kind.to_owned();
        if let Some(g) = k.group {
            let _ = write!(t, " {g}");
        }
        if let Some(b) = k.dh_bits {
            let _ = write!(t, " {b} bits");
        }
        line(&mut s, "key exchange", &t);
    }
    for (label, certs) in [
        ("server certs", &r.server_certificates),
        ("client certs", &r.client_certificates),
    ] {
        if certs.as_ref().is_some_and(Vec::is_empty) {
            line(&mut s, label, "(an empty Certificate message)");
        }
        for (i, c) in certs.iter().flatten().enumerate() {
            let text = format!("{} ({}), issuer {}, until {}", c.subject, c.key, c.issuer, c.not_after);
            line(&mut s, if i == 0 { label } else { "" }, &text);
        }
    }
    for a in &r.alerts {
        line(
            &mut s,
            "alert",
            &format!(
                "{} {} {}",
                a.from,
                cp_name(a.level.name(), a.level.hex()),
                hsscan_wire::Alert {
                    level: a.level,
                    description: a.description
                }
            ),
        );
    }
    if let (Some(ja3), Some(ja4)) = (&r.ja3, &r.ja4) {
        line(&mut s, "ja3 / ja4", &format!("{ja3}  {ja4}"));
    }
    if let (Some(ja3s), Some(ja4s)) = (&r.ja3s, &r.ja4s) {
        line(&mut s, "ja3s / ja4s", &format!("{ja3s}  {ja4s}"));
    }
    let after = r
        .ended
        .after
        .as_deref()
        .map(|a| format!(" after {a}"))
        .unwrap_or_default();
    let ended = if r.ended.how == "none" {
        format!("not in the capture{after}")
    } else {
        format!("{} {}{after}", r.ended.by, r.ended.how.to_uppercase())
    };
    line(&mut s, "ended", &ended);
    for w in &r.warnings {
        line(&mut s, "warning", w);
    }
    line(&mut s, "verdict", &verdict_text(&r.verdict));
    s
}

fn verdict_text(v: &Verdict) -> String {
    match v.kind {
        Some(kind) => format!("{} ({kind}): {}", v.outcome, v.message),
        None => format!("{}: {}", v.outcome, v.message),
    }
}

fn bracket(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    }
}

/// One line per connection (`--brief`).
pub fn brief(r: &ConnectionRecord) -> String {
    let what = match (&r.server_hello, &r.client_hello) {
        (Some(h), _) => format!("{} {}", h.selected_version, suite_name(h)),
        (None, Some(_)) => "hello unanswered".to_owned(),
        (None, None) => "no hello".to_owned(),
    };
    format!(
        "{}:{} -> {}:{} {} {} | {}\n",
        bracket(&r.client_ip),
        r.client_port,
        bracket(&r.server_ip),
        r.server_port,
        if r.starttls == "smtp" { "smtp" } else { "tls" },
        what,
        crate::style::escape(&verdict_text(&r.verdict))
    )
}
