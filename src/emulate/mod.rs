//! `hsscan emulate`: a receiver that answers ClientHellos the way a
//! configured legacy or broken server would, and logs every hello it gets.
//! It completes no handshake: it sends the first server flight, with
//! real key-exchange parameters signed by the chain's key, reads what the
//! client answers (a ClientKeyExchange when the client accepted the
//! negotiation, an alert when it refused) and closes.

pub mod chain;
mod conn;
pub mod keys;
mod kx;
pub mod profile;
pub mod responder;

// The enumeration planner against the pure responder, in memory.
#[cfg(test)]
mod planner_tests;

use anyhow::{anyhow, Context as _};
use profile::{Profile, Smtp};
use serde_json::json;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Connection counts, printed on exit (the scanner's politeness tests read them).
#[derive(Debug, Default)]
pub struct Stats {
    pub total: AtomicUsize,
    pub current: AtomicUsize,
    pub max: AtomicUsize,
    pub finished: AtomicUsize,
}

/// What every connection shares.
pub struct Shared {
    pub profile: Profile,
    pub chains: chain::Chains,
    pub stats: Stats,
    pub json: bool,
    /// Serve SMTP (the profile's front unless overridden).
    pub smtp: bool,
    pub seed: u64,
    /// A round trip before every answer (`--rtt`).
    pub rtt_ms: u64,
    /// No per-connection log (`--quiet`): counts only.
    pub quiet: bool,
    out: Mutex<()>,
    finished: tokio::sync::Notify,
    /// Per listening address: connections open now, and the most at once.
    per_address: Mutex<std::collections::HashMap<std::net::IpAddr, (usize, usize)>>,
}

impl Shared {
    fn smtp(&self) -> Option<&Smtp> {
        self.profile.smtp.as_ref().filter(|_| self.smtp)
    }

    /// Writes one connection's log: a text block, or one JSON line.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        id: usize,
        peer: SocketAddr,
        (open, local, open_here): (usize, std::net::IpAddr, usize),
        smtp: Vec<String>,
        hellos: Vec<serde_json::Value>,
        text: Vec<String>,
        reply: Option<serde_json::Value>,
        outcome: &str,
    ) {
        if self.quiet {
            return;
        }
        let _guard = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::io::stdout().lock();
        if self.json {
            let line = json!({
                "record": "connection",
                "id": id,
                "peer": peer.to_string(),
                "open": open,
                "local": local.to_string(),
                "open_here": open_here,
                "smtp": if self.smtp().is_some() { json!(smtp) } else { serde_json::Value::Null },
                "hellos": hellos,
                "client_reply": reply,
                "outcome": outcome,
            });
            let _ = writeln!(out, "{line}");
        } else {
            // What the client sent (EHLO names, SNI, ALPN) is escaped
            // before it reaches the terminal (SPEC §2).
            use crate::style::escape;
            let _ = writeln!(out, "[{id}] {peer} ({open} open)");
            for l in &smtp {
                let _ = writeln!(out, "[{id}]   smtp {}", escape(l));
            }
            for l in &text {
                let _ = writeln!(out, "[{id}] {}", escape(l));
            }
            let _ = writeln!(out, "[{id}] {}", escape(outcome));
        }
        let _ = out.flush();
    }
}

/// Options of `hsscan emulate` (from the command line).
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: Profile,
    pub listen: Vec<SocketAddr>,
    pub json: bool,
    /// `Some(false)`: implicit TLS whatever the profile says.
    pub smtp: Option<bool>,
    pub hostname: Option<String>,
    pub certs: Vec<std::path::PathBuf>,
    /// Private keys for the `certs` leaves, or for the generated leaves.
    pub keys: Vec<std::path::PathBuf>,
    /// Stop after this many connections have ended.
    pub exit_after: Option<usize>,
    /// Milliseconds before every answer, as a far network adds.
    pub rtt_ms: u64,
    /// Log no connection; print only the counts on exit.
    pub quiet: bool,
}

/// One line per shipped profile.
pub fn list_profiles() -> anyhow::Result<String> {
    let mut s = String::new();
    for (name, _) in profile::SHIPPED {
        let p = Profile::shipped(name)?;
        s.push_str(&format!("{name:<20} {}\n", p.description));
    }
    Ok(s)
}

/// The emulator's state and its bound listeners, before any connection is
/// accepted.
async fn bind(mut opts: Options) -> anyhow::Result<(Arc<Shared>, Vec<tokio::net::TcpListener>)> {
    if let (Some(h), Some(smtp)) = (&opts.hostname, opts.profile.smtp.as_mut()) {
        smtp.banner = smtp.banner.replace(&smtp.hostname, h);
        smtp.hostname = h.clone();
    }
    let hostname = opts
        .profile
        .smtp
        .as_ref()
        .map(|s| s.hostname.clone())
        .or(opts.hostname.clone())
        .unwrap_or_else(|| "mx.emulated.test".to_owned());
    let (chains, warnings) =
        chain::Chains::build(&hostname, &opts.certs, &opts.keys).context("making the certificate chains")?;
    for w in warnings {
        eprintln!("hsscan emulate: {w}");
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ u64::from(std::process::id());
    let smtp = opts.smtp.unwrap_or(true) && opts.profile.smtp.is_some();
    let shared = Arc::new(Shared {
        profile: opts.profile.clone(),
        chains,
        stats: Stats::default(),
        json: opts.json,
        smtp,
        seed,
        rtt_ms: opts.rtt_ms,
        quiet: opts.quiet,
        out: Mutex::new(()),
        finished: tokio::sync::Notify::new(),
        per_address: Mutex::new(std::collections::HashMap::new()),
    });
    let mut listeners = Vec::new();
    for addr in &opts.listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        listeners.push(l);
    }
    if listeners.is_empty() {
        return Err(anyhow!("no --listen address"));
    }
    Ok((shared, listeners))
}

/// Accepts connections on every listener, each served on its own task.
fn accept_all(shared: &Arc<Shared>, listeners: Vec<tokio::net::TcpListener>) -> Vec<tokio::task::JoinHandle<()>> {
    listeners
        .into_iter()
        .map(|l| {
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((stream, peer)) => {
                            tokio::spawn(conn::handle(stream, peer, Arc::clone(&shared)));
                        }
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                    }
                }
            })
        })
        .collect()
}

/// An emulator started inside this process by [`start`]: it answers on
/// [`Running::addrs`] until it is dropped, which stops accepting (a
/// connection already accepted runs to its end).
pub struct Running {
    /// The bound addresses, in the order of `Options::listen` (port 0
    /// resolved to the port the system chose).
    pub addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    accept: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.stats.total.load(Ordering::SeqCst)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.accept.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Starts the emulator inside this process (for `hsscan demo` and tests):
/// binds every `listen` address (port 0 picks a free one), prints nothing
/// on stderr, and serves until the returned handle is dropped. Must be
/// called inside a tokio runtime.
pub async fn start(opts: Options) -> anyhow::Result<Running> {
    let (shared, listeners) = bind(opts).await?;
    let addrs = listeners
        .iter()
        .map(tokio::net::TcpListener::local_addr)
        .collect::<Result<Vec<_>, _>>()
        .context("reading the listening address")?;
    let accept = accept_all(&shared, listeners);
    Ok(Running { addrs, shared, accept })
}

/// Runs the emulator until Ctrl-C, SIGTERM or `exit_after`.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let exit_after = opts.exit_after;
    let (shared, listeners) = bind(opts).await?;
    for l in &listeners {
        let local = l.local_addr().context("reading the listening address")?;
        eprintln!(
            "hsscan emulate: profile {} on {local} ({}); answers first flights only, completes no handshake",
            shared.profile.name,
            if shared.smtp { "SMTP STARTTLS" } else { "implicit TLS" }
        );
    }
    let _accept = accept_all(&shared, listeners);
    let done = async {
        match exit_after {
            Some(n) => loop {
                let wait = shared.finished.notified();
                if shared.stats.finished.load(Ordering::SeqCst) >= n {
                    break;
                }
                wait.await;
            },
            None => std::future::pending::<()>().await,
        }
    };
    let term = async {
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = done => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    let total = shared.stats.total.load(Ordering::SeqCst);
    let max = shared.stats.max.load(Ordering::SeqCst);
    let busiest = shared
        .per_address
        .lock()
        .map(|m| m.values().map(|(_, most)| *most).max().unwrap_or(0))
        .unwrap_or(0);
    if shared.json {
        let _g = shared.out.lock().unwrap_or_else(|e| e.into_inner());
        println!(
            "{}",
            json!({"record": "summary", "connections": total, "max_concurrent": max, "max_concurrent_per_address": busiest})
        );
    }
    eprintln!("hsscan emulate: {total} connections, at most {max} at once ({busiest} on one address)");
    let _ = std::io::stdout().flush();
    Ok(())
}
