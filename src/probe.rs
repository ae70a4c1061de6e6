//! One probe: one TCP connection, SMTP STARTTLS when the transport says so,
//! one hello, the server's first flight read with size caps and timeouts,
//! and a classification with the failure kinds of SPEC §3. Nothing is ever
//! completed: after the flight the probe sends a close_notify and closes.

use crate::outcome::{FailureKind, Stage};
use crate::smtp::{self, Dialog, SmtpTimeouts};
use crate::target::Transport;
use hsscan_wire::{Alert, CertificateStatus, Deframer, Event, ServerHello, ServerKeyExchange, Side, Sslv2ServerHello};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Kept here while callers move to [`crate::outcome`], where it lives.
pub use crate::outcome::Failure;

/// Timeouts of one probe.
#[derive(Debug, Clone, Copy)]
pub struct ProbeConfig {
    pub connect_timeout: Duration,
    /// For each read of the server's flight and each SMTP reply.
    pub read_timeout: Duration,
    /// For the SMTP banner (postscreen greeting delays).
    pub banner_timeout: Duration,
    /// After our close, how long to wait for the server's (see [`close`]);
    /// the per-IP gate shortens it for a far host.
    pub close_wait: Duration,
    /// Shut our side down right after the hello, where no second hello can
    /// follow (see [`exchange`]): the server has our close before it
    /// answers and closes as it answers, so the slot is free as soon as
    /// the answer is read, and a server that serves one connection at a
    /// time is free at once.
    pub half_close: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            banner_timeout: Duration::from_secs(30),
            close_wait: CLOSE_WAIT,
            half_close: false,
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub ehlo_name: String,
}

/// What the server sent before the handshake would turn encrypted.
#[derive(Debug, Clone, Default)]
pub struct Flight {
    pub server_hello: Option<ServerHello>,
    pub retry_request: Option<ServerHello>,
    pub sslv2: Option<Sslv2ServerHello>,
    /// DER certificates as sent, leaf first.
    pub certificates: Vec<Vec<u8>>,
    pub server_key_exchange: Option<ServerKeyExchange>,
    pub certificate_status: Option<CertificateStatus>,
    pub certificate_request: bool,
    pub server_hello_done: bool,
    pub alerts: Vec<Alert>,
    pub bytes: usize,
    /// What a cap kept from being read (certificates past the chain caps,
    /// bytes past [`MAX_FLIGHT_BYTES`]); `None` when the flight was read whole.
    pub unread: Option<String>,
    /// When the first byte of the answer arrived.
    pub first_read: Option<Instant>,
}

/// The result of one probe.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub smtp: Option<Dialog>,
    pub flight: Flight,
    /// `None` when the server answered with a (retry) hello.
    pub failure: Option<Failure>,
    pub elapsed: Duration,
    /// The shortest exchange seen on this connection (an SMTP command and
    /// its reply, the hello and the first bytes of the answer): about one
    /// round trip to the server.
    pub round_trip: Option<Duration>,
    /// Our side was shut down right after the hello.
    pub half_closed: bool,
}

impl ProbeResult {
    /// The server chose something: a ServerHello, a HelloRetryRequest or an SSLv2 SERVER-HELLO.
    pub fn answered(&self) -> bool {
        self.flight.server_hello.is_some() || self.flight.retry_request.is_some() || self.flight.sslv2.is_some()
    }
}

/// A flight larger than this is cut short: real first flights are under
/// 16 KiB, and this bounds memory per probe at high concurrency.
pub const MAX_FLIGHT_BYTES: usize = 512 * 1024;

/// Runs one probe: connect, STARTTLS if needed, send `writes` (the hello,
/// possibly over several writes), read and classify the answer.
pub async fn run(endpoint: &Endpoint, writes: &[Vec<u8>], cfg: &ProbeConfig) -> ProbeResult {
    run_following(endpoint, writes, None, cfg).await
}

/// [`run`], and with `retry`, a HelloRetryRequest is answered once on the
/// same connection with the second hello `retry` builds; the answer to
/// that is the result. A request the client may not follow, or a second
/// one, is `invalid-server-hello` (RFC 8446 §4.1.4); the flight keeps the
/// first request in `retry_request`.
pub async fn run_following(
    endpoint: &Endpoint,
    writes: &[Vec<u8>],
    retry: Option<&crate::hellos::Retry>,
    cfg: &ProbeConfig,
) -> ProbeResult {
    let started = Instant::now();
    let mut result = ProbeResult {
        smtp: None,
        flight: Flight::default(),
        failure: None,
        elapsed: Duration::ZERO,
        round_trip: None,
        half_closed: false,
    };
    let failure = exchange(endpoint, writes, retry, cfg, &mut result).await.err();
    result.failure = failure;
    result.elapsed = started.elapsed();
    result
}

async fn exchange(
    endpoint: &Endpoint,
    writes: &[Vec<u8>],
    retry: Option<&crate::hellos::Retry>,
    cfg: &ProbeConfig,
    result: &mut ProbeResult,
) -> Result<(), Failure> {
    let (mut stream, leftover) = open(endpoint, cfg, &mut result.smtp).await?;
    result.round_trip = result.smtp.as_ref().and_then(|d| d.round_trip);
    for (i, w) in writes.iter().enumerate() {
        let sent = tokio::time::timeout(cfg.read_timeout, stream.write_all(w)).await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(io_failure(&e, result.answered())),
            Err(_) => {
                return Err(Failure::new(
                    Stage::Handshake,
                    FailureKind::TimeoutAfterHello,
                    "writing the hello timed out",
                ))
            }
        }
        if i + 1 < writes.len() {
            // Give each part its own TCP segment.
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Nothing more to send: our close goes with the hello. The server
    // reads the hello first and answers it (TLS reads record by record);
    // a server that takes the early close for a drop is told apart by the
    // gate, which then stops doing this for that IP.
    if cfg.half_close && retry.is_none() {
        let _ = stream.flush().await;
        if tokio::time::timeout(Duration::from_millis(200), stream.shutdown())
            .await
            .is_ok_and(|r| r.is_ok())
        {
            result.half_closed = true;
        }
    }
    let waiting = crate::wait::begin(
        || format!("the answer to the ClientHello from {}", endpoint.addr),
        3 * cfg.read_timeout,
    );
    let sent = Instant::now();
    let mut deframer = Deframer::new(Side::Server);
    let mut outcome = read_flight(
        &mut stream,
        &mut deframer,
        leftover,
        cfg.read_timeout,
        &mut result.flight,
    )
    .await;
    if let (Ok(()), Some(retry), Some(hrr)) = (&outcome, retry, result.flight.retry_request.clone()) {
        outcome = follow_retry(
            &mut stream,
            &mut deframer,
            retry,
            hrr,
            cfg.read_timeout,
            &mut result.flight,
        )
        .await;
    }
    drop(waiting);
    if let Some(first) = result.flight.first_read {
        let rtt = first.saturating_duration_since(sent);
        result.round_trip = Some(result.round_trip.map_or(rtt, |r| r.min(rtt)));
    }
    // Politeness: a close_notify in the record version the server chose,
    // then close; nothing is completed. After a TLS 1.3 ServerHello only an
    // encrypted alert would be valid, so the connection is just closed.
    if let Some(h) = result.flight.server_hello.as_ref().filter(|_| !result.half_closed) {
        if h.selected_version() != hsscan_wire::ProtocolVersion::TLS13 {
            let [major, minor] = h.legacy_version.0.to_be_bytes();
            let alert = [21, major, minor, 0, 2, 1, 0];
            let _ = tokio::time::timeout(Duration::from_millis(200), stream.write_all(&alert)).await;
        }
    }
    // Half closed, the server had our close before its answer, and its
    // own close follows the answer: the wait ends as that arrives.
    let closed = close(&mut stream, cfg.close_wait).await;
    // A server that sent its whole flight waits for our next message: its
    // close answers ours, one round trip later. Over implicit TLS that is
    // the only exchange after the connect that is a round trip alone (the
    // hello's answer may carry the connect's: a path whose connect returns
    // at once, as through a proxy, holds the hello until the handshake).
    if let Some(d) = closed.filter(|_| !result.half_closed && result.flight.server_hello_done) {
        result.round_trip = Some(result.round_trip.map_or(d, |r| r.min(d)));
    }
    outcome
}

/// Connects and, when the transport says so, runs the SMTP dialog up to
/// STARTTLS (kept in `smtp` whatever happens); returns the stream, ready
/// for a hello, and any bytes the server sent after its STARTTLS reply.
pub async fn open(
    endpoint: &Endpoint,
    cfg: &ProbeConfig,
    smtp: &mut Option<Dialog>,
) -> Result<(TcpStream, Vec<u8>), Failure> {
    let mut stream = {
        let _waiting = crate::wait::begin(|| format!("a TCP connection to {}", endpoint.addr), cfg.connect_timeout);
        connect(endpoint.addr, cfg.connect_timeout).await?
    };
    // Split hellos must leave as separate segments.
    let _ = stream.set_nodelay(true);
    let mut leftover = Vec::new();
    if endpoint.transport == Transport::SmtpStarttls {
        let mut dialog = Dialog::default();
        let timeouts = SmtpTimeouts {
            banner: cfg.banner_timeout,
            reply: cfg.read_timeout,
        };
        let r = smtp::starttls(&mut stream, &endpoint.ehlo_name, timeouts, &mut dialog).await;
        *smtp = Some(dialog);
        leftover = r?;
    }
    Ok((stream, leftover))
}

/// Ends a connection politely: shut down our side, then wait up to `wait`
/// for the server to close too, so that it has seen this connection end
/// before the next one to it starts: a server counting connections per
/// client (Postfix anvil) never sees more than --per-host at once.
/// Returns how long after our close the server's came, when it came.
pub async fn close(stream: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let start = Instant::now();
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
    let mut sink = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + wait;
    let mut drained = 0usize;
    while drained < MAX_DRAIN {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            Ok(Ok(_)) => return Some(start.elapsed()),
            _ => break,
        }
    }
    None
}

/// How long to wait for the server's close after ours, so that it has
/// let go of this connection before the next one to it starts.
pub const CLOSE_WAIT: Duration = Duration::from_millis(300);
/// What may still arrive after the flight and is discarded.
const MAX_DRAIN: usize = 64 * 1024;

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Failure> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => Err(Failure::new(
            Stage::Connect,
            FailureKind::Timeout,
            format!("connecting to {addr}: no answer within {}s", timeout.as_secs_f32()),
        )),
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(connect_failure(addr, &e)),
    }
}

/// `errno` values of a failed connect that are limits of this machine, not
/// answers from the server: EMFILE and ENFILE (file descriptors), ENOBUFS
/// and ENOMEM (kernel memory), EADDRNOTAVAIL (no free local port). Linux
/// numbers; the BSDs and macOS number ENOBUFS and EADDRNOTAVAIL apart.
#[cfg(not(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
)))]
const LOCAL_LIMIT_ERRNOS: [i32; 5] = [24, 23, 105, 12, 99];
#[cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
const LOCAL_LIMIT_ERRNOS: [i32; 5] = [24, 23, 55, 12, 49];

/// A failed connect, classified. Running out of descriptors, buffers or
/// local ports under a large `-j` says nothing about the server: it is
/// `local-error` (inconclusive), never `unreachable`.
fn connect_failure(addr: SocketAddr, e: &std::io::Error) -> Failure {
    use std::io::ErrorKind as K;
    let local = matches!(e.kind(), K::AddrNotAvailable | K::OutOfMemory)
        || e.raw_os_error().is_some_and(|n| LOCAL_LIMIT_ERRNOS.contains(&n));
    if local {
        return Failure::new(
            Stage::Local,
            FailureKind::LocalError,
            format!("connecting to {addr}: {e}: a limit of this machine, not of the server"),
        );
    }
    let kind = match e.kind() {
        K::ConnectionRefused => FailureKind::Refused,
        K::TimedOut => FailureKind::Timeout,
        _ => FailureKind::Unreachable,
    };
    Failure::new(Stage::Connect, kind, format!("connecting to {addr}: {e}"))
}

pub(crate) fn io_failure(e: &std::io::Error, answered: bool) -> Failure {
    let after = if answered { " after the server's hello" } else { "" };
    match e.kind() {
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe => Failure::new(
            Stage::Handshake,
            FailureKind::ResetAfterHello,
            format!("connection reset{after}: {e}"),
        ),
        _ => Failure::new(Stage::Handshake, FailureKind::ClosedAfterHello, format!("{e}{after}")),
    }
}

/// Answers the HelloRetryRequest `hrr` with `retry`'s second hello and
/// reads what that draws into `flight`, which keeps `hrr` as its retry
/// request.
async fn follow_retry(
    stream: &mut TcpStream,
    deframer: &mut Deframer,
    retry: &crate::hellos::Retry,
    hrr: ServerHello,
    read_timeout: Duration,
    flight: &mut Flight,
) -> Result<(), Failure> {
    let invalid = |what: String| Failure::new(Stage::Handshake, FailureKind::InvalidServerHello, what);
    let second = retry.second_hello(&hrr).map_err(invalid)?;
    match tokio::time::timeout(read_timeout, stream.write_all(&second)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(io_failure(&e, true)),
        Err(_) => {
            return Err(Failure::new(
                Stage::Handshake,
                FailureKind::TimeoutAfterHello,
                "writing the second hello timed out",
            ))
        }
    }
    flight.retry_request = None;
    let read = read_flight(stream, deframer, Vec::new(), read_timeout, flight).await;
    if flight.retry_request.replace(hrr.clone()).is_some() {
        return Err(invalid(
            "a second HelloRetryRequest on one connection (RFC 8446 §4.1.4)".to_owned(),
        ));
    }
    read?;
    if let Some(sh) = &flight.server_hello {
        let name = |s: hsscan_wire::CipherSuite| s.name().map_or_else(|| s.hex(), str::to_owned);
        if sh.cipher_suite != hrr.cipher_suite {
            return Err(invalid(format!(
                "the ServerHello after a HelloRetryRequest for {} chose {} (RFC 8446 §4.1.4)",
                name(hrr.cipher_suite),
                name(sh.cipher_suite)
            )));
        }
        if sh.key_share_group() != hrr.key_share_group() && hrr.key_share_group().is_some() {
            return Err(invalid(
                "the ServerHello after a HelloRetryRequest chose another group than it asked for (RFC 8446 §4.1.4)"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

/// Reads until the flight is complete, the server refuses, or it falls silent.
async fn read_flight(
    stream: &mut TcpStream,
    deframer: &mut Deframer,
    leftover: Vec<u8>,
    read_timeout: Duration,
    flight: &mut Flight,
) -> Result<(), Failure> {
    // A slow server (a byte at a time) gets at most three read timeouts in all.
    let deadline = tokio::time::Instant::now() + 3 * read_timeout;
    let mut pending = leftover;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !pending.is_empty() {
            flight.bytes += pending.len();
            if let Err(e) = deframer.push(&pending) {
                return Err(Failure::new(Stage::Handshake, FailureKind::NotTls, e.to_string()));
            }
            pending.clear();
            loop {
                match deframer.next_event() {
                    Ok(Some(event)) => {
                        if let Some(done) = take_event(event, flight) {
                            return done;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(Failure::new(
                            Stage::Handshake,
                            FailureKind::NotTls,
                            format!("undecodable server bytes: {e}"),
                        ))
                    }
                }
            }
            if flight.bytes > MAX_FLIGHT_BYTES {
                return if flight.server_hello.is_some() {
                    if deframer.in_message() || !deframer.unconsumed().is_empty() {
                        flight.unread = Some(format!(
                            "the flight ran past {} KiB in a handshake message: its rest was not read",
                            MAX_FLIGHT_BYTES / 1024
                        ));
                    }
                    Ok(())
                } else {
                    Err(Failure::new(
                        Stage::Handshake,
                        FailureKind::NotTls,
                        "over 512 KiB without a ServerHello",
                    ))
                };
            }
        }
        let wait = (tokio::time::Instant::now() + read_timeout).min(deadline);
        let n = match tokio::time::timeout_at(wait, stream.read(&mut buf)).await {
            Err(_) if flight.server_hello.is_some() => return Ok(()),
            Err(_) => {
                let detail = match deframer.unconsumed() {
                    [] => format!("no answer within {}s after the hello", read_timeout.as_secs_f32()),
                    part => format!(
                        "{} bytes of an incomplete answer: {}",
                        part.len(),
                        smtp::printable(part)
                    ),
                };
                return Err(Failure::new(Stage::Handshake, FailureKind::TimeoutAfterHello, detail));
            }
            Ok(Err(e)) if flight.server_hello.is_some() => {
                // A reset after the ServerHello still leaves the negotiated values.
                let _ = e;
                return Ok(());
            }
            Ok(Err(e)) => return Err(io_failure(&e, false)),
            Ok(Ok(0)) => return end_of_stream(deframer, flight),
            Ok(Ok(n)) => n,
        };
        flight.first_read.get_or_insert_with(Instant::now);
        pending.extend_from_slice(buf.get(..n).unwrap_or(&[]));
    }
}

/// How the server's side of a connection ended after its bytes, for
/// [`answer_from_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// It said nothing more and kept the connection open.
    Open,
    /// It closed (FIN).
    Closed,
    /// It reset the connection.
    Reset,
}

/// The probe's judgement of a server that sent `bytes` and then ended as
/// `end`, without a socket: the same reading and classification as a live
/// probe, for captures and for the planners' in-memory tests.
pub fn answer_from_bytes(bytes: &[u8], end: StreamEnd) -> ProbeResult {
    let mut flight = Flight::default();
    let failure = read_bytes(bytes, end, &mut flight).err();
    ProbeResult {
        round_trip: None,
        smtp: None,
        flight,
        failure,
        elapsed: Duration::ZERO,
        half_closed: false,
    }
}

fn read_bytes(bytes: &[u8], end: StreamEnd, flight: &mut Flight) -> Result<(), Failure> {
    let mut deframer = Deframer::new(Side::Server);
    flight.bytes = bytes.len();
    if let Err(e) = deframer.push(bytes) {
        return Err(Failure::new(Stage::Handshake, FailureKind::NotTls, e.to_string()));
    }
    loop {
        match deframer.next_event() {
            Ok(Some(event)) => {
                if let Some(done) = take_event(event, flight) {
                    return done;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Failure::new(
                    Stage::Handshake,
                    FailureKind::NotTls,
                    format!("undecodable server bytes: {e}"),
                ))
            }
        }
    }
    match end {
        StreamEnd::Closed => end_of_stream(&deframer, flight),
        _ if flight.server_hello.is_some() => Ok(()),
        StreamEnd::Reset => Err(io_failure(
            &std::io::Error::from(std::io::ErrorKind::ConnectionReset),
            false,
        )),
        StreamEnd::Open => Err(Failure::new(
            Stage::Handshake,
            FailureKind::TimeoutAfterHello,
            "no answer after the hello",
        )),
    }
}

/// Records one event; `Some` ends the read with that result.
fn take_event(event: Event, flight: &mut Flight) -> Option<Result<(), Failure>> {
    match event {
        Event::ServerHello(h) => {
            let tls13 = h.selected_version() == hsscan_wire::ProtocolVersion::TLS13;
            flight.server_hello = Some(h);
            // After a TLS 1.3 ServerHello everything is encrypted.
            if tls13 {
                return Some(Ok(()));
            }
        }
        Event::HelloRetryRequest(h) => {
            flight.retry_request = Some(h);
            return Some(Ok(()));
        }
        Event::Certificate(c) => {
            if !c.omitted.is_empty() {
                flight.unread = Some(format!(
                    "{} certificates ({} bytes) after the first {} of the chain were not kept",
                    c.omitted.certificates,
                    c.omitted.bytes,
                    c.entries.len()
                ));
            }
            flight.certificates = c.entries.into_iter().map(|e| e.der).collect();
        }
        Event::ServerKeyExchange(s) => flight.server_key_exchange = Some(s),
        Event::CertificateStatus(s) => flight.certificate_status = Some(s),
        Event::CertificateRequest(_) => flight.certificate_request = true,
        Event::ServerHelloDone => {
            flight.server_hello_done = true;
            return Some(Ok(()));
        }
        Event::Alert(a) => {
            flight.alerts.push(a);
            // Old servers warn `unrecognized_name` and carry on with their hello.
            let warning = a.level == hsscan_wire::AlertLevel::WARNING
                && a.description != hsscan_wire::AlertDescription::CLOSE_NOTIFY;
            if warning && flight.server_hello.is_none() {
                return None;
            }
            if flight.server_hello.is_some() {
                return Some(Ok(()));
            }
            return Some(Err(Failure::new(Stage::Handshake, FailureKind::Alert, a.to_string())));
        }
        Event::Sslv2ServerHello(h) => {
            flight.sslv2 = Some(h);
            return Some(Ok(()));
        }
        Event::Sslv2Error(code) => {
            let what = match code {
                1 => "NO-CIPHER-ERROR",
                2 => "NO-CERTIFICATE-ERROR",
                4 => "BAD-CERTIFICATE-ERROR",
                6 => "UNSUPPORTED-CERTIFICATE-TYPE-ERROR",
                _ => "unknown error",
            };
            let kind = if code == 1 {
                FailureKind::NoSharedCipher
            } else {
                FailureKind::Alert
            };
            return Some(Err(Failure::new(
                Stage::Handshake,
                kind,
                format!("SSLv2 {what} ({code})"),
            )));
        }
        Event::NotTls(bytes) => return Some(Err(classify_plaintext(&bytes))),
        Event::ChangeCipherSpec | Event::Encrypted { .. } | Event::Heartbeat { .. } | Event::Sslv2Other { .. } => {
            if flight.server_hello.is_some() {
                return Some(Ok(()));
            }
        }
        Event::ClientHello(_) | Event::Sslv2ClientHello(_) | Event::Handshake { .. } => {}
    }
    None
}

fn end_of_stream(deframer: &Deframer, flight: &Flight) -> Result<(), Failure> {
    if flight.server_hello.is_some() {
        return Ok(());
    }
    match deframer.unconsumed() {
        [] => Err(Failure::new(
            Stage::Handshake,
            FailureKind::ClosedAfterHello,
            "the server closed the connection without answering the hello",
        )),
        part if looks_like_text(part) => Err(classify_plaintext(part)),
        part => Err(Failure::new(
            Stage::Handshake,
            FailureKind::NotTls,
            format!("{} bytes then close: {}", part.len(), smtp::printable(part)),
        )),
    }
}

fn looks_like_text(b: &[u8]) -> bool {
    !b.is_empty()
        && b.iter()
            .all(|&c| c == b'\r' || c == b'\n' || c == b'\t' || (0x20..0x7f).contains(&c))
}

/// Text in answer to a ClientHello: an SMTP reply means implicit TLS was
/// spoken to a STARTTLS port (SPEC §3 `plaintext-reply`), unless it is a
/// connection limit (`rate-limited`, SPEC §7); anything else is `not-tls`.
/// The capture analyser judges captured answers with it too.
pub fn classify_plaintext(bytes: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(bytes);
    let first = text.lines().next().unwrap_or("").trim_end();
    let b = first.as_bytes();
    let smtp_reply =
        b.len() >= 3 && b.iter().take(3).all(u8::is_ascii_digit) && matches!(b.get(3), None | Some(b' ' | b'-'));
    if !smtp_reply {
        return Failure::new(
            Stage::Handshake,
            FailureKind::NotTls,
            format!(
                "the server answered with bytes that are not TLS: {}",
                smtp::printable(bytes)
            ),
        );
    }
    let reply = smtp::Reply {
        code: first.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0),
        lines: vec![first.to_owned()],
    };
    if reply.is_rate_limit() {
        // A 421 is the server limiting connections, whatever it was sent.
        Failure::new(
            Stage::Handshake,
            FailureKind::RateLimited,
            format!("the server answered the ClientHello with {first}"),
        )
    } else {
        Failure::new(
            Stage::Handshake,
            FailureKind::PlaintextReply,
            format!("the server answered the ClientHello with an SMTP reply ({first}): this port expects STARTTLS, not implicit TLS"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_classification() {
        assert_eq!(
            classify_plaintext(b"220 mx ESMTP\r\n").kind,
            FailureKind::PlaintextReply
        );
        assert_eq!(
            classify_plaintext(b"500 5.5.2 Error: bad syntax\r\n").kind,
            FailureKind::PlaintextReply
        );
        assert_eq!(
            classify_plaintext(b"HTTP/1.1 400 Bad Request\r\n").kind,
            FailureKind::NotTls
        );
        assert_eq!(
            classify_plaintext(b"421 4.7.0 mx Error: too many connections from 192.0.2.1\r\n").kind,
            FailureKind::RateLimited
        );
        assert_eq!(classify_plaintext(&[0, 1, 2]).kind, FailureKind::NotTls);
    }

    #[test]
    fn local_limits_on_connect_are_ours_not_unreachable() {
        let addr: SocketAddr = "192.0.2.7:25".parse().expect("address");
        let of = |e: std::io::Error| {
            let f = connect_failure(addr, &e);
            (f.stage, f.kind)
        };
        let local = (Stage::Local, FailureKind::LocalError);
        for errno in LOCAL_LIMIT_ERRNOS {
            assert_eq!(of(std::io::Error::from_raw_os_error(errno)), local, "errno {errno}");
        }
        assert_eq!(of(std::io::ErrorKind::AddrNotAvailable.into()), local);
        assert_eq!(
            of(std::io::ErrorKind::ConnectionRefused.into()),
            (Stage::Connect, FailureKind::Refused)
        );
        assert_eq!(
            of(std::io::ErrorKind::TimedOut.into()),
            (Stage::Connect, FailureKind::Timeout)
        );
        assert_eq!(
            of(std::io::ErrorKind::HostUnreachable.into()),
            (Stage::Connect, FailureKind::Unreachable)
        );
        let f = connect_failure(addr, &std::io::Error::from_raw_os_error(LOCAL_LIMIT_ERRNOS[0]));
        assert!(f.detail.starts_with("connecting to 192.0.2.7:25: "), "{}", f.detail);
        assert!(f.is_inconclusive());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_names_the_limits() {
        // EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL as strerror says them.
        let text: Vec<String> = LOCAL_LIMIT_ERRNOS
            .iter()
            .map(|&n| std::io::Error::from_raw_os_error(n).to_string())
            .collect();
        for (got, want) in text.iter().zip([
            "Too many open files",
            "Too many open files in system",
            "No buffer space available",
            "Cannot allocate memory",
            "Cannot assign requested address",
        ]) {
            assert!(got.starts_with(want), "{got}");
        }
    }
}
