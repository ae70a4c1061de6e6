//! A hostile middlebox for the tests: a loopback TCP proxy in front of a
//! real server that forwards the first connections faithfully, then
//! spoils a window of them the way overloaded or hostile receivers do
//! (reset, garbage, silence, a 421), then forwards again.
//!
//! Connections are numbered in the order the proxy accepts them, from 0;
//! every one is logged (what the client sent first, what the proxy did),
//! for failure messages. Each spoiling reads the client's first bytes
//! before acting, so it answers a ClientHello, never a bare connect.
//!
//! The proxy runs on its own thread with a single-threaded tokio runtime;
//! dropping it stops the runtime, which closes every connection it holds.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How a spoiled connection behaves once the client's first bytes are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reset the connection (zero linger, then close: an RST, no FIN).
    Reset,
    /// Answer [`GARBAGE`], then close.
    Garbage,
    /// Answer nothing; hold the connection until the client closes it.
    Silence,
    /// Answer [`REPLY_421`], as an SMTP server at its connection limit
    /// does, then close.
    Reply421,
}

/// 64 bytes that are neither TLS (no record content type, no SSLv2 header:
/// the first byte is 0x00 and no byte has its high bit set) nor SMTP text
/// (no digits, no line end).
pub const GARBAGE: [u8; 64] = {
    let mut g = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        // 0x00..0x07, repeated.
        g[i] = (i % 8) as u8;
        i += 1;
    }
    g
};

/// The line a rate-limiting SMTP server answers with.
pub const REPLY_421: &[u8] = b"421 4.7.0 too many connections\r\n";

/// How long the proxy waits for a client's first bytes.
const FIRST_BYTES_WAIT: Duration = Duration::from_secs(10);

/// One accepted connection, as logged.
#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    /// Since the proxy started.
    at: Duration,
    /// `forward`, or the mode.
    action: String,
    /// What came of it, filled in when the connection ends.
    outcome: String,
}

/// The running proxy; dropping it stops it.
pub struct Hostile {
    /// The port on 127.0.0.1 to point the client at.
    pub port: u16,
    upstream: SocketAddr,
    first: usize,
    window: usize,
    mode: Mode,
    log: Arc<Mutex<Vec<Entry>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Hostile {
    /// Listens on 127.0.0.1:0 in front of `upstream`: connections
    /// `0..first` are forwarded, `first..first + window` behave as `mode`
    /// (`window` = `usize::MAX`: every one from `first` on), later ones are
    /// forwarded again.
    pub fn start(upstream: SocketAddr, first: usize, window: usize, mode: Mode) -> Self {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let port = listener.local_addr().expect("local_addr").port();
        let log: Arc<Mutex<Vec<Entry>>> = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread_log = Arc::clone(&log);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let started = Instant::now();
                let mut index = 0usize;
                tokio::pin!(stopped);
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let spoiled = index >= first && index - first < window;
                            let action = if spoiled { format!("{mode:?}") } else { "forward".to_owned() };
                            thread_log.lock().expect("log").push(Entry {
                                index,
                                at: started.elapsed(),
                                action,
                                outcome: "(open)".to_owned(),
                            });
                            let log = Arc::clone(&thread_log);
                            let i = index;
                            tokio::spawn(async move {
                                let outcome = if spoiled {
                                    spoil(client, mode).await
                                } else {
                                    forward(client, upstream).await
                                };
                                if let Some(e) = log.lock().expect("log").get_mut(i) {
                                    e.outcome = outcome;
                                }
                            });
                            index += 1;
                        }
                    }
                }
            });
        });
        Self {
            port,
            upstream,
            first,
            window,
            mode,
            log,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.log.lock().expect("log").len()
    }

    /// Connections spoiled so far.
    pub fn spoiled(&self) -> usize {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter(|e| e.action != "forward")
            .count()
    }

    /// The connection log, one line per connection, for failure messages.
    pub fn log(&self) -> String {
        let window = if self.window == usize::MAX {
            "for ever".to_owned()
        } else {
            format!("for {}", self.window)
        };
        let mut text = format!(
            "--- hostile proxy 127.0.0.1:{} -> {}: forwards {}, then {:?} {window}; {} connections ---\n",
            self.port,
            self.upstream,
            self.first,
            self.mode,
            self.connections()
        );
        for e in self.log.lock().expect("log").iter() {
            let _ = writeln!(
                text,
                "#{:<3} +{:>6} ms  {:<8} {}",
                e.index,
                e.at.as_millis(),
                e.action,
                e.outcome
            );
        }
        text
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Forwards both ways until both sides are done.
async fn forward(mut client: TcpStream, upstream: SocketAddr) -> String {
    let mut server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(e) => return format!("cannot connect to {upstream}: {e}"),
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    match tokio::io::copy_bidirectional(&mut client, &mut server).await {
        Ok((up, down)) => format!("forwarded {up} bytes up, {down} down"),
        Err(e) => format!("forwarding ended: {e}"),
    }
}

/// Reads the client's first bytes: how many, and the first few in hex.
async fn first_bytes(client: &mut TcpStream) -> Result<String, String> {
    let mut buf = [0u8; 16 * 1024];
    match tokio::time::timeout(FIRST_BYTES_WAIT, client.read(&mut buf)).await {
        Err(_) => Err(format!("no bytes from the client within {FIRST_BYTES_WAIT:?}")),
        Ok(Err(e)) => Err(format!("reading the client: {e}")),
        Ok(Ok(0)) => Err("the client closed before sending anything".to_owned()),
        Ok(Ok(n)) => {
            let head: String = buf.iter().take(n.min(8)).map(|b| format!("{b:02x}")).collect();
            Ok(format!("read {n} bytes ({head}..)"))
        }
    }
}

/// Behaves as `mode` once the client's first bytes are in.
async fn spoil(mut client: TcpStream, mode: Mode) -> String {
    let read = match first_bytes(&mut client).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    match mode {
        Mode::Reset => match client.set_zero_linger() {
            Ok(()) => {
                drop(client);
                format!("{read}, reset")
            }
            Err(e) => format!("{read}, cannot set a zero linger: {e}"),
        },
        Mode::Garbage => answer_and_close(client, &GARBAGE, read, "64 bytes of garbage").await,
        Mode::Reply421 => answer_and_close(client, REPLY_421, read, "421").await,
        Mode::Silence => {
            let held = Instant::now();
            let mut buf = [0u8; 4096];
            let mut more = 0usize;
            let end = loop {
                match client.read(&mut buf).await {
                    Ok(0) => break "the client closed".to_owned(),
                    Ok(n) => more += n,
                    Err(e) => break format!("the client went away: {e}"),
                }
            };
            format!(
                "{read}, silent for {} ms ({more} more bytes read) until {end}",
                held.elapsed().as_millis()
            )
        }
    }
}

async fn answer_and_close(mut client: TcpStream, bytes: &[u8], read: String, what: &str) -> String {
    if let Err(e) = client.write_all(bytes).await {
        return format!("{read}, writing {what}: {e}");
    }
    let _ = client.shutdown().await;
    // Read what is left until the client closes: closing with unread bytes
    // would make the kernel reset the connection instead of closing it.
    let mut buf = [0u8; 4096];
    let drained = tokio::time::timeout(FIRST_BYTES_WAIT, async {
        while let Ok(n) = client.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let end = if drained.is_ok() {
        "closed"
    } else {
        "closed (the client kept it open)"
    };
    format!("{read}, answered {what}, {end}")
}
