//! One TCP connection's bytes, both directions in capture order, turned
//! into what happened: the SMTP dialog (or another cleartext preamble),
//! the hellos, certificates and alerts each side sent in the clear, how the
//! connection ended, and a verdict with the failure kinds of SPEC §3.
//!
//! Each direction starts in a phase chosen by its first byte: text (SMTP,
//! or a preamble such as an HTTP CONNECT) or TLS. Text is read line by line;
//! STARTTLS answered with 2xx switches both directions to TLS at the exact
//! byte, and so does a TLS record from the client at a line start (an
//! implicit-TLS client at an SMTP port, or TLS after another preamble). TLS
//! goes through the wire crate's deframer, the same decoder the live scanner
//! uses. Once a direction turns encrypted it is no longer analysed, and at
//! most [`MAX_ANALYSED`] bytes of a direction ever are; what a direction
//! holds in memory meanwhile is bounded by the deframer's caps, not by it.

mod preamble;
mod verdict;

use super::capture::Timestamp;
use super::fingerprint;
use super::report::{
    AlertSeen, Bytes, ClientHelloSeen, ConnectionRecord, Ended, KeyExchangeSeen, Preamble, ServerHelloSeen, SmtpSeen,
};
use crate::certs::CertInfo;
use crate::smtp::Reply;
use hsscan_wire::deframer::HelloFraming;
use hsscan_wire::server_hello::Downgrade;
use hsscan_wire::{
    Alert, AlertLevel, ClientExtension, ClientHello, Deframer, Event, ProtocolVersion, ServerHello, ServerKeyExchange,
    Side, Sslv2ClientHello, Sslv2ServerHello,
};
use preamble::Protocol;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

/// Bytes of one direction analysed at most: one handshake message may be
/// 2^24−1 bytes (a Certificate, read as it streams in), so a direction is
/// read as far as the longest one and the records around it; past that it
/// is a flood or bulk data.
pub const MAX_ANALYSED: usize = (1 << 24) + 64 * 1024;
/// Certificate entries of one message described at most (the wire crate
/// keeps as many; past them it counts).
const MAX_CERTS: usize = hsscan_wire::certificate::MAX_CHAIN_CERTS;
/// A longer text line is cut (RFC 5321 allows 512 bytes).
const MAX_LINE: usize = 2048;
/// Lines of one SMTP reply kept.
const MAX_REPLY_LINES: usize = 100;
/// Client bytes held between STARTTLS and its reply.
const MAX_HELD: usize = 64 * 1024;
/// Outstanding SMTP commands remembered (pipelining).
const MAX_COMMANDS: usize = 64;
/// Bytes of a first hello kept for --replay.
const MAX_KEPT_HELLO: usize = 64 * 1024;

/// Which end of the connection sent something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Client,
    Server,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Client => "client",
            Dir::Server => "server",
        }
    }
}

/// How a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Fin,
    Rst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing received yet (or a tunnel just opened).
    Start,
    /// Cleartext lines.
    Text,
    /// A binary preamble (SOCKS, LDAP), or bytes searched for a ClientHello.
    Binary,
    /// TLS records (through the deframer).
    Tls,
    /// No longer analysed: encrypted, over the cap, undecodable or after a gap.
    Done,
}

/// One direction.
#[derive(Debug)]
struct Half {
    phase: Phase,
    line: Vec<u8>,
    line_cut: bool,
    deframer: Option<Deframer>,
    analysed: usize,
    total: u64,
    first_line: Option<String>,
    ended: Option<How>,
    gap: bool,
    ccs: bool,
    encrypted: u32,
    first_encrypted_len: Option<usize>,
    /// Whether the direction started with text (it spoke SMTP or a preamble).
    began_with_text: Option<bool>,
    error: Option<String>,
    /// Bytes that were not TLS where TLS was expected.
    plaintext: Option<Vec<u8>>,
    /// Whether this direction sent any TLS bytes.
    tls_bytes: bool,
    /// Cleartext bytes before the TLS (the preamble's share of this direction).
    text_bytes: u64,
    /// A binary preamble's bytes, until it is known where it ends.
    bin: Vec<u8>,
    /// Analysis stopped at [`MAX_ANALYSED`] with bytes still coming.
    cut: bool,
}

impl Half {
    fn new() -> Self {
        Self {
            phase: Phase::Start,
            line: Vec::new(),
            line_cut: false,
            deframer: None,
            analysed: 0,
            total: 0,
            first_line: None,
            ended: None,
            gap: false,
            ccs: false,
            encrypted: 0,
            first_encrypted_len: None,
            began_with_text: None,
            error: None,
            plaintext: None,
            tls_bytes: false,
            text_bytes: 0,
            bin: Vec::new(),
            cut: false,
        }
    }

    fn finish_analysis(&mut self) {
        self.phase = Phase::Done;
        self.deframer = None;
        self.line = Vec::new();
        self.bin = Vec::new();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Ehlo,
    StartTls,
    Data,
    Other,
}

/// The SMTP dialog as seen.
#[derive(Debug, Default)]
struct Smtp {
    banner: Option<Reply>,
    reply_lines: Vec<String>,
    reply_code: Option<u16>,
    commands: VecDeque<Command>,
    ehlo: Option<String>,
    ehlo_reply: Option<Reply>,
    starttls_sent: bool,
    starttls_reply: Option<Reply>,
    /// STARTTLS was granted (2xx).
    upgraded: bool,
    /// The client is sending a message body (after 354).
    in_data: bool,
    /// The client sent an SMTP command (EHLO, HELO, STARTTLS, …).
    client_commands: bool,
    /// The client sent text that is no SMTP command.
    client_other: bool,
    /// The server sent text that is no SMTP reply.
    server_other: bool,
    /// A reply that arrived with no command outstanding (after a ClientHello: the answer).
    unsolicited: Option<Reply>,
}

/// The cleartext before TLS, whatever its protocol ([`preamble`]).
#[derive(Debug, Default)]
struct Clear {
    /// The first protocol named (reported as `preamble.protocol`).
    outer: Option<Protocol>,
    /// The protocol of the current layer (inside a tunnel, the tunnel's payload).
    proto: Option<Protocol>,
    /// What the server's first line of this layer says it speaks.
    server_proto: Option<Protocol>,
    /// An upgrade command awaits its answer (the IMAP tag, else empty).
    awaiting: Option<String>,
    /// Client bytes after the upgrade command, until its answer says what they are.
    held: Vec<u8>,
    /// HTTP: a CONNECT line was sent, its headers end at an empty line.
    http_request: bool,
    /// HTTP: a 2xx status came, its headers end at an empty line.
    http_granted: bool,
    /// A tunnel opened: the current layer is its payload.
    inner: bool,
}

impl Clear {
    /// Names the current layer; the first layer's name (refined as its
    /// dialog goes on: a 220 greeting is SMTP until an AUTH TLS says FTP)
    /// is the one reported.
    fn name(&mut self, p: Protocol) {
        self.proto = Some(p);
        if !self.inner {
            self.outer = Some(p);
        }
    }
}

/// Bytes of a binary preamble held at most in each direction until its
/// end is known; a ClientHello further in is not looked for.
const MAX_PREAMBLE: usize = 64 * 1024;

/// Everything learnt about one connection.
#[derive(Debug)]
pub struct Conn {
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    started: Timestamp,
    client: Half,
    server: Half,
    smtp: Smtp,
    clear: Clear,
    hellos: u32,
    hello_at: Option<Timestamp>,
    hello: Option<ClientHelloSeen>,
    ja3: Option<(String, String)>,
    ja4: Option<(String, String)>,
    retry: Option<ServerHello>,
    server_hello: Option<ServerHello>,
    sslv2_server: Option<Sslv2ServerHello>,
    sslv2_error: Option<u16>,
    key_exchange: Option<KeyExchangeSeen>,
    server_certs: Option<Vec<Arc<CertInfo>>>,
    client_certs: Option<Vec<Arc<CertInfo>>>,
    alerts: Vec<AlertSeen>,
    /// The first fatal alert and who sent it, with whether a ServerHello
    /// preceded it and whether the server had already closed.
    fatal: Option<(Dir, Alert, bool, bool)>,
    /// Most names are static; an alert's is built.
    last_message: Option<Cow<'static, str>>,
    end: Option<(Dir, How, Timestamp, Option<Cow<'static, str>>)>,
    last_ts: Timestamp,
    warnings: Vec<String>,
    /// TLS began without an accepted STARTTLS while the server spoke SMTP.
    tls_without_starttls: bool,
    /// Keep the first hello's bytes, as the client's segments carried them.
    keep_hello: bool,
    hello_writes: Vec<Vec<u8>>,
    /// Only what a one-line summary shows: no fingerprints, no certificate
    /// descriptions (their lists stay empty).
    summary: bool,
}

impl Conn {
    pub fn new(client: SocketAddr, server: SocketAddr, started: Timestamp, keep_hello: bool, summary: bool) -> Self {
        Self {
            client_addr: client,
            server_addr: server,
            started,
            client: Half::new(),
            server: Half::new(),
            smtp: Smtp::default(),
            clear: Clear::default(),
            hellos: 0,
            hello_at: None,
            hello: None,
            ja3: None,
            ja4: None,
            retry: None,
            server_hello: None,
            sslv2_server: None,
            sslv2_error: None,
            key_exchange: None,
            server_certs: None,
            client_certs: None,
            alerts: Vec::new(),
            fatal: None,
            last_message: None,
            end: None,
            last_ts: started,
            warnings: Vec::new(),
            tls_without_starttls: false,
            keep_hello,
            hello_writes: Vec::new(),
            summary,
        }
    }

    fn half(&mut self, dir: Dir) -> &mut Half {
        match dir {
            Dir::Client => &mut self.client,
            Dir::Server => &mut self.server,
        }
    }

    fn half_ref(&self, dir: Dir) -> &Half {
        match dir {
            Dir::Client => &self.client,
            Dir::Server => &self.server,
        }
    }

    /// Whether bytes of this direction are still analysed.
    pub fn wants(&self, dir: Dir) -> bool {
        self.half_ref(dir).phase != Phase::Done || (dir == Dir::Client && self.clear.awaiting.is_some())
    }

    /// Bytes held in memory for this direction's analysis (for the flow
    /// table's budget).
    pub fn held(&self, dir: Dir) -> usize {
        let h = self.half_ref(dir);
        let own = h.line.len() + h.bin.len() + h.deframer.as_ref().map_or(0, Deframer::buffered);
        match dir {
            Dir::Client => own + self.clear.held.len(),
            Dir::Server => own,
        }
    }

    /// In-order bytes of one direction.
    pub fn data(&mut self, dir: Dir, bytes: &[u8], ts: Timestamp) {
        self.last_ts = ts;
        let half = self.half(dir);
        half.total += bytes.len() as u64;
        if half.phase == Phase::Done && !(dir == Dir::Client && self.clear.awaiting.is_some()) {
            return;
        }
        let half = self.half(dir);
        let room = MAX_ANALYSED.saturating_sub(half.analysed);
        let take = bytes.get(..room.min(bytes.len())).unwrap_or(&[]);
        half.analysed += take.len();
        if take.len() < bytes.len() {
            half.cut = true;
            half.finish_analysis();
            let what = dir.name();
            self.warnings.push(format!(
                "the {what}'s bytes past {} KiB were not analysed",
                MAX_ANALYSED / 1024
            ));
        }
        self.feed(dir, take, ts);
    }

    fn feed(&mut self, dir: Dir, mut bytes: &[u8], ts: Timestamp) {
        if dir == Dir::Client && self.clear.awaiting.is_some() {
            let room = MAX_HELD.saturating_sub(self.clear.held.len());
            self.clear
                .held
                .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or(&[]));
            return;
        }
        while !bytes.is_empty() {
            match self.half_ref(dir).phase {
                Phase::Done => return,
                Phase::Start => self.start(dir, bytes),
                Phase::Tls => {
                    self.tls(dir, bytes, ts);
                    return;
                }
                Phase::Binary => {
                    self.binary(dir, bytes, ts);
                    return;
                }
                Phase::Text => bytes = self.text(dir, bytes, ts),
            }
        }
    }

    /// Chooses the phase a direction's first bytes (of the connection, or
    /// of a tunnel's payload) begin.
    fn start(&mut self, dir: Dir, bytes: &[u8]) {
        let Some(&first) = bytes.first() else { return };
        let text = is_text(first);
        let client_tls = self.client.phase == Phase::Tls;
        let half = self.half(dir);
        half.began_with_text.get_or_insert(text);
        match dir {
            // '0' is also BER's SEQUENCE: an LDAP message is binary.
            Dir::Client if first == 0x30 && preamble::looks_like_ldap(bytes) => {
                half.phase = Phase::Binary;
                self.clear.name(Protocol::Ldap);
            }
            Dir::Client if text => half.phase = Phase::Text,
            Dir::Client if preamble::plausible_hello(bytes) => {
                half.phase = Phase::Tls;
                self.client_starts_tls();
            }
            Dir::Client => {
                half.phase = Phase::Binary;
                let p = preamble::binary_protocol(first);
                self.clear.name(p);
            }
            // A TLS server speaks after the ClientHello: what it sends
            // before is cleartext, unless it looks like a record (an alert
            // to a plaintext client, or a hello whose ClientHello the
            // capture missed).
            Dir::Server if client_tls => half.phase = Phase::Tls,
            Dir::Server if text => half.phase = Phase::Text,
            Dir::Server if (20..=24).contains(&first) && bytes.get(1).is_none_or(|&b| b == 3) => {
                half.phase = Phase::Tls;
            }
            Dir::Server => half.phase = Phase::Binary,
        }
    }

    /// The client began TLS without STARTTLS being accepted: whatever the
    /// server sends from now on is its answer to the hello.
    fn client_starts_tls(&mut self) {
        if self.smtp.banner.is_some() || self.smtp.client_commands {
            self.tls_without_starttls = true;
        }
        if matches!(self.server.phase, Phase::Start | Phase::Text | Phase::Binary) {
            self.server.text_bytes += self.server.bin.len() as u64;
            self.server.bin = Vec::new();
            self.server.phase = Phase::Tls;
            self.server.line.clear();
        }
    }

    /// Bytes of a binary preamble: held until the protocol's messages say
    /// where it ends (or a ClientHello is found in them).
    fn binary(&mut self, dir: Dir, bytes: &[u8], ts: Timestamp) {
        let half = self.half(dir);
        let room = MAX_PREAMBLE.saturating_sub(half.bin.len());
        half.bin
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or(&[]));
        if bytes.len() > room {
            half.text_bytes += (bytes.len() - room) as u64;
            if dir == Dir::Client {
                // No end in sight: read it as TLS, which says what it is not.
                self.give_up_binary(ts);
                return;
            }
        }
        self.advance_binary(ts);
    }

    /// The client's binary bytes never showed where a ClientHello starts:
    /// they go to the deframer, whose error names what they are not.
    fn give_up_binary(&mut self, ts: Timestamp) {
        let bin = std::mem::take(&mut self.client.bin);
        self.client.phase = Phase::Tls;
        self.client_starts_tls();
        self.tls(Dir::Client, &bin, ts);
    }

    fn advance_binary(&mut self, ts: Timestamp) {
        if self.client.phase != Phase::Binary {
            // The server's binary bytes wait for the client's TLS (or its end).
            return;
        }
        let mut proto = self.clear.proto.unwrap_or(Protocol::Other);
        let mut client_end = None;
        if proto != Protocol::Other {
            match preamble::client_binary_end(proto, &self.client.bin) {
                preamble::Parse::End(n) => client_end = Some(n),
                preamble::Parse::More => return,
                preamble::Parse::No => {
                    proto = Protocol::Other;
                    self.clear.name(proto);
                }
            }
        }
        if proto == Protocol::Other {
            client_end = preamble::tls_start(&self.client.bin);
        }
        let Some(client_end) = client_end else { return };
        let server_end = if proto == Protocol::Other {
            Some(self.server.bin.len())
        } else {
            match preamble::server_binary_end(proto, &self.server.bin) {
                preamble::Parse::End(n) => Some(n),
                _ => None,
            }
        };
        if server_end.is_none() && self.client.bin.len() <= client_end {
            return; // the server's answer decides; the client waits for it too
        }
        let server_end = server_end.unwrap_or(self.server.bin.len());
        let client_bin = std::mem::take(&mut self.client.bin);
        let server_bin = std::mem::take(&mut self.server.bin);
        self.client.text_bytes += client_end as u64;
        self.server.text_bytes += server_end as u64;
        self.client.phase = Phase::Start;
        if matches!(self.server.phase, Phase::Start | Phase::Binary) {
            self.server.phase = Phase::Start;
        }
        self.last_message = Some(Cow::Owned(format!("{} preamble", proto.name())));
        // The next layer (a tunnel's payload, or the TLS) names itself.
        self.clear.proto = None;
        self.clear.server_proto = None;
        self.clear.inner = true;
        self.feed(Dir::Server, server_bin.get(server_end..).unwrap_or(&[]), ts);
        self.feed(Dir::Client, client_bin.get(client_end..).unwrap_or(&[]), ts);
    }

    /// Consumes text up to and including one line (or all of `bytes`);
    /// returns the rest.
    fn text<'b>(&mut self, dir: Dir, bytes: &'b [u8], ts: Timestamp) -> &'b [u8] {
        // Inside a DATA body, 8-bit lines are mail, not the start of TLS.
        let in_body = dir == Dir::Client && self.smtp.in_data;
        // XMPP's elements need no line end: one ends at its '>'.
        let half = self.half_ref(dir);
        let xmpp = self.clear.proto == Some(Protocol::Xmpp)
            || (self.clear.proto.is_none() && half.line.first().or(bytes.first()) == Some(&b'<'));
        let mut end = bytes.iter().position(|&b| b == b'\n' || (xmpp && b == b'>'));
        if !in_body {
            // A ClientHello right after text, with or without a line end
            // before it (an XMPP <starttls/> exchange has none).
            let upto = end.map_or(bytes.len(), |e| e + 1);
            let found = bytes.get(..upto).and_then(|b| {
                b.iter().enumerate().position(|(i, &c)| {
                    !is_text(c)
                        && match dir {
                            Dir::Client => preamble::plausible_hello(bytes.get(i..).unwrap_or(&[])),
                            Dir::Server => i == 0 && self.half_ref(dir).line.is_empty() && (20..=24).contains(&c),
                        }
                })
            });
            if let Some(at) = found {
                let (before, tls) = bytes.split_at(at);
                let half = self.half(dir);
                half.text_bytes += before.len() as u64;
                half.line.extend_from_slice(
                    before
                        .get(..MAX_LINE.saturating_sub(half.line.len()).min(before.len()))
                        .unwrap_or(&[]),
                );
                if !half.line.is_empty() {
                    self.line_done(dir, ts);
                }
                // The client's own TLS answers any upgrade request still open.
                if dir == Dir::Client {
                    self.clear.awaiting = None;
                }
                let half = self.half(dir);
                half.phase = Phase::Tls;
                if dir == Dir::Client {
                    self.client_starts_tls();
                }
                return tls;
            }
        }
        if in_body {
            end = bytes.iter().position(|&b| b == b'\n');
        }
        let (chunk, rest, complete) = match end {
            Some(i) => (
                bytes.get(..=i).unwrap_or(bytes),
                bytes.get(i + 1..).unwrap_or(&[]),
                true,
            ),
            None => (bytes, &[][..], false),
        };
        let half = self.half(dir);
        half.text_bytes += chunk.len() as u64;
        let room = MAX_LINE.saturating_sub(half.line.len());
        if chunk.len() > room {
            half.line_cut = true;
        }
        half.line
            .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or(&[]));
        if complete {
            self.line_done(dir, ts);
            if dir == Dir::Client && self.clear.awaiting.is_some() && !rest.is_empty() {
                self.feed(Dir::Client, rest, ts);
                return &[];
            }
        }
        rest
    }

    /// One whole line (or XMPP element) of text.
    fn line_done(&mut self, dir: Dir, ts: Timestamp) {
        let half = self.half(dir);
        let raw = std::mem::take(&mut half.line);
        half.line_cut = false;
        let line = super::report::text_of(&raw).trim_end_matches(['\r', '\n']).to_owned();
        let half = self.half(dir);
        if half.first_line.is_none() {
            half.first_line = Some(line.chars().take(200).collect());
        }
        match dir {
            Dir::Client => self.client_line(&line),
            Dir::Server => self.server_line(&line, ts),
        }
    }

    /// Names the protocol from a client line where the server has not, or
    /// has said only `220` (SMTP and FTP greet alike).
    fn client_line(&mut self, line: &str) {
        let c = &mut self.clear;
        let undecided = match c.proto {
            None | Some(Protocol::Other) => true,
            Some(Protocol::Smtp) => !self.smtp.client_commands,
            Some(_) => false,
        };
        if undecided && !line.trim().is_empty() {
            match preamble::from_client_line(line, c.server_proto) {
                Some(p) => c.name(p),
                None if c.proto.is_none() => c.name(Protocol::Other),
                None => {}
            }
        }
        match self.clear.proto {
            Some(Protocol::Smtp) => self.smtp_client_line(line),
            Some(Protocol::HttpConnect) => {
                if preamble::upgrade_command(Protocol::HttpConnect, line).is_some() {
                    self.clear.http_request = true;
                    self.last_message = Some(Cow::Borrowed("CONNECT"));
                } else if line.trim().is_empty() && self.clear.http_request {
                    // The request's headers end here: the tunnel opens on a 2xx.
                    self.clear.http_request = false;
                    self.clear.awaiting = Some(String::new());
                }
            }
            Some(p) => {
                if let Some(tag) = preamble::upgrade_command(p, line) {
                    self.clear.awaiting = Some(tag);
                    self.last_message = Some(Cow::Borrowed("STARTTLS"));
                }
            }
            None => {}
        }
    }

    fn smtp_client_line(&mut self, line: &str) {
        let s = &mut self.smtp;
        if s.in_data {
            if line == "." {
                s.in_data = false;
                s.commands.push_back(Command::Other);
            }
            return;
        }
        let mut words = line.splitn(2, ' ');
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let arg = words.next().unwrap_or("").trim();
        let command = match verb.as_str() {
            "EHLO" | "HELO" => {
                s.ehlo = Some(arg.chars().take(255).collect());
                Command::Ehlo
            }
            "STARTTLS" => {
                s.starttls_sent = true;
                self.clear.awaiting = Some(String::new());
                Command::StartTls
            }
            "DATA" => Command::Data,
            "QUIT" | "MAIL" | "RCPT" | "RSET" | "NOOP" | "VRFY" | "EXPN" | "HELP" | "AUTH" | "BDAT" | "ETRN" => {
                Command::Other
            }
            _ => {
                s.client_other = true;
                Command::Other
            }
        };
        if command != Command::Other || !s.client_other {
            s.client_commands = true;
        }
        self.last_message = Some(match command {
            Command::Ehlo => Cow::Borrowed("EHLO"),
            Command::StartTls => Cow::Borrowed("STARTTLS"),
            _ => Cow::Owned(verb.chars().take(16).collect()),
        });
        if s.commands.len() < MAX_COMMANDS {
            s.commands.push_back(command);
        }
    }

    fn server_line(&mut self, line: &str, ts: Timestamp) {
        let c = &mut self.clear;
        if c.server_proto.is_none() && !line.trim().is_empty() {
            let p = preamble::from_server_line(line);
            c.server_proto = Some(p);
            if c.proto.is_none() || (c.proto == Some(Protocol::Other) && p != Protocol::Other) {
                c.name(p);
            }
        }
        match self.clear.proto {
            Some(Protocol::Smtp) | None => self.smtp_server_line(line, ts),
            Some(Protocol::HttpConnect) if self.clear.http_granted => {
                if line.trim().is_empty() {
                    self.clear.http_granted = false;
                    self.grant(ts);
                }
            }
            Some(p) => {
                let Some(tag) = self.clear.awaiting.clone() else { return };
                match preamble::upgrade_answer(p, &tag, line) {
                    preamble::Answer::Granted if p == Protocol::HttpConnect => self.clear.http_granted = true,
                    preamble::Answer::Granted => self.grant(ts),
                    preamble::Answer::Refused => self.refuse(ts),
                    preamble::Answer::Other => {}
                }
            }
        }
    }

    /// The server granted the upgrade: TLS (or the tunnel's payload) from
    /// the next byte on, both ways.
    fn grant(&mut self, ts: Timestamp) {
        let proto = self.clear.proto.unwrap_or(Protocol::Other);
        self.clear.awaiting = None;
        self.last_message = Some(Cow::Owned(format!("{} upgrade reply", proto.name())));
        let held = std::mem::take(&mut self.clear.held);
        self.client.began_with_text = Some(true);
        if proto.is_tunnel() {
            self.client.phase = Phase::Start;
            self.server.phase = Phase::Start;
            self.clear.proto = None;
            self.clear.server_proto = None;
            self.clear.inner = true;
        } else {
            self.server.phase = Phase::Tls;
            self.client.phase = Phase::Tls;
        }
        self.client.line.clear();
        self.server.line.clear();
        self.feed(Dir::Client, &held, ts);
    }

    /// The server refused the upgrade: the client's held bytes are text again.
    fn refuse(&mut self, ts: Timestamp) {
        self.clear.awaiting = None;
        let held = std::mem::take(&mut self.clear.held);
        self.feed(Dir::Client, &held, ts);
    }

    fn smtp_server_line(&mut self, line: &str, ts: Timestamp) {
        let bytes = line.as_bytes();
        let code = bytes
            .get(..3)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u16>().ok());
        let Some(code) = code else {
            self.smtp.server_other = true;
            return;
        };
        let s = &mut self.smtp;
        if s.reply_lines.len() < MAX_REPLY_LINES {
            s.reply_lines.push(line.to_owned());
        }
        s.reply_code = Some(code);
        if bytes.get(3) == Some(&b'-') {
            return;
        }
        let reply = Reply {
            code,
            lines: std::mem::take(&mut s.reply_lines),
        };
        s.reply_code = None;
        if s.banner.is_none() {
            s.banner = Some(reply);
            self.last_message = Some(Cow::Borrowed("SMTP banner"));
            return;
        }
        match s.commands.pop_front() {
            Some(Command::Ehlo) => {
                s.ehlo_reply = Some(reply);
                self.last_message = Some(Cow::Borrowed("EHLO reply"));
            }
            Some(Command::StartTls) => {
                let accepted = (200..300).contains(&code);
                s.starttls_reply = Some(reply);
                if accepted {
                    s.upgraded = true;
                    self.grant(ts);
                } else {
                    self.refuse(ts);
                }
                self.last_message = Some(Cow::Borrowed("STARTTLS reply"));
            }
            Some(Command::Data) => {
                if code == 354 {
                    s.in_data = true;
                }
            }
            Some(Command::Other) => {}
            None => {
                if s.unsolicited.is_none() {
                    s.unsolicited = Some(reply);
                }
            }
        }
    }

    /// TLS bytes of one direction through its deframer.
    fn tls(&mut self, dir: Dir, bytes: &[u8], ts: Timestamp) {
        let side = match dir {
            Dir::Client => Side::Client,
            Dir::Server => Side::Server,
        };
        if dir == Dir::Client && self.keep_hello && self.hellos == 0 {
            let kept: usize = self.hello_writes.iter().map(Vec::len).sum();
            if kept + bytes.len() <= MAX_KEPT_HELLO {
                self.hello_writes.push(bytes.to_vec());
            } else {
                // Too long to keep whole: keep nothing rather than a hello
                // with a hole (replay then says there is nothing to send).
                self.hello_writes.clear();
                self.keep_hello = false;
            }
        }
        let half = self.half(dir);
        half.tls_bytes = true;
        let mut deframer = half.deframer.take().unwrap_or_else(|| Deframer::new(side));
        let mut events = Vec::new();
        let mut failure = None;
        if let Err(e) = deframer.push(bytes) {
            failure = Some(e.to_string());
        } else {
            loop {
                match deframer.next_event() {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        let framing = deframer.hello_framing();
        self.half(dir).deframer = Some(deframer);
        for e in events {
            self.event(dir, e, framing, ts);
        }
        if let Some(why) = failure {
            let half = self.half(dir);
            if half.error.is_none() {
                half.error = Some(why);
            }
            half.finish_analysis();
        }
        let half = self.half(dir);
        // Once records are encrypted there is nothing more to read.
        if half.encrypted > 0 || half.plaintext.is_some() {
            half.finish_analysis();
        }
    }

    fn event(&mut self, dir: Dir, event: Event, framing: Option<HelloFraming>, ts: Timestamp) {
        match event {
            Event::ClientHello(h) => {
                self.hellos += 1;
                self.last_message = Some(Cow::Borrowed("client_hello"));
                if self.hellos == 1 {
                    self.trim_kept_hello(framing.map(|f| f.bytes));
                    self.hello_at = Some(ts);
                    self.hello = Some(describe_hello(&h, framing));
                    if !self.summary {
                        self.ja3 = Some(fingerprint::ja3(&h));
                        self.ja4 = Some(fingerprint::Ja4Input::from_hello(&h).fingerprint());
                    }
                }
            }
            Event::Sslv2ClientHello(h) => {
                self.hellos += 1;
                self.last_message = Some(Cow::Borrowed("sslv2_client_hello"));
                if self.hellos == 1 {
                    self.trim_kept_hello(framing.map(|f| f.bytes));
                    self.hello_at = Some(ts);
                    self.hello = Some(describe_sslv2_hello(&h));
                }
            }
            Event::ServerHello(h) => {
                self.last_message = Some(Cow::Borrowed("server_hello"));
                if let Some(d) = self.client.deframer.as_mut() {
                    d.set_negotiated(h.selected_version(), Some(h.cipher_suite));
                }
                self.server_hello = Some(h);
            }
            Event::HelloRetryRequest(h) => {
                self.last_message = Some(Cow::Borrowed("hello_retry_request"));
                // The client's compatibility ChangeCipherSpec and second hello stay in the clear.
                if let Some(d) = self.client.deframer.as_mut() {
                    d.set_negotiated(ProtocolVersion::TLS13, None);
                }
                self.retry = Some(h);
            }
            Event::Certificate(c) => {
                self.last_message = Some(Cow::Borrowed("certificate"));
                if !c.omitted.is_empty() {
                    self.warnings.push(format!(
                        "the {}'s Certificate message holds {} more certificates ({} bytes) than are kept (at most {} certificates, {} KiB)",
                        dir.name(),
                        c.omitted.certificates,
                        c.omitted.bytes,
                        hsscan_wire::certificate::MAX_CHAIN_CERTS,
                        hsscan_wire::certificate::MAX_CHAIN_BYTES / 1024
                    ));
                }
                let infos: Vec<Arc<CertInfo>> = if self.summary {
                    Vec::new()
                } else {
                    c.entries
                        .iter()
                        .take(MAX_CERTS)
                        .map(|e| describe_cert(&e.der))
                        .collect()
                };
                match dir {
                    Dir::Server => self.server_certs = Some(infos),
                    Dir::Client => self.client_certs = Some(infos),
                }
            }
            Event::ServerKeyExchange(k) => {
                self.last_message = Some(Cow::Borrowed("server_key_exchange"));
                self.key_exchange = Some(describe_key_exchange(&k));
            }
            Event::CertificateStatus(_) => self.last_message = Some(Cow::Borrowed("certificate_status")),
            Event::CertificateRequest(_) => self.last_message = Some(Cow::Borrowed("certificate_request")),
            Event::ServerHelloDone => self.last_message = Some(Cow::Borrowed("server_hello_done")),
            Event::Handshake { typ, .. } => {
                self.last_message = Some(
                    typ.name()
                        .map_or_else(|| Cow::Owned(format!("handshake {}", typ.0)), Cow::Borrowed),
                );
            }
            Event::Alert(a) => {
                self.alerts.push(AlertSeen {
                    from: dir.name(),
                    level: a.level,
                    description: a.description,
                });
                self.last_message = Some(Cow::Owned(format!("{} alert {a}", dir.name())));
                if a.level != AlertLevel::WARNING && self.fatal.is_none() {
                    let answered = self.server_hello.is_some() || self.sslv2_server.is_some();
                    self.fatal = Some((dir, a, answered, self.server.ended.is_some()));
                }
            }
            Event::ChangeCipherSpec => {
                self.half(dir).ccs = true;
                self.last_message = Some(Cow::Borrowed("change_cipher_spec"));
            }
            Event::Encrypted { len, .. } => {
                let half = self.half(dir);
                half.encrypted += 1;
                half.first_encrypted_len.get_or_insert(len);
                self.last_message = Some(Cow::Borrowed("encrypted records"));
            }
            Event::Heartbeat { .. } => {}
            Event::Sslv2ServerHello(h) => {
                self.last_message = Some(Cow::Borrowed("sslv2_server_hello"));
                if !h.certificate.is_empty() && !self.summary {
                    self.server_certs = Some(vec![describe_cert(&h.certificate)]);
                }
                self.sslv2_server = Some(h);
            }
            Event::Sslv2Error(code) => {
                self.last_message = Some(Cow::Borrowed("sslv2_error"));
                self.sslv2_error = Some(code);
            }
            Event::Sslv2Other { .. } => {
                let half = self.half(dir);
                half.encrypted += 1;
                self.last_message = Some(Cow::Borrowed("sslv2 records"));
            }
            Event::NotTls(bytes) => {
                // An SMTP greeting where a TLS answer was due is still the banner.
                if dir == Dir::Server && self.smtp.banner.is_none() {
                    self.smtp.banner = smtp_reply(&bytes);
                    if self.smtp.banner.is_some() && self.clear.proto.is_none() {
                        self.clear.name(Protocol::Smtp);
                    }
                }
                self.half(dir).plaintext = Some(bytes);
            }
        }
    }

    /// Cuts the kept bytes to the first hello's `len` wire bytes.
    fn trim_kept_hello(&mut self, len: Option<usize>) {
        let Some(mut left) = len else {
            self.hello_writes.clear();
            return;
        };
        let mut writes = Vec::new();
        for mut w in std::mem::take(&mut self.hello_writes) {
            if left == 0 {
                break;
            }
            w.truncate(left);
            left -= w.len();
            writes.push(w);
        }
        self.hello_writes = writes;
    }

    /// This direction lost bytes the capture does not hold.
    pub fn gap(&mut self, dir: Dir) {
        let half = self.half(dir);
        if half.gap {
            return;
        }
        let analysing = half.phase != Phase::Done;
        half.gap = true;
        let at = half.total;
        half.finish_analysis();
        if analysing {
            self.warnings.push(format!(
                "bytes from the {} are missing from the capture after its first {at} bytes",
                dir.name()
            ));
        }
    }

    /// The connection is reported before its end: the table was full.
    pub fn evicted(&mut self) {
        self.warnings.push(
            "reported before its end: too many connections were open at once in the capture (flow table or memory budget full)"
                .to_owned(),
        );
    }

    /// The connection went quiet for longer than the idle timeout.
    pub fn timed_out(&mut self, idle_secs: i64) {
        self.warnings.push(format!(
            "no packet for over {idle_secs} s of capture time: reported without waiting for its end"
        ));
    }

    /// A FIN or RST from one direction.
    pub fn end(&mut self, dir: Dir, how: How, ts: Timestamp) {
        self.last_ts = ts;
        let half = self.half(dir);
        if half.ended.is_none() || how == How::Rst {
            half.ended = Some(how);
        }
        if self.end.is_none() {
            self.end = Some((dir, how, ts, self.last_message.clone()));
        }
    }

    /// Whether this connection carried TLS or an SMTP dialog worth reporting.
    fn reportable(&self) -> bool {
        self.client.tls_bytes && (self.hello.is_some() || self.client.error.is_some())
            || self.server_hello.is_some()
            || self.retry.is_some()
            || self.sslv2_server.is_some()
            || self.is_smtp()
            || self.client_spoke_smtp_to_tls()
    }

    fn is_smtp(&self) -> bool {
        let s = &self.smtp;
        let banner = s.banner.is_some() && !s.server_other && !s.client_other;
        self.clear.proto == Some(Protocol::Smtp)
            && (s.ehlo.is_some() || s.starttls_sent || banner)
            && !self.client_spoke_smtp_to_tls()
    }

    /// The client spoke SMTP first, with no banner, and the server answered
    /// with TLS or not at all: plaintext sent to an implicit-TLS port.
    fn client_spoke_smtp_to_tls(&self) -> bool {
        self.client.began_with_text == Some(true)
            && self.smtp.ehlo.is_some()
            && self.smtp.banner.is_none()
            && !self.smtp.server_other
            && self.server.began_with_text != Some(true)
    }

    /// The report, or `None` when the connection carried neither TLS nor SMTP.
    /// `bytes` are the stream lengths (client, server) from reassembly.
    pub fn finish(
        mut self,
        capture_end: Timestamp,
        no_syn: bool,
        missing: [bool; 2],
        bytes: [u64; 2],
    ) -> Option<ConnectionRecord> {
        if missing[0] && !self.client.gap {
            self.gap(Dir::Client);
        }
        if missing[1] && !self.server.gap {
            self.gap(Dir::Server);
        }
        if self.client.phase == Phase::Binary {
            // The capture ends inside a preamble whose end never showed.
            self.give_up_binary(capture_end);
        }
        self.server.text_bytes += self.server.bin.len() as u64;
        if !self.reportable() {
            return None;
        }
        if no_syn {
            self.warnings.insert(
                0,
                "the capture starts after the connection was opened (no SYN seen)".to_owned(),
            );
        }
        let verdict = self.verdict(capture_end);
        let ended = match &self.end {
            Some((dir, how, _, after)) => Ended {
                by: dir.name(),
                how: match how {
                    How::Fin => "fin",
                    How::Rst => "rst",
                },
                after: after.as_ref().map(|a| a.to_string()),
            },
            None => Ended {
                by: "capture-end",
                how: "none",
                after: self.last_message.as_ref().map(|a| a.to_string()),
            },
        };
        let smtp = self.is_smtp();
        let smtp_seen = (smtp || self.client_spoke_smtp_to_tls()).then(|| SmtpSeen {
            banner: self.smtp.banner.as_ref().map(Reply::text),
            ehlo: self.smtp.ehlo.clone(),
            ehlo_reply: self.smtp.ehlo_reply.as_ref().map(Reply::text),
            extensions: self.smtp.ehlo_reply.as_ref().map(extensions_of).unwrap_or_default(),
            starttls_sent: self.smtp.starttls_sent,
            starttls_reply: self.smtp.starttls_reply.as_ref().map(Reply::text),
        });
        let preamble = (self.client.text_bytes > 0 || self.server.text_bytes > 0).then(|| Preamble {
            protocol: self.clear.outer.unwrap_or(Protocol::Other).name(),
            client_bytes: self.client.text_bytes,
            server_bytes: self.server.text_bytes,
            client: self.client.first_line.clone(),
            server: self.server.first_line.clone(),
        });
        let (ja3_string, ja3) = self.ja3.take().unzip();
        let (ja4, ja4_r) = self.ja4.take().unzip();
        let (ja3s_string, ja3s, ja4s) = match &self.server_hello {
            Some(h) if !self.summary => {
                let (s, m) = fingerprint::ja3s(h);
                (Some(s), Some(m), Some(fingerprint::ja4s(h)))
            }
            _ => (None, None, None),
        };
        let negotiated_version = match (&self.server_hello, &self.sslv2_server) {
            (Some(h), _) => Some(h.selected_version()),
            (None, Some(_)) => Some(ProtocolVersion::SSL2),
            _ => None,
        };
        let server_hello = match (&self.server_hello, &self.sslv2_server) {
            (Some(h), _) => Some(describe_server_hello(h)),
            (None, Some(h)) => Some(describe_sslv2_server_hello(h)),
            (None, None) => None,
        };
        Some(ConnectionRecord {
            record: "connection",
            capture: String::new(),
            client_ip: self.client_addr.ip().to_string(),
            client_port: self.client_addr.port(),
            server_ip: self.server_addr.ip().to_string(),
            server_port: self.server_addr.port(),
            started: self.started.rfc3339(),
            starttls: if self.smtp.upgraded && self.client.tls_bytes {
                "smtp"
            } else {
                "none"
            },
            smtp: smtp_seen,
            preamble,
            client_hello: self.hello.take(),
            client_hellos: self.hellos,
            hello_retry_request: self.retry.is_some(),
            retry_group: self.retry.as_ref().and_then(ServerHello::key_share_group),
            server_hello,
            negotiated_version,
            server_key_exchange: self.key_exchange.take(),
            alerts: std::mem::take(&mut self.alerts),
            server_certificates: self.server_certs.take(),
            client_certificates: self.client_certs.take(),
            ja3,
            ja3_string,
            ja3s,
            ja3s_string,
            ja4,
            ja4_r,
            ja4s,
            ended,
            verdict,
            bytes: Bytes {
                client: bytes[0].max(self.client.total),
                server: bytes[1].max(self.server.total),
            },
            warnings: std::mem::take(&mut self.warnings),
            hello_writes: std::mem::take(&mut self.hello_writes),
        })
    }
}

fn describe_hello(h: &ClientHello, framing: Option<HelloFraming>) -> ClientHelloSeen {
    let mut seen = ClientHelloSeen {
        record_version: framing.map_or(h.legacy_version, |f| f.record_version),
        legacy_version: h.legacy_version,
        supported_versions: Vec::new(),
        cipher_suites: h.cipher_suites.clone(),
        sslv2_cipher_specs: None,
        extensions: h.extensions.iter().flatten().map(ClientExtension::typ).collect(),
        sni: h.sni_bytes().map(super::report::text_of),
        alpn: Vec::new(),
        supported_groups: Vec::new(),
        ec_point_formats: Vec::new(),
        signature_algorithms: Vec::new(),
        key_share_groups: Vec::new(),
        compression_methods: h.compression_methods.clone(),
        bytes: framing.map_or(0, |f| f.bytes),
        records: framing.map_or(0, |f| f.records),
        sslv2_format: false,
    };
    for e in h.extensions.iter().flatten() {
        match e {
            ClientExtension::SupportedVersions(v) => seen.supported_versions = v.clone(),
            ClientExtension::Alpn(list) => {
                seen.alpn = list.iter().map(|p| super::report::text_of(p)).collect();
            }
            ClientExtension::SupportedGroups(g) => seen.supported_groups = g.clone(),
            ClientExtension::EcPointFormats(f) => seen.ec_point_formats = f.clone(),
            ClientExtension::SignatureAlgorithms(s) => seen.signature_algorithms = s.clone(),
            ClientExtension::KeyShare(k) => seen.key_share_groups = k.iter().map(|k| k.group).collect(),
            _ => {}
        }
    }
    seen
}

fn describe_sslv2_hello(h: &Sslv2ClientHello) -> ClientHelloSeen {
    let body = 9 + 3 * h.cipher_specs.len() + h.session_id.len() + h.challenge.len();
    ClientHelloSeen {
        record_version: ProtocolVersion::SSL2,
        legacy_version: h.version,
        supported_versions: Vec::new(),
        cipher_suites: h.tls_suites(),
        sslv2_cipher_specs: Some(h.cipher_specs.clone()),
        extensions: Vec::new(),
        sni: None,
        alpn: Vec::new(),
        supported_groups: Vec::new(),
        ec_point_formats: Vec::new(),
        signature_algorithms: Vec::new(),
        key_share_groups: Vec::new(),
        compression_methods: Vec::new(),
        bytes: body + 2,
        records: 1,
        sslv2_format: true,
    }
}

fn describe_server_hello(h: &ServerHello) -> ServerHelloSeen {
    ServerHelloSeen {
        legacy_version: h.legacy_version,
        selected_version: h.selected_version(),
        cipher_suite: Some(h.cipher_suite),
        sslv2_cipher_specs: None,
        extensions: h.extensions.iter().flatten().map(|e| e.typ()).collect(),
        alpn: h.alpn().map(super::report::text_of),
        key_share_group: h.key_share_group(),
        compression: Some(h.compression),
        downgrade: h.downgrade().map(|d| match d {
            Downgrade::Tls12 => "tls12",
            Downgrade::Tls11OrBelow => "tls11-or-below",
        }),
    }
}

/// An SSLv2 SERVER-HELLO in the ServerHello's shape (SPEC §3b): version
/// 0x0002, its cipher specs in place of a suite, no extensions.
fn describe_sslv2_server_hello(h: &Sslv2ServerHello) -> ServerHelloSeen {
    ServerHelloSeen {
        legacy_version: ProtocolVersion::SSL2,
        selected_version: ProtocolVersion::SSL2,
        cipher_suite: None,
        sslv2_cipher_specs: Some(h.cipher_specs.clone()),
        extensions: Vec::new(),
        alpn: None,
        key_share_group: None,
        compression: None,
        downgrade: None,
    }
}

fn describe_key_exchange(k: &ServerKeyExchange) -> KeyExchangeSeen {
    let kind = match k {
        ServerKeyExchange::Ecdh { .. } => "ecdhe",
        ServerKeyExchange::Dh { .. } => "dhe",
        ServerKeyExchange::RsaExport { .. } => "rsa-export",
        ServerKeyExchange::PskHint(_) => "psk",
        ServerKeyExchange::Opaque(_) => "opaque",
    };
    KeyExchangeSeen {
        kind,
        group: k.group(),
        dh_bits: k.modulus_bits(),
        signature_scheme: k.signature_scheme(),
    }
}

/// Certificates described per thread: a capture shows the same server
/// certificates over and over, and parsing one costs more than the rest
/// of its connection's analysis.
const CERT_CACHE: usize = 1024;

/// Remembered descriptions by a per-thread seeded hash of the DER, each
/// with its DER to compare (a hash is no proof; the compare is cheap next
/// to a SHA-256 of every certificate of every connection).
type CertCache = (
    foldhash::fast::RandomState,
    std::collections::HashMap<u64, (Box<[u8]>, Arc<CertInfo>), foldhash::fast::RandomState>,
);

thread_local! {
    static CERTS: std::cell::RefCell<CertCache> = std::cell::RefCell::default();
}

/// [`CertInfo::from_der`], remembered.
fn describe_cert(der: &[u8]) -> Arc<CertInfo> {
    use std::hash::BuildHasher as _;
    CERTS.with(|cache| {
        let (seed, cache) = &mut *cache.borrow_mut();
        let key = seed.hash_one(der);
        if let Some((known, info)) = cache.get(&key) {
            if **known == *der {
                return info.clone();
            }
        }
        let info = Arc::new(CertInfo::from_der(der));
        if cache.len() >= CERT_CACHE {
            cache.clear();
        }
        cache.insert(key, (der.into(), info.clone()));
        info
    })
}

/// The EHLO keywords of a 250 reply (every line after the first).
fn extensions_of(r: &Reply) -> Vec<String> {
    if r.code != 250 {
        return Vec::new();
    }
    r.lines
        .iter()
        .skip(1)
        .filter_map(|l| l.get(4..))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// The first SMTP reply in `bytes` (a greeting seen as non-TLS bytes).
fn smtp_reply(bytes: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        let b = line.as_bytes();
        if b.len() < 3 || !b.iter().take(3).all(u8::is_ascii_digit) {
            return None;
        }
        lines.push(line.to_owned());
        match b.get(3) {
            Some(b'-') => continue,
            _ => {
                let code = line.get(..3)?.parse().ok()?;
                return Some(Reply { code, lines });
            }
        }
    }
    None
}

/// A byte a text protocol line can start with.
fn is_text(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\r' || b == b'\n' || b == b'\t'
}
