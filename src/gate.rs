//! The per-IP gate: every connection to one IP, whichever target, host
//! name, endpoint or domain makes it, in single-target and `--mx` runs
//! alike (SPEC §7), goes through its [`IpGate`], which bounds connections
//! in flight (`--per-host`), paces them (`--delay`), counts them against a
//! budget (`--max-connections`), holds one of the run's overall slots
//! (`-j`) while connected, and lets none start once the run is stopped
//! (Ctrl-C, a closed stdout), retries included. [`Gates`] hands out the
//! one gate of each IP of a run; [`HostGate`] is one endpoint's view of
//! its IP's gate, counting that endpoint's connections.

use crate::hellos::Prepared;
use crate::outcome::FailureKind;
use crate::probe::{self, Endpoint, ProbeConfig, ProbeResult};
use crate::stop::Stop;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// The gates of every IP of one run, made on first use and kept for the
/// run (a few hundred bytes per IP).
#[derive(Debug)]
pub struct Gates {
    per_host: usize,
    delay: Duration,
    max: Option<u32>,
    global: Arc<Semaphore>,
    stop: Stop,
    by_ip: std::sync::Mutex<HashMap<IpAddr, Arc<IpGate>>>,
}

impl Gates {
    /// `concurrency`: connections in flight overall (`-j`).
    pub fn new(per_host: usize, delay: Duration, max: Option<u32>, concurrency: usize, stop: Stop) -> Self {
        Self {
            per_host,
            delay,
            max,
            global: Arc::new(Semaphore::new(concurrency.max(1))),
            stop,
            by_ip: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The gate of `ip`, shared by every endpoint on it.
    pub fn for_ip(&self, ip: IpAddr) -> Arc<IpGate> {
        let mut map = self.by_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(ip)
            .or_insert_with(|| {
                Arc::new(IpGate::new(
                    self.per_host,
                    self.delay,
                    self.max,
                    Some(self.global.clone()),
                    self.stop.clone(),
                ))
            })
            .clone()
    }

    /// The run's stop signal, which every gate obeys.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }
}

/// Every connection to one IP, whichever endpoint or domain makes it: at
/// most `per_host` in flight, `delay` between starts, at most `max` in all,
/// and (in bulk runs) one of the run's overall connection slots.
#[derive(Debug)]
pub struct IpGate {
    slots: Semaphore,
    per_host: usize,
    /// The shortest exchange seen with this IP: about one round trip.
    round_trip: std::sync::Mutex<Option<Duration>>,
    /// The IP has answered 421 (too many connections, rate limits).
    limited: AtomicBool,
    /// A half-closed hello was dropped here (see [`IpGate::may_half_close`]).
    half_close_broken: AtomicBool,
    last_start: Mutex<Option<Instant>>,
    delay: Duration,
    used: AtomicU32,
    max: Option<u32>,
    global: Option<Arc<Semaphore>>,
    stop: Stop,
}

impl IpGate {
    pub fn new(per_host: usize, delay: Duration, max: Option<u32>, global: Option<Arc<Semaphore>>, stop: Stop) -> Self {
        Self {
            slots: Semaphore::new(per_host.max(1)),
            per_host: per_host.max(1),
            round_trip: std::sync::Mutex::new(None),
            limited: AtomicBool::new(false),
            half_close_broken: AtomicBool::new(false),
            last_start: Mutex::new(None),
            delay,
            used: AtomicU32::new(0),
            max,
            global,
            stop,
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

    /// How long a connection to this IP waits for the server's close after
    /// ours (`wait`, the full wait, at most) before its slot is free.
    ///
    /// Near, the server's close comes at once: wait for it. Far, it comes
    /// a whole round trip after ours, and waiting for it costs a round
    /// trip per hello. Our FIN reaches the server half a round trip after
    /// we send it, and the next connection cannot reach the server sooner
    /// than that after the slot is free (on a real path a round trip
    /// later still, after its handshake): so half a round trip is enough
    /// for a server that counts connections per client (Postfix anvil) to
    /// have seen this one end before it sees the next. A server that has
    /// answered 421 gets the full wait.
    fn close_wait(&self, wait: Duration) -> Duration {
        if self.limited.load(Ordering::SeqCst) {
            return wait;
        }
        let rtt = *self
            .round_trip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match rtt {
            Some(rtt) if rtt >= FAR => (rtt / 2).min(wait),
            _ => wait,
        }
    }

    /// Whether a probe may shut its side down right after the hello
    /// ([`ProbeConfig::half_close`]): not once a half-closed hello was
    /// dropped here (the server may take the early close for the end; the
    /// enumeration asks a dropped hello again, then with a whole
    /// connection), nor for a server that has answered 421.
    fn may_half_close(&self) -> bool {
        !self.half_close_broken.load(Ordering::SeqCst) && !self.limited.load(Ordering::SeqCst)
    }

    /// Learns from a finished probe: its round trip, whether the server
    /// limits connections, and whether it drops half-closed hellos.
    fn observe(&self, r: &ProbeResult) {
        if r.failure.as_ref().is_some_and(|f| f.kind == FailureKind::RateLimited) {
            self.limited.store(true, Ordering::SeqCst);
        }
        if r.half_closed && !r.answered() && r.failure.as_ref().is_some_and(|f| f.kind.is_drop_after_hello()) {
            self.half_close_broken.store(true, Ordering::SeqCst);
        }
        if let Some(sample) = r.round_trip {
            let mut rtt = self
                .round_trip
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *rtt = Some(rtt.map_or(sample, |r| r.min(sample)));
        }
    }
}

/// A round trip from which a host counts as far (see [`IpGate::close_wait`]).
const FAR: Duration = Duration::from_millis(20);

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
        Self::shared(Arc::new(IpGate::new(per_host, delay, max, None, Stop::new())))
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

    /// How many connections to the IP may be open at once (`--per-host`).
    pub fn per_host(&self) -> usize {
        self.ip.per_host
    }

    /// `cfg` with the wait after our close that this IP needs now.
    pub fn tuned(&self, cfg: &ProbeConfig) -> ProbeConfig {
        ProbeConfig {
            close_wait: self.ip.close_wait(cfg.close_wait),
            half_close: cfg.half_close && self.ip.may_half_close(),
            ..*cfg
        }
    }

    /// Runs one probe through the gate; `None` when the budget is spent.
    ///
    /// Once the run is stopped no connection starts: the probe waits for
    /// ever instead, and the run drops the scan it belongs to.
    pub async fn probe(&self, endpoint: &Endpoint, hello: &Prepared, cfg: &ProbeConfig) -> Option<ProbeResult> {
        let r = self
            .connection(async {
                let mut tries = 0;
                loop {
                    let mut cfg = self.tuned(cfg);
                    // A hello that may draw a HelloRetryRequest needs our side open.
                    cfg.half_close &= hello.retry.is_none();
                    let closing = if cfg.half_close { with_close_notify(hello) } else { None };
                    let writes = closing.as_deref().unwrap_or(&hello.writes);
                    let r = probe::run_following(endpoint, writes, hello.retry.as_ref(), &cfg).await;
                    // A connect that failed on a limit of this machine (EMFILE
                    // under a large -j) says nothing about the server: wait for
                    // other connections to end and try again before reporting it.
                    let local = r.failure.as_ref().is_some_and(|f| f.kind == FailureKind::LocalError);
                    if !local || tries >= LOCAL_RETRIES {
                        break r;
                    }
                    if let Some(f) = &r.failure {
                        warn_local_limit(&f.detail);
                    }
                    tokio::time::sleep(local_backoff(tries)).await;
                    tries += 1;
                }
            })
            .await?;
        self.ip.observe(&r);
        if std::env::var_os("HSSCAN_TRACE").is_some() {
            let f = &r.flight;
            let outcome = match (&f.server_hello, &f.retry_request, &f.sslv2, &r.failure) {
                (Some(h), _, _, _) => format!("ServerHello {:?} {:?}", h.selected_version(), h.cipher_suite),
                (_, Some(h), _, _) => format!("HelloRetryRequest {:?} {:?}", h.cipher_suite, h.key_share_group()),
                (_, _, Some(h), _) => format!("SSLv2 SERVER-HELLO, {} specs", h.cipher_specs.len()),
                (_, _, _, Some(fail)) => format!("{}: {}", fail.kind, crate::style::escape(&fail.detail)),
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

    /// Runs one connection through the gate (`connect` opens it and does
    /// all its work): the same slots, pacing and budget as a probe.
    /// `None` when the budget is spent.
    pub async fn connection<T>(&self, connect: impl std::future::Future<Output = T>) -> Option<T> {
        let ip = &self.ip;
        // The IP's slot first: a probe queued behind a busy IP must not hold
        // one of the run's overall slots while it waits.
        let _slot = ip.slots.acquire().await.ok()?;
        ip.stopped().await;
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
        ip.stopped().await;
        Some(connect.await)
    }
}

impl IpGate {
    /// Returns while the run goes on; once it is stopped, never.
    async fn stopped(&self) {
        if self.stop.is_set() {
            std::future::pending::<()>().await;
        }
    }
}

/// The hello's writes with a close_notify alert after it (SPEC §7: a
/// close_notify when done), for a probe that closes its side with the
/// hello: the server reads it after the hello, once it has answered.
/// Only for a TLS record offering at most TLS 1.2 (SSLv2 has no alerts,
/// and after a TLS 1.3 ServerHello a plaintext alert is out of place).
fn with_close_notify(hello: &Prepared) -> Option<Vec<Vec<u8>>> {
    use hsscan_wire::catalog::version_rank;
    let first = hello.writes.first()?;
    let (&kind, version) = (first.first()?, first.get(1..3)?);
    if kind != 22 || version_rank(hello.max_version) > version_rank(hsscan_wire::ProtocolVersion::TLS12) {
        return None;
    }
    let mut writes = hello.writes.clone();
    writes
        .last_mut()?
        .extend_from_slice(&[21, version[0], version[1], 0, 2, 1, 0]);
    Some(writes)
}

/// Tries after the first of a connection that failed on a local limit.
const LOCAL_RETRIES: u32 = 6;

/// The wait before local-limit retry `n` (from 0): 100 ms doubling, about
/// 6 s in all, with a jitter so that the connections that failed together
/// do not all come back together.
fn local_backoff(n: u32) -> Duration {
    let base = Duration::from_millis(100) * 2u32.saturating_pow(n);
    // The clock's nanoseconds: enough to spread retries, no RNG needed.
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 50_000_000);
    base + Duration::from_nanos(u64::from(jitter))
}

/// Says once per run, on stderr, that connections are backing off on a
/// local limit, and what to do about it.
fn warn_local_limit(detail: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::SeqCst) {
        eprintln!(
            "hsscan: warning: {}: connections back off and retry (raise `ulimit -n` or lower -j)",
            crate::style::escape(detail)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Failure, Stage};

    fn result(half_closed: bool, failure: Option<FailureKind>) -> ProbeResult {
        let mut r = crate::probe::answer_from_bytes(&[], crate::probe::StreamEnd::Closed);
        r.half_closed = half_closed;
        r.failure = failure.map(|k| Failure::new(Stage::Handshake, k, "test"));
        r
    }

    #[test]
    fn a_dropped_half_closed_hello_ends_half_closing_for_that_ip() {
        let gate = HostGate::new(2, Duration::ZERO, None);
        let asked = ProbeConfig {
            half_close: true,
            ..ProbeConfig::default()
        };
        assert!(gate.tuned(&asked).half_close);
        assert!(!gate.tuned(&ProbeConfig::default()).half_close, "only where asked");
        // An alert, or a drop of a whole connection, says nothing about it.
        gate.ip.observe(&result(true, Some(FailureKind::Alert)));
        gate.ip.observe(&result(false, Some(FailureKind::ResetAfterHello)));
        assert!(gate.tuned(&asked).half_close);
        gate.ip.observe(&result(true, Some(FailureKind::ClosedAfterHello)));
        assert!(!gate.tuned(&asked).half_close);
    }

    #[test]
    fn a_half_closed_hello_up_to_tls12_carries_a_close_notify() {
        let suites = [hsscan_wire::CipherSuite(0xc02f)];
        let groups = [hsscan_wire::NamedGroup::X25519];
        let of = |v| crate::hellos::for_version(v, &suites, &groups, &[], None).expect("encodes");
        let tls12 = of(hsscan_wire::ProtocolVersion::TLS12);
        let w = with_close_notify(&tls12).expect("a TLS 1.2 hello");
        let last = w.last().expect("writes");
        assert_eq!(
            &last[last.len() - 7..],
            &[21, 3, 1, 0, 2, 1, 0],
            "the hello's record version"
        );
        assert_eq!(w.concat().len(), tls12.writes.concat().len() + 7);
        let suites = [hsscan_wire::CipherSuite(0x1301)];
        let tls13 = crate::hellos::for_version(hsscan_wire::ProtocolVersion::TLS13, &suites, &groups, &[], None)
            .expect("encodes");
        assert!(with_close_notify(&tls13).is_none());
        assert!(with_close_notify(&crate::hellos::sslv2().expect("encodes")).is_none());
    }

    #[test]
    fn a_server_that_answered_421_gets_whole_connections() {
        let gate = HostGate::new(2, Duration::ZERO, None);
        let asked = ProbeConfig {
            half_close: true,
            ..ProbeConfig::default()
        };
        gate.ip.observe(&result(false, Some(FailureKind::RateLimited)));
        assert!(!gate.tuned(&asked).half_close);
    }
}
