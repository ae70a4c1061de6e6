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
/// `mxnone` without TLSA, `mixed` both `mx` and (less preferred)
/// `mxnone`; all three hosts are the receiver's address.
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
         none MX 10 mxnone\nmxnone A {ip}\n\
         mixed MX 10 mx\nmixed MX 20 mxnone\n"
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

/// One domain's case: what the relay's log must say, and what hsscan
/// must say of the sender and of DANE at the domain's MX host.
/// A matching TLSA record: verified TLS, delivered, at `dane` and `dane-only` alike.
const GOOD: Case = Case {
    domain: "good.dane.test",
    mx_host: "mx.dane.test",
    status: "sent",
    reason: "250 ",
    tls: Some("Verified"),
    verification: None,
    outcome: "tls",
    dane: "valid",
};

struct Case {
    domain: &'static str,
    mx_host: &'static str,
    /// Postfix's `status=` word and reason (a prefix of it).
    status: &'static str,
    reason: &'static str,
    /// How Postfix established TLS (`None`: no connection logged).
    tls: Option<&'static str>,
    /// Postfix's certificate verification failure, if it logs one.
    verification: Option<&'static str>,
    outcome: &'static str,
    dane: &'static str,
}

/// Sends one message per case through `relay`, then scans each domain
/// with hsscan judging that relay, and compares.
fn check(lab: &Lab, relay: &Postfix, cases: &[Case]) {
    for c in cases {
        let rcpt = format!("user@{}", c.domain);
        relay.sendmail("sender@relay.test.example", &rcpt, c.domain);
        let truth = fate(relay, &rcpt, c.mx_host);
        let run = lab.scan(relay, c.domain);
        let e = endpoint(&run, c.mx_host);
        let s = &e["senders"][0];
        let ctx = || {
            format!(
                "{}: truth {truth:?}\n{e:#}\n{}\n{}",
                c.domain,
                run.describe(),
                lab.logs(relay)
            )
        };
        // The truth.
        assert_eq!(truth.status, c.status, "{}", ctx());
        assert!(truth.reason.starts_with(c.reason), "{}", ctx());
        assert_eq!(truth.tls.as_deref(), c.tls, "{}", ctx());
        match c.verification {
            Some(v) => assert!(
                truth.verification.as_deref().is_some_and(|t| t.contains(v)),
                "{}",
                ctx()
            ),
            None => assert_eq!(truth.verification, None, "{}", ctx()),
        }
        // hsscan's verdict for the same sender.
        assert_eq!(s["outcome"], c.outcome, "{}", ctx());
        assert_eq!(at(&e, "/policy/dane/result"), c.dane, "{}", ctx());
        if c.outcome == "no-tls" {
            assert_eq!(s["reason"]["kind"], "certificate-rejected", "{}", ctx());
            let detail = s["reason"]["detail"].as_str().unwrap_or("");
            let name = format!("_25._tcp.{}", c.mx_host);
            assert!(detail.starts_with(&format!("DANE ({name}, {})", c.dane)), "{}", ctx());
            for r in e["policy"]["dane"]["records"].as_array().into_iter().flatten() {
                let record = format!(
                    "{} {} {} {}",
                    r["usage"],
                    r["selector"],
                    r["matching"],
                    r["data"].as_str().unwrap_or("")
                );
                assert!(
                    detail.contains(&record),
                    "the reason names no record {record}: {}",
                    ctx()
                );
            }
        }
    }
}

/// At `dane`: matching TLSA, Postfix delivers over a verified TLS
/// connection and hsscan's verdict is TLS, DANE `valid`; a record that
/// matches nothing, Postfix defers ("no matching DANE TLSA records") and
/// hsscan's verdict is no TLS, the reason naming the TLSA RRset and its
/// record; no TLSA at all, Postfix delivers over unauthenticated TLS and
/// hsscan says TLS, `no-tlsa`.
#[test]
fn a_real_postfix_at_dane_and_hsscan_agree_on_matching_and_mismatching_tlsa() {
    let lab = lab("dane");
    let relay = lab.relay("dane");
    check(
        &lab,
        &relay,
        &[
            GOOD,
            Case {
                domain: "bad.dane.test",
                mx_host: "mxbad.dane.test",
                status: "deferred",
                reason: "Server certificate not verified",
                tls: Some("Untrusted"),
                verification: Some("no matching DANE TLSA records"),
                outcome: "no-tls",
                dane: "tlsa-invalid",
            },
            Case {
                domain: "none.dane.test",
                mx_host: "mxnone.dane.test",
                status: "sent",
                reason: "250 ",
                tls: Some("Untrusted"),
                verification: None,
                outcome: "tls",
                dane: "no-tlsa",
            },
        ],
    );
}

/// At `dane-only` (mandatory DANE, RFC 7672 §6): where no TLSA records
/// apply Postfix makes no delivery, and hsscan says `dane-required`
/// (RFC 8460) with no TLS for that sender; matching records still
/// deliver. A domain whose second MX has no TLSA record gets
/// `dane-required` as its domain result and the `dane-partial` finding.
#[test]
fn a_real_postfix_at_dane_only_defers_where_hsscan_says_dane_required() {
    let lab = lab("dane-only");
    let relay = lab.relay("dane-only");
    check(
        &lab,
        &relay,
        &[
            GOOD,
            Case {
                domain: "none.dane.test",
                mx_host: "mxnone.dane.test",
                status: "deferred",
                reason: "no TLSA records found",
                tls: None,
                verification: None,
                outcome: "no-tls",
                dane: "dane-required",
            },
        ],
    );
    let run = lab.scan(&relay, "mixed.dane.test");
    let domain = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["record"] == "domain")
        .unwrap_or_else(|| panic!("no domain record\n{}", run.describe()));
    assert_eq!(at(&domain, "/policy/dane/result"), "dane-required", "{domain:#}");
    assert_eq!(at(&domain, "/policy/dane/mx/0/result"), "valid", "{domain:#}");
    assert_eq!(at(&domain, "/policy/dane/mx/1/result"), "dane-required", "{domain:#}");
    let ids: Vec<&str> = domain["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"dane-partial") && ids.contains(&"dane-required"),
        "{domain:#}"
    );
}
