//! The sender verdict of a real Postfix at `smtp_tls_security_level =
//! dane` (SPEC §6, §3c), against knot's signed zone and unbound's
//! validation.
//!
//! Postfix's smtp client asks the system resolver, so everything runs in a
//! network namespace of the test's own ([`Netns`]): there /etc/resolv.conf
//! names unbound on 127.0.0.1:53 (`options trust-ad`, so the AD bit
//! reaches Postfix, which `smtp_dns_support_level = dnssec` makes it
//! trust). In the namespace run knot and unbound ([`DnsLab::start_in`]),
//! the receiving Postfix on 127.0.0.x:25 (the MX of every test domain; it
//! accepts mail from loopback and discards it), the relaying Postfix with
//! the DANE settings, and hsscan itself (`--mx`, `--dns` at the same
//! unbound, `--sender local` reading the relay's own main.cf).
//!
//! Truth is the relay's log: a delivery over TLS ("Verified TLS connection
//! established" where a TLSA record matches, `status=sent`), or a deferral
//! with Postfix's reason where none does. hsscan's verdict for that sender
//! must agree, and where it fails, its reason names the TLSA RRset and the
//! record that did not match.

use std::time::Duration;

use serde_json::Value;

use crate::dns_lab::{spki_sha256, DnsLab, Kind, Zone};
use crate::netns::Netns;
use crate::postfix::Postfix;
use crate::scan_support::{at, hsscan_command, Run, EHLO};

/// How long a test waits for the relay to log the fate of a message.
const DELIVERY_WINDOW: Duration = Duration::from_secs(60);

/// The port of the relay's own smtpd (nobody connects to it: mail is
/// submitted with sendmail).
const RELAY_PORT: u16 = 2525;

/// The lab: a namespace, its DNS and the receiving MX.
struct Lab {
    // Dropped in this order: the servers, then the namespace.
    dns: DnsLab,
    mx: Postfix,
    ns: Netns,
}

/// `dane.test` (signed): `good` has MX `mx` with a `3 1 1` record of the
/// receiver's key, `bad` MX `mxbad` with a record of no key, `none` MX
/// `mxnone` without TLSA; all three hosts are the receiver's address.
fn lab(tag: &str) -> Lab {
    let ns = Netns::new(tag);
    let mx = Postfix::start_relay_in(
        &ns,
        25,
        &[
            ("mynetworks", "127.0.0.0/8"),
            ("default_transport", "discard:dane test"),
            ("relay_transport", "discard:dane test"),
            ("smtpd_tls_loglevel", "1"),
        ],
    );
    let rsa = spki_sha256("rsa.pem");
    let wrong = "00".repeat(32);
    let ip = mx.ip;
    let records = format!(
        "good MX 10 mx\nmx A {ip}\n_25._tcp.mx TLSA 3 1 1 {rsa}\n\
         bad MX 10 mxbad\nmxbad A {ip}\n_25._tcp.mxbad TLSA 3 1 1 {wrong}\n\
         none MX 10 mxnone\nmxnone A {ip}\n"
    );
    let dns = DnsLab::start_in(
        Some(&ns),
        tag,
        &[Zone {
            name: "dane.test",
            kind: Kind::Signed,
            records,
        }],
        "servfail.test",
    );
    Lab { dns, mx, ns }
}

impl Lab {
    /// A relaying Postfix in the namespace at `level`, resolving with
    /// DNSSEC through the namespace's resolv.conf.
    fn relay(&self, level: &str) -> Postfix {
        Postfix::start_relay_in(
            &self.ns,
            RELAY_PORT,
            &[
                ("myhostname", "relay.test.example"),
                ("mynetworks", "127.0.0.0/8"),
                ("smtp_tls_security_level", level),
                ("smtp_dns_support_level", "dnssec"),
                ("smtp_tls_loglevel", "1"),
                // No probe of the root zone: the lab serves only its own.
                ("dnssec_probe", ""),
            ],
        )
    }

    /// `hsscan --mx DOMAIN` inside the namespace, judging the sender that
    /// `relay`'s main.cf describes.
    fn scan(&self, relay: &Postfix, domain: &str) -> Run {
        let mut cmd = self.ns.command(env!("CARGO_BIN_EXE_hsscan"));
        cmd.env("MAIL_CONFIG", relay.conf_dir());
        let dns = self.dns.resolver();
        hsscan_command(
            cmd,
            &[
                "--mx", "--jsonl", "-q", "--dns", &dns, "--ehlo", EHLO, "--sender", "local", domain,
            ],
        )
    }

    fn logs(&self, relay: &Postfix) -> String {
        format!(
            "{}\n{}\n--- receiver ---\n{}\n--- relay ---\n{}",
            self.dns.knot.log(),
            self.dns.unbound.log(),
            self.mx.log(),
            relay.log()
        )
    }
}

/// What the relay's log says of the message to `rcpt`: the `status=`
/// word, its parenthesised reason, and how the TLS connection to
/// `mx_host` was established (`Verified`, `Trusted`, `Untrusted`,
/// `Anonymous`; `None`: no TLS connection was logged).
#[derive(Debug)]
struct Fate {
    status: String,
    reason: String,
    tls: Option<String>,
    /// Why the certificate did not verify, when Postfix says so.
    verification: Option<String>,
}

fn fate(relay: &Postfix, rcpt: &str, mx_host: &str) -> Fate {
    let to = format!("to=<{rcpt}>");
    let log = relay.log_when_within(DELIVERY_WINDOW, |l| {
        l.lines().any(|line| line.contains(&to) && line.contains(" status="))
    });
    let line = log
        .lines()
        .find(|line| line.contains(&to) && line.contains(" status="))
        .unwrap_or_else(|| panic!("the relay logged no delivery status for {rcpt} within {DELIVERY_WINDOW:?}\n{log}"));
    let after = line.split(" status=").nth(1).unwrap_or("");
    let (status, reason) = after.split_once(' ').unwrap_or((after, ""));
    let tls_marker = format!(" TLS connection established to {mx_host}[");
    let tls = log
        .lines()
        .find(|l| l.contains(&tls_marker))
        .and_then(|l| l.split(&tls_marker).next())
        .and_then(|head| head.split_whitespace().last())
        .map(str::to_owned);
    let failed = format!("server certificate verification failed for {mx_host}[");
    let verification = log
        .lines()
        .find(|l| l.contains(&failed))
        .and_then(|l| l.split(&failed).nth(1))
        .and_then(|rest| rest.split_once(": "))
        .map(|(_, why)| why.to_owned());
    Fate {
        verification,
        status: status.to_owned(),
        reason: reason.trim().trim_start_matches('(').trim_end_matches(')').to_owned(),
        tls,
    }
}

/// The endpoint record of `host` in a `--mx --jsonl` run.
fn endpoint(run: &Run, host: &str) -> Value {
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["record"] == "endpoint" && at(r, "/target/host") == host)
        .unwrap_or_else(|| panic!("no endpoint record for {host}\n{}", run.describe()))
}

/// Matching TLSA: Postfix delivers over a verified TLS connection, and
/// hsscan's verdict for it is TLS with DANE `valid`. A record that
/// matches nothing: Postfix defers, and hsscan's verdict is no TLS, the
/// reason naming the TLSA RRset and its record.
#[test]
fn a_real_postfix_at_dane_and_hsscan_agree_on_matching_and_mismatching_tlsa() {
    let lab = lab("dane");
    let relay = lab.relay("dane");
    let wrong = "00".repeat(32);
    for (domain, mx_host, delivers) in [
        ("good.dane.test", "mx.dane.test", true),
        ("bad.dane.test", "mxbad.dane.test", false),
    ] {
        let rcpt = format!("user@{domain}");
        relay.sendmail("sender@relay.test.example", &rcpt, domain);
        let truth = fate(&relay, &rcpt, mx_host);
        let run = lab.scan(&relay, domain);
        let e = endpoint(&run, mx_host);
        let s = &e["senders"][0];
        let ctx = || {
            format!(
                "{domain}: truth {truth:?}\n{e:#}\n{}\n{}",
                run.describe(),
                lab.logs(&relay)
            )
        };
        if delivers {
            assert_eq!(truth.status, "sent", "{}", ctx());
            assert!(truth.reason.starts_with("250 "), "{}", ctx());
            assert_eq!(truth.tls.as_deref(), Some("Verified"), "{}", ctx());
            assert_eq!(truth.verification, None, "{}", ctx());
            assert_eq!(s["outcome"], "tls", "{}", ctx());
            assert_eq!(at(&e, "/policy/dane/result"), "valid", "{}", ctx());
        } else {
            assert_eq!(truth.status, "deferred", "{}", ctx());
            assert_eq!(truth.reason, "Server certificate not verified", "{}", ctx());
            assert_ne!(truth.tls.as_deref(), Some("Verified"), "{}", ctx());
            assert!(
                truth
                    .verification
                    .as_deref()
                    .is_some_and(|v| v.contains("no matching DANE TLSA records")),
                "{}",
                ctx()
            );
            assert_eq!(s["outcome"], "no-tls", "{}", ctx());
            assert_eq!(at(&e, "/policy/dane/result"), "tlsa-invalid", "{}", ctx());
            assert_eq!(s["reason"]["kind"], "certificate-rejected", "{}", ctx());
            let detail = s["reason"]["detail"].as_str().unwrap_or("");
            assert!(detail.contains(&format!("_25._tcp.{mx_host}")), "{}", ctx());
            assert!(detail.contains(&format!("3 1 1 {wrong}")), "{}", ctx());
        }
    }
}
