//! Scanning one endpoint (SPEC §1 item 1): the quick check's two hellos,
//! the certificate chain, and a verdict naming the failure point and its
//! evidence. Every connection to an IP goes through its [`HostGate`], which
//! bounds connections in flight (`--per-host`), paces them (`--delay`) and
//! counts them against a budget (`--max-connections`).

use crate::certs::TrustStore;
use crate::finding::{Finding, Severity};
use crate::hellos::{self, Prepared};
use crate::outcome::{Failure, FailureKind, Stage};
use crate::probe::{self, Endpoint, ProbeConfig, ProbeResult};
use crate::report::{Attempt, CertificateReport, EndpointRecord, Negotiated, Offered, Quick, Status, TargetInfo};
use crate::target::{Host, Target};
use hsscan_wire::catalog::{self, Grade};
use hsscan_wire::{ProtocolVersion, ServerKeyExchange};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// Everything a scan needs, resolved once from the command line.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub probe: ProbeConfig,
    pub ehlo_name: String,
    /// `Some(name)`: send this SNI; `None` with `sni_from_target`: the
    /// target's host name (never an IP, RFC 6066 §3).
    pub sni_override: Option<String>,
    pub no_sni: bool,
    pub per_host: usize,
    pub delay: Duration,
    pub max_connections: Option<u32>,
    /// The instant certificate dates are judged at (`--at`).
    pub at: time::OffsetDateTime,
    pub trust: Arc<TrustStore>,
    /// Run the full enumeration after the quick check (`--enumerate`).
    pub enumerate: bool,
}

impl ScanConfig {
    /// The SNI for `host`: the override, else its DNS name, never an IP.
    pub fn sni_for(&self, host: &Host) -> Option<String> {
        if self.no_sni {
            return None;
        }
        self.sni_override.clone().or_else(|| host.name().map(str::to_owned))
    }
}

/// Every connection to one IP, whichever endpoint or domain makes it: at
/// most `per_host` in flight, `delay` between starts, at most `max` in all,
/// and (in bulk runs) one of the run's overall connection slots.
#[derive(Debug)]
pub struct IpGate {
    slots: Semaphore,
    last_start: Mutex<Option<Instant>>,
    delay: Duration,
    used: AtomicU32,
    max: Option<u32>,
    global: Option<Arc<Semaphore>>,
}

impl IpGate {
    pub fn new(per_host: usize, delay: Duration, max: Option<u32>, global: Option<Arc<Semaphore>>) -> Self {
        Self {
            slots: Semaphore::new(per_host.max(1)),
            last_start: Mutex::new(None),
            delay,
            used: AtomicU32::new(0),
            max,
            global,
        }
    }

    /// Connections made to this IP so far.
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::SeqCst)
    }

    /// Whether the `--max-connections` budget is spent.
    pub fn spent(&self) -> bool {
        self.max.is_some_and(|max| self.used() >= max)
    }
}

/// One endpoint's view of its IP's gate: it counts the connections this
/// endpoint made.
#[derive(Debug)]
pub struct HostGate {
    ip: Arc<IpGate>,
    used: AtomicU32,
}

impl HostGate {
    /// A gate of its own (one target, one IP).
    pub fn new(per_host: usize, delay: Duration, max: Option<u32>) -> Self {
        Self::shared(Arc::new(IpGate::new(per_host, delay, max, None)))
    }

    /// A view of a gate shared with every other endpoint on the same IP.
    pub fn shared(ip: Arc<IpGate>) -> Self {
        Self {
            ip,
            used: AtomicU32::new(0),
        }
    }

    /// Connections this endpoint made so far.
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::SeqCst)
    }

    /// Runs one probe through the gate; `None` when the budget is spent.
    pub async fn probe(&self, endpoint: &Endpoint, hello: &Prepared, cfg: &ProbeConfig) -> Option<ProbeResult> {
        let ip = &self.ip;
        // The IP's slot first: a probe queued behind a busy IP must not hold
        // one of the run's overall slots while it waits.
        let _slot = ip.slots.acquire().await.ok()?;
        // Claim a connection from the IP's budget before connecting.
        let claimed = ip
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match ip.max {
                Some(max) if n >= max => None,
                _ => Some(n + 1),
            });
        claimed.ok()?;
        self.used.fetch_add(1, Ordering::SeqCst);
        {
            let mut last = ip.last_start.lock().await;
            if let Some(t) = *last {
                let next = t + ip.delay;
                let now = Instant::now();
                if next > now {
                    tokio::time::sleep(next - now).await;
                }
            }
            *last = Some(Instant::now());
        }
        let _global = match &ip.global {
            Some(g) => Some(g.acquire().await.ok()?),
            None => None,
        };
        let r = probe::run(endpoint, &hello.writes, cfg).await;
        if std::env::var_os("HSSCAN_TRACE").is_some() {
            let f = &r.flight;
            let outcome = match (&f.server_hello, &f.retry_request, &f.sslv2, &r.failure) {
                (Some(h), _, _, _) => format!("ServerHello {:?} {:?}", h.selected_version(), h.cipher_suite),
                (_, Some(h), _, _) => format!("HelloRetryRequest {:?} {:?}", h.cipher_suite, h.key_share_group()),
                (_, _, Some(h), _) => format!("SSLv2 SERVER-HELLO, {} specs", h.cipher_specs.len()),
                (_, _, _, Some(fail)) => format!("{}: {}", fail.kind, fail.detail),
                _ => "nothing".to_owned(),
            };
            eprintln!(
                "hsscan trace: connection {} to {}: up to {:?}, {} suites, {} bytes -> {outcome}",
                self.used(),
                endpoint.addr,
                hello.max_version,
                hello.cipher_count,
                hello.hello_bytes
            );
        }
        Some(r)
    }
}

fn negotiated(r: &ProbeResult) -> Option<Negotiated> {
    let f = &r.flight;
    if let Some(h) = &f.server_hello {
        let group = h
            .key_share_group()
            .or_else(|| f.server_key_exchange.as_ref().and_then(ServerKeyExchange::group));
        return Some(Negotiated {
            version: h.selected_version(),
            cipher: h.cipher_suite,
            group,
        });
    }
    if let Some(h) = &f.sslv2 {
        let cipher = h.cipher_specs.first().map_or(hsscan_wire::CipherSuite(0), |s| {
            hsscan_wire::CipherSuite(u16::try_from(s.0 & 0xffff).unwrap_or(0))
        });
        return Some(Negotiated {
            version: ProtocolVersion::SSL2,
            cipher,
            group: None,
        });
    }
    None
}

fn attempt(p: &Prepared, r: Option<&ProbeResult>) -> Attempt {
    let offered = Offered {
        max_version: p.max_version,
        cipher_count: p.cipher_count,
        hello_bytes: p.hello_bytes,
    };
    match r {
        // Our own budget, not the server's limit: nothing was asked.
        None => Attempt {
            offered,
            result: None,
            failure: Some(Failure::new(
                Stage::Local,
                FailureKind::BudgetSpent,
                "the --max-connections budget for this host is spent",
            )),
        },
        Some(r) => Attempt {
            offered,
            result: negotiated(r),
            failure: r.failure.clone().filter(|_| !r.answered()),
        },
    }
}

/// Certificate chain report for the DER certificates the server sent.
pub fn certificate_report(ders: &[Vec<u8>], host: Option<&str>, cfg: &ScanConfig) -> CertificateReport {
    let chain: Vec<crate::certs::CertInfo> = ders.iter().map(|d| crate::certs::CertInfo::from_der(d)).collect();
    let verdicts = crate::certs::check_chain(ders, host, cfg.at, &cfg.trust);
    CertificateReport {
        key: crate::certs::key_label(&chain),
        chain,
        verdicts,
    }
}

/// Findings from what the two hellos negotiated.
fn quick_findings(quick: &Quick) -> Vec<Finding> {
    let mut out = Vec::new();
    let describe = |n: &Negotiated| crate::report::describe(n, false);
    let (m, l) = (&quick.modern, &quick.legacy);
    let best = [m.result.as_ref(), l.result.as_ref()]
        .into_iter()
        .flatten()
        .max_by_key(|n| catalog::version_rank(n.version));
    if let Some(best) = best {
        let rank = catalog::version_rank(best.version);
        if best.version == ProtocolVersion::SSL2 || best.version == ProtocolVersion::SSL3 {
            out.push(Finding::new(
                "protocol-sslv3-or-older",
                Severity::Critical,
                "the best protocol the server negotiates is SSLv3 or older",
                describe(best),
            ));
        } else if rank < catalog::version_rank(ProtocolVersion::TLS12) {
            out.push(Finding::new(
                "protocol-below-tls12",
                Severity::High,
                "the server negotiates nothing better than TLS 1.0/1.1; senders with a TLS 1.2 minimum (OpenSSL 3 at its default security level) fail the handshake",
                describe(best),
            ));
        }
    }
    // A modern hello stopped on our side (budget, local limit, bug) was
    // never refused by the server.
    let refused = m.failure.as_ref().filter(|f| f.kind.blames_server());
    if let (None, Some(lr), Some(mf)) = (&m.result, &l.result, refused) {
        out.push(Finding::new(
            "modern-hello-refused",
            Severity::High,
            "a TLS 1.2/1.3 hello fails where a TLS 1.0 hello succeeds: a modern sender gets 'handshake failure'; a per-destination policy allowing TLS 1.0 and the legacy suite (e.g. Postfix smtp_tls_policy_maps with protocols=>=TLSv1 and, on OpenSSL 3, SECLEVEL=0) would work",
            format!("modern: {} ({}); legacy: {}", mf.kind, mf.detail, describe(lr)),
        ));
    }
    for (label, a) in [("modern", m), ("legacy", l)] {
        let Some(n) = &a.result else { continue };
        let Some(p) = catalog::suite(n.cipher).and_then(|s| s.properties) else {
            continue;
        };
        let (id, severity) = match p.grade {
            Grade::Insecure => ("cipher-insecure-negotiated", Severity::High),
            Grade::Weak if label == "modern" => ("cipher-weak-negotiated", Severity::Medium),
            _ => continue,
        };
        out.push(Finding::new(
            id,
            severity,
            format!(
                "the {label} hello negotiates a {} suite: {}",
                p.grade.as_str(),
                p.grade_reason
            ),
            describe(n),
        ));
    }
    out
}

/// Findings from the enumeration matrix.
fn enumeration_findings(e: &crate::enumerate::Enumeration) -> Vec<Finding> {
    let mut out = Vec::new();
    let yes = |l: &str| e.protocols.get(l).copied().unwrap_or(false);
    for (label, id, severity) in [
        ("SSLv2", "sslv2-supported", Severity::Critical),
        ("SSLv3", "sslv3-supported", Severity::High),
        ("TLSv1.0", "tls10-supported", Severity::Low),
        ("TLSv1.1", "tls11-supported", Severity::Low),
    ] {
        if yes(label) {
            let evidence = e.details.get(label).map(|d| d.evidence.clone()).unwrap_or_default();
            out.push(Finding::new(id, severity, format!("{label} is supported"), evidence));
        }
    }
    if !yes("TLSv1.2") && !yes("TLSv1.3") {
        out.push(Finding::new(
            "no-tls12-or-better",
            Severity::High,
            "neither TLS 1.2 nor TLS 1.3 is supported",
            String::new(),
        ));
    }
    let mut insecure = Vec::new();
    for (label, suites) in &e.ciphers {
        for c in suites {
            if *label == "SSLv2" || catalog::suite_by_name(&c.id).and_then(|s| s.grade()) == Some(Grade::Insecure) {
                insecure.push(format!("{label} {}", c.name.unwrap_or(&c.id)));
            }
        }
    }
    if !insecure.is_empty() {
        out.push(Finding::new(
            "insecure-cipher-offered",
            Severity::High,
            format!(
                "{} insecure suites are accepted (NULL, anonymous, export, RC4, DES or MD5)",
                insecure.len()
            ),
            insecure.join(", "),
        ));
    }
    if e.features.secure_renegotiation == Some(false) {
        out.push(Finding::new(
            "no-secure-renegotiation",
            Severity::Medium,
            "the server does not support secure renegotiation (RFC 5746)",
            String::new(),
        ));
    }
    if e.features.compression == Some(true) {
        out.push(Finding::new(
            "tls-compression",
            Severity::High,
            "the server accepts TLS compression (CRIME)",
            String::new(),
        ));
    }
    if e.features.heartbeat == Some(true) {
        out.push(Finding::new(
            "heartbeat-enabled",
            Severity::Low,
            "the heartbeat extension is enabled (check for Heartbleed)",
            String::new(),
        ));
    }
    if let Some(bits) = e.dh_bits.filter(|b| *b < 2048) {
        out.push(Finding::new(
            "dh-params-weak",
            if bits < 1024 { Severity::High } else { Severity::Medium },
            format!("DH parameters of {bits} bits (Logjam below 1024; 2048 recommended)"),
            format!("{bits}-bit prime"),
        ));
    }
    out
}

/// The status and failure of the endpoint from its two attempts.
fn verdict(quick: &Quick) -> (Status, Option<Failure>) {
    if quick.modern.result.is_some() || quick.legacy.result.is_some() {
        return (Status::Negotiated, None);
    }
    let fm = quick.modern.failure.clone();
    let fl = quick.legacy.failure.clone();
    if [&fm, &fl].into_iter().flatten().any(Failure::is_inconclusive) {
        let f = [fm, fl].into_iter().flatten().find(Failure::is_inconclusive);
        return (Status::Inconclusive, f);
    }
    (Status::Failed, fm.or(fl))
}

/// `target` of the record of `target` on `ip` (`None`: not resolved).
pub fn target_info(target: &Target, ip: Option<IpAddr>, cfg: &ScanConfig, mx_of: Option<Vec<String>>) -> TargetInfo {
    TargetInfo {
        input: target.input.clone(),
        host: target.host.to_string(),
        ip: ip.map(|ip| ip.to_string()),
        port: target.port,
        transport: target.transport,
        sni: cfg.sni_for(&target.host),
        mx_of,
    }
}

/// The record of an endpoint whose scan ended before any hello was
/// answered — the host did not resolve, our own hellos did not encode, the
/// scan panicked — with the failure in both attempts.
pub fn failure_record(info: TargetInfo, failure: Failure, connections: u32, duration_ms: u64) -> EndpointRecord {
    let none = |max_version| Attempt {
        offered: Offered {
            max_version,
            cipher_count: 0,
            hello_bytes: 0,
        },
        result: None,
        failure: Some(failure.clone()),
    };
    EndpointRecord {
        record: "endpoint",
        target: info,
        status: Status::of_failure(&failure),
        smtp: None,
        quick: Quick {
            modern: none(ProtocolVersion::TLS13),
            legacy: none(ProtocolVersion::TLS10),
        },
        failure: Some(failure),
        enumeration: None,
        certificates: vec![],
        findings: vec![],
        connections,
        duration_ms,
    }
}

/// Scans one (target, IP): the quick check, certificates, findings.
pub async fn scan_endpoint(
    target: &Target,
    ip: IpAddr,
    cfg: &ScanConfig,
    mx_of: Option<Vec<String>>,
) -> EndpointRecord {
    let gate = HostGate::new(cfg.per_host, cfg.delay, cfg.max_connections);
    scan_endpoint_through(target, ip, cfg, mx_of, gate).await
}

/// [`scan_endpoint`] through a gate that may be shared with other
/// endpoints on the same IP (bulk runs).
///
/// A panic in the scan is a bug of ours, and the endpoint still gets its
/// record (as do, in bulk runs, the domains waiting for it): inconclusive,
/// `local`/`internal-error` with the panic message, and the connections
/// made before it.
pub async fn scan_endpoint_through(
    target: &Target,
    ip: IpAddr,
    cfg: &ScanConfig,
    mx_of: Option<Vec<String>>,
    gate: HostGate,
) -> EndpointRecord {
    use futures::FutureExt as _;
    let started = Instant::now();
    // Unwind safety: the scan's own state dies with it; what it shares
    // (the IP gates, tokio's semaphores and mutexes) is never left half
    // updated by a panic, and nothing in it is poisoned.
    let scan = std::panic::AssertUnwindSafe(scan_gated(target, ip, cfg, mx_of.clone(), &gate));
    match scan.catch_unwind().await {
        Ok(record) => record,
        Err(panic) => {
            let f = Failure::new(
                Stage::Local,
                FailureKind::InternalError,
                format!("the scan panicked (a bug in hsscan): {}", panic_message(&*panic)),
            );
            let info = target_info(target, Some(ip), cfg, mx_of);
            failure_record(info, f, gate.used(), millis(started.elapsed()))
        }
    }
}

/// The text a panic was raised with.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Test hook, read as each endpoint scan starts: `HSSCAN_TEST_PANIC_HOST=HOST`
/// makes the scan of HOST (as the target or MX names it) panic, so the tests
/// can show that a panicking scan still yields its records. Unset, it costs
/// one environment lookup per endpoint.
pub const TEST_PANIC_HOST: &str = "HSSCAN_TEST_PANIC_HOST";

async fn scan_gated(
    target: &Target,
    ip: IpAddr,
    cfg: &ScanConfig,
    mx_of: Option<Vec<String>>,
    gate: &HostGate,
) -> EndpointRecord {
    if std::env::var_os(TEST_PANIC_HOST).is_some_and(|h| h == target.host.to_string().as_str()) {
        panic!("{TEST_PANIC_HOST} names {}", target.host);
    }
    let started = Instant::now();
    let sni = cfg.sni_for(&target.host);
    let endpoint = Endpoint {
        addr: SocketAddr::new(ip, target.port),
        transport: target.transport,
        ehlo_name: cfg.ehlo_name.clone(),
    };
    let info = target_info(target, Some(ip), cfg, mx_of);
    let (modern, legacy) = match (hellos::modern(sni.as_deref()), hellos::legacy(sni.as_deref())) {
        (Ok(m), Ok(l)) => (m, l),
        (Err(e), _) | (_, Err(e)) => {
            // Our own hellos always encode: this is a bug of ours, reported
            // as data and never blamed on the server.
            let f = Failure::new(
                Stage::Local,
                FailureKind::InternalError,
                format!("building the hello: {e}"),
            );
            return failure_record(info, f, 0, 0);
        }
    };
    let (rm, rl) = tokio::join!(
        gate.probe(&endpoint, &modern, &cfg.probe),
        gate.probe(&endpoint, &legacy, &cfg.probe)
    );
    let quick = Quick {
        modern: attempt(&modern, rm.as_ref()),
        legacy: attempt(&legacy, rl.as_ref()),
    };
    let smtp = [rm.as_ref(), rl.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|r| r.smtp.clone())
        .max_by_key(|d| d.starttls.is_some() as u8 + d.banner.is_some() as u8);
    let (status, failure) = verdict(&quick);
    let mut findings = quick_findings(&quick);
    let mut certificates = Vec::new();
    let host_name = target
        .host
        .name()
        .map(str::to_owned)
        .or_else(|| cfg.sni_override.clone());
    for r in [rm.as_ref(), rl.as_ref()].into_iter().flatten() {
        if r.flight.certificates.is_empty() && r.flight.sslv2.is_none() {
            continue;
        }
        let ders = if r.flight.certificates.is_empty() {
            r.flight.sslv2.iter().map(|h| h.certificate.clone()).collect()
        } else {
            r.flight.certificates.clone()
        };
        let report = certificate_report(&ders, host_name.as_deref(), cfg);
        if !certificates
            .iter()
            .any(|c: &CertificateReport| c.chain.first().map(|x| &x.sha256) == report.chain.first().map(|x| &x.sha256))
        {
            certificates.push(report);
        }
    }
    // A TLS 1.3 server encrypts its Certificate: when neither hello showed a
    // chain, one TLS 1.2 hello fetches it in clear (one more connection).
    let negotiated_any = quick.modern.result.is_some() || quick.legacy.result.is_some();
    // Under --enumerate the enumeration's own TLS 1.2 hellos carry the chains.
    if certificates.is_empty() && negotiated_any && !cfg.enumerate {
        let suites: Vec<hsscan_wire::CipherSuite> = catalog::suites_for(ProtocolVersion::TLS12).map(|s| s.id).collect();
        if let Ok(hello) = hellos::for_version(
            ProtocolVersion::TLS12,
            &suites,
            &hellos::MODERN_GROUPS,
            &[],
            sni.as_deref(),
        ) {
            if let Some(r) = gate.probe(&endpoint, &hello, &cfg.probe).await {
                if !r.flight.certificates.is_empty() {
                    certificates.push(certificate_report(&r.flight.certificates, host_name.as_deref(), cfg));
                }
            }
        }
    }
    let mut enumeration = None;
    if cfg.enumerate && negotiated_any {
        let (e, extra, chains) =
            crate::enumerate::enumerate(gate, &endpoint, cfg, sni.clone(), host_name.as_deref()).await;
        findings.extend(extra);
        for c in chains {
            if !certificates
                .iter()
                .any(|x| x.chain.first().map(|x| &x.sha256) == c.chain.first().map(|x| &x.sha256))
            {
                certificates.push(c);
            }
        }
        findings.extend(enumeration_findings(&e));
        enumeration = Some(e);
    }
    for c in &certificates {
        findings.extend(c.verdicts.iter().cloned());
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    EndpointRecord {
        record: "endpoint",
        target: info,
        status,
        failure,
        smtp,
        quick,
        enumeration,
        certificates,
        findings,
        connections: gate.used(),
        duration_ms: millis(started.elapsed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_is_our_own_and_inconclusive() {
        let modern = hellos::modern(None).expect("modern hello");
        let spent = attempt(&modern, None);
        assert_eq!(
            spent.failure,
            Some(Failure::new(
                Stage::Local,
                FailureKind::BudgetSpent,
                "the --max-connections budget for this host is spent"
            ))
        );
        let refused = Attempt {
            failure: Some(Failure::new(
                Stage::Handshake,
                FailureKind::Alert,
                "handshake_failure(40)",
            )),
            ..spent.clone()
        };
        // The hello the budget stopped might have worked: not "failed".
        let (status, failure) = verdict(&Quick {
            modern: refused,
            legacy: spent.clone(),
        });
        assert_eq!(status, Status::Inconclusive);
        assert_eq!(failure, spent.failure);
    }

    #[test]
    fn a_modern_hello_stopped_on_our_side_is_not_refused_by_the_server() {
        let legacy = Attempt {
            offered: Offered {
                max_version: ProtocolVersion::TLS10,
                cipher_count: 1,
                hello_bytes: 100,
            },
            result: Some(Negotiated {
                version: ProtocolVersion::TLS10,
                cipher: hsscan_wire::CipherSuite(0x002f),
                group: None,
            }),
            failure: None,
        };
        let ids = |kind: FailureKind| {
            let modern = Attempt {
                result: None,
                failure: Some(Failure::new(
                    if kind.blames_server() {
                        Stage::Handshake
                    } else {
                        Stage::Local
                    },
                    kind,
                    "evidence",
                )),
                ..legacy.clone()
            };
            let quick = Quick {
                modern,
                legacy: legacy.clone(),
            };
            quick_findings(&quick).into_iter().map(|f| f.id).collect::<Vec<_>>()
        };
        for kind in [
            FailureKind::BudgetSpent,
            FailureKind::LocalError,
            FailureKind::InternalError,
        ] {
            assert_eq!(ids(kind), ["protocol-below-tls12"], "{kind}");
        }
        assert_eq!(
            ids(FailureKind::Alert),
            ["protocol-below-tls12", "modern-hello-refused"]
        );
    }
}
