//! The per-IP gate: every connection to one IP, whichever endpoint or
//! domain makes it, goes through its [`IpGate`], which bounds connections
//! in flight (`--per-host`), paces them (`--delay`) and counts them against
//! a budget (`--max-connections`). [`HostGate`] is one endpoint's view of
//! it, counting that endpoint's connections.

use crate::hellos::Prepared;
use crate::probe::{self, Endpoint, ProbeConfig, ProbeResult};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

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
}
