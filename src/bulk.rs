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
use crate::gate::{Gates, HostGate, IpGate};
use crate::outcome::{Failure, FailureKind, Stage};
use crate::output::{Output, Record, Writer};
use crate::report::{DomainRecord, EndpointRecord, MxEntry, Status};
use crate::run::{unreachable_record, Finished};
use crate::scan::{self, ScanConfig};
use crate::stop::Stop;
use crate::target::{Host, Target, Transport};
use hsscan_wire::{catalog, ProtocolVersion};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Domains resolved and scheduled together.
pub const WINDOW: usize = 1000;
/// DNS lookups in flight.
pub const DNS_IN_FLIGHT: usize = 128;
/// Domain policy lookups (MTA-STS fetches, TLSA and TXT lookups) in
/// flight at once; past this, finishing a domain waits for a slot.
pub const POLICY_IN_FLIGHT: usize = 64;

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
    /// The headline sender's verdict there.
    pub verdict: Option<crate::senders::Verdict>,
    /// What the domain's DANE and MTA-STS results need of this endpoint.
    pub policy: crate::policy::EndpointInput,
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
            verdict: r.verdict.clone(),
            policy: crate::policy::EndpointInput::of(r.status, &r.certificates),
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
            verdict: resumed_verdict(&v["verdict"]),
            // The record keeps no DER: DANE matching works from the
            // digests of its chains.
            policy: crate::policy::EndpointInput::from_json(v),
        })
    }
}

/// The headline verdict of an earlier output's record.
fn resumed_verdict(v: &serde_json::Value) -> Option<crate::senders::Verdict> {
    use crate::senders::Outcome;
    let outcome = match v["outcome"].as_str()? {
        "tls" => Outcome::Tls,
        "no-tls" => Outcome::NoTls,
        _ => Outcome::Inconclusive,
    };
    Some(crate::senders::Verdict {
        sender: v["sender"].as_str()?.to_owned(),
        outcome,
        summary: v["summary"].as_str().unwrap_or("").to_owned(),
    })
}

/// (MX host, IP, port); the IP is `None` for a host that did not resolve.
type Key = (String, Option<IpAddr>, u16);

/// What an earlier run (`--resume FILE`) already wrote.
#[derive(Debug, Default)]
pub struct Resume {
    pub domains: HashSet<String>,
    pub endpoints: HashMap<Key, Summary>,
    /// The file does not end with a line end (a run killed mid-write):
    /// output appended to it must start on a fresh line.
    pub unterminated: bool,
    path: std::path::PathBuf,
}

/// The longest line `--resume` reads: far above any record hsscan writes
/// (an enumerated endpoint is tens of KiB), and a bound on memory for a
/// file that is not an earlier output.
const MAX_RESUME_LINE: usize = 64 * 1024 * 1024;

/// Lines of a `--resume` file reported one by one when they are not
/// records; the rest are counted.
const RESUME_WARNINGS: usize = 5;

impl Resume {
    /// Reads an earlier JSON Lines output. A line that is not a record is
    /// ignored with a warning on stderr — the cut last line of a killed
    /// run among them: its domain or endpoint is scanned again, so nothing
    /// is lost and nothing written twice. Bytes that are not UTF-8 are
    /// read as U+FFFD, so a record holding them still counts.
    pub fn read(path: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        use std::io::Read as _;
        let what = || format!("reading --resume {}", path.display());
        let file = std::fs::File::open(path).with_context(what)?;
        let mut input = std::io::BufReader::new(file);
        let mut r = Self {
            path: path.to_owned(),
            ..Self::default()
        };
        let mut buf = Vec::new();
        let (mut number, mut ignored) = (0usize, 0usize);
        loop {
            buf.clear();
            let limit = u64::try_from(MAX_RESUME_LINE + 1).unwrap_or(u64::MAX);
            let n = (&mut input)
                .take(limit)
                .read_until(b'\n', &mut buf)
                .with_context(what)?;
            if n == 0 {
                break;
            }
            number += 1;
            let terminated = buf.last() == Some(&b'\n');
            if !terminated && buf.len() > MAX_RESUME_LINE {
                anyhow::bail!(
                    "{}: line {number} is longer than {MAX_RESUME_LINE} bytes: not an hsscan output",
                    what()
                );
            }
            r.unterminated = !terminated;
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if r.take(text) {
                continue;
            }
            ignored += 1;
            let why = if terminated {
                format!("line {number} is not a record")
            } else {
                format!("its last line ({number}) is cut short, as by a run killed mid-write")
            };
            if ignored <= RESUME_WARNINGS || !terminated {
                eprintln!(
                    "hsscan: warning: {}: {why}: ignored; what it held is scanned again",
                    what()
                );
            }
        }
        if ignored > RESUME_WARNINGS {
            eprintln!("hsscan: warning: {}: {ignored} lines ignored in all", what());
        }
        Ok(r)
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

    /// Takes one line's record; `false` when it is none.
    fn take(&mut self, line: &str) -> bool {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return false;
        };
        match v["record"].as_str() {
            Some("domain") => {
                let Some(d) = v["domain"].as_str() else { return false };
                self.domains.insert(crate::dns::normalise(d));
                true
            }
            Some("endpoint") => {
                let t = &v["target"];
                let (Some(host), Some(port)) = (t["host"].as_str(), t["port"].as_u64()) else {
                    return false;
                };
                let ip = t["ip"].as_str().and_then(|s| s.parse().ok());
                let port = u16::try_from(port).unwrap_or(SMTP_PORT);
                let Some(s) = Summary::from_json(&v) else { return false };
                self.endpoints.insert((host.to_owned(), ip, port), s);
                true
            }
            _ => false,
        }
    }

    /// Whether the run's output must open with a line end: stdout appends
    /// to this very file, and the file's last line has none.
    pub fn needs_fresh_line(&self) -> bool {
        self.unterminated && crate::output::stdout_is(&self.path)
    }
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
    /// Domains by the headline sender's verdict.
    by_verdict: Mutex<HashMap<&'static str, usize>>,
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

/// The domain record (SPEC §3, README "Domain records"), and whether it is
/// a clean bill.
fn domain_record(d: &Domain, done: &HashMap<Key, Summary>) -> (DomainRecord, bool) {
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
        (Status::of_failure(f), Some(f.clone()))
    } else if d.null {
        let f = Failure::new(
            Stage::Dns,
            FailureKind::NullMx,
            format!("{} accepts no mail (RFC 7505 null MX)", d.name),
        );
        (Status::Inconclusive, Some(f))
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
                    Failure::new(Stage::Mx, kind, format!("{at}: {kind}"))
                })
        };
        (status, failure)
    };
    let verdict = domain_verdict(d, done);
    let ok = d.null
        || (d.failure.is_none()
            && verdict.as_ref().map_or(status == Status::Negotiated, |v| {
                v.outcome == crate::senders::Outcome::Tls
            }));
    let record = DomainRecord {
        record: DomainRecord::RECORD,
        domain: d.name.clone(),
        mx: d.mx.clone(),
        implicit_mx: d.implicit,
        null_mx: d.null,
        status,
        verdict,
        failure,
        worst,
        tls12_or_better: tls12,
        endpoints: summaries.len(),
        policy: None,
        findings,
    };
    (record, ok)
}

/// The headline sender over every MX endpoint of `d`: TLS when it gets it
/// at each, no TLS when it fails at one (the first in preference order is
/// named), else inconclusive.
fn domain_verdict(d: &Domain, done: &HashMap<Key, Summary>) -> Option<crate::senders::Verdict> {
    use crate::senders::{Outcome, Verdict};
    let each: Vec<(&Key, &Verdict)> = d
        .keys
        .iter()
        .filter_map(|k| done.get(k).and_then(|s| s.verdict.as_ref()).map(|v| (k, v)))
        .collect();
    let (_, first) = each.first()?;
    let at = |k: &Key| k.1.map_or_else(|| k.0.clone(), |ip| format!("{}[{ip}]", k.0));
    let failing = each.iter().find(|(_, v)| v.outcome == Outcome::NoTls);
    let unsure = each.iter().find(|(_, v)| v.outcome == Outcome::Inconclusive);
    let (outcome, summary) = match (failing, unsure) {
        (Some((k, v)), _) => (Outcome::NoTls, format!("at {}: {}", at(k), v.summary)),
        (None, Some((k, v))) => (Outcome::Inconclusive, format!("at {}: {}", at(k), v.summary)),
        (None, None) => (
            Outcome::Tls,
            format!(
                "{} gets TLS at every MX of {} ({} endpoints)",
                first.sender,
                d.name,
                each.len()
            ),
        ),
    };
    Some(Verdict {
        sender: first.sender.clone(),
        outcome,
        summary,
    })
}

/// The domains of a run: the command line's, then the input file's.
pub struct Domains {
    pub listed: Vec<String>,
    /// `-i FILE`, read as the run goes (bounded per line and in lines).
    pub input: Option<crate::target::InputLines>,
    /// `--shard I/N`: only the domains of this slice.
    pub shard: Option<crate::shard::Shard>,
}

/// Reads domains from `source` on a thread, as the run takes them.
fn reader(source: Domains, tx: mpsc::Sender<Result<String, String>>) {
    let Domains {
        listed,
        mut input,
        shard,
    } = source;
    let mut seen: HashSet<String> = HashSet::new();
    let from_input = std::iter::from_fn(|| match input.as_mut().map(crate::target::InputLines::next_entry) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some((_, d)))) => Some(Ok(d)),
        Some(Err(e)) => Some(Err(e.to_string())),
    });
    for item in listed.into_iter().map(Ok).chain(from_input) {
        let d = match item {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                break;
            }
        };
        let d = crate::dns::normalise(&d);
        if shard.as_ref().is_some_and(|s| !s.keeps(&d)) {
            continue;
        }
        // A domain listed twice gets one record. The set grows with the
        // input, as names only (at most MAX_INPUT_LINES of them).
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
pub async fn run(source: Domains, cfg: BulkConfig) -> std::io::Result<Finished> {
    let cfg = Arc::new(cfg);
    let tally = Arc::new(Tally::default());
    let stop = Stop::new();
    stop.on_ctrl_c(cfg.quiet);
    let fresh_line = cfg.resume.as_ref().is_some_and(Resume::needs_fresh_line);
    let writer = Writer::start(cfg.output, stop.clone(), fresh_line);
    let progress = cfg.progress.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let (dom_tx, mut dom_rx) = mpsc::channel::<Result<String, String>>(WINDOW);
    std::thread::spawn(move || reader(source, dom_tx));

    let gates = Gates::new(
        cfg.scan.per_host,
        cfg.scan.delay,
        cfg.scan.max_connections,
        cfg.concurrency,
        stop.clone(),
    );
    let resume = cfg.resume.as_ref();
    let mut out = Out {
        done: resume.map(|r| r.endpoints.clone()).unwrap_or_default(),
        writer,
        tally: tally.clone(),
        all_ok: true,
        stop: stop.clone(),
        policy: cfg.scan.policy.clone(),
        port: cfg.port,
        lookups: tokio::task::JoinSet::new(),
        lookup_slots: Arc::new(Semaphore::new(POLICY_IN_FLIGHT)),
    };
    let mut input_done = false;
    let mut input_error: Option<String> = None;
    while !input_done && !stop.is_set() {
        // One window of domains.
        let mut names = Vec::new();
        while names.len() < WINDOW {
            let next = tokio::select! {
                d = dom_rx.recv() => d,
                () = stop.wait() => break,
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
            if stop.is_set() {
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
            let gate = k.1.map(|ip| gates.for_ip(ip));
            let permit = tokio::select! {
                biased;
                () = stop.wait() => break,
                p = tasks.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            // Records that finished meanwhile go out first.
            while let Ok((key, r)) = res_rx.try_recv() {
                out.endpoint(&key, r, &mut w).await;
                spawned -= 1;
            }
            let cfg = cfg.clone();
            let tx = res_tx.clone();
            let t = tally.clone();
            let stop = stop.clone();
            spawned += 1;
            t.in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                // Stopped: the scan is dropped (its connections close) and
                // its record, never finished, is not written.
                let r = tokio::select! {
                    biased;
                    () = stop.wait() => None,
                    r = scan_one(&k, mx_of, gate, unresolved, &cfg) => Some(r),
                };
                t.in_flight.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
                if let Some(r) = r {
                    let _ = tx.send((k, r)).await;
                }
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
    // Domain records still waiting for their policy lookups.
    while out.lookups.join_next().await.is_some() {}
    let stopped = stop.why();
    let Out { writer, all_ok, .. } = out;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    writer.finish().await?;
    // An input that failed before a single domain was done says so in its
    // one error line, without an empty summary.
    let nothing_done = tally.domains_done.load(Ordering::SeqCst) == 0 && input_error.is_some();
    if !cfg.quiet && !nothing_done {
        eprintln!("{}", crate::style::escape(&final_summary(&tally, stopped.is_some())));
    }
    if let Some(e) = input_error {
        // What was read is scanned and written; the run still failed.
        return Err(std::io::Error::other(e));
    }
    Ok(Finished { all_ok, stopped })
}

/// Where finished work goes: the endpoint summaries kept for domain
/// records, the writer, the counts, and whether all went well.
struct Out {
    done: HashMap<Key, Summary>,
    writer: Writer,
    tally: Arc<Tally>,
    all_ok: bool,
    stop: Stop,
    /// DANE, MTA-STS and TLS-RPT for the domain records (`None`: off).
    policy: Option<Arc<crate::policy::PolicyConfig>>,
    port: u16,
    /// The domain records waiting for their policy: each task writes its
    /// record when its lookups are done, so a slow MTA-STS fetch holds
    /// back only its own domain's record.
    lookups: tokio::task::JoinSet<()>,
    /// At most [`POLICY_IN_FLIGHT`] of them.
    lookup_slots: Arc<Semaphore>,
}

impl Out {
    async fn send(&self, record: Record) {
        // The writer is gone (stdout closed): stop starting anything.
        if !self.writer.write(record).await {
            self.stop.set(crate::stop::Why::StdoutClosed);
        }
    }

    /// Writes a domain's record (all its endpoints are done): at once, or
    /// — when its policy is looked up — from a task of its own once the
    /// lookups are done, while other records go on being written. The
    /// lookups are cached per domain and per MX host as before.
    async fn domain(&mut self, d: &Domain) {
        let (mut record, ok) = domain_record(d, &self.done);
        self.all_ok &= ok;
        // Reap the lookups that are done, so the set stays small.
        while self.lookups.try_join_next().is_some() {}
        let Some(p) = self.policy.clone().filter(|_| d.failure.is_none() && !d.null) else {
            write_domain(&self.writer.handle(), &self.tally, &self.stop, record).await;
            return;
        };
        let hosts = policy_hosts(d, &self.done);
        let (name, port) = (d.name.clone(), self.port);
        let Ok(slot) = self.lookup_slots.clone().acquire_owned().await else {
            return;
        };
        let (writer, tally, stop) = (self.writer.handle(), self.tally.clone(), self.stop.clone());
        self.lookups.spawn(async move {
            let p = crate::policy::domain_policy(&p, &name, port, &hosts).await;
            drop(slot);
            record.findings.extend(p.findings());
            record.policy = Some(p);
            write_domain(&writer, &tally, &stop, record).await;
        });
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
        self.send(Record::Endpoint(Box::new(r))).await;
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

/// Counts a finished domain record and queues it.
async fn write_domain(writer: &crate::output::WriteHandle, tally: &Tally, stop: &Stop, record: DomainRecord) {
    if let (Some(v), Ok(mut m)) = (record.verdict.as_ref(), tally.by_verdict.lock()) {
        *m.entry(v.outcome.as_str()).or_default() += 1;
    }
    tally.domains_done.fetch_add(1, Ordering::SeqCst);
    // The writer is gone (stdout closed): stop starting anything.
    if !writer.write(Record::Domain(Box::new(record))).await {
        stop.set(crate::stop::Why::StdoutClosed);
    }
}

/// Each MX host of `d` with the finished endpoints of its addresses.
fn policy_hosts(
    d: &Domain,
    done: &HashMap<Key, Summary>,
) -> Vec<(String, Vec<(IpAddr, crate::policy::EndpointInput)>)> {
    d.mx.iter()
        .map(|m| {
            let ips = d
                .keys
                .iter()
                .filter(|k| k.0 == m.host)
                .filter_map(|k| Some((k.1?, done.get(k)?.policy.clone())))
                .collect();
            (m.host.clone(), ips)
        })
        .collect()
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
        "hsscan: {}{} domains, {} endpoints; domains by verdict: {}; endpoints by status: {}; by best protocol: {}; rate-limited: {}",
        if interrupted { "interrupted after " } else { "" },
        t.domains_done.load(Ordering::SeqCst),
        t.endpoints_done.load(Ordering::SeqCst),
        sorted(&t.by_verdict),
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
        let input = crate::target::InputLines::new("test", Box::new(std::io::Cursor::new(input.to_vec())));
        reader(
            Domains {
                listed: vec!["c.example".into(), "d.example".into()],
                input: Some(input),
                shard: None,
            },
            tx,
        );
        let mut got = Vec::new();
        while let Ok(item) = rx.try_recv() {
            got.push(item.expect("no read error"));
        }
        assert_eq!(
            got,
            ["c.example", "d.example", "a.example", "b.example", "\u{fffd}\u{fffd}"]
        );
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
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        let f = Failure::new(
            Stage::Mx,
            FailureKind::BudgetSpent,
            "mx.example[192.0.2.1]: budget-spent",
        );
        assert_eq!(v.failure, Some(f));
    }

    #[test]
    fn resume_ignores_a_torn_last_line_and_reads_records_holding_bytes_that_are_not_utf8() {
        let endpoint = |host: &str| {
            let mut r = record_failing_with(FailureKind::Refused);
            r.target.host = host.to_owned();
            serde_json::to_string(&r).expect("JSON")
        };
        let mut bytes = Vec::new();
        bytes.extend(
            endpoint("mx1.example")
                .replace("mx1.example", "mx1.example\u{fffd}")
                .as_bytes(),
        );
        // A record whose text holds a byte that is not UTF-8 still counts.
        let mut latin1 = endpoint("mx2.example").into_bytes();
        let at = latin1.windows(5).position(|w| w == b"input").expect("input key") + 8;
        latin1.insert(at, 0xfc);
        bytes.push(b'\n');
        bytes.extend(latin1);
        bytes.extend(b"\n{\"record\":\"domain\",\"domain\":\"Example.\"}\n\n");
        // Cut inside a multibyte character, as a killed run leaves it.
        let torn = endpoint("mx3.example");
        bytes.extend(torn.as_bytes().get(..40).expect("long enough"));
        bytes.extend(b"\xe2\x80");
        let path = std::env::temp_dir().join(format!("hsscan-resume-unit-{}.jsonl", std::process::id()));
        std::fs::write(&path, &bytes).expect("write");
        let r = Resume::read(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        let mut hosts: Vec<&str> = r.endpoints.keys().map(|k| k.0.as_str()).collect();
        hosts.sort_unstable();
        assert_eq!(hosts, ["mx1.example\u{fffd}", "mx2.example"]);
        assert_eq!(r.domains, HashSet::from(["example".to_owned()]));
        assert!(r.unterminated);
    }

    #[test]
    fn worst_status_orders_failed_over_inconclusive() {
        assert_eq!(worse(Status::Negotiated, Status::Inconclusive), Status::Inconclusive);
        assert_eq!(worse(Status::Failed, Status::Inconclusive), Status::Failed);
        assert_eq!(worse(Status::Negotiated, Status::Negotiated), Status::Negotiated);
    }
}
