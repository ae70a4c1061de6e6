//! The scan result (SPEC §3) as serde types, and its terminal rendering:
//! the verdict first, graded by colour on a terminal, plain otherwise.

use crate::finding::{Finding, Severity};
use crate::outcome::Failure;
use crate::smtp::Dialog;
use crate::style::escape;
use crate::target::Transport;
use hsscan_wire::catalog::{self, Grade};
use hsscan_wire::ProtocolVersion;
use serde::Serialize;
use std::fmt::Write as _;

/// `target` of SPEC §3.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub input: String,
    pub host: String,
    /// `None` when the host could not be resolved.
    pub ip: Option<String>,
    pub port: u16,
    pub transport: Transport,
    pub sni: Option<String>,
    /// The domains whose MX this is (`--mx`); `null` otherwise.
    pub mx_of: Option<Vec<String>>,
}

pub use crate::outcome::Status;

/// What a hello offered.
#[derive(Debug, Clone, Serialize)]
pub struct Offered {
    pub max_version: ProtocolVersion,
    pub min_version: ProtocolVersion,
    pub cipher_count: usize,
    pub hello_bytes: usize,
}

pub use crate::outcome::Negotiated;

/// One attempt of the quick check.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub offered: Offered,
    pub result: Option<Negotiated>,
    pub failure: Option<Failure>,
}

/// `quick` of SPEC §3.
#[derive(Debug, Clone, Serialize)]
pub struct Quick {
    pub modern: Attempt,
    pub legacy: Attempt,
    /// The wide hello, sent only when both others failed at the handshake.
    pub wide: Option<Attempt>,
}

impl Quick {
    /// The attempts made, modern first.
    pub fn attempts(&self) -> Vec<&Attempt> {
        let mut out = vec![&self.modern, &self.legacy];
        out.extend(self.wide.as_ref());
        out
    }
}

pub use crate::certs::CertificateReport;

/// One endpoint record (SPEC §3). Every key is always written: `null`
/// for what is absent, not looked at or not applicable.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointRecord {
    pub record: &'static str,
    pub target: TargetInfo,
    /// The headline sender's outcome (SPEC §3 `verdict`).
    pub verdict: Option<crate::senders::Verdict>,
    pub status: Status,
    pub failure: Option<Failure>,
    /// `null` for implicit TLS.
    pub smtp: Option<Dialog>,
    pub quick: Quick,
    /// `null` without `--enumerate`.
    pub enumeration: Option<crate::enumerate::Enumeration>,
    /// What in a hello breaks this server, found by bisection (SPEC §8):
    /// run when a sender's hello is dropped, or on request (`--bisect`);
    /// `[]` when none was run or none was found (a finding says which).
    pub intolerance: Vec<crate::enumerate::Intolerance>,
    pub senders: Vec<crate::senders::SenderResult>,
    pub advice: Vec<crate::senders::advice::Advice>,
    pub certificates: Vec<CertificateReport>,
    /// DANE (and, for a single target, MTA-STS) as SPEC §3c; `null`: not checked.
    pub policy: Option<crate::policy::EndpointPolicy>,
    pub findings: Vec<Finding>,
    pub connections: u32,
    pub duration_ms: u64,
}

impl EndpointRecord {
    /// The endpoint negotiated TLS and, when enumerated, every protocol was
    /// settled: a partial result is not a clean bill (exit 1).
    pub fn is_ok(&self) -> bool {
        let headline = self.verdict.as_ref().map_or(self.status == Status::Negotiated, |v| {
            v.outcome == crate::senders::Outcome::Tls
        });
        headline && self.enumeration.as_ref().is_none_or(|e| e.is_complete())
    }
}

/// One MX host of a domain record, in preference order.
#[derive(Debug, Clone, Serialize)]
pub struct MxEntry {
    pub host: String,
    pub preference: u16,
    pub ips: Vec<String>,
}

/// A part of the contract that no code fills yet: always `null`. The type
/// has no value, so nothing can put one there by mistake.
#[derive(Debug, Clone, Copy, Serialize)]
pub enum NotYet {}

/// The summary record of one `--mx` input domain (SPEC §3), written once
/// all its endpoints are done — or alone, when its lookup failed.
#[derive(Debug, Clone, Serialize)]
pub struct DomainRecord {
    pub record: &'static str,
    pub domain: String,
    pub mx: Vec<MxEntry>,
    /// No MX record: mail goes to the domain's own address (RFC 5321 §5.1).
    pub implicit_mx: bool,
    /// `MX 0 .` (RFC 7505).
    pub null_mx: bool,
    pub status: Status,
    /// The headline sender's verdict over the domain's MX hosts.
    pub verdict: Option<crate::senders::Verdict>,
    /// The lookup's failure, or the first MX (in preference order) that did
    /// not negotiate; `null` when every one did.
    pub failure: Option<Failure>,
    /// The worst status of its endpoints; `null` when it has none.
    pub worst: Option<Status>,
    /// Every endpoint negotiated TLS 1.2 or better.
    pub tls12_or_better: bool,
    /// How many endpoints its MX hosts have.
    pub endpoints: usize,
    /// DANE, MTA-STS and TLS-RPT (SPEC §3c).
    pub policy: Option<crate::policy::DomainPolicy>,
    pub findings: Vec<Finding>,
}

impl DomainRecord {
    pub const RECORD: &'static str = "domain";
}

/// The readable line of a domain record.
pub fn domain_terminal(d: &DomainRecord, colour: bool) -> String {
    let status = match d.status {
        Status::Negotiated => paint("negotiated", "32", colour),
        Status::Failed => paint("failed", "31", colour),
        Status::Inconclusive => paint("inconclusive", "33", colour),
    };
    let worst = match d.worst {
        None => "none",
        Some(Status::Negotiated) => "negotiated",
        Some(Status::Failed) => "failed",
        Some(Status::Inconclusive) => "inconclusive",
    };
    let mut out = format!(
        "domain {}: {status} (worst {worst}, TLS 1.2 or better everywhere: {})\n",
        escape(&d.domain),
        d.tls12_or_better
    );
    if let Some(f) = &d.failure {
        let _ = writeln!(out, "  {}: {}: {}", f.stage, f.kind, escape(&f.detail));
    }
    out
}

/// The width to wrap long evidence at: `COLUMNS` when set, else 100.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|w| *w >= 40)
        .unwrap_or(100)
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(20);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low | Severity::Info => "36",
    }
}

fn name_of(v: Option<&str>, hex: String) -> String {
    v.map_or(hex, str::to_owned)
}

/// `TLSv1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (x25519)`, the suite graded by colour.
pub fn describe(n: &Negotiated, colour: bool) -> String {
    let grade = catalog::suite(n.cipher).and_then(|s| s.grade());
    let suite = crate::style::grade(&name_of(n.cipher.name(), n.cipher.hex()), grade, colour);
    let version = name_of(n.version.name(), n.version.hex());
    let version = match catalog::version_rank(n.version) {
        r if r < catalog::version_rank(ProtocolVersion::TLS12) => {
            crate::style::grade(&version, Some(Grade::Insecure), colour)
        }
        _ => version,
    };
    match n.group {
        Some(g) => format!("{version} {suite} ({})", name_of(g.name(), g.hex())),
        None => format!("{version} {suite}"),
    }
}

fn attempt_line(label: &str, a: &Attempt, colour: bool) -> String {
    let offered = format!(
        "{} hello (up to {}, {} suites, {} bytes)",
        label,
        name_of(a.offered.max_version.name(), a.offered.max_version.hex()),
        a.offered.cipher_count,
        a.offered.hello_bytes
    );
    match (&a.result, &a.failure) {
        (Some(n), _) => format!("{offered}: {}", describe(n, colour)),
        (None, Some(f)) => format!(
            "{offered}: {} — {}",
            paint(f.kind.as_str(), "31", colour),
            escape(&f.detail)
        ),
        (None, None) => format!("{offered}: not sent"),
    }
}

/// The readable report of one endpoint.
pub fn terminal(r: &EndpointRecord, colour: bool) -> String {
    let mut out = String::new();
    let t = &r.target;
    // Everything a server, DNS or an input file said goes through
    // `escape` (SPEC §2): only our own words and colours are printed raw.
    let head = format!(
        "{} [{}]:{} {}",
        escape(&t.host),
        t.ip.as_deref().unwrap_or("unresolved"),
        t.port,
        match t.transport {
            Transport::SmtpStarttls => "smtp-starttls",
            Transport::ImplicitTls => "implicit-tls",
        }
    );
    // The headline: does the headline sender get TLS here?
    let headline = match r.verdict.as_ref().map(|v| v.outcome) {
        Some(crate::senders::Outcome::Tls) => paint("TLS", "1;32", colour),
        Some(crate::senders::Outcome::NoTls) => paint("NO TLS", "1;31", colour),
        Some(crate::senders::Outcome::Inconclusive) | None => paint("INCONCLUSIVE", "1;33", colour),
    };
    let _ = writeln!(out, "{}  {headline}", paint(&head, "1", colour));
    if let Some(v) = &r.verdict {
        let _ = writeln!(out, "  {}", v.summary);
    }
    for s in r.senders.iter().flat_map(|s| s.notes.iter().map(move |n| (s, n))) {
        let _ = writeln!(out, "    note ({}): {}", s.0.sender, s.1);
    }
    for a in &r.advice {
        let what = match a.action {
            crate::senders::advice::Action::PostfixPolicy => "fix",
            crate::senders::advice::Action::PostfixTransport => "fix (transport)",
            crate::senders::advice::Action::NoTlsPossible => "no TLS possible",
            crate::senders::advice::Action::ReceiverChange => "receiver",
        };
        let _ = writeln!(out, "  {} [{}] {}", paint("advice", "1;36", colour), what, a.text);
        for l in &a.master_cf {
            let _ = writeln!(out, "      master.cf: {l}");
        }
        if let Some(t) = &a.transport_line {
            let _ = writeln!(out, "      transport: {t}");
        }
    }
    for s in r.senders.iter().skip(1) {
        let why = s
            .reason
            .as_ref()
            .map(|x| format!(" — {}: {}", x.kind.as_str(), x.detail))
            .unwrap_or_default();
        let _ = writeln!(out, "  sender {:<32} {}{why}", s.sender, s.outcome.as_str());
    }
    // Then the scanner's own facts: where it broke, or what it negotiates.
    let status = match r.status {
        Status::Negotiated => "negotiated",
        Status::Failed => "failed",
        Status::Inconclusive => "inconclusive",
    };
    if let Some(f) = &r.failure {
        let _ = writeln!(
            out,
            "  scan: {status}, fails at {} — {}: {}",
            f.stage,
            f.kind,
            escape(&f.detail)
        );
    } else if let Some(best) = r.quick.attempts().into_iter().find_map(|a| a.result.as_ref()) {
        let _ = writeln!(out, "  scan: {status}, negotiates {}", describe(best, colour));
    }
    // Certificate findings are graded by what the headline sender checks:
    // an untrusted chain does not stop a sender at may or encrypt.
    let lenient = r.senders.first().is_some_and(|s| !s.verifies_certificate);
    let graded = |f: &Finding| {
        if lenient && f.id.starts_with("cert-") && f.severity >= Severity::Medium {
            Severity::Low
        } else {
            f.severity
        }
    };
    let mut seen = std::collections::HashSet::new();
    let findings: Vec<&Finding> = r.findings.iter().filter(|f| seen.insert((f.id, &f.message))).collect();
    let width = terminal_width();
    for f in findings.iter().filter(|f| graded(f) >= Severity::Medium) {
        let _ = writeln!(
            out,
            "  {} {}",
            paint(
                &format!("[{:?}]", f.severity).to_lowercase(),
                severity_colour(f.severity),
                colour
            ),
            escape(&f.message)
        );
        if !f.evidence.is_empty() {
            for (i, line) in wrap(&escape(&f.evidence), width.saturating_sub(16)).iter().enumerate() {
                let lead = if i == 0 { "      evidence: " } else { "                " };
                let _ = writeln!(out, "{lead}{line}");
            }
        }
    }
    for f in findings
        .iter()
        .filter(|f| graded(f) < Severity::Medium && f.severity >= Severity::Medium)
    {
        let _ = writeln!(
            out,
            "  {} {} (a sender at may or encrypt still gets TLS; one at verify, dane or under MTA-STS does not)",
            paint("[certificate]", "36", colour),
            escape(&f.message)
        );
    }
    if let Some(s) = &r.smtp {
        if let Some(b) = &s.banner {
            let _ = writeln!(out, "  smtp banner: {}", escape(&b.replace('\n', " | ")));
        }
        let starttls = s.starttls.unwrap_or("not reached");
        let _ = writeln!(
            out,
            "  smtp EHLO {}: STARTTLS {starttls}{}",
            escape(&s.ehlo_name),
            s.reply
                .as_deref()
                .map(|r| format!(" ({})", escape(&r.replace('\n', " | "))))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "  {}", attempt_line("modern", &r.quick.modern, colour));
    let _ = writeln!(out, "  {}", attempt_line("legacy", &r.quick.legacy, colour));
    if let Some(w) = &r.quick.wide {
        let _ = writeln!(out, "  {}", attempt_line("wide", w, colour));
    }
    if let Some(e) = &r.enumeration {
        let _ = writeln!(
            out,
            "  protocols and suites{}:",
            if e.is_complete() { "" } else { " (PARTIAL: see unsure)" }
        );
        for (label, d) in &e.details {
            let settled = e.complete.get(label).copied().unwrap_or(false);
            let mark = if !settled && !d.supported {
                paint("?  ", "33", colour)
            } else if d.supported {
                paint(
                    "yes",
                    if matches!(*label, "SSLv2" | "SSLv3" | "TLSv1.0" | "TLSv1.1") {
                        "31"
                    } else {
                        "32"
                    },
                    colour,
                )
            } else {
                "no ".to_owned()
            };
            let order = match (d.supported, settled) {
                (true, true) => format!(", {} order", d.order),
                (true, false) => format!(", {} order, list may be incomplete", d.order),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "    {label:<8} {mark}  ({}{order}, {} connections)",
                escape(&d.evidence),
                d.connections
            );
            for c in e.ciphers.get(label).into_iter().flatten() {
                let grade = hsscan_wire::catalog::suite_by_name(&c.id).and_then(|s| s.grade());
                let grade = if *label == "SSLv2" {
                    Some(Grade::Insecure)
                } else {
                    grade
                };
                let name = c.name.unwrap_or("unknown");
                let _ = writeln!(out, "      {}  {}", c.id, crate::style::grade(name, grade, colour));
            }
        }
        if !e.groups.is_empty() {
            let names: Vec<String> = e.groups.iter().map(|g| name_of(g.name(), g.hex())).collect();
            let _ = writeln!(out, "    groups: {}", names.join(", "));
        }
        if let Some(bits) = e.dh_bits {
            let _ = writeln!(out, "    DH parameters: {bits} bits");
        }
        let f = &e.features;
        let flag = |v: Option<bool>| match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        let _ = writeln!(
            out,
            "    features: secure renegotiation {}, EMS {}, encrypt-then-MAC {}, OCSP stapling {}, session tickets {}, compression {}, heartbeat {}, fallback SCSV {}",
            flag(f.secure_renegotiation),
            flag(f.extended_master_secret),
            flag(f.encrypt_then_mac),
            flag(f.ocsp_stapling),
            flag(f.session_ticket),
            flag(f.compression),
            flag(f.heartbeat),
            flag(f.fallback_scsv)
        );
    }
    for c in &r.certificates {
        let version = c.version.map(|v| format!(", {v}")).unwrap_or_default();
        let _ = writeln!(out, "  certificate chain ({}{version}):", escape(&c.key));
        for (i, cert) in c.chain.iter().enumerate() {
            let _ = writeln!(
                out,
                "    {i}: {}  [{} .. {}]  {}",
                escape(&cert.subject),
                escape(&cert.not_before),
                escape(&cert.not_after),
                escape(&cert.key)
            );
            let _ = writeln!(
                out,
                "       issuer {}  {}",
                escape(&cert.issuer),
                escape(&cert.signature_algorithm)
            );
        }
        // Its verdicts are among the findings printed above.
    }
    if let Some(p) = &r.policy {
        for line in p.summary_lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    for f in r.findings.iter().filter(|f| f.severity < Severity::Medium) {
        let _ = writeln!(
            out,
            "  {} {}",
            paint(
                &format!("[{:?}]", f.severity).to_lowercase(),
                severity_colour(f.severity),
                colour
            ),
            escape(&f.message)
        );
    }
    let _ = writeln!(out, "  {} connections, {} ms", r.connections, r.duration_ms);
    out
}
