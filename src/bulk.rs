//! Bulk scans of partner domains (`--mx`, SPEC §1 item 2): each domain's
//! MX hosts are resolved, every (MX host, IP, port 25) is scanned once
//! however many domains use it, connections are bounded overall (`-j`) and
//! per IP (`--per-host`, `--delay`, `--max-connections`), and records
//! stream out as JSON Lines in completion order: one `endpoint` record per
//! (host, IP, port) and one `domain` record per input domain.
//!
//! Input is read in windows of [`WINDOW`] domains: a window is resolved,
//! its new endpoints are scanned, and each domain's record goes out as soon
//! as its last endpoint is done. An endpoint's `mx_of` names the domains
//! of the window that scanned it; a later domain that shares it reuses its
//! result (nothing is scanned twice) and lists it in its own record. What
//! the run keeps per endpoint after its record is written is a summary of
//! a few bytes.

use crate::dns::{Dns, MxAnswer, MxHost};
use crate::finding::{Finding, Severity};
use crate::gate::{HostGate, IpGate};
use crate::outcome::{Failure, FailureKind, Stage};
use crate::report::{self, EndpointRecord, Status};
use crate::run::{unreachable_record, Output};
use crate::scan::{self, ScanConfig};
use crate::target::{Host, Target, Transport};
use hsscan_wire::{catalog, ProtocolVersion};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Domains resolved and scheduled together.
pub const WINDOW: usize = 1000;
/// DNS lookups in flight.
const DNS_IN_FLIGHT: usize = 128;
/// The SMTP port MX hosts are scanned on by default.
pub const SMTP_PORT: u16 = 25;

/// What the bulk run needs.
pub struct BulkConfig {
    pub scan: ScanConfig,
    pub output: Output,
    /// Connections in flight overall.
    pub concurrency: usize,
    pub dns: Dns,
    /// Retries of an endpoint that was rate-limited or timed out.
    pub retries: u32,
    /// The first retry waits this long; each next one twice as long.
    pub backoff: Duration,
    /// Records of an earlier run: domains and endpoints to skip.
    pub resume: Option<Resume>,
    /// Show progress on stderr.
    pub progress: bool,
    pub quiet: bool,
    /// The port MX hosts are scanned on (25).
    pub port: u16,
}

/// What an endpoint's record says, kept for the domain records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub status: Status,
    /// The best protocol it negotiated.
    pub best: Option<ProtocolVersion>,
    pub kind: Option<FailureKind>,
}

impl Summary {
    fn of(r: &EndpointRecord) -> Self {
        let mut best: Option<ProtocolVersion> = None;
        let mut consider = |v: ProtocolVersion| {
            if best.is_none_or(|b| catalog::version_rank(v) > catalog::version_rank(b)) {
                best = Some(v);
            }
        };
        for a in [&r.quick.modern, &r.quick.legacy] {
            if let Some(n) = &a.result {
                consider(n.version);
            }
        }
        Self {
            status: r.status,
            best,
            kind: r.failure.as_ref().map(|f| f.kind),
        }
    }

    fn from_json(v: &Value) -> Option<Self> {
        let status = match v["status"].as_str()? {
            "negotiated" => Status::Negotiated,
            "failed" => Status::Failed,
            "inconclusive" => Status::Inconclusive,
            _ => return None,
        };
        let mut best: Option<ProtocolVersion> = None;
        for a in ["modern", "legacy"] {
            let id = v["quick"][a]["result"]["version"]["id"].as_str();
            if let Some(id) = id.and_then(|h| u16::from_str_radix(h.trim_start_matches("0x"), 16).ok()) {
                let pv = ProtocolVersion(id);
                if best.is_none_or(|b| catalog::version_rank(pv) > catalog::version_rank(b)) {
                    best = Some(pv);
                }
            }
        }
        Some(Self {
            status,
            best,
            kind: v["failure"]["kind"].as_str().and_then(FailureKind::from_name),
        })
    }
}

/// (MX host, IP, port); the IP is `None` for a host that did not resolve.
type Key = (String, Option<IpAddr>, u16);

/// What an earlier run (`--resume FILE`) already wrote.
#[derive(Debug, Default)]
pub struct Resume {
    pub domains: HashSet<String>,
    pub endpoints: HashMap<Key, Summary>,
}

impl Resume {
    /// Reads an earlier JSON Lines output; incomplete lines are skipped.
    pub fn read(path: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let file = std::fs::File::open(path).with_context(|| format!("reading --resume {}", path.display()))?;
        Self::from_lines(std::io::BufReader::new(file).lines())
            .with_context(|| format!("reading --resume {}", path.display()))
    }

    /// [`Resume::read`] from lines already at hand (`--retry-inconclusive`
    /// keeps the settled lines of its file).
    pub fn from_lines(lines: impl Iterator<Item = std::io::Result<String>>) -> anyhow::Result<Self> {
        let mut r = Self::default();
        for line in lines {
            let line = line?;
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            match v["record"].as_str() {
                Some("domain") => {
                    if let Some(d) = v["domain"].as_str() {
                        r.domains.insert(crate::dns::normalise(d));
                    }
                }
                Some("endpoint") => {
                    let t = &v["target"];
                    let (Some(host), Some(port)) = (t["host"].as_str(), t["port"].as_u64()) else {
                        continue;
                    };
                    let ip = t["ip"].as_str().and_then(|s| s.parse().ok());
                    let port = u16::try_from(port).unwrap_or(SMTP_PORT);
                    if let Some(s) = Summary::from_json(&v) {
                        r.endpoints.insert((host.to_owned(), ip, port), s);
                    }
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

/// One MX host of a domain record.
#[derive(Debug, Clone, Serialize)]
struct MxEntry {
    host: String,
    preference: u16,
    ips: Vec<String>,
}

/// A domain being worked on.
#[derive(Debug)]
struct Domain {
    name: String,
    mx: Vec<MxEntry>,
    implicit: bool,
    null: bool,
    failure: Option<Failure>,
    keys: Vec<Key>,
    /// MX hosts without an address, and why.
    unresolved: Vec<(String, Failure)>,
}

/// Something for the writer.
enum Line {
    Endpoint(Box<EndpointRecord>),
    Domain(Value),
}

/// Counts for progress and the final summary.
#[derive(Debug, Default)]
struct Tally {
    domains_done: AtomicUsize,
    domains_known: AtomicUsize,
    endpoints_done: AtomicUsize,
    endpoints_known: AtomicUsize,
    in_flight: AtomicUsize,
    failures: AtomicUsize,
    by_status: Mutex<HashMap<&'static str, usize>>,
    by_best: Mutex<HashMap<&'static str, usize>>,
    rate_limited: Mutex<Vec<String>>,
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Negotiated => "negotiated",
        Status::Failed => "failed",
        Status::Inconclusive => "inconclusive",
    }
}

/// The worse of two statuses: failed, then inconclusive, then negotiated.
fn worse(a: Status, b: Status) -> Status {
    let rank = |s| match s {
        Status::Negotiated => 0,
        Status::Inconclusive => 1,
        Status::Failed => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The domain record (README "Domain records").
fn domain_record(d: &Domain, done: &HashMap<Key, Summary>) -> (Value, bool) {
    let mut findings: Vec<Finding> = Vec::new();
    if d.null {
        findings.push(Finding::new(
            "null-mx",
            Severity::Info,
            format!("{} publishes a null MX (RFC 7505): it accepts no mail", d.name),
            "MX 0 .",
        ));
    }
    if d.implicit {
        findings.push(Finding::new(
            "implicit-mx",
            Severity::Info,
            format!(
                "{} has no MX record; mail goes to its own address (RFC 5321 §5.1)",
                d.name
            ),
            "no MX, A/AAAA present",
        ));
    }
    let summaries: Vec<&Summary> = d.keys.iter().filter_map(|k| done.get(k)).collect();
    let worst = summaries.iter().fold(None, |acc: Option<Status>, s| {
        Some(acc.map_or(s.status, |a| worse(a, s.status)))
    });
    let tls12 = !summaries.is_empty()
        && summaries.iter().all(|s| {
            s.status == Status::Negotiated
                && s.best
                    .is_some_and(|v| catalog::version_rank(v) >= catalog::version_rank(ProtocolVersion::TLS12))
        });
    let (status, failure) = if let Some(f) = &d.failure {
        (Status::of_failure(f), Some(json!(f)))
    } else if d.null {
        let f = Failure::new(
            Stage::Dns,
            FailureKind::NullMx,
            format!("{} accepts no mail (RFC 7505 null MX)", d.name),
        );
        (Status::Inconclusive, Some(json!(f)))
    } else {
        let status = worst.unwrap_or(Status::Failed);
        let failure = if status == Status::Negotiated {
            None
        } else {
            // The first MX (in preference order) that did not negotiate.
            d.keys
                .iter()
                .find_map(|k| done.get(k).filter(|s| s.status != Status::Negotiated).map(|s| (k, s)))
                .map(|(k, s)| {
                    let at = k.1.map_or_else(|| k.0.clone(), |ip| format!("{}[{ip}]", k.0));
                    // An endpoint that did not negotiate always has a failure;
                    // one without is our bug, reported as such.
                    let kind = s.kind.unwrap_or(FailureKind::InternalError);
                    json!(Failure::new(Stage::Mx, kind, format!("{at}: {kind}")))
                })
        };
        (status, failure)
    };
    let ok = d.null || (d.failure.is_none() && status == Status::Negotiated);
    let v = json!({
        "record": "domain",
        "domain": d.name,
        "mx": d.mx,
        "implicit_mx": d.implicit,
        "null_mx": d.null,
        "status": status,
        "failure": failure,
        "worst": worst,
        "tls12_or_better": tls12,
        "endpoints": summaries.len(),
        "findings": findings,
    });
    (v, ok)
}

/// Reads domains from `source` on a thread, a window at a time.
fn reader(mut source: Box<dyn BufRead + Send>, tx: mpsc::Sender<Result<String, String>>) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Lines are read as bytes: a stray Latin-1 comment must not end the input.
        match source.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e.to_string()));
                break;
            }
        }
        let line = String::from_utf8_lossy(&buf);
        let d = line.split('#').next().unwrap_or("").trim();
        if d.is_empty() {
            continue;
        }
        let d = crate::dns::normalise(d);
        // A domain listed twice gets one record. The set grows with the
        // input, as names only.
        if !seen.insert(d.clone()) {
            continue;
        }
        if tx.blocking_send(Ok(d)).is_err() {
            break;
        }
    }
}

/// Resolves one domain: its MX hosts and their addresses.
async fn resolve(dns: &Dns, name: String, port: u16) -> Domain {
    let mut d = Domain {
        name,
        mx: Vec::new(),
        implicit: false,
        null: false,
        failure: None,
        keys: Vec::new(),
        unresolved: Vec::new(),
    };
    let hosts: Vec<MxHost> = match dns.mx(&d.name).await {
        Err(f) => {
            d.failure = Some(f);
            return d;
        }
        Ok(MxAnswer::Null) => {
            d.null = true;
            return d;
        }
        Ok(MxAnswer::Implicit(h)) => {
            d.implicit = true;
            vec![h]
        }
        Ok(MxAnswer::Hosts(h)) => h,
    };
    for h in hosts {
        // A host that does not resolve still gets its record, with why.
        let ips = match dns.addresses(&h.host).await {
            Ok(ips) if !ips.is_empty() => ips,
            Ok(_) => {
                let why = format!("resolving {}: no address of the requested family", h.host);
                d.unresolved
                    .push((h.host.clone(), Failure::new(Stage::Dns, FailureKind::DnsError, why)));
                Vec::new()
            }
            Err(f) => {
                d.unresolved.push((h.host.clone(), f));
                Vec::new()
            }
        };
        if ips.is_empty() {
            d.keys.push((h.host.clone(), None, port));
        }
        for ip in &ips {
            d.keys.push((h.host.clone(), Some(*ip), port));
        }
        d.mx.push(MxEntry {
            host: h.host,
            preference: h.preference,
            ips: ips.iter().map(IpAddr::to_string).collect(),
        });
    }
    d
}

/// Scans one endpoint with retries on rate limits and timeouts.
async fn scan_one(
    key: &Key,
    mx_of: Vec<String>,
    gate: Option<Arc<IpGate>>,
    unresolved: Option<Failure>,
    cfg: &BulkConfig,
) -> EndpointRecord {
    let target = Target {
        input: key.0.clone(),
        // An MX that names an IP (against RFC 5321, but seen) gets no SNI.
        host: key
            .0
            .parse::<IpAddr>()
            .map_or_else(|_| Host::Name(key.0.clone()), Host::Ip),
        port: key.2,
        transport: Transport::SmtpStarttls,
    };
    let (Some(ip), Some(gate)) = (key.1, gate) else {
        let failure = unresolved.unwrap_or_else(|| {
            Failure::new(
                Stage::Dns,
                FailureKind::DnsError,
                format!("resolving {}: no address", key.0),
            )
        });
        let mut r = unreachable_record(&target, failure, &cfg.scan);
        r.target.mx_of = Some(mx_of);
        return r;
    };
    let mut attempt = 0;
    let mut spent = 0u32;
    loop {
        let mut r = scan::scan_endpoint_through(
            &target,
            ip,
            &cfg.scan,
            Some(mx_of.clone()),
            HostGate::shared(gate.clone()),
        )
        .await;
        spent += r.connections;
        r.connections = spent;
        if attempt >= cfg.retries || !worth_retrying(&r, gate.spent()) {
            return r;
        }
        tokio::time::sleep(cfg.backoff * 2u32.saturating_pow(attempt)).await;
        attempt += 1;
    }
}

/// Whether an endpoint's record is worth another scan: it answered 421 or
/// timed out. Our own `--max-connections` budget never refills within a
/// run, so an endpoint whose IP has spent it (`own_budget_spent`), or whose
/// failure is that budget, is never retried.
fn worth_retrying(r: &EndpointRecord, own_budget_spent: bool) -> bool {
    let kind = r.failure.as_ref().map(|f| f.kind);
    !own_budget_spent && matches!(kind, Some(FailureKind::RateLimited | FailureKind::Timeout))
}

/// Runs the bulk scan; returns whether every domain's MX hosts negotiated.
pub async fn run(source: Box<dyn BufRead + Send>, cfg: BulkConfig) -> std::io::Result<(bool, bool)> {
    let cfg = Arc::new(cfg);
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(tokio::sync::Notify::new());
    {
        let stop = stop.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
                // Wakes a run waiting for input (a terminal on stdin).
                stopped.notify_one();
                eprintln!("hsscan: interrupted: no new endpoints; the ones in progress finish and are written");
                // A second Ctrl-C ends at once.
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let (line_tx, mut line_rx) = mpsc::channel::<Line>(256);
    let output = cfg.output;
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        while let Some(line) = line_rx.blocking_recv() {
            match (line, output) {
                (Line::Endpoint(r), Output::Json) => {
                    let text = serde_json::to_string(&*r).map_err(std::io::Error::other)?;
                    writeln!(out, "{text}")?;
                }
                (Line::Endpoint(r), Output::Terminal { colour }) => {
                    write!(out, "{}", report::terminal(&r, colour))?;
                    writeln!(out)?;
                }
                (Line::Domain(v), Output::Json) => writeln!(out, "{v}")?,
                (Line::Domain(v), Output::Terminal { .. }) => writeln!(
                    out,
                    "domain {}: {} (worst {}, TLS 1.2 or better everywhere: {})\n",
                    v["domain"].as_str().unwrap_or(""),
                    v["status"].as_str().unwrap_or(""),
                    v["worst"].as_str().unwrap_or("none"),
                    v["tls12_or_better"]
                )?,
            }
            out.flush()?;
        }
        Ok(())
    });
    let progress = cfg.progress.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let (dom_tx, mut dom_rx) = mpsc::channel::<Result<String, String>>(WINDOW);
    std::thread::spawn(move || reader(source, dom_tx));

    let global = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut gates: HashMap<IpAddr, Arc<IpGate>> = HashMap::new();
    let resume = cfg.resume.as_ref();
    let mut out = Out {
        done: resume.map(|r| r.endpoints.clone()).unwrap_or_default(),
        line_tx,
        tally: tally.clone(),
        all_ok: true,
        stop: stop.clone(),
    };
    let mut input_done = false;
    let mut input_error: Option<String> = None;
    while !input_done && !stop.load(Ordering::SeqCst) {
        // One window of domains.
        let mut names = Vec::new();
        while names.len() < WINDOW {
            let next = tokio::select! {
                d = dom_rx.recv() => d,
                () = stopped.notified() => break,
            };
            match next {
                Some(Err(e)) => {
                    input_error = Some(e);
                    input_done = true;
                    break;
                }
                Some(Ok(d)) if resume.is_some_and(|r| r.domains.contains(&d)) => continue,
                Some(Ok(d)) => names.push(d),
                None => {
                    input_done = true;
                    break;
                }
            }
        }
        if names.is_empty() {
            break;
        }
        tally.domains_known.fetch_add(names.len(), Ordering::SeqCst);
        let dns = &cfg.dns;
        let port = cfg.port;
        let mut domains: Vec<Domain> = Vec::with_capacity(names.len());
        {
            use futures::StreamExt as _;
            let mut resolved = futures::stream::iter(names.into_iter().enumerate())
                .map(|(i, n)| async move { (i, resolve(dns, n, port).await) })
                .buffer_unordered(DNS_IN_FLIGHT);
            let mut slots: Vec<Option<Domain>> = Vec::new();
            while let Some((i, d)) = resolved.next().await {
                if slots.len() <= i {
                    slots.resize_with(i + 1, || None);
                }
                if let Some(s) = slots.get_mut(i) {
                    *s = Some(d);
                }
            }
            domains.extend(slots.into_iter().flatten());
        }
        // The window's endpoints, each with the domains (in input order) that use it.
        let mut users: HashMap<Key, Vec<usize>> = HashMap::new();
        let mut order: Vec<Key> = Vec::new();
        for (i, d) in domains.iter().enumerate() {
            for k in &d.keys {
                let entry = users.entry(k.clone()).or_default();
                if entry.is_empty() {
                    order.push(k.clone());
                }
                if !entry.contains(&i) {
                    entry.push(i);
                }
            }
        }
        let pending: Vec<usize> = domains
            .iter()
            .map(|d| {
                d.keys
                    .iter()
                    .filter(|k| !out.done.contains_key(*k))
                    .collect::<HashSet<_>>()
                    .len()
            })
            .collect();
        let mut w = Window {
            domains,
            users,
            pending,
        };
        // Domains with nothing left to scan go out now.
        for (d, _) in w.domains.iter().zip(&w.pending).filter(|(_, p)| **p == 0) {
            out.domain(d).await;
        }
        let todo: Vec<Key> = order.into_iter().filter(|k| !out.done.contains_key(k)).collect();
        tally.endpoints_known.fetch_add(todo.len(), Ordering::SeqCst);
        let (res_tx, mut res_rx) = mpsc::channel::<(Key, EndpointRecord)>(64);
        let mut spawned = 0usize;
        // At most -j endpoint scans at once (each holds at least one connection slot).
        let tasks = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        for k in todo {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let mx_of: Vec<String> = w
                .users
                .get(&k)
                .map(|v| {
                    v.iter()
                        .filter_map(|i| w.domains.get(*i).map(|d| d.name.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let unresolved = if k.1.is_none() {
                w.domains
                    .iter()
                    .flat_map(|d| d.unresolved.iter())
                    .find(|(h, _)| *h == k.0)
                    .map(|(_, f)| f.clone())
            } else {
                None
            };
            let gate = k.1.map(|ip| {
                gates
                    .entry(ip)
                    .or_insert_with(|| {
                        Arc::new(IpGate::new(
                            cfg.scan.per_host,
                            cfg.scan.delay,
                            cfg.scan.max_connections,
                            Some(global.clone()),
                        ))
                    })
                    .clone()
            });
            let Ok(permit) = tasks.clone().acquire_owned().await else {
                break;
            };
            if stop.load(Ordering::SeqCst) {
                break;
            }
            // Records that finished meanwhile go out first.
            while let Ok((key, r)) = res_rx.try_recv() {
                out.endpoint(&key, r, &mut w).await;
                spawned -= 1;
            }
            let cfg = cfg.clone();
            let tx = res_tx.clone();
            let t = tally.clone();
            spawned += 1;
            t.in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let r = scan_one(&k, mx_of, gate, unresolved, &cfg).await;
                t.in_flight.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
                let _ = tx.send((k, r)).await;
            });
            if let Some(bar) = &progress {
                update(bar, &tally);
            }
        }
        drop(res_tx);
        while spawned > 0 {
            let Some((key, r)) = res_rx.recv().await else { break };
            out.endpoint(&key, r, &mut w).await;
            spawned -= 1;
            if let Some(bar) = &progress {
                update(bar, &tally);
            }
        }
    }
    let interrupted = stop.load(Ordering::SeqCst);
    let Out { line_tx, all_ok, .. } = out;
    drop(line_tx);
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    writer.await.map_err(std::io::Error::other)??;
    if !cfg.quiet {
        eprintln!("{}", final_summary(&tally, interrupted));
    }
    if let Some(e) = input_error {
        // What was read is scanned and written; the run still failed.
        return Err(std::io::Error::other(format!("reading the domains: {e}")));
    }
    Ok((all_ok, interrupted))
}

/// Where finished work goes: the endpoint summaries kept for domain
/// records, the writer, the counts, and whether all went well.
struct Out {
    done: HashMap<Key, Summary>,
    line_tx: mpsc::Sender<Line>,
    tally: Arc<Tally>,
    all_ok: bool,
    stop: Arc<AtomicBool>,
}

impl Out {
    async fn send(&self, line: Line) {
        // The writer is gone (stdout closed): stop starting anything.
        if self.line_tx.send(line).await.is_err() {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    /// Writes a domain's record (all its endpoints are done).
    async fn domain(&mut self, d: &Domain) {
        let (v, ok) = domain_record(d, &self.done);
        self.all_ok &= ok;
        self.tally.domains_done.fetch_add(1, Ordering::SeqCst);
        self.send(Line::Domain(v)).await;
    }

    /// Records one finished endpoint and writes the domains it completes.
    async fn endpoint(&mut self, key: &Key, r: EndpointRecord, w: &mut Window) {
        let s = Summary::of(&r);
        let tally = &self.tally;
        tally.endpoints_done.fetch_add(1, Ordering::SeqCst);
        if s.status != Status::Negotiated {
            tally.failures.fetch_add(1, Ordering::SeqCst);
        }
        if let Ok(mut m) = tally.by_status.lock() {
            *m.entry(status_name(s.status)).or_default() += 1;
        }
        if let Ok(mut m) = tally.by_best.lock() {
            *m.entry(s.best.map_or("none", crate::enumerate::label)).or_default() += 1;
        }
        if s.kind == Some(FailureKind::RateLimited) {
            if let Ok(mut v) = tally.rate_limited.lock() {
                v.push(key.1.map_or_else(|| key.0.clone(), |ip| format!("{}[{ip}]", key.0)));
            }
        }
        self.done.insert(key.clone(), s);
        self.send(Line::Endpoint(Box::new(r))).await;
        for &i in w.users.get(key).map(Vec::as_slice).unwrap_or(&[]) {
            let Some(p) = w.pending.get_mut(i) else { continue };
            *p = p.saturating_sub(1);
            if *p == 0 {
                if let Some(d) = w.domains.get(i) {
                    self.domain(d).await;
                }
            }
        }
    }
}

/// One window of domains: each with the endpoints it still waits for.
struct Window {
    domains: Vec<Domain>,
    /// The domains (by index) that use each endpoint.
    users: HashMap<Key, Vec<usize>>,
    pending: Vec<usize>,
}

fn update(bar: &indicatif::ProgressBar, t: &Tally) {
    bar.set_message(format!(
        "domains {}/{} · endpoints {}/{} · in flight {} · not negotiated {}",
        t.domains_done.load(Ordering::SeqCst),
        t.domains_known.load(Ordering::SeqCst),
        t.endpoints_done.load(Ordering::SeqCst),
        t.endpoints_known.load(Ordering::SeqCst),
        t.in_flight.load(Ordering::SeqCst),
        t.failures.load(Ordering::SeqCst),
    ));
}

fn final_summary(t: &Tally, interrupted: bool) -> String {
    let sorted = |m: &Mutex<HashMap<&'static str, usize>>| {
        let mut v: Vec<(&str, usize)> = m
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        v.sort();
        v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    };
    let limited = t.rate_limited.lock().map(|v| v.join(", ")).unwrap_or_default();
    format!(
        "hsscan: {}{} domains, {} endpoints; by status: {}; by best protocol: {}; rate-limited: {}",
        if interrupted { "interrupted after " } else { "" },
        t.domains_done.load(Ordering::SeqCst),
        t.endpoints_done.load(Ordering::SeqCst),
        sorted(&t.by_status),
        sorted(&t.by_best),
        if limited.is_empty() { "none".to_owned() } else { limited },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_survives_bytes_that_are_not_utf8_and_dedups() {
        let input: &[u8] = b"a.example\n# M\xfcller (Latin-1)\nB.example.\n\xff\xfe\na.example # again\nc.example";
        let (tx, mut rx) = mpsc::channel(16);
        reader(Box::new(std::io::Cursor::new(input.to_vec())), tx);
        let mut got = Vec::new();
        while let Ok(item) = rx.try_recv() {
            got.push(item.expect("no read error"));
        }
        assert_eq!(got, ["a.example", "b.example", "\u{fffd}\u{fffd}", "c.example"]);
    }

    fn record_failing_with(kind: FailureKind) -> EndpointRecord {
        let info = crate::report::TargetInfo {
            input: "mx.example".into(),
            host: "mx.example".into(),
            ip: Some("192.0.2.1".into()),
            port: SMTP_PORT,
            transport: Transport::SmtpStarttls,
            sni: Some("mx.example".into()),
            mx_of: Some(vec!["example".into()]),
        };
        let stage = if kind == FailureKind::BudgetSpent {
            Stage::Local
        } else {
            Stage::Banner
        };
        scan::failure_record(info, Failure::new(stage, kind, "evidence"), 2, 10)
    }

    #[test]
    fn only_rate_limits_and_timeouts_are_retried_and_never_our_own_budget() {
        assert!(worth_retrying(&record_failing_with(FailureKind::RateLimited), false));
        assert!(worth_retrying(&record_failing_with(FailureKind::Timeout), false));
        assert!(!worth_retrying(&record_failing_with(FailureKind::BudgetSpent), false));
        assert!(!worth_retrying(&record_failing_with(FailureKind::Refused), false));
        assert!(!worth_retrying(&record_failing_with(FailureKind::RateLimited), true));
        assert!(!worth_retrying(&record_failing_with(FailureKind::Timeout), true));
    }

    #[test]
    fn a_spent_budget_is_inconclusive_for_the_endpoint_and_its_domain() {
        let r = record_failing_with(FailureKind::BudgetSpent);
        assert_eq!(r.status, Status::Inconclusive);
        let key: Key = ("mx.example".into(), Some("192.0.2.1".parse().expect("ip")), SMTP_PORT);
        let d = Domain {
            name: "example".into(),
            mx: vec![],
            implicit: false,
            null: false,
            failure: None,
            keys: vec![key.clone()],
            unresolved: vec![],
        };
        let done = HashMap::from([(key, Summary::of(&r))]);
        let (v, ok) = domain_record(&d, &done);
        assert!(!ok);
        assert_eq!(v["status"], "inconclusive", "{v}");
        let f = Failure::new(
            Stage::Mx,
            FailureKind::BudgetSpent,
            "mx.example[192.0.2.1]: budget-spent",
        );
        assert_eq!(v["failure"], json!(f));
    }

    #[test]
    fn worst_status_orders_failed_over_inconclusive() {
        assert_eq!(worse(Status::Negotiated, Status::Inconclusive), Status::Inconclusive);
        assert_eq!(worse(Status::Failed, Status::Inconclusive), Status::Failed);
        assert_eq!(worse(Status::Negotiated, Status::Negotiated), Status::Negotiated);
    }
}
