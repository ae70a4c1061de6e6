//! `hsscan log FILE…`: read the logs (plain or gzip, `-` for stdin), then
//! scan each failing destination once, by its IP and port with its host
//! name as SNI, through one gate per IP as bulk runs do (SPEC §7), and
//! write per destination the log's facts and the normal report.

use super::{Counts, Destination, Log};
use crate::gate::{HostGate, IpGate};
use crate::report::{self, EndpointRecord};
use crate::scan::{self, ScanConfig};
use crate::target::{Host, Target, Transport};
use anyhow::Context as _;
use futures::StreamExt as _;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{BufRead, Read, Write as _};
use std::net::IpAddr;
use std::sync::Arc;

/// gzip's magic number (RFC 1952 §2.3.1): a rotated `mail.log.2.gz` is
/// read whatever its name says.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How the results are written.
pub use crate::output::Output;

/// What `hsscan log` needs beyond the per-endpoint config.
pub struct LogConfig {
    pub scan: ScanConfig,
    pub output: Output,
    /// Destinations scanned at once.
    pub concurrency: usize,
}

/// Reads every line of `path` (`-`: stdin) into `log`, gunzipping when the
/// content starts with gzip's magic number.
pub fn read_file(path: &str, log: &mut Log) -> anyhow::Result<()> {
    let input: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("reading {path}"))?)
    };
    read_stream(input, log).with_context(|| format!("reading {}", if path == "-" { "stdin" } else { path }))
}

/// Reads every line of a stream into `log`; bytes that are not UTF-8 are
/// replaced, never fatal.
pub fn read_stream(input: impl Read, log: &mut Log) -> std::io::Result<()> {
    let mut input = std::io::BufReader::new(input);
    let gzip = input.fill_buf()?.starts_with(&GZIP_MAGIC);
    let mut lines: Box<dyn BufRead> = if gzip {
        Box::new(std::io::BufReader::new(flate2::bufread::MultiGzDecoder::new(input)))
    } else {
        Box::new(input)
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        log.push_line(&String::from_utf8_lossy(&line));
    }
}

/// One line on stderr: what was read and what was skipped.
pub fn describe(counts: &Counts, destinations: usize) -> String {
    let mut s = format!(
        "hsscan log: {} lines, {} deliveries, {} failed for TLS reasons, at {destinations} destination{}",
        counts.lines,
        counts.deliveries,
        counts.tls_failures,
        if destinations == 1 { "" } else { "s" }
    );
    if counts.without_nexthop > 0 {
        s.push_str(&format!(
            "; {} without a next hop in the log (not scanned)",
            counts.without_nexthop
        ));
    }
    if counts.not_understood > 0 {
        s.push_str(&format!(
            "; {} line{} not understood, skipped (the first: {:?})",
            counts.not_understood,
            if counts.not_understood == 1 { "" } else { "s" },
            counts.first_not_understood.as_deref().unwrap_or("")
        ));
    }
    s
}

/// An endpoint record (SPEC §3) with the log's facts beside it.
#[derive(Serialize)]
struct LogRecord<'a> {
    #[serde(flatten)]
    record: &'a EndpointRecord,
    log: &'a Destination,
}

/// The line above a destination's report: the log's facts.
fn facts_line(d: &Destination) -> String {
    let when = match (&d.first_seen, &d.last_seen) {
        (Some(a), Some(b)) if a == b => format!(", at {a}"),
        (Some(a), Some(b)) => format!(", {a} .. {b}"),
        _ => String::new(),
    };
    let plural = if d.messages == 1 { "" } else { "s" };
    let mut s = format!(
        "log: {} message{plural} affected ({} deferred, {} bounced) to {}{when}",
        d.messages, d.deferred, d.bounced, d.nexthop
    );
    if let Some(first) = d.errors.first() {
        s.push_str(&format!(": {}", escape(first)));
        if d.errors.len() > 1 {
            let more = d.errors.len() - 1;
            s.push_str(&format!(
                " (and {more} other error{})",
                if more == 1 { "" } else { "s" }
            ));
        }
    }
    s
}

/// Control characters written as `\xNN`: log lines quote what servers
/// said, which never reaches the terminal raw (SPEC §2).
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{:02x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The target a destination is scanned as: its IP and port, its host name
/// for SNI and the report; implicit TLS on 465 (Postfix's wrapper mode),
/// SMTP STARTTLS elsewhere, as Postfix's smtp client speaks it.
fn target_of(d: &Destination) -> Target {
    let host = match d.host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) if d.host.is_empty() || d.host == "unknown" => Host::Ip(d.ip),
        Err(_) => Host::Name(d.host.clone()),
    };
    Target {
        input: d.nexthop.clone(),
        host,
        port: d.port,
        transport: if d.port == 465 {
            Transport::ImplicitTls
        } else {
            Transport::SmtpStarttls
        },
    }
}

/// Scans every destination and writes the results in the destinations'
/// order; returns whether the headline sender gets TLS at every one.
pub async fn run(destinations: Vec<Destination>, cfg: LogConfig) -> anyhow::Result<bool> {
    if destinations.is_empty() {
        if let Output::Terminal { .. } = cfg.output {
            println!("No delivery in the log was deferred or bounced for a TLS reason.");
        }
        return Ok(true);
    }
    let scan_cfg = &cfg.scan;
    // One gate per IP for the whole run: two ports of one host share it.
    let mut gates: HashMap<IpAddr, Arc<IpGate>> = HashMap::new();
    for d in &destinations {
        gates.entry(d.ip).or_insert_with(|| {
            Arc::new(IpGate::new(
                scan_cfg.per_host,
                scan_cfg.delay,
                scan_cfg.max_connections,
                None,
                crate::stop::Stop::new(),
            ))
        });
    }
    let scans = futures::stream::iter(destinations.iter().map(|d| {
        let gate = gates.get(&d.ip).map(Arc::clone);
        async move {
            let target = target_of(d);
            let mx_of = (!d.domains.is_empty()).then(|| d.domains.clone());
            let gate = match gate {
                Some(g) => HostGate::shared(g),
                None => HostGate::new(scan_cfg.per_host, scan_cfg.delay, scan_cfg.max_connections),
            };
            (
                d,
                scan::scan_endpoint_through(&target, d.ip, scan_cfg, mx_of, gate).await,
            )
        }
    }))
    .buffered(cfg.concurrency.max(1));
    futures::pin_mut!(scans);
    let mut all_ok = true;
    let mut first = true;
    while let Some((d, record)) = scans.next().await {
        all_ok &= record.is_ok();
        let mut out = std::io::stdout().lock();
        match cfg.output {
            Output::Json => {
                let line = serde_json::to_string(&LogRecord {
                    record: &record,
                    log: d,
                })?;
                writeln!(out, "{line}")?;
            }
            // The partner report is for one receiver: a log run prints its
            // readable report instead.
            Output::Terminal { .. } | Output::Partner => {
                let colour = colour_of(&cfg.output);
                if !first {
                    writeln!(out)?;
                }
                writeln!(out, "{}", facts_line(d))?;
                write!(out, "{}", report::terminal(&record, colour))?;
            }
        }
        out.flush()?;
        first = false;
    }
    Ok(all_ok)
}

fn colour_of(o: &Output) -> bool {
    matches!(o, Output::Terminal { colour: true })
}
