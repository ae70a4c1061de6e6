//! The scan run: targets in, one record per (host, IP, port) out, in
//! completion order, through one writer that owns stdout (so lines never
//! interleave). A target that cannot be resolved still yields its record.

pub use crate::dns::Family;
use crate::outcome::{Failure, FailureKind, Stage};
use crate::report::{self, EndpointRecord};
use crate::scan::{self, ScanConfig};
use crate::target::{Host, Target};
use futures::StreamExt;
use std::io::Write;
use std::net::IpAddr;

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The readable report.
    Terminal { colour: bool },
    /// One JSON document (one target) or JSON Lines.
    Json,
}

/// What the run needs beyond the per-endpoint config.
pub struct RunConfig {
    pub scan: ScanConfig,
    pub output: Output,
    /// Targets scanned at once.
    pub concurrency: usize,
    /// The one resolver of the run (`--resolve`, `--dns`, `-4`/`-6`).
    pub dns: crate::dns::Dns,
}

/// Resolves a target's host to the addresses to scan, through the run's
/// one resolver (`--resolve` first, then `--dns` or the system's).
async fn resolve(target: &Target, cfg: &RunConfig) -> Result<Vec<IpAddr>, Failure> {
    let name = match &target.host {
        Host::Ip(ip) => return Ok(vec![*ip]),
        Host::Name(name) => name,
    };
    let ips = cfg.dns.addresses(name).await?;
    if !ips.is_empty() {
        return Ok(ips);
    }
    // A mail domain given as a host: say so.
    let hint = match cfg.dns.mx(name).await {
        Ok(crate::dns::MxAnswer::Hosts(h)) if !h.is_empty() => " (it has MX records: did you mean --mx?)",
        _ => "",
    };
    Err(Failure::new(
        Stage::Dns,
        FailureKind::DnsError,
        format!("{name} has no address of the requested family{hint}"),
    ))
}

/// The record of a target that never reached a connection.
pub fn unreachable_record(target: &Target, failure: Failure, cfg: &ScanConfig) -> EndpointRecord {
    scan::failure_record(scan::target_info(target, None, cfg, None), failure, 0, 0)
}

/// Scans every target; returns whether every endpoint negotiated TLS.
pub async fn run(targets: Vec<Target>, cfg: RunConfig) -> std::io::Result<bool> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<EndpointRecord>(64);
    let output = cfg.output;
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
        let mut out = std::io::stdout().lock();
        let mut all_ok = true;
        let mut count = 0usize;
        while let Some(record) = rx.blocking_recv() {
            all_ok &= record.is_ok();
            count += 1;
            match output {
                Output::Json => {
                    let line = serde_json::to_string(&record).map_err(std::io::Error::other)?;
                    writeln!(out, "{line}")?;
                }
                Output::Terminal { colour } => {
                    if count > 1 {
                        writeln!(out)?;
                    }
                    write!(out, "{}", report::terminal(&record, colour))?;
                }
            }
            out.flush()?;
        }
        Ok(all_ok)
    });
    let cfg = std::sync::Arc::new(cfg);
    futures::stream::iter(targets)
        .for_each_concurrent(cfg.concurrency.max(1), |target| {
            let tx = tx.clone();
            let cfg = cfg.clone();
            async move {
                match resolve(&target, &cfg).await {
                    Err(f) => {
                        let _ = tx.send(unreachable_record(&target, f, &cfg.scan)).await;
                    }
                    Ok(ips) => {
                        for ip in ips {
                            let record = scan::scan_endpoint(&target, ip, &cfg.scan, None).await;
                            let _ = tx.send(record).await;
                        }
                    }
                }
            }
        })
        .await;
    drop(tx);
    writer.await.map_err(std::io::Error::other)?
}
