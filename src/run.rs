//! The scan run: targets in, one record per (host, IP, port) out, in
//! completion order, through the run's one writer ([`crate::output`]).
//! Every connection of the run, whatever its target, goes through the one
//! gate of its IP ([`crate::gate::Gates`]). A target that cannot be
//! resolved still yields its record. After Ctrl-C or a closed stdout no
//! connection starts and the scans in progress are dropped: what was
//! finished is written, nothing half done is.

pub use crate::dns::Family;
use crate::gate::{Gates, HostGate};
use crate::outcome::{Failure, FailureKind, Stage};
use crate::output::{Output, Record, Writer};
use crate::report::EndpointRecord;
use crate::scan::{self, ScanConfig};
use crate::stop::{Stop, Why};
use crate::target::{Host, Target};
use futures::StreamExt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the run needs beyond the per-endpoint config.
pub struct RunConfig {
    pub scan: ScanConfig,
    pub output: Output,
    /// Connections in flight overall (`-j`), and targets scanned at once.
    pub concurrency: usize,
    /// The one resolver of the run (`--resolve`, `--dns`, `-4`/`-6`).
    pub dns: crate::dns::Dns,
    /// No message on stderr when interrupted.
    pub quiet: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Every record written was a clean bill (exit 0 rather than 1).
    pub all_ok: bool,
    /// Why it stopped before the end of its input, if it did.
    pub stopped: Option<Why>,
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

/// Scans every target.
pub async fn run(targets: Vec<Target>, cfg: RunConfig) -> std::io::Result<Finished> {
    let stop = Stop::new();
    stop.on_ctrl_c(cfg.quiet);
    let writer = Writer::start(cfg.output, stop.clone(), false);
    let gates = Gates::new(
        cfg.scan.per_host,
        cfg.scan.delay,
        cfg.scan.max_connections,
        cfg.concurrency,
        stop.clone(),
    );
    let all_ok = AtomicBool::new(true);
    futures::stream::iter(targets)
        .for_each_concurrent(cfg.concurrency.max(1), |target| {
            let (cfg, gates, writer, all_ok, stop) = (&cfg, &gates, &writer, &all_ok, &stop);
            async move {
                if stop.is_set() {
                    return;
                }
                let send = |record: EndpointRecord| async move {
                    all_ok.fetch_and(record.is_ok(), Ordering::SeqCst);
                    writer.write(Record::Endpoint(Box::new(record))).await
                };
                let scan = async {
                    match resolve(&target, cfg).await {
                        Err(f) => {
                            send(unreachable_record(&target, f, &cfg.scan)).await;
                        }
                        Ok(ips) => {
                            for ip in ips {
                                let gate = HostGate::shared(gates.for_ip(ip));
                                let record = scan::scan_endpoint_through(&target, ip, &cfg.scan, None, gate).await;
                                // Each endpoint's record goes out as it is done.
                                if !send(record).await {
                                    return;
                                }
                            }
                        }
                    }
                };
                // Stopped: the scan is dropped, its connections close.
                tokio::select! {
                    biased;
                    () = stop.wait() => {}
                    () = scan => {}
                }
            }
        })
        .await;
    writer.finish().await?;
    Ok(Finished {
        all_ok: all_ok.load(Ordering::SeqCst),
        stopped: stop.why(),
    })
}
