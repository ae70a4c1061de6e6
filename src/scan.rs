//! Scanning one endpoint (SPEC §1 item 1): the quick check's two hellos,
//! the certificate chain, and a verdict naming the failure point and its
//! evidence. Every connection to an IP goes through its gate
//! ([`crate::gate`]).

use crate::certs::TrustStore;
use crate::finding::{Finding, Severity};
use crate::gate::HostGate;
use crate::hellos::{self, Prepared};
use crate::outcome::{Failure, FailureKind, Stage};
use crate::probe::{Endpoint, ProbeConfig, ProbeResult};
use crate::report::{Attempt, CertificateReport, EndpointRecord, Negotiated, Offered, Quick, Status, TargetInfo};
use crate::target::{Host, Target};
use hsscan_wire::catalog::{self, Grade};
use hsscan_wire::{ProtocolVersion, ServerKeyExchange};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The senders judged, the headline first (SPEC §8).
    pub senders: Arc<crate::senders::Senders>,
    /// The first wait before retrying a hello whose answer was unclear
    /// (a 421, a reset of a hello answered before); each next doubles.
    pub retry_delay: Duration,
    /// DANE and MTA-STS checks (`None`: neither).
    pub policy: Option<Arc<crate::policy::PolicyConfig>>,
    /// Bisect the headline sender's hello even when it is answered
    /// (`--bisect`); a dropped sender hello is bisected anyway.
    pub bisect: bool,
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

/// What `r` negotiated for the hello `p`, judged as the sender behind that
/// hello would: a version outside the offered range, or a suite or group
/// never offered, is a failure, not a result (SPEC §3 `attempt`). A
/// HelloRetryRequest names the version, suite and group the server chose.
fn negotiated(p: &Prepared, r: &ProbeResult) -> Result<Option<Negotiated>, Failure> {
    let f = &r.flight;
    // The probe already found the answer invalid (a HelloRetryRequest it
    // could not follow, or a second one): whatever it holds is no result.
    if let Some(bad) = r.failure.as_ref().filter(|f| f.kind == FailureKind::InvalidServerHello) {
        return Err(bad.clone());
    }
    let rank = catalog::version_rank;
    let invalid = |what: String| Failure::new(Stage::Handshake, FailureKind::InvalidServerHello, what);
    // A retry request the probe followed is no result by itself: only the
    // ServerHello it drew is.
    let hello = f
        .server_hello
        .as_ref()
        .or(f.retry_request.as_ref().filter(|_| p.retry.is_none()));
    if let Some(h) = hello {
        let version = if f.server_hello.is_some() {
            h.selected_version()
        } else {
            ProtocolVersion::TLS13
        };
        if rank(version) > rank(p.max_version) || version == ProtocolVersion::SSL2 {
            return Err(invalid(format!(
                "the server selected {}, above the offered {}",
                version.name().map_or_else(|| version.hex(), str::to_owned),
                p.max_version.name().unwrap_or("?")
            )));
        }
        if rank(version) < rank(p.min_version) {
            return Err(Failure::new(
                Stage::Handshake,
                FailureKind::VersionBelowMinimum,
                format!(
                    "the server answered with {}, below this hello's minimum {}",
                    version.name().map_or_else(|| version.hex(), str::to_owned),
                    p.min_version.name().unwrap_or("?")
                ),
            ));
        }
        if !p.suites.contains(&h.cipher_suite) || h.cipher_suite.is_signal() {
            return Err(invalid(format!(
                "the server chose cipher suite {}, which was not offered",
                h.cipher_suite.hex()
            )));
        }
        let group = h
            .key_share_group()
            .or_else(|| f.server_key_exchange.as_ref().and_then(ServerKeyExchange::group));
        if let Some(g) = group.filter(|g| !p.groups.contains(g)) {
            return Err(invalid(format!(
                "the server chose group {}, which was not offered",
                g.hex()
            )));
        }
        return Ok(Some(Negotiated {
            version,
            cipher: h.cipher_suite,
            group,
        }));
    }
    if f.sslv2.is_some() {
        return Err(invalid(
            "the server answered a TLS hello with an SSLv2 SERVER-HELLO".to_owned(),
        ));
    }
    Ok(None)
}

fn offered(p: &Prepared) -> Offered {
    Offered {
        max_version: p.max_version,
        min_version: p.min_version,
        cipher_count: p.cipher_count,
        hello_bytes: p.hello_bytes,
    }
}

fn attempt(p: &Prepared, r: Option<&ProbeResult>) -> Attempt {
    let offered = offered(p);
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
        Some(r) => match negotiated(p, r) {
            Ok(Some(n)) => Attempt {
                offered,
                result: Some(n),
                failure: None,
            },
            Ok(None) => Attempt {
                offered,
                result: None,
                failure: Some(r.failure.clone().unwrap_or_else(|| {
                    Failure::new(
                        Stage::Handshake,
                        FailureKind::NotTls,
                        "no answer the hello could accept",
                    )
                })),
            },
            Err(f) => Attempt {
                offered,
                result: None,
                failure: Some(f),
            },
        },
    }
}

/// Certificate chain report for the DER certificates the server sent in
/// answer to a hello that negotiated `version`.
pub fn certificate_report(
    ders: &[Vec<u8>],
    version: Option<ProtocolVersion>,
    host: Option<&str>,
    cfg: &ScanConfig,
) -> CertificateReport {
    let chain: Vec<crate::certs::CertInfo> = ders.iter().map(|d| crate::certs::CertInfo::from_der(d)).collect();
    let verdicts = crate::certs::check_chain(ders, host, cfg.at, &cfg.trust);
    CertificateReport {
        version: version.and_then(|v| v.name()),
        der: ders.to_vec(),
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
            "a TLS 1.2/1.3 hello fails where a TLS 1.0 hello succeeds: a sender with a TLS 1.2 minimum gets 'handshake failure' (the senders' verdicts and the advice say which, and what works)",
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
    let yes = |l: &str| e.protocols.get(l).copied().flatten().unwrap_or(false);
    let no = |l: &str| e.protocols.get(l).copied().flatten() == Some(false);
    if !e.is_complete() {
        let why: Vec<String> = e
            .unsure
            .iter()
            .map(|u| format!("{}: {}", u.protocol, u.reason))
            .collect();
        out.push(Finding::new(
            "enumeration-incomplete",
            Severity::Medium,
            "the enumeration is partial: the server stopped answering in a way that could be trusted, so some lists may be missing suites",
            why.join("; "),
        ));
    }
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
    if no("TLSv1.2") && no("TLSv1.3") {
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

/// The status and failure of the endpoint from its attempts.
fn verdict(quick: &Quick) -> (Status, Option<Failure>) {
    let attempts = quick.attempts();
    if attempts.iter().any(|a| a.result.is_some()) {
        return (Status::Negotiated, None);
    }
    let failures: Vec<&Failure> = attempts.iter().filter_map(|a| a.failure.as_ref()).collect();
    if let Some(f) = failures.iter().find(|f| f.is_inconclusive()) {
        return (Status::Inconclusive, Some((*f).clone()));
    }
    (Status::Failed, failures.first().map(|f| (*f).clone()))
}

/// Whether the quick check got as far as a hello the server could answer:
/// then `--enumerate` has something to look at, whatever the answers were.
fn reached_handshake(quick: &Quick) -> bool {
    quick.attempts().iter().any(|a| {
        a.result.is_some()
            || a.failure
                .as_ref()
                .is_some_and(|f| f.stage == Stage::Handshake && !f.is_inconclusive())
    })
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
            min_version: max_version,
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
            wide: None,
        },
        failure: Some(failure),
        enumeration: None,
        intolerance: vec![],
        verdict: None,
        senders: vec![],
        advice: vec![],
        certificates: vec![],
        policy: None,
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

/// The version a probe's chain came in: the one its ServerHello selected
/// (a chain without one was read from a TLS 1.2-style flight).
fn chain_version(r: &ProbeResult) -> ProtocolVersion {
    r.flight
        .server_hello
        .as_ref()
        .map_or(ProtocolVersion::TLS12, hsscan_wire::ServerHello::selected_version)
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
    // The headline sender's own hello confirms the verdict. With a third
    // slot it goes out beside the quick check's two, so that the verdict
    // costs no round of its own; with two it goes out in the next round,
    // beside the certificate hello or the enumeration, once the quick
    // check has shown that the server gets as far as a hello.
    let headline = cfg.senders.profiles.first();
    let speculative = gate.per_host() >= 3;
    let (ep, sni_ref) = (&endpoint, sni.as_deref());
    let send_headline = |go: bool| async move {
        match headline {
            Some(p) if go => Some(send_sender(gate, ep, cfg, sni_ref, p).await),
            _ => None,
        }
    };
    let (rm, rl, mut early) = tokio::join!(
        gate.probe(&endpoint, &modern, &cfg.probe),
        gate.probe(&endpoint, &legacy, &cfg.probe),
        send_headline(speculative)
    );
    let mut quick = Quick {
        modern: attempt(&modern, rm.as_ref()),
        legacy: attempt(&legacy, rl.as_ref()),
        wide: None,
    };
    let mut results: Vec<ProbeResult> = [rm, rl].into_iter().flatten().collect();
    // Never a false "no TLS": when both hellos fail at the handshake, one
    // wide hello (every suite and curve up to TLS 1.2) asks again, and a
    // shorter one if the long one was dropped.
    let both_failed_at_hello = [&quick.modern, &quick.legacy].iter().all(|a| {
        a.result.is_none()
            && a.failure
                .as_ref()
                .is_some_and(|f| f.stage == Stage::Handshake && !f.is_inconclusive())
    });
    if both_failed_at_hello {
        for limit in [None, Some(crate::enumerate::WINDOW)] {
            let Ok(wide) = hellos::wide(sni.as_deref(), limit) else {
                break;
            };
            let r = gate.probe(&endpoint, &wide, &cfg.probe).await;
            let a = attempt(&wide, r.as_ref());
            let dropped = a.failure.as_ref().is_some_and(|f| f.kind.is_drop_after_hello());
            quick.wide = Some(a);
            results.extend(r);
            if !dropped {
                break;
            }
        }
    }
    let smtp = results
        .iter()
        .filter_map(|r| r.smtp.clone())
        .max_by_key(|d| d.starttls.is_some() as u8 + d.banner.is_some() as u8);
    let (mut status, mut failure) = verdict(&quick);
    let mut findings = quick_findings(&quick);
    let mut certificates = Vec::new();
    let host_name = target
        .host
        .name()
        .map(str::to_owned)
        .or_else(|| cfg.sni_override.clone());
    // One report per distinct chain: the same chain over TLS 1.2 and
    // TLS 1.3 is one report, a TLS 1.3 chain that differs is another.
    let add_chain = |certificates: &mut Vec<CertificateReport>, version: ProtocolVersion, ders: &[Vec<u8>]| {
        let report = certificate_report(ders, Some(version), host_name.as_deref(), cfg);
        let digests = |c: &CertificateReport| c.chain.iter().map(|x| x.sha256.clone()).collect::<Vec<_>>();
        if !certificates.iter().any(|c| digests(c) == digests(&report)) {
            certificates.push(report);
        }
    };
    for r in &results {
        if !r.flight.certificates.is_empty() {
            add_chain(&mut certificates, chain_version(r), &r.flight.certificates);
        } else if let Some(h) = &r.flight.sslv2 {
            add_chain(
                &mut certificates,
                ProtocolVersion::SSL2,
                std::slice::from_ref(&h.certificate),
            );
        }
    }
    let best = quick
        .attempts()
        .into_iter()
        .filter_map(|a| a.result.clone())
        .max_by_key(|n| catalog::version_rank(n.version));
    let pending = early.is_none() && reached_handshake(&quick);
    let mut enumeration = None;
    let work = async {
        // A TLS 1.3 server encrypts its Certificate: when no hello showed a
        // chain, it is decrypted from one hello with a real key share (one
        // more connection; SPEC §4). Under --enumerate the TLS 1.3 chain is
        // fetched after the enumeration, below, whatever TLS 1.2 showed.
        let tls13 = best.as_ref().is_some_and(|n| n.version == ProtocolVersion::TLS13);
        if tls13 && certificates.is_empty() && !cfg.enumerate {
            let t = crate::tls13::scan_chains(gate, &endpoint, sni.as_deref(), &cfg.probe, false).await;
            for c in &t.chains {
                add_chain(&mut certificates, ProtocolVersion::TLS13, c);
            }
            findings.extend(t.findings);
        }
        // When no hello showed a chain (nor decrypted one), one TLS 1.2 hello
        // fetches it in clear (one more connection). Under --enumerate the
        // enumeration's own TLS 1.2 hellos carry the chains.
        if certificates.is_empty() && best.is_some() && !cfg.enumerate {
            let suites: Vec<hsscan_wire::CipherSuite> =
                catalog::suites_for(ProtocolVersion::TLS12).map(|s| s.id).collect();
            if let Ok(hello) = hellos::for_version(
                ProtocolVersion::TLS12,
                &suites,
                &hellos::MODERN_GROUPS,
                &[],
                sni.as_deref(),
            ) {
                if let Some(r) = gate.probe(&endpoint, &hello, &cfg.probe).await {
                    if !r.flight.certificates.is_empty() {
                        add_chain(&mut certificates, chain_version(&r), &r.flight.certificates);
                    }
                }
            }
        }
        if cfg.enumerate && reached_handshake(&quick) {
            let drive = crate::enumerate::Drive {
                probe: &cfg.probe,
                sni: sni.as_deref(),
                backoff: cfg.retry_delay,
                known: best.as_ref().map(|n| (n.version, n.cipher)),
            };
            // The enumeration's hellos never decrypt: a TLS 1.3 server's own
            // chain (and, on a TLS 1.3-only server, that of its other key
            // type) comes from the certificate hello. When the quick check
            // already saw TLS 1.3, that hello goes out beside the enumeration.
            let early = async {
                if tls13 {
                    Some(crate::tls13::scan_chains(gate, &endpoint, sni.as_deref(), &cfg.probe, false).await)
                } else {
                    None
                }
            };
            let ((e, outcome), early) = tokio::join!(crate::enumerate::enumerate(gate, &endpoint, &drive), early);
            findings.extend(outcome.findings);
            for (version, c) in &outcome.chains {
                add_chain(&mut certificates, *version, c);
            }
            let label = crate::enumerate::label;
            if e.protocols.get(label(ProtocolVersion::TLS13)).copied().flatten() == Some(true) {
                let tls12 = e.protocols.get(label(ProtocolVersion::TLS12)).copied().flatten() == Some(true);
                let t = match early {
                    Some(mut t) => {
                        if !tls12 {
                            crate::tls13::other_key_type(gate, &endpoint, sni.as_deref(), &cfg.probe, &mut t).await;
                        }
                        t
                    }
                    None => crate::tls13::scan_chains(gate, &endpoint, sni.as_deref(), &cfg.probe, !tls12).await,
                };
                for c in &t.chains {
                    add_chain(&mut certificates, ProtocolVersion::TLS13, c);
                }
                findings.extend(t.findings);
            }
            let seen: Vec<_> = [("modern", &quick.modern), ("legacy", &quick.legacy)]
                .into_iter()
                .chain(quick.wide.as_ref().map(|w| ("wide", w)))
                .filter_map(|(name, a)| a.result.as_ref().map(|n| (n.version, n.cipher, name)))
                .collect();
            let mut e = e;
            e.check_against(&seen);
            findings.extend(enumeration_findings(&e));
            // The enumeration found what the quick check missed: TLS it is.
            if status != Status::Negotiated && e.protocols.values().any(|p| *p == Some(true)) {
                status = Status::Negotiated;
                failure = None;
            }
            enumeration = Some(e);
        }
    };
    let (late, ()) = tokio::join!(send_headline(pending), work);
    if late.is_some() {
        early = late;
    }
    // A server that got no hello as far as the handshake: the speculative
    // confirmation says nothing the quick check's own failure does not.
    if !reached_handshake(&quick) {
        early = None;
    }
    let (mut senders, mut advice) = judge_senders(
        gate,
        &endpoint,
        cfg,
        sni.as_deref(),
        target,
        &quick,
        enumeration.as_ref(),
        &mut certificates,
        info.mx_of.as_deref().unwrap_or(&[]),
        early,
    )
    .await;
    // Every hello dropped: one small hello says whether the drops are of
    // long hellos, which the bisection can then name.
    let mut known = best.as_ref().map(|n| (n.version, n.cipher));
    let mut small = None;
    if known.is_none() && senders.iter().any(crate::bisect::dropped_at_the_hello) {
        if let Ok(p) = hellos::small(sni.as_deref()) {
            if let Some(r) = gate.probe(&endpoint, &p, &cfg.probe).await {
                match negotiated(&p, &r) {
                    Ok(Some(n)) => {
                        known = Some((n.version, n.cipher));
                        small = Some(p.hello_bytes);
                    }
                    // Not the length, then: say so where the drop is told.
                    _ => {
                        for x in senders.iter_mut().filter(|x| crate::bisect::dropped_at_the_hello(x)) {
                            if let Some(reason) = x.reason.as_mut() {
                                reason.detail = format!(
                                    "{}; a small hello ({} bytes) is not answered either",
                                    reason.detail, p.hello_bytes
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    let intolerance = crate::bisect::for_endpoint(
        &crate::bisect::Scope {
            gate,
            endpoint: &endpoint,
            requested: cfg.bisect,
            senders: &cfg.senders,
            probe: &cfg.probe,
            today: cfg.at.date(),
            sni: sni.as_deref(),
            known,
            small,
            host: &target.host.to_string(),
            port: target.port,
            domains: info.mx_of.as_deref().unwrap_or(&[]),
        },
        &mut senders,
        &mut advice,
        &mut findings,
    )
    .await;
    if let Some(e) = enumeration.as_mut() {
        e.intolerance.clone_from(&intolerance);
    }
    for c in &certificates {
        findings.extend(c.verdicts.iter().cloned());
    }
    let single = info.mx_of.is_none();
    let policy =
        crate::policy::scan_endpoint_policy(cfg.policy.as_deref(), target, ip, status, &certificates, single).await;
    if let Some(p) = &policy {
        apply_policy(&mut senders, &cfg.senders.profiles, p);
    }
    let verdict = senders
        .first()
        .map(|r| crate::senders::Verdict::of(r, &format!("{}:{}", target.host, target.port)));
    if let Some(p) = &policy {
        findings.extend(p.findings());
    }
    // A chain seen twice (TLS 1.2 and TLS 1.3) gives its verdicts once.
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.id, f.message.clone(), f.evidence.clone())));
    // A chain over the reading caps is judged as far as it was read: say so.
    if let Some(note) = results.iter().find_map(|r| r.flight.unread.clone()) {
        findings.push(Finding::new(
            "cert-chain-incomplete",
            Severity::Info,
            "the server's certificate flight is longer than hsscan reads; the certificate findings cover what was read",
            note,
        ));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    EndpointRecord {
        record: "endpoint",
        target: info,
        verdict,
        status,
        failure,
        smtp,
        quick,
        enumeration,
        intolerance,
        senders,
        advice,
        certificates,
        policy,
        findings,
        connections: gate.used(),
        duration_ms: millis(started.elapsed()),
    }
}

/// The policies a sender honours (SPEC §8): a Postfix at `dane` fails
/// where usable TLSA records do not match (or the lookup is bogus or
/// fails), one at `dane-only` also where no TLSA records apply
/// (`dane-required`), a sender that enforces MTA-STS (Gmail, Exchange Online) where
/// an `enforce` policy does not cover the MX or its certificate.
fn apply_policy(
    results: &mut [crate::senders::SenderResult],
    profiles: &[crate::senders::Profile],
    p: &crate::policy::EndpointPolicy,
) {
    use crate::senders::{Level, Outcome, Reason, ReasonKind};
    for (r, profile) in results.iter_mut().zip(profiles) {
        if r.outcome != Outcome::Tls {
            continue;
        }
        let fails = |d: &crate::policy::dane::Dane| match profile.level {
            Level::Dane => d.result.fails_dane(),
            Level::DaneOnly => d.result.fails_dane_only(),
            _ => false,
        };
        if let Some(d) = p.dane.as_ref().filter(|d| fails(d)) {
            r.outcome = Outcome::NoTls;
            r.reason = Some(Reason {
                kind: ReasonKind::CertificateRejected,
                detail: format!("DANE ({}, {}): {}", d.tlsa_name, d.result.as_str(), d.detail),
            });
            continue;
        }
        let enforces_sts = matches!(profile.mta.as_str(), "gmail" | "exchange-online");
        if enforces_sts {
            if let Some(m) = p.mta_sts.as_ref().filter(|m| m.result.fails_delivery()) {
                r.outcome = Outcome::NoTls;
                let why: Vec<String> = m
                    .certificate_problems
                    .iter()
                    .map(|(h, w)| format!("{h}: {w}"))
                    .chain(
                        m.mx_matches
                            .iter()
                            .filter(|(_, ok)| !**ok)
                            .map(|(h, _)| format!("{h}: no mx pattern covers it")),
                    )
                    .collect();
                r.reason = Some(Reason {
                    kind: ReasonKind::CertificateRejected,
                    detail: format!("MTA-STS enforce policy of {}: {}", m.domain, why.join("; ")),
                });
            }
        }
    }
}

/// Each requested sender's outcome, confirmed with its own hello (one
/// connection per sender), and the advice for those that fail, each
/// candidate fix tried with the hello it would make the sender send.
#[allow(clippy::too_many_arguments)]
async fn judge_senders(
    gate: &HostGate,
    endpoint: &Endpoint,
    cfg: &ScanConfig,
    sni: Option<&str>,
    target: &Target,
    quick: &Quick,
    enumeration: Option<&crate::enumerate::Enumeration>,
    certificates: &mut Vec<CertificateReport>,
    domains: &[String],
    mut early: Option<Result<Option<Sent>, crate::senders::SenderResult>>,
) -> (Vec<crate::senders::SenderResult>, Vec<crate::senders::advice::Advice>) {
    use crate::senders::{self, advice};
    let mut results = Vec::new();
    let mut all_advice = Vec::new();
    let answered = quick.attempts().iter().any(|a| a.result.is_some())
        || enumeration.is_some_and(|e| e.protocols.values().any(|p| *p == Some(true)));
    let best = quick
        .attempts()
        .into_iter()
        .filter_map(|a| a.result.as_ref())
        .map(|n| n.version)
        .chain(
            enumeration
                .into_iter()
                .flat_map(|e| e.protocols.iter().filter(|(_, v)| **v == Some(true)).map(|(l, _)| *l))
                .filter_map(hsscan_wire::ProtocolVersion::from_name),
        )
        .max_by_key(|v| catalog::version_rank(*v));
    let server_suites: Vec<hsscan_wire::CipherSuite> = quick
        .attempts()
        .into_iter()
        .filter_map(|a| a.result.as_ref().map(|n| n.cipher))
        .collect();
    let facts = advice::Facts {
        host: &target.host.to_string(),
        port: target.port,
        domains,
        best_version: best,
        server_suites,
        today: cfg.at.date(),
        sni,
    };
    let host_name = target
        .host
        .name()
        .map(str::to_owned)
        .or_else(|| cfg.sni_override.clone());
    for profile in &cfg.senders.profiles {
        let result = if !reached_handshake(quick) && !answered {
            // Nothing got as far as a hello: the sender would fare the same.
            let f = quick.attempts().into_iter().find_map(|a| a.failure.clone());
            let r = crate::probe::ProbeResult {
                round_trip: None,
                smtp: None,
                flight: crate::probe::Flight::default(),
                failure: f,
                elapsed: Duration::ZERO,
                half_closed: false,
            };
            match profile.prepare(sni) {
                Ok(p) => {
                    let mut res = senders::judge(
                        profile,
                        &p,
                        &r,
                        &senders::Context {
                            chains: vec![],
                            other_hello_answered: false,
                        },
                    );
                    res.confirmed = false;
                    res
                }
                Err(e) => senders::unconfirmed(profile, format!("its hello does not encode: {e}")),
            }
        } else {
            // The headline sender's hello may have gone out already.
            let sent = match early.take() {
                Some(sent) => sent,
                None => send_sender(gate, endpoint, cfg, sni, profile).await,
            };
            let confirmation = judge_sent(cfg, profile, sent, answered, certificates, host_name.as_deref());
            match confirmation {
                Some(r) if dropped(&r) => {
                    recheck_drop(
                        gate,
                        endpoint,
                        cfg,
                        sni,
                        profile,
                        quick,
                        certificates,
                        host_name.as_deref(),
                        r,
                    )
                    .await
                }
                Some(r) => r,
                None => senders::unconfirmed(profile, "the connection budget is spent"),
            }
        };
        let mut tried = Vec::new();
        for c in advice::candidates(profile, &result, best) {
            let changed = c.apply(profile);
            if let Some(r) = probe_sender(
                gate,
                endpoint,
                cfg,
                sni,
                &changed,
                answered,
                certificates,
                host_name.as_deref(),
            )
            .await
            {
                tried.push(advice::Tried { what: c, result: r });
            }
        }
        all_advice.extend(advice::advise(profile, &result, &tried, &facts));
        results.push(result);
    }
    (results, all_advice)
}

fn dropped(r: &crate::senders::SenderResult) -> bool {
    r.reason
        .as_ref()
        .is_some_and(|x| x.kind == crate::senders::ReasonKind::HelloIntolerance)
}

/// A sender's hello was dropped where other hellos were answered: the
/// hello, or a server that stopped answering? Ask again after the retry
/// delay, then send a hello that worked before; only if that one is still
/// answered is the drop the hello's fault.
#[allow(clippy::too_many_arguments)]
async fn recheck_drop(
    gate: &HostGate,
    endpoint: &Endpoint,
    cfg: &ScanConfig,
    sni: Option<&str>,
    profile: &crate::senders::Profile,
    quick: &Quick,
    certificates: &mut Vec<CertificateReport>,
    host: Option<&str>,
    first: crate::senders::SenderResult,
) -> crate::senders::SenderResult {
    tokio::time::sleep(cfg.retry_delay).await;
    let Some(again) = probe_sender(gate, endpoint, cfg, sni, profile, true, certificates, host).await else {
        return first;
    };
    if !dropped(&again) {
        return again;
    }
    let control = if quick.modern.result.is_some() {
        hellos::modern(sni)
    } else if quick.legacy.result.is_some() {
        hellos::legacy(sni)
    } else {
        hellos::wide(sni, None)
    };
    let still = match control {
        Ok(c) => gate.probe(endpoint, &c, &cfg.probe).await.is_some_and(|r| r.answered()),
        Err(_) => false,
    };
    if still {
        return again;
    }
    let mut r = again;
    r.outcome = crate::senders::Outcome::Inconclusive;
    if let Some(reason) = r.reason.as_mut() {
        reason.detail = format!(
            "{}; a hello the server answered before was dropped too: the server stopped answering",
            reason.detail
        );
    }
    r
}

/// A sender's own hello and what the server answered to it, sent before
/// it is judged (so that it can go out beside other work).
pub(crate) type Sent = (crate::hellos::Prepared, ProbeResult);

/// Sends `profile`'s own hello; `Ok(None)` when the budget is spent, `Err`
/// (the sender's result) when its hello does not encode.
async fn send_sender(
    gate: &HostGate,
    endpoint: &Endpoint,
    cfg: &ScanConfig,
    sni: Option<&str>,
    profile: &crate::senders::Profile,
) -> Result<Option<Sent>, crate::senders::SenderResult> {
    let hello = profile
        .prepare(sni)
        .map_err(|e| crate::senders::unconfirmed(profile, format!("its hello does not encode: {e}")))?;
    Ok(gate.probe(endpoint, &hello, &cfg.probe).await.map(|r| (hello, r)))
}

/// Sends `profile`'s own hello and judges the answer; `None` when the
/// budget is spent.
#[allow(clippy::too_many_arguments)]
async fn probe_sender(
    gate: &HostGate,
    endpoint: &Endpoint,
    cfg: &ScanConfig,
    sni: Option<&str>,
    profile: &crate::senders::Profile,
    other_answered: bool,
    certificates: &mut Vec<CertificateReport>,
    host: Option<&str>,
) -> Option<crate::senders::SenderResult> {
    let sent = send_sender(gate, endpoint, cfg, sni, profile).await;
    judge_sent(cfg, profile, sent, other_answered, certificates, host)
}

/// Judges what [`send_sender`] got, adding the chain to `certificates`
/// when it is new; `None` when the budget was spent.
fn judge_sent(
    cfg: &ScanConfig,
    profile: &crate::senders::Profile,
    sent: Result<Option<Sent>, crate::senders::SenderResult>,
    other_answered: bool,
    certificates: &mut Vec<CertificateReport>,
    host: Option<&str>,
) -> Option<crate::senders::SenderResult> {
    use crate::senders;
    let (hello, r) = match sent {
        Ok(Some(sent)) => sent,
        Ok(None) => return None,
        Err(r) => return Some(r),
    };
    if let Some(leaf) = r.flight.certificates.first() {
        let sha = crate::certs::CertInfo::from_der(leaf).sha256;
        if !certificates
            .iter()
            .any(|c| c.chain.first().map(|x| &x.sha256) == Some(&sha))
        {
            certificates.push(certificate_report(
                &r.flight.certificates,
                Some(chain_version(&r)),
                host,
                cfg,
            ));
        }
    }
    let chains: Vec<senders::Chain<'_>> = certificates
        .iter()
        .map(|c| senders::Chain {
            key: &c.key,
            verdicts: &c.verdicts,
        })
        .collect();
    Some(senders::judge(
        profile,
        &hello,
        &r,
        &senders::Context {
            chains,
            other_hello_answered: other_answered,
        },
    ))
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
            wide: None,
        });
        assert_eq!(status, Status::Inconclusive);
        assert_eq!(failure, spent.failure);
    }

    #[test]
    fn a_modern_hello_stopped_on_our_side_is_not_refused_by_the_server() {
        let legacy = Attempt {
            offered: Offered {
                max_version: ProtocolVersion::TLS10,
                min_version: ProtocolVersion::SSL3,
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
                wide: None,
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
