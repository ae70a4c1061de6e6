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
    /// `smtp` (an SMTP dialog, STARTTLS or not) or `none`.
    pub starttls: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSeen>,
    /// Cleartext before TLS that is not SMTP (first line each way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preamble: Option<Preamble>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_hello: Option<ClientHelloSeen>,
    /// ClientHellos the client sent (2 after a HelloRetryRequest).
    pub client_hellos: u32,
    pub hello_retry_request: bool,
    /// The group a HelloRetryRequest asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_group: Option<NamedGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_hello: Option<ServerHelloSeen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiated_version: Option<ProtocolVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_key_exchange: Option<KeyExchangeSeen>,
    pub alerts: Vec<AlertSeen>,
    pub server_certificates: Vec<CertInfo>,
    pub client_certificates: Vec<CertInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4_r: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4s: Option<String>,
    pub ended: Ended,
    pub verdict: Verdict,
    /// Bytes each way on the wire (TCP payload, as captured).
    pub bytes: Bytes,
    /// What the capture could not show: missing segments, a mid-stream start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// The EHLO (or HELO) name the client sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ehlo: Option<String>,
    /// The reply to EHLO, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ehlo_reply: Option<String>,
    /// EHLO keywords with their parameters.
    pub extensions: Vec<String>,
    /// Whether the client sent STARTTLS.
    pub starttls_sent: bool,
    /// The reply to STARTTLS, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls_reply: Option<String>,
}

/// Cleartext before TLS that is not SMTP.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preamble {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// The first ClientHello.
#[derive(Debug, Clone, Serialize)]
pub struct ClientHelloSeen {
    /// The record-layer version of its first record (SSLv2 for an SSLv2-format hello).
    pub record_version: ProtocolVersion,
    pub legacy_version: ProtocolVersion,
    pub supported_versions: Vec<ProtocolVersion>,
    pub cipher_suites: Vec<CipherSuite>,
    /// SSLv2-format hellos: every cipher spec, SSLv2 kinds included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sslv2_cipher_specs: Option<Vec<Sslv2CipherSpec>>,
    pub extensions: Vec<ExtensionType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub supported_groups: Vec<NamedGroup>,
    pub ec_point_formats: Vec<EcPointFormat>,
    pub signature_algorithms: Vec<SignatureScheme>,
    pub key_share_groups: Vec<NamedGroup>,
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
    pub legacy_version: ProtocolVersion,
    pub selected_version: ProtocolVersion,
    pub cipher_suite: CipherSuite,
    pub extensions: Vec<ExtensionType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_share_group: Option<NamedGroup>,
    pub compression: CompressionMethod,
    /// The TLS 1.3 downgrade sentinel, when the random carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downgrade: Option<&'static str>,
}

/// What a TLS ≤ 1.2 ServerKeyExchange says.
#[derive(Debug, Clone, Serialize)]
pub struct KeyExchangeSeen {
    /// `ecdhe`, `dhe`, `rsa-export`, `psk` or `opaque`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<NamedGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dh_bits: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<SignatureScheme>,
}

/// A cleartext alert and who sent it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertSeen {
    pub from: &'static str,
    pub level: AlertLevel,
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

/// The readable block for a terminal.
pub fn block(r: &ConnectionRecord) -> String {
    let mut s = String::new();
    let transport = match (r.starttls, &r.preamble) {
        ("smtp", _) => "SMTP",
        (_, Some(_)) => "cleartext preamble, then TLS",
        _ => "implicit TLS",
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
    if let Some(p) = &r.preamble {
        line(
            &mut s,
            "preamble",
            &format!(
                "client {:?}, server {:?}",
                p.client.as_deref().unwrap_or(""),
                p.server.as_deref().unwrap_or("")
            ),
        );
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
        let mut t = format!(
            "{} {}",
            h.selected_version,
            cp_name(h.cipher_suite.name(), h.cipher_suite.hex())
        );
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
        for (i, c) in certs.iter().enumerate() {
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
        (Some(h), _) => format!(
            "{} {}",
            h.selected_version,
            cp_name(h.cipher_suite.name(), h.cipher_suite.hex())
        ),
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
