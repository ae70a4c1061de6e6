//! One connection to the emulator: the SMTP front (banner, EHLO, STARTTLS),
//! the ClientHello read with size caps and timeouts, the answer, what the
//! client sends back after a TLS ≤ 1.2 flight (its ClientKeyExchange, or
//! an alert), and the log of it all.

use super::profile::{Refusal, StartTls};
use super::responder::{alert_record, client_versions, group_name, label, Answer, Arrival, Bytes, Decision, Responder};
use super::Shared;
use hsscan_wire::{
    catalog, AlertDescription, AlertLevel, ClientExtension, ClientHello, ContentType, Deframer, Event, ExtensionType,
    HandshakeType, ProtocolVersion, Side, Sslv2ClientHello,
};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A ClientHello is at most this many bytes on the wire (with its records):
/// real ones are under 2 KiB, post-quantum ones under 4 KiB.
const MAX_HELLO_BYTES: usize = 64 * 1024;
/// An SMTP command line (RFC 5321 §4.5.3.1.4 allows 512; be lenient).
const MAX_LINE: usize = 4096;
/// Commands before STARTTLS, then the connection is closed.
const MAX_COMMANDS: usize = 50;
/// How long a client may stay idle.
const IDLE: Duration = Duration::from_secs(60);
/// The longest a connection may last, whatever it does.
const SESSION: Duration = Duration::from_secs(600);
/// How long a silent server holds a connection.
const SILENCE: Duration = Duration::from_secs(300);
/// How long to wait for the client to close after the answer.
const DRAIN: Duration = Duration::from_secs(1);
/// How long a client has to answer a TLS ≤ 1.2 flight. A real client
/// answers in milliseconds; this only ends the wait for a silent one.
const REPLY: Duration = Duration::from_secs(10);
/// After a ClientKeyExchange, how long to wait for the ChangeCipherSpec
/// and Finished that usually come in the same write.
const REPLY_REST: Duration = Duration::from_millis(500);
/// What a client may send after the flight before we stop reading.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// What happened on one connection, for the log.
#[derive(Debug, Default)]
struct Log {
    smtp: Vec<String>,
    hellos: Vec<Value>,
    text: Vec<String>,
    /// What the client sent after a TLS ≤ 1.2 flight (`client_reply`).
    reply: Option<Value>,
    outcome: String,
}

/// Decrements the open-connection counts when the connection ends.
/// One connection in the counts of connections open now (in all and per
/// listening address). Like a real server's own accounting (Postfix's
/// anvil is told before smtpd closes the socket), a connection stops
/// counting when the emulator is done with it: before the emulator's own
/// FIN when it closes first, at once when the client has closed — never
/// after the log is written, which may wait for a busy stdout while the
/// client, which has seen the close, already opens its next connection.
struct Open<'a> {
    shared: &'a Shared,
    local: std::net::IpAddr,
    released: std::sync::atomic::AtomicBool,
}

impl<'a> Open<'a> {
    fn new(shared: &'a Shared, local: std::net::IpAddr) -> Self {
        Self {
            shared,
            local,
            released: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Takes the connection out of the open counts (once).
    fn release(&self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut m) = self.shared.per_address.lock() {
            if let Some(e) = m.get_mut(&self.local) {
                e.0 = e.0.saturating_sub(1);
            }
        }
        self.shared.stats.current.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.release();
        self.shared.stats.finished.fetch_add(1, Ordering::SeqCst);
        self.shared.finished.notify_one();
    }
}

/// Closes our side after taking the connection out of the open counts.
async fn shut(stream: &mut TcpStream, open: &Open<'_>) {
    open.release();
    let _ = stream.shutdown().await;
}

pub async fn handle(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let id = shared.stats.total.fetch_add(1, Ordering::SeqCst) + 1;
    let now = shared.stats.current.fetch_add(1, Ordering::SeqCst) + 1;
    shared.stats.max.fetch_max(now, Ordering::SeqCst);
    // Per listening address too: one emulator may play many MX hosts.
    let local = stream.local_addr().map_or(peer.ip(), |a| a.ip());
    let here = match shared.per_address.lock() {
        Ok(mut m) => {
            let e = m.entry(local).or_insert((0, 0));
            e.0 += 1;
            e.1 = e.1.max(e.0);
            e.0
        }
        Err(_) => 0,
    };
    let open = Open::new(&shared, local);
    let mut log = Log::default();
    let mut rng = Bytes::new(shared.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let _ = stream.set_nodelay(true);
    // A whole session is bounded too: a client trickling a byte a minute
    // does not hold a connection for ever.
    let outcome = match tokio::time::timeout(
        SESSION,
        session(&mut stream, peer, id, here, &shared, &open, &mut log, &mut rng),
    )
    .await
    {
        Ok(o) => o,
        Err(_) => format!("closed after {} s", SESSION.as_secs()),
    };
    open.release();
    log.outcome = outcome;
    shared.emit(
        id,
        peer,
        (now, local, here),
        log.smtp,
        log.hellos,
        log.text,
        log.reply,
        &log.outcome,
    );
}

/// How answers are paced: a round trip before each (`--rtt`, a network
/// far away) and a pause after every byte (slow-response profiles).
#[derive(Debug, Clone, Copy, Default)]
struct Pace {
    rtt_ms: u64,
    byte_ms: u64,
}

async fn write(stream: &mut TcpStream, bytes: &[u8], pace: Pace) -> std::io::Result<()> {
    if pace.rtt_ms > 0 {
        tokio::time::sleep(Duration::from_millis(pace.rtt_ms)).await;
    }
    let byte_delay = pace.byte_ms;
    if byte_delay == 0 {
        return stream.write_all(bytes).await;
    }
    for b in bytes {
        stream.write_all(std::slice::from_ref(b)).await?;
        tokio::time::sleep(Duration::from_millis(byte_delay)).await;
    }
    Ok(())
}

/// Reads one CRLF line (capped); `None` on EOF, timeout or overflow.
async fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            return Some(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
        if buf.len() > MAX_LINE {
            return None;
        }
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            _ => return None,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn session(
    stream: &mut TcpStream,
    peer: SocketAddr,
    id: usize,
    open_here: usize,
    shared: &Shared,
    open: &Open<'_>,
    log: &mut Log,
    rng: &mut Bytes,
) -> String {
    let profile = &shared.profile;
    let delay = Pace {
        rtt_ms: shared.rtt_ms,
        byte_ms: profile.misbehave.byte_delay_ms,
    };
    if let Some(smtp) = shared.smtp() {
        let limited =
            (smtp.max_concurrent > 0 && open_here > smtp.max_concurrent) || (smtp.max_total > 0 && id > smtp.max_total);
        if limited {
            let reply = format!(
                "421 4.7.0 {} Error: too many connections from {}",
                smtp.hostname,
                peer.ip()
            );
            let _ = write(stream, format!("{reply}\r\n").as_bytes(), Pace::default()).await;
            shut(stream, open).await;
            log.smtp.push(format!("> {reply}"));
            return format!("refused with 421 ({open_here} open on this address, {id} in all)");
        }
        if smtp.greeting_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(smtp.greeting_delay_ms)).await;
        }
        if write(stream, format!("{}\r\n", smtp.banner).as_bytes(), delay)
            .await
            .is_err()
        {
            return "the client left before the banner".to_owned();
        }
        let mut buf = Vec::new();
        let mut commands = 0;
        loop {
            commands += 1;
            if commands > MAX_COMMANDS {
                let _ = write(stream, b"421 4.7.0 too many commands\r\n", Pace::default()).await;
                return "closed after too many commands".to_owned();
            }
            let Some(line) = read_line(stream, &mut buf).await else {
                return "the client closed (or went quiet) before STARTTLS".to_owned();
            };
            log.smtp.push(format!("< {line}"));
            let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" => {
                    let mut lines = vec![smtp.hostname.clone()];
                    lines.extend(smtp.extensions.iter().cloned());
                    if smtp.starttls != StartTls::Absent {
                        lines.push("STARTTLS".to_owned());
                    }
                    let n = lines.len();
                    lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| format!("250{}{l}", if i + 1 == n { ' ' } else { '-' }))
                        .collect::<Vec<_>>()
                        .join("\r\n")
                }
                "HELO" => format!("250 {}", smtp.hostname),
                "STARTTLS" => match smtp.starttls {
                    StartTls::Offer => "220 2.0.0 Ready to start TLS".to_owned(),
                    StartTls::Reject => "454 4.7.0 TLS not available due to local problem".to_owned(),
                    StartTls::Absent => "502 5.5.1 Error: command not implemented".to_owned(),
                },
                "QUIT" => "221 2.0.0 Bye".to_owned(),
                "NOOP" | "RSET" => "250 2.0.0 Ok".to_owned(),
                "MAIL" | "RCPT" | "DATA" | "BDAT" => "451 4.3.0 this emulator accepts no mail".to_owned(),
                _ => "502 5.5.2 Error: command not recognized".to_owned(),
            };
            for l in reply.split("\r\n") {
                log.smtp.push(format!("> {l}"));
            }
            if write(stream, format!("{reply}\r\n").as_bytes(), delay).await.is_err() {
                return "the client left".to_owned();
            }
            match verb.as_str() {
                "QUIT" => {
                    shut(stream, open).await;
                    return "QUIT".to_owned();
                }
                "STARTTLS" if smtp.starttls == StartTls::Offer => {
                    // RFC 3207 §5: anything pipelined after STARTTLS is discarded.
                    break;
                }
                _ => {}
            }
        }
    }
    tls(stream, log, shared, open, rng).await
}

/// The hello that was read, and how it arrived.
enum Hello {
    Tls(ClientHello),
    Sslv2(Sslv2ClientHello),
}

/// Reads the next ClientHello from `d` (fed from `stream`).
async fn read_hello(stream: &mut TcpStream, d: &mut Deframer, reads: &mut usize) -> Result<Hello, String> {
    let mut total = 0usize;
    loop {
        loop {
            match d.next_event() {
                Ok(Some(Event::ClientHello(h))) => return Ok(Hello::Tls(h)),
                Ok(Some(Event::Sslv2ClientHello(h))) => return Ok(Hello::Sslv2(h)),
                Ok(Some(Event::NotTls(bytes))) => {
                    return Err(format!("not TLS: {:?}", String::from_utf8_lossy(&bytes)));
                }
                Ok(Some(Event::Alert(a))) => return Err(format!("the client sent alert {a}")),
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => return Err(format!("undecodable hello: {e}")),
            }
        }
        if total > MAX_HELLO_BYTES {
            return Err(format!("no complete hello in {total} bytes"));
        }
        let mut chunk = vec![0u8; 16 * 1024];
        match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(0)) => return Err("the client closed before a complete hello".to_owned()),
            Ok(Ok(n)) => {
                total += n;
                *reads += 1;
                if let Err(e) = d.push(chunk.get(..n).unwrap_or(&[])) {
                    return Err(format!("undecodable hello: {e}"));
                }
            }
            Ok(Err(e)) => return Err(format!("read error: {e}")),
            Err(_) => return Err("no hello within 60 s".to_owned()),
        }
    }
}

/// Whether the client has closed its side right after its hello (within
/// a short wait: the close travels just behind the hello); what it sent
/// meanwhile (a close_notify) goes to the deframer.
async fn closed_with_hello(stream: &mut TcpStream, d: &mut Deframer) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut chunk = [0u8; 512];
    let mut total = 0usize;
    while total < MAX_HELLO_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) => return true,
            Ok(Ok(n)) => {
                total += n;
                let _ = d.push(chunk.get(..n).unwrap_or(&[]));
            }
            _ => return false,
        }
    }
    false
}

async fn tls(stream: &mut TcpStream, log: &mut Log, shared: &Shared, open: &Open<'_>, rng: &mut Bytes) -> String {
    let responder = Responder {
        profile: &shared.profile,
        chains: &shared.chains,
    };
    let delay = Pace {
        rtt_ms: shared.rtt_ms,
        byte_ms: shared.profile.misbehave.byte_delay_ms,
    };
    let mut d = Deframer::new(Side::Client);
    let mut retried = false;
    loop {
        let mut reads = 0usize;
        let hello = match read_hello(stream, &mut d, &mut reads).await {
            Ok(h) => h,
            Err(why) => return why,
        };
        if let Some(r) = shared.profile.misbehave.close_with_hello {
            if closed_with_hello(stream, &mut d).await {
                refuse(stream, open, r, None).await;
                return format!("{} (the client closed its side with the hello)", r.describe());
            }
        }
        let framing = d.hello_framing().unwrap_or_default();
        let arrival = Arrival {
            bytes: framing.bytes,
            records: framing.records.max(1),
            reads,
            record_version: Some(framing.record_version),
        };
        let decision = match &hello {
            Hello::Tls(h) => responder.tls(h, arrival, retried, rng),
            Hello::Sslv2(h) => responder.sslv2(h, arrival, rng),
        };
        // The decoded log costs more than the answer: not built when unused.
        if !shared.quiet {
            describe(&hello, arrival, retried, &decision, log);
        }
        match decision.answer {
            Answer::Flight { bytes, more } => {
                if write(stream, &bytes, delay).await.is_err() {
                    return "the client left during the flight".to_owned();
                }
                if more && !retried {
                    retried = true;
                    continue;
                }
                // A TLS ≤ 1.2 flight ends with ServerHelloDone: the client
                // answers it with its ClientKeyExchange or an alert. (After
                // a TLS 1.3 ServerHello or an SSLv2 SERVER-HELLO it waits
                // for what the emulator never sends.)
                let answers = decision.version.is_some_and(|v| {
                    v != ProtocolVersion::SSL2
                        && catalog::version_rank(v) < catalog::version_rank(ProtocolVersion::TLS13)
                });
                if !answers {
                    finish(stream).await;
                    return format!(
                        "answered ({}); closed after the first flight: no handshake is ever completed",
                        decision.why
                    );
                }
                if let Some(v) = decision.version {
                    d.set_negotiated(v, decision.cipher);
                }
                let reply = read_reply(stream, &mut d).await;
                log.text.push(format!("  <- {}", reply.detail()));
                log.reply = Some(reply.to_json());
                // A FIN, then wait for the client's close: the handshake
                // is never completed.
                shut(stream, open).await;
                finish(stream).await;
                return format!(
                    "answered ({}); {}; the emulator closed, completing no handshake",
                    decision.why,
                    reply.detail()
                );
            }
            Answer::Refuse(r) => {
                if delay.rtt_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delay.rtt_ms)).await;
                }
                refuse(stream, open, r, decision.version).await;
                return format!("{} ({})", r.describe(), decision.why);
            }
        }
    }
}

/// How the client took the flight.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// A ClientKeyExchange: it accepted version, suite, chain, parameters
    /// and signature.
    Accepted,
    /// An alert.
    Refused(hsscan_wire::Alert),
    /// It closed without a word.
    Closed,
    /// Nothing within [`REPLY`].
    Silent,
    /// Bytes that are not a TLS answer, or too many of them.
    Other(String),
}

/// What the client sent after the flight.
#[derive(Debug)]
struct Reply {
    verdict: Verdict,
    /// The messages in order: "ClientKeyExchange (70 bytes)", "ChangeCipherSpec", …
    messages: Vec<String>,
}

impl Reply {
    fn detail(&self) -> String {
        let rest = if self.messages.len() > 1 {
            format!(" (then {})", self.messages.get(1..).unwrap_or(&[]).join(", "))
        } else {
            String::new()
        };
        match &self.verdict {
            Verdict::Accepted => format!("the client accepted the negotiation: ClientKeyExchange received{rest}"),
            Verdict::Refused(a) => format!("the client refused the negotiation: alert {a}"),
            Verdict::Closed if self.messages.is_empty() => {
                "the client closed without a word after the flight".to_owned()
            }
            Verdict::Closed => format!("the client sent {} and closed", self.messages.join(", ")),
            Verdict::Silent => format!("the client sent nothing within {} s of the flight", REPLY.as_secs()),
            Verdict::Other(why) => format!("the client's answer is not TLS: {why}"),
        }
    }

    fn to_json(&self) -> Value {
        let (result, alert) = match &self.verdict {
            Verdict::Accepted => ("accepted", Value::Null),
            Verdict::Refused(a) => ("refused", json!(a.to_string())),
            Verdict::Closed => ("closed", Value::Null),
            Verdict::Silent => ("silent", Value::Null),
            Verdict::Other(_) => ("other", Value::Null),
        };
        json!({
            "result": result,
            "alert": alert,
            "messages": self.messages,
            "detail": self.detail(),
        })
    }
}

fn handshake_name(t: HandshakeType) -> String {
    match t {
        HandshakeType::CLIENT_KEY_EXCHANGE => "ClientKeyExchange".to_owned(),
        HandshakeType::CERTIFICATE => "Certificate".to_owned(),
        HandshakeType::CERTIFICATE_VERIFY => "CertificateVerify".to_owned(),
        other => other
            .name()
            .map_or_else(|| format!("handshake {}", other.0), str::to_owned),
    }
}

/// Reads the client's answer to the flight: up to its ClientKeyExchange
/// (and the ChangeCipherSpec and encrypted Finished after it), an alert,
/// its close, or [`REPLY`] of silence.
async fn read_reply(stream: &mut TcpStream, d: &mut Deframer) -> Reply {
    let mut messages = Vec::new();
    let mut verdict = None;
    let mut deadline = tokio::time::Instant::now() + REPLY;
    let mut total = 0usize;
    loop {
        loop {
            match d.next_event() {
                Ok(Some(Event::Handshake { typ, len })) => {
                    messages.push(format!("{} ({len} bytes)", handshake_name(typ)));
                    if typ == HandshakeType::CLIENT_KEY_EXCHANGE && verdict.is_none() {
                        verdict = Some(Verdict::Accepted);
                        deadline = tokio::time::Instant::now() + REPLY_REST;
                    }
                }
                Ok(Some(Event::ChangeCipherSpec)) => messages.push("ChangeCipherSpec".to_owned()),
                Ok(Some(Event::Encrypted { content_type, len })) => {
                    let what = if content_type == ContentType::HANDSHAKE {
                        "Finished"
                    } else {
                        "an encrypted record"
                    };
                    messages.push(format!("{what} (encrypted, {len} bytes)"));
                    if verdict == Some(Verdict::Accepted) {
                        return Reply {
                            verdict: Verdict::Accepted,
                            messages,
                        };
                    }
                }
                Ok(Some(Event::Alert(a))) => {
                    messages.push(format!("alert {a}"));
                    // A fatal alert refuses; close_notify or user_canceled
                    // (hsscan's own prober says goodbye so) only closes.
                    let ends = if a.level == AlertLevel::FATAL {
                        Verdict::Refused(a)
                    } else if [AlertDescription::CLOSE_NOTIFY, AlertDescription::USER_CANCELED].contains(&a.description)
                    {
                        Verdict::Closed
                    } else {
                        continue;
                    };
                    return Reply {
                        verdict: verdict.unwrap_or(ends),
                        messages,
                    };
                }
                Ok(Some(Event::ClientHello(_) | Event::Sslv2ClientHello(_))) => {
                    messages.push("another ClientHello".to_owned());
                }
                Ok(Some(Event::Heartbeat { len })) => messages.push(format!("heartbeat ({len} bytes)")),
                Ok(Some(_)) => messages.push("a message a client never sends".to_owned()),
                Ok(None) => break,
                Err(e) => {
                    return Reply {
                        verdict: verdict.unwrap_or_else(|| Verdict::Other(e.to_string())),
                        messages,
                    }
                }
            }
        }
        if total > MAX_REPLY_BYTES {
            return Reply {
                verdict: verdict.unwrap_or_else(|| Verdict::Other(format!("{total} bytes without an answer"))),
                messages,
            };
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await;
        let n = match read {
            Ok(Ok(n)) if n > 0 => n,
            Ok(_) => {
                return Reply {
                    verdict: verdict.unwrap_or(Verdict::Closed),
                    messages,
                }
            }
            Err(_) => {
                return Reply {
                    verdict: verdict.unwrap_or(Verdict::Silent),
                    messages,
                }
            }
        };
        total += n;
        if let Err(e) = d.push(chunk.get(..n).unwrap_or(&[])) {
            return Reply {
                verdict: verdict.unwrap_or_else(|| Verdict::Other(e.to_string())),
                messages,
            };
        }
    }
}

/// After the answer: reads what the client still sends until it closes
/// (or [`DRAIN`] passes), so the connection counts as open until the
/// client has closed it and the close is a FIN, not a reset caused by
/// unread bytes. The caller's socket is closed after that.
async fn finish(stream: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + DRAIN;
    let mut drained = 0usize;
    while drained < MAX_HELLO_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

async fn refuse(stream: &mut TcpStream, open: &Open<'_>, r: Refusal, version: Option<hsscan_wire::ProtocolVersion>) {
    match r {
        Refusal::Alert(a) => {
            let v = version.unwrap_or(hsscan_wire::ProtocolVersion::TLS10);
            let _ = stream.write_all(&alert_record(v, a)).await;
            finish(stream).await;
        }
        Refusal::Close => {
            // Closing is the answer: the FIN goes out at once.
            shut(stream, open).await;
            finish(stream).await;
        }
        Refusal::Reset => {
            // SO_LINGER 0: the close sends RST. (The deprecation warns of
            // a blocking close; a zero linger never blocks.)
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
        }
        Refusal::Silence => {
            let mut sink = [0u8; 4096];
            let deadline = tokio::time::Instant::now() + SILENCE;
            while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

fn names<T: Copy>(items: &[T], name: impl Fn(T) -> String) -> Vec<String> {
    items.iter().map(|x| name(*x)).collect()
}

/// Logs the decoded hello and the decision.
fn describe(hello: &Hello, arrival: Arrival, retried: bool, d: &Decision, log: &mut Log) {
    let nth = if retried { "second " } else { "" };
    let mut j = json!({
        "bytes": arrival.bytes,
        "records": arrival.records,
        "reads": arrival.reads,
        "retry": retried,
    });
    match hello {
        Hello::Tls(h) => {
            let suites = names(&h.cipher_suites, |s| s.name().map_or_else(|| s.hex(), str::to_owned));
            let versions = names(&client_versions(h), |v| label(v).to_owned());
            let groups = match h.extension(ExtensionType::SUPPORTED_GROUPS) {
                Some(ClientExtension::SupportedGroups(g)) => names(g, group_name),
                _ => Vec::new(),
            };
            let shares = match h.extension(ExtensionType::KEY_SHARE) {
                Some(ClientExtension::KeyShare(k)) => k.iter().map(|e| group_name(e.group)).collect(),
                _ => Vec::new(),
            };
            let exts: Vec<String> = h
                .extensions
                .iter()
                .flatten()
                .map(|e| {
                    e.typ()
                        .name()
                        .map_or_else(|| format!("{:#06x}", e.typ().0), str::to_owned)
                })
                .collect();
            let sni = h.sni().unwrap_or("");
            log.text.push(format!(
                "{nth}ClientHello: {} bytes in {} record(s), {} read(s); legacy_version {}; versions {}; SNI {}",
                arrival.bytes,
                arrival.records,
                arrival.reads,
                label(h.legacy_version),
                versions.join(", "),
                if sni.is_empty() { "none" } else { sni }
            ));
            log.text
                .push(format!("  {} suites: {}", suites.len(), suites.join(", ")));
            log.text.push(format!(
                "  groups: {}; key shares: {}",
                or_none(&groups),
                or_none(&shares)
            ));
            log.text.push(format!("  extensions: {}", or_none(&exts)));
            j["format"] = json!("tls");
            j["legacy_version"] = json!(label(h.legacy_version));
            j["versions"] = json!(versions);
            j["sni"] = json!(h.sni());
            j["cipher_suites"] = json!(suites);
            j["groups"] = json!(groups);
            j["key_shares"] = json!(shares);
            j["extensions"] = json!(exts);
            j["compression"] = json!(h.compression_methods.iter().map(|c| c.0).collect::<Vec<_>>());
        }
        Hello::Sslv2(h) => {
            log.text.push(format!(
                "{nth}SSLv2-format hello: {} bytes; version {}; {} cipher specs",
                arrival.bytes,
                label(h.version),
                h.cipher_specs.len()
            ));
            j["format"] = json!("sslv2");
            j["version"] = json!(label(h.version));
            j["cipher_specs"] = json!(h
                .cipher_specs
                .iter()
                .map(|s| format!("{:#08x}", s.0))
                .collect::<Vec<_>>());
        }
    }
    let verb = match &d.answer {
        Answer::Flight { .. } => "answer".to_owned(),
        Answer::Refuse(r) => r.describe(),
    };
    log.text.push(format!("  -> {verb}: {}", d.why));
    j["answer"] = json!({
        "action": verb,
        "why": d.why,
        "version": d.version.map(label),
        "cipher": d.cipher.map(|s| json!({"id": s.hex(), "name": s.name()})),
        "group": d.group.map(group_name),
        "signature": d.signature,
    });
    log.hellos.push(j);
}

fn or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}
