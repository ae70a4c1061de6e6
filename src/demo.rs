//! `hsscan demo` (SPEC §1 item 6): the main job on a machine with nothing
//! set up. Emulated receivers (the emulator's own shipped profiles) listen
//! inside this process on loopback ports the system picks, and the normal
//! scan and sender verdict diagnose each: the same records, the same
//! report and the same exit code as a scan of real MX hosts. Nothing
//! leaves 127.0.0.1.

use crate::emulate::{self, profile::Profile};
use crate::report::{self, EndpointRecord};
use crate::scan::{self, ScanConfig};
use crate::target::{Host, Target, Transport};
use anyhow::Context as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// One demo receiver: what it plays and how it is scanned.
#[derive(Debug, Clone, Copy)]
pub struct Receiver {
    /// The host name it plays: banner, certificates, SNI and the report's head.
    pub host: &'static str,
    /// The shipped emulator profile (`hsscan emulate --list-profiles`).
    pub profile: &'static str,
    /// One line on what it is, printed above its report.
    pub plays: &'static str,
    /// What the emulator speaks on its port.
    pub serves: Transport,
    /// What the scan speaks to it: a mismatch plays the 465/587 mix-up.
    pub scanned_as: Transport,
    /// The receiver answers every connection with this reply instead of
    /// its banner (a rate limit that already applies to this client).
    pub banner: Option<&'static str>,
}

/// The receivers, in the order they are reported: the product's range,
/// from the legacy Exchange the tool was built for to a healthy Postfix.
pub const RECEIVERS: &[Receiver] = &[
    Receiver {
        host: "legacy.demo.test",
        profile: "exchange2007",
        plays: "an Exchange 2007 on Windows Server 2003: SSLv3 and TLS 1.0 only, RC4 and 3DES, reads only the first 64 suites",
        serves: Transport::SmtpStarttls,
        scanned_as: Transport::SmtpStarttls,
        banner: None,
    },
    Receiver {
        host: "lb.demo.test",
        profile: "lb-drop-after-hello",
        plays: "a load balancer in front of an MX: it offers STARTTLS, then closes the connection on every ClientHello",
        serves: Transport::SmtpStarttls,
        scanned_as: Transport::SmtpStarttls,
        banner: None,
    },
    Receiver {
        host: "busy.demo.test",
        profile: "rate-limited",
        plays: "a Postfix MX whose connection limit this client has already reached: every connection gets 421 4.7.0",
        serves: Transport::SmtpStarttls,
        scanned_as: Transport::SmtpStarttls,
        banner: Some("421 4.7.0 {hostname} Error: too many connections from 127.0.0.1"),
    },
    Receiver {
        host: "modern.demo.test",
        profile: "postfix-default",
        plays: "a Postfix 3.7 on OpenSSL 3.0 with its default settings: TLS 1.0 to 1.3",
        serves: Transport::SmtpStarttls,
        scanned_as: Transport::SmtpStarttls,
        banner: None,
    },
    Receiver {
        host: "smtps.demo.test",
        profile: "postfix-default",
        plays: "a STARTTLS port that the sender was told speaks implicit TLS (the 465/587 mix-up): it answers the ClientHello with its banner",
        serves: Transport::SmtpStarttls,
        scanned_as: Transport::ImplicitTls,
        banner: None,
    },
];

/// How the demo writes its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The terminal report, each receiver under a line saying what it plays.
    Terminal { colour: bool },
    /// JSON Lines: one endpoint record per receiver (SPEC §3), nothing else.
    Json,
}

/// Starts the receivers, scans each, writes the results; returns whether
/// the headline sender gets TLS at every one (it does not: exit 1).
pub async fn run(cfg: ScanConfig, output: Output) -> anyhow::Result<bool> {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut running = Vec::new();
    for r in RECEIVERS {
        let mut profile = Profile::shipped(r.profile).with_context(|| format!("loading the {} profile", r.profile))?;
        if let (Some(banner), Some(smtp)) = (r.banner, profile.smtp.as_mut()) {
            smtp.banner = banner.replace("{hostname}", r.host);
        }
        let opts = emulate::Options {
            profile,
            listen: vec![SocketAddr::new(loopback, 0)],
            json: false,
            smtp: Some(r.serves == Transport::SmtpStarttls),
            hostname: Some(r.host.to_owned()),
            certs: vec![],
            keys: vec![],
            exit_after: None,
            rtt_ms: 0,
            quiet: true,
        };
        let handle = emulate::start(opts)
            .await
            .with_context(|| format!("starting the emulated {} on 127.0.0.1", r.host))?;
        running.push(handle);
    }
    let targets: Vec<Target> = RECEIVERS
        .iter()
        .zip(&running)
        .map(|(r, h)| {
            let port = h.addrs.first().map_or(0, SocketAddr::port);
            let scheme = match r.scanned_as {
                Transport::SmtpStarttls => "smtp",
                Transport::ImplicitTls => "smtps",
            };
            Target {
                input: format!("{scheme}://{}:{port}", r.host),
                host: Host::Name(r.host.to_owned()),
                port,
                transport: r.scanned_as,
            }
        })
        .collect();
    // The receivers are independent: scan them side by side, report in order.
    let records: Vec<EndpointRecord> =
        futures::future::join_all(targets.iter().map(|t| scan::scan_endpoint(t, loopback, &cfg, None))).await;
    drop(running);
    let all_ok = records.iter().all(EndpointRecord::is_ok);
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => {
            for r in &records {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            }
        }
        Output::Terminal { colour } => {
            let sender = cfg.senders.headline().map_or("the default sender", |p| p.name.as_str());
            writeln!(
                out,
                "hsscan demo: {} emulated receivers on 127.0.0.1, inside this process (nothing leaves this machine),\n\
                 each diagnosed by the normal scan for {sender}.\n",
                RECEIVERS.len()
            )?;
            for (i, (r, record)) in RECEIVERS.iter().zip(&records).enumerate() {
                let head = format!(
                    "[{}/{}] {} plays {} (emulator profile {})",
                    i + 1,
                    RECEIVERS.len(),
                    r.host,
                    r.plays,
                    r.profile
                );
                writeln!(out, "{}", if colour { format!("\x1b[2m{head}\x1b[0m") } else { head })?;
                write!(out, "{}", report::terminal(record, colour))?;
                writeln!(out)?;
            }
            writeln!(out, "{}", summary(&records))?;
            writeln!(
                out,
                "Scan a real MX the same way: hsscan mx.partner.example (add --enumerate for every protocol and suite)."
            )?;
        }
    }
    out.flush()?;
    Ok(all_ok)
}

/// `5 receivers: 1 TLS, 3 NO TLS, 1 INCONCLUSIVE`.
fn summary(records: &[EndpointRecord]) -> String {
    use crate::senders::Outcome;
    let count = |o: Option<Outcome>| {
        records
            .iter()
            .filter(|r| r.verdict.as_ref().map(|v| v.outcome) == o)
            .count()
    };
    let inconclusive = count(Some(Outcome::Inconclusive)) + count(None);
    format!(
        "{} receivers: {} TLS, {} NO TLS, {} INCONCLUSIVE",
        records.len(),
        count(Some(Outcome::Tls)),
        count(Some(Outcome::NoTls)),
        inconclusive
    )
}
