//! `--report partner` (SPEC §1 item 1): the report to send the receiving
//! admin, as Markdown — where the session fails and the evidence, the
//! certificate chain and its defects, what the server negotiates, which
//! common senders fail and why, and the requested checks in the
//! receiver's own terms (Schannel/Exchange settings, the receive
//! connector's certificate, the device in front of it).

use crate::report::EndpointRecord;
use crate::senders::{Outcome, ReasonKind};
use crate::style::escape;
use std::fmt::Write as _;

/// Whether the receiver looks like Microsoft Exchange/Schannel.
fn is_exchange(r: &EndpointRecord) -> bool {
    r.smtp
        .as_ref()
        .and_then(|s| s.banner.as_deref())
        .is_some_and(|b| b.contains("Microsoft") || b.contains("Exchange"))
}

fn version_name(v: hsscan_wire::ProtocolVersion) -> String {
    v.name().map_or_else(|| v.hex(), str::to_owned)
}

fn suite_name(s: hsscan_wire::CipherSuite) -> String {
    s.name().map_or_else(|| s.hex(), str::to_owned)
}

/// The Markdown report of one endpoint; `at` is the time of the test.
pub fn markdown(r: &EndpointRecord, at: time::OffsetDateTime) -> String {
    let mut out = String::new();
    let t = &r.target;
    let ip = t.ip.as_deref().unwrap_or("unresolved");
    let when = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let _ = writeln!(out, "# TLS problem report: {} [{ip}]:{}\n", escape(&t.host), t.port);
    let _ = writeln!(out, "- Tested: {when} (UTC), from the sending side, by hsscan");
    let _ = writeln!(
        out,
        "- Host: `{}`, address `{ip}`, port {}, {}",
        escape(&t.host),
        t.port,
        match t.transport {
            crate::target::Transport::SmtpStarttls => "SMTP with STARTTLS",
            crate::target::Transport::ImplicitTls => "implicit TLS",
        }
    );
    if let Some(v) = &r.verdict {
        let _ = writeln!(out, "- Result: {}", escape(&v.summary));
    }

    let _ = writeln!(out, "\n## Where the session fails\n");
    match &r.smtp {
        Some(s) => {
            let banner = s
                .banner
                .as_deref()
                .map_or_else(|| "none".to_owned(), |b| escape(&b.replace('\n', " | ")).into_owned());
            let _ = writeln!(out, "- SMTP reached: banner `{banner}`");
            let _ = writeln!(
                out,
                "- STARTTLS: {}{}",
                s.starttls.unwrap_or("not reached"),
                s.reply
                    .as_deref()
                    .map(|x| format!(" (`{}`)", escape(&x.replace('\n', " | "))))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(out, "- SMTP: not spoken (implicit TLS, or the connection failed first)");
        }
    }
    let failing: Vec<&crate::senders::SenderResult> =
        r.senders.iter().filter(|s| s.outcome == Outcome::NoTls).collect();
    if let Some(f) = &r.failure {
        let _ = writeln!(out, "- Failure: at {}, **{}**: {}", f.stage, f.kind, escape(&f.detail));
    }
    for s in &failing {
        if let Some(reason) = &s.reason {
            let what = match reason.kind {
                ReasonKind::Dropped | ReasonKind::HelloIntolerance => {
                    "the connection is dropped right after the client's ClientHello"
                }
                ReasonKind::Alert | ReasonKind::NoSharedCipher => {
                    "the server answers the ClientHello with a fatal alert"
                }
                ReasonKind::NoSharedProtocol => "the server and the client share no protocol version",
                ReasonKind::LegacySignature => {
                    "the server signs its key exchange with MD5/SHA-1 (TLS 1.0/1.1), which current clients refuse"
                }
                ReasonKind::CertificateRejected => "the server's certificate chain does not verify",
                ReasonKind::WeakDh => "the server's Diffie-Hellman group is too small",
                ReasonKind::WeakKey => "the server's RSA key is too small",
                ReasonKind::StarttlsAbsent | ReasonKind::StarttlsRejected => "STARTTLS is not available",
                _ => "the TLS handshake fails",
            };
            let _ = writeln!(
                out,
                "- For {}: {what} — {} (`{}`)",
                escape(&s.name),
                reason.kind.as_str(),
                escape(&reason.detail)
            );
        }
    }

    let _ = writeln!(out, "\n## What the server negotiates\n");
    for (label, a) in [
        ("modern", Some(&r.quick.modern)),
        ("legacy", Some(&r.quick.legacy)),
        ("wide", r.quick.wide.as_ref()),
    ] {
        let Some(a) = a else { continue };
        let offered = format!(
            "{} hello (up to {}, {} suites)",
            label,
            version_name(a.offered.max_version),
            a.offered.cipher_count
        );
        match (&a.result, &a.failure) {
            (Some(n), _) => {
                let _ = writeln!(out, "- {offered}: {} {}", version_name(n.version), suite_name(n.cipher));
            }
            (None, Some(f)) => {
                let _ = writeln!(out, "- {offered}: {} ({})", f.kind, escape(&f.detail));
            }
            _ => {}
        }
    }
    if let Some(e) = &r.enumeration {
        for (proto, list) in &e.ciphers {
            let names: Vec<String> = list
                .iter()
                .map(|c| c.name.map_or_else(|| c.id.clone(), str::to_owned))
                .collect();
            let _ = writeln!(out, "- {proto}: {}", names.join(", "));
        }
        let off: Vec<&str> = e
            .protocols
            .iter()
            .filter(|(_, v)| **v == Some(false))
            .map(|(k, _)| *k)
            .collect();
        if !off.is_empty() {
            let _ = writeln!(out, "- Not supported: {}", off.join(", "));
        }
    }

    let _ = writeln!(out, "\n## Certificate chain\n");
    if r.certificates.is_empty() {
        let _ = writeln!(out, "- No certificate was seen.");
    }
    for c in &r.certificates {
        let _ = writeln!(
            out,
            "- Chain ({}{}):",
            escape(&c.key),
            c.version.map(|v| format!(", {v}")).unwrap_or_default()
        );
        for (i, cert) in c.chain.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {i}. `{}`, issued by `{}`, valid {} to {}",
                escape(&cert.subject),
                escape(&cert.issuer),
                escape(&cert.not_before),
                escape(&cert.not_after)
            );
        }
        for v in &c.verdicts {
            let _ = writeln!(
                out,
                "  - **{}**: {} ({})",
                v.id,
                escape(&v.message),
                escape(&v.evidence)
            );
        }
    }

    let _ = writeln!(out, "\n## Senders\n");
    let _ = writeln!(out, "| sender | result | why |\n|---|---|---|");
    for s in &r.senders {
        let why = s
            .reason
            .as_ref()
            .map_or_else(String::new, |x| format!("{}: {}", x.kind.as_str(), escape(&x.detail)));
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            escape(&s.name),
            s.outcome.as_str(),
            why.replace('|', "/")
        );
    }

    let _ = writeln!(out, "\n## Requested checks\n");
    let kinds: Vec<ReasonKind> = failing
        .iter()
        .filter_map(|s| s.reason.as_ref().map(|x| x.kind))
        .collect();
    let exchange = is_exchange(r);
    let has = |k: ReasonKind| kinds.contains(&k);
    if has(ReasonKind::NoSharedProtocol) || has(ReasonKind::LegacySignature) {
        if exchange {
            let _ = writeln!(out, "- Enable TLS 1.2 for Schannel's server side: `HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server` with `Enabled = 1` and `DisabledByDefault = 0` (and the .NET `SchUseStrongCrypto` values for Exchange), install the updates that add TLS 1.2 to the Windows version, then restart.");
        } else {
            let _ = writeln!(
                out,
                "- Enable TLS 1.2 (and 1.3) on the SMTP service; a TLS 1.2 ServerKeyExchange is signed with SHA-256."
            );
        }
    }
    if has(ReasonKind::NoSharedCipher) {
        if exchange {
            let _ = writeln!(out, "- Restore a current cipher-suite order (Group Policy \"SSL Cipher Suite Order\", or `Get-TlsCipherSuite` / `Enable-TlsCipherSuite`) with ECDHE-RSA-AES-GCM/CBC and RSA-AES suites; RC4, DES and 3DES suites are not accepted by current senders.");
        } else {
            let _ = writeln!(out, "- Offer AES-GCM or AES-CBC suites with ECDHE or RSA key exchange; RC4, DES, 3DES and export suites are not accepted by current senders.");
        }
    }
    if has(ReasonKind::CertificateRejected) || r.certificates.iter().any(|c| !c.verdicts.is_empty()) {
        if exchange {
            let _ = writeln!(out, "- Bind a valid certificate for the host name to SMTP (`Get-ExchangeCertificate`, `Enable-ExchangeCertificate -Services SMTP`), set it on the receive connector (`Set-ReceiveConnector -TlsCertificateName`), and serve its intermediate certificates.");
        } else {
            let _ = writeln!(out, "- Serve a certificate valid for the host name, from a CA senders trust, with its intermediate certificates.");
        }
    }
    if has(ReasonKind::Dropped) || has(ReasonKind::HelloIntolerance) {
        let _ = writeln!(out, "- The ClientHello is dropped: check the device in front of the mail server (load balancer, firewall SMTP/ESMTP inspection, TLS offload) — update its firmware or turn off its SMTP inspection; a hello of {} bytes is dropped.", r.quick.modern.offered.hello_bytes);
    }
    if has(ReasonKind::WeakDh) {
        let _ = writeln!(out, "- Use Diffie-Hellman groups of at least 2048 bits, or ECDHE.");
    }
    if has(ReasonKind::WeakKey) {
        let _ = writeln!(out, "- Use an RSA key of at least 2048 bits.");
    }
    if has(ReasonKind::StarttlsAbsent) || has(ReasonKind::StarttlsRejected) {
        let _ = writeln!(
            out,
            "- Offer STARTTLS (Exchange: the receive connector's TLS setting and its certificate)."
        );
    }
    if kinds.is_empty() {
        let _ = writeln!(out, "- None: every sender tested gets TLS.");
    }
    out
}
