//! The deframer: push bytes from one direction of a connection (a socket
//! read or a reassembled capture stream), pull typed events.
//!
//! It recognises the stream's framing from its first bytes (TLS records,
//! an SSLv2 two-byte header, or something that is not TLS at all, such as
//! an SMTP `220` greeting), reassembles handshake messages that span
//! records, splits records that hold several messages, and decodes each
//! message with the context the stream itself gives: the negotiated
//! version and suite from the ServerHello select the Certificate layout
//! and the ServerKeyExchange parameters. After ChangeCipherSpec (TLS ≤ 1.2)
//! or a TLS 1.3 ServerHello, records are reported as encrypted.
//!
//! Every peer-controlled size is capped: a record by [`MAX_RECORD_LEN`](crate::record::MAX_RECORD_LEN), a
//! handshake message by [`MAX_HANDSHAKE_LEN`], unread input by
//! [`MAX_BUFFERED`]. A Certificate message, legal up to 2^24−1 bytes, is
//! the exception: one over the cap is decoded entry by entry as it
//! arrives, keeping what fits in the chain caps and counting the rest
//! ([`Certificate::omitted`]). After an error the deframer stays failed and repeats it.
//!
//! ```
//! use hsscan_wire::deframer::{Deframer, Event, Side};
//! let mut d = Deframer::new(Side::Server);
//! d.push(&[21, 3, 3, 0, 2, 2, 40]).unwrap();
//! match d.next_event().unwrap() {
//!     Some(Event::Alert(a)) => assert_eq!(a.to_string(), "handshake_failure(40)"),
//!     other => panic!("{other:?}"),
//! }
//! assert!(d.next_event().unwrap().is_none());
//! ```

use std::collections::VecDeque;

use crate::alert::Alert;
use crate::certificate::{Certificate, CertificateReader, CertificateRequest, CertificateStatus};
use crate::client_hello::ClientHello;
use crate::codepoints::{CipherSuite, ContentType, ProtocolVersion, Sslv2MessageType};
use crate::error::{DecodeError, Kind};
use crate::handshake::{HandshakeHeader, HandshakeType, HANDSHAKE_HEADER_LEN};
use crate::reader::Reader;
use crate::record::{RecordHeader, RECORD_HEADER_LEN};
use crate::server_hello::{is_tls13, ServerHello, DRAFT_HELLO_RETRY_REQUEST};
use crate::server_key_exchange::ServerKeyExchange;
use crate::sslv2::{Sslv2ClientHello, Sslv2ServerHello};

/// The handshake message cap lives with the handshake framing; named here
/// too because the deframer is where it is enforced.
pub use crate::handshake::MAX_HANDSHAKE_LEN;
/// Unread input is refused past this: callers push what they read and
/// drain events between reads, so this is only reached by a flood.
pub const MAX_BUFFERED: usize = 1024 * 1024;
/// How much of a non-TLS answer is kept (a greeting line or two).
pub const MAX_NOT_TLS_BYTES: usize = 512;

/// Whose bytes the deframer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client's direction (ClientHello, client alerts).
    Client,
    /// The server's direction (ServerHello … ServerHelloDone, alerts).
    Server,
}

/// One thing the peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // events are moved once, right after decoding
pub enum Event {
    ClientHello(ClientHello),
    ServerHello(ServerHello),
    HelloRetryRequest(ServerHello),
    Certificate(Certificate),
    ServerKeyExchange(ServerKeyExchange),
    CertificateStatus(CertificateStatus),
    CertificateRequest(CertificateRequest),
    ServerHelloDone,
    /// Another plaintext handshake message (NewSessionTicket,
    /// ClientKeyExchange, …), by type and body length.
    Handshake {
        typ: HandshakeType,
        len: usize,
    },
    Alert(Alert),
    ChangeCipherSpec,
    /// A record we cannot read: application data, or any record after the
    /// switch to encryption.
    Encrypted {
        content_type: ContentType,
        len: usize,
    },
    Heartbeat {
        len: usize,
    },
    Sslv2ClientHello(Sslv2ClientHello),
    Sslv2ServerHello(Sslv2ServerHello),
    /// An SSLv2 ERROR message with its code (e.g. 1 = NO-CIPHER-ERROR).
    Sslv2Error(u16),
    /// Another SSLv2 message (encrypted after the hellos), by length.
    Sslv2Other {
        len: usize,
    },
    /// The stream is not TLS or SSLv2: its first bytes (at most
    /// [`MAX_NOT_TLS_BYTES`]), e.g. `220 mx.example.net ESMTP`.
    NotTls(Vec<u8>),
}

/// How the first handshake message of the stream was framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelloFraming {
    /// The version in the first record header.
    pub record_version: ProtocolVersion,
    /// How many records the first handshake message spanned.
    pub records: usize,
    /// The message's bytes on the wire, record headers included.
    pub bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Unknown,
    Tls,
    Sslv2,
    Done,
}

#[derive(Debug)]
struct State {
    side: Side,
    framing: Framing,
    /// Handshake bytes of a message not yet complete.
    hs: Vec<u8>,
    /// Offset of `hs[0]` in the handshake stream (all fragments concatenated).
    hs_offset: usize,
    version: Option<ProtocolVersion>,
    suite: Option<CipherSuite>,
    encrypted: bool,
    pending: VecDeque<Event>,
    first: Option<HelloFraming>,
    first_done: bool,
    /// A Certificate message longer than [`MAX_HANDSHAKE_LEN`], read entry
    /// by entry instead of buffered.
    cert: Option<CertificateReader>,
}

/// Pushed bytes in, events out. See the module documentation.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    start: usize,
    /// Stream offset of `buf[start]`.
    offset: usize,
    failed: Option<DecodeError>,
    st: State,
}

impl Deframer {
    pub fn new(side: Side) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            offset: 0,
            failed: None,
            st: State {
                side,
                framing: Framing::Unknown,
                hs: Vec::new(),
                hs_offset: 0,
                version: None,
                suite: None,
                encrypted: false,
                pending: VecDeque::new(),
                first: None,
                first_done: false,
                cert: None,
            },
        }
    }

    /// Adds bytes read from the peer.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let unread = self.buf.len() - self.start;
        if unread + bytes.len() > MAX_BUFFERED {
            return Err(DecodeError {
                field: "stream",
                offset: self.offset + unread,
                kind: Kind::TooLong {
                    len: unread + bytes.len(),
                    max: MAX_BUFFERED,
                },
            });
        }
        let mut bytes = bytes;
        if unread == 0 && self.failed.is_none() && self.st.framing == Framing::Tls {
            // Whole records are decoded straight from the caller's bytes;
            // only a record's unfinished tail is copied in. The events wait
            // in order as if decoded on demand.
            bytes = bytes.get(self.records_from(bytes)..).unwrap_or(&[]);
            self.buf.clear();
            self.start = 0;
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Decodes the whole TLS records at the front of `data`; returns the
    /// bytes used. An error is kept, to be returned after the events before it.
    fn records_from(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        while self.failed.is_none() {
            let rest = data.get(used..).unwrap_or(&[]);
            if rest.len() < RECORD_HEADER_LEN {
                break;
            }
            let mut r = Reader::at(rest, self.offset);
            let header = match RecordHeader::read(&mut r) {
                Ok(h) => h,
                Err(e) => {
                    self.failed = Some(e);
                    break;
                }
            };
            let len = usize::from(header.length);
            let Ok(fragment) = r.bytes(len, "record.fragment") else {
                break;
            };
            if let Err(e) = self.st.record(header, fragment, self.offset) {
                self.failed = Some(e);
                break;
            }
            used += RECORD_HEADER_LEN + len;
            self.offset += RECORD_HEADER_LEN + len;
        }
        used
    }

    /// Bytes pushed but not yet part of a whole record: at end of stream, a
    /// truncated record or a partial non-TLS line.
    pub fn unconsumed(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    /// Bytes held in memory: unread input, a handshake message being
    /// reassembled, a streamed Certificate's entries so far.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start) + self.st.hs.len() + self.st.cert.as_ref().map_or(0, |c| c.held())
    }

    /// Whether a handshake message is partly received.
    pub fn in_message(&self) -> bool {
        !self.st.hs.is_empty() || self.st.cert.is_some()
    }

    /// The version negotiated so far (from a ServerHello or HelloRetryRequest).
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.st.version
    }

    /// Tells a client-side deframer what the server negotiated, so that it
    /// knows whether its ChangeCipherSpec starts encryption (TLS ≤ 1.2) and
    /// how to read its Certificate.
    pub fn set_negotiated(&mut self, version: ProtocolVersion, suite: Option<CipherSuite>) {
        self.st.version = Some(version);
        self.st.suite = suite.or(self.st.suite);
    }

    /// How the first handshake message was framed, once it is complete.
    pub fn hello_framing(&self) -> Option<HelloFraming> {
        self.st.first.filter(|_| self.st.first_done)
    }

    /// The next event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, DecodeError> {
        loop {
            if let Some(e) = self.st.pending.pop_front() {
                return Ok(Some(e));
            }
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            match self.step() {
                Ok(true) => continue,
                Ok(false) => return Ok(None),
                Err(e) => {
                    self.failed = Some(e.clone());
                    // Events decoded before the error still come first.
                    if self.st.pending.is_empty() {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Consumes one record if a whole one is buffered. `Ok(false)`: need more.
    fn step(&mut self) -> Result<bool, DecodeError> {
        let data = self.buf.get(self.start..).unwrap_or(&[]);
        let Some(&b0) = data.first() else { return Ok(false) };
        if self.st.framing == Framing::Unknown {
            match detect(self.st.side, data) {
                None => return Ok(false),
                Some(Framing::Done) => {
                    // Not TLS: an event, not an error (a "220 …" greeting in
                    // answer to a ClientHello is the classic 465/587 mix-up).
                    let text = data.get(..data.len().min(MAX_NOT_TLS_BYTES)).unwrap_or(&[]).to_vec();
                    self.advance(text.len());
                    self.st.framing = Framing::Done;
                    self.st.pending.push_back(Event::NotTls(text));
                    return Ok(true);
                }
                Some(f) => self.st.framing = f,
            }
        }
        match self.st.framing {
            Framing::Unknown | Framing::Done => Ok(false),
            Framing::Sslv2 if b0 & 0x80 == 0 => {
                // A client that sent an SSLv2-compatible hello goes on in TLS records.
                self.st.framing = Framing::Tls;
                Ok(true)
            }
            Framing::Sslv2 => {
                let mut r = Reader::at(data, self.offset);
                let Ok(len) = crate::record::read_sslv2_header(&mut r) else {
                    return Ok(false);
                };
                let Ok(body) = r.bytes(len, "sslv2.record") else {
                    return Ok(false);
                };
                self.st.sslv2_message(body, self.offset + 2)?;
                self.advance(2 + len);
                Ok(true)
            }
            Framing::Tls => {
                if data.len() < RECORD_HEADER_LEN {
                    // Garbage fails at once rather than waiting for five bytes.
                    check_partial_header(data, self.offset)?;
                    return Ok(false);
                }
                let mut r = Reader::at(data, self.offset);
                let header = RecordHeader::read(&mut r)?;
                let len = usize::from(header.length);
                let Ok(fragment) = r.bytes(len, "record.fragment") else {
                    return Ok(false);
                };
                self.st.record(header, fragment, self.offset)?;
                self.advance(RECORD_HEADER_LEN + len);
                Ok(true)
            }
        }
    }

    fn advance(&mut self, n: usize) {
        self.start += n;
        self.offset += n;
    }
}

/// Whether a message is read as it streams in rather than buffered: a
/// Certificate message over the buffering cap (legal up to 2^24−1 bytes).
fn streamed(header: HandshakeHeader) -> bool {
    header.typ == HandshakeType::CERTIFICATE && header.length > MAX_HANDSHAKE_LEN
}

/// Checks the bytes of a record header received so far.
fn check_partial_header(data: &[u8], offset: usize) -> Result<(), DecodeError> {
    if let Some(&t) = data.first() {
        if !(20..=24).contains(&t) {
            return Err(DecodeError {
                field: "record.content_type",
                offset,
                kind: Kind::Unexpected(u32::from(t)),
            });
        }
    }
    if let Some(&major) = data.get(1) {
        if major != 3 {
            return Err(DecodeError {
                field: "record.version",
                offset: offset + 1,
                kind: Kind::Unexpected(u32::from(major) << 8),
            });
        }
    }
    Ok(())
}

/// Recognises the framing from the first bytes; `None`: wait for more.
fn detect(side: Side, data: &[u8]) -> Option<Framing> {
    let b0 = *data.first()?;
    if (20..=24).contains(&b0) {
        return Some(Framing::Tls);
    }
    if b0 & 0x80 != 0 {
        let typ = *data.get(2)?;
        let hello = match side {
            Side::Client => Sslv2MessageType::CLIENT_HELLO.0,
            Side::Server => Sslv2MessageType::SERVER_HELLO.0,
        };
        if typ == hello || typ == Sslv2MessageType::ERROR.0 {
            return Some(Framing::Sslv2);
        }
        return Some(Framing::Done);
    }
    // Text such as "220 …" or "EHLO …": wait for a whole line (or enough
    // bytes) so the event carries something a person can read.
    let printable = data
        .iter()
        .all(|&b| b == b'\r' || b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b));
    if !printable || data.contains(&b'\n') || data.len() >= MAX_NOT_TLS_BYTES {
        return Some(Framing::Done);
    }
    None
}

impl State {
    fn record(&mut self, header: RecordHeader, fragment: &[u8], offset: usize) -> Result<(), DecodeError> {
        let len = fragment.len();
        if self.first.is_none() {
            self.first = Some(HelloFraming {
                record_version: header.version,
                records: 0,
                bytes: 0,
            });
        }
        match header.content_type {
            ContentType::HANDSHAKE if self.encrypted => self.pending.push_back(Event::Encrypted {
                content_type: header.content_type,
                len,
            }),
            ContentType::HANDSHAKE => {
                if !self.first_done {
                    if let Some(f) = self.first.as_mut() {
                        f.records += 1;
                        f.bytes += RECORD_HEADER_LEN + len;
                    }
                }
                self.handshake(fragment)?;
            }
            ContentType::ALERT if self.encrypted => self.pending.push_back(Event::Encrypted {
                content_type: header.content_type,
                len,
            }),
            ContentType::ALERT => {
                if len == 0 || len % 2 != 0 {
                    return Err(DecodeError {
                        field: "alert",
                        offset: offset + RECORD_HEADER_LEN,
                        kind: Kind::Misaligned { len, unit: 2 },
                    });
                }
                let mut r = Reader::at(fragment, offset + RECORD_HEADER_LEN);
                while !r.is_empty() {
                    self.pending.push_back(Event::Alert(Alert::read(&mut r)?));
                }
            }
            ContentType::CHANGE_CIPHER_SPEC => {
                if fragment != [1] {
                    return Err(DecodeError {
                        field: "change_cipher_spec",
                        offset: offset + RECORD_HEADER_LEN,
                        kind: Kind::Unexpected(u32::from(fragment.first().copied().unwrap_or(0))),
                    });
                }
                self.pending.push_back(Event::ChangeCipherSpec);
                // TLS 1.3 middlebox-compatibility CCS changes nothing.
                if !self.version.is_some_and(is_tls13) {
                    self.encrypted = true;
                }
            }
            ContentType::HEARTBEAT => self.pending.push_back(Event::Heartbeat { len }),
            other => self.pending.push_back(Event::Encrypted {
                content_type: other,
                len,
            }),
        }
        Ok(())
    }

    /// Feeds one handshake fragment; decodes every message it completes.
    fn handshake(&mut self, mut fragment: &[u8]) -> Result<(), DecodeError> {
        if let Some(cert) = self.cert.as_mut() {
            let used = cert.push(fragment)?;
            self.hs_offset += used;
            fragment = fragment.get(used..).unwrap_or(&[]);
            if cert.remaining() == 0 {
                if let Some(cert) = self.cert.take() {
                    self.pending.push_back(Event::Certificate(cert.finish()?));
                }
            }
            if fragment.is_empty() {
                return Ok(());
            }
        }
        if self.hs.is_empty() {
            // Fast path: whole messages straight from the record.
            let used = self.messages(fragment, self.hs_offset)?;
            let rest = fragment.get(used..).unwrap_or(&[]);
            self.hs_offset += used;
            self.hs.extend_from_slice(rest);
        } else {
            self.hs.extend_from_slice(fragment);
            // Decode only once the pending message is whole, so a peer that
            // sends a message in one-byte records costs linear time.
            if let Some(header) = HandshakeHeader::peek(&self.hs) {
                if self.hs.len() >= header.message_len() {
                    let mut hs = std::mem::take(&mut self.hs);
                    let used = self.messages(&hs, self.hs_offset)?;
                    self.hs_offset += used;
                    hs.drain(..used);
                    self.hs = hs;
                }
            }
        }
        if let Some(header) = HandshakeHeader::peek(&self.hs) {
            if streamed(header) {
                // Read it as it comes: its bytes so far, then the next fragments.
                let body = self.hs.split_off(HANDSHAKE_HEADER_LEN);
                self.hs.clear();
                self.hs_offset += HANDSHAKE_HEADER_LEN;
                let tls13 = self.version.is_some_and(is_tls13);
                self.cert = Some(CertificateReader::new(header.length, self.hs_offset, tls13));
                self.first_done = true;
                return self.handshake(&body);
            }
            // A declared length over the cap fails at once, before buffering it.
            header.check_length(self.hs_offset)?;
        }
        Ok(())
    }

    /// Decodes the whole messages at the front of `bytes`; returns the bytes used.
    fn messages(&mut self, bytes: &[u8], base: usize) -> Result<usize, DecodeError> {
        let mut used = 0;
        loop {
            let rest = bytes.get(used..).unwrap_or(&[]);
            let Some(header) = HandshakeHeader::peek(rest) else {
                return Ok(used);
            };
            if streamed(header) {
                return Ok(used);
            }
            header.check_length(base + used)?;
            let Some(body) = rest.get(HANDSHAKE_HEADER_LEN..header.message_len()) else {
                return Ok(used);
            };
            self.message(header.typ, body, base + used + HANDSHAKE_HEADER_LEN)?;
            used += header.message_len();
            if !self.first_done {
                self.first_done = true;
            }
        }
    }

    fn message(&mut self, typ: HandshakeType, body: &[u8], base: usize) -> Result<(), DecodeError> {
        let tls13 = self.version.is_some_and(is_tls13);
        let event = match typ {
            HandshakeType::CLIENT_HELLO => Event::ClientHello(ClientHello::read_body(body, base)?),
            HandshakeType::SERVER_HELLO => {
                let hello = ServerHello::read_body(body, base)?;
                self.version = Some(hello.selected_version());
                self.suite = Some(hello.cipher_suite);
                if hello.is_retry_request() {
                    Event::HelloRetryRequest(hello)
                } else {
                    if hello.is_tls13() {
                        // Everything after a TLS 1.3 (or draft) ServerHello is encrypted.
                        self.encrypted = true;
                    }
                    Event::ServerHello(hello)
                }
            }
            DRAFT_HELLO_RETRY_REQUEST => {
                let hello = ServerHello::read_draft_retry_request(body, base)?;
                self.version = Some(hello.selected_version());
                self.suite = Some(hello.cipher_suite);
                Event::HelloRetryRequest(hello)
            }
            HandshakeType::CERTIFICATE => Event::Certificate(Certificate::read_body(body, base, tls13)?),
            HandshakeType::SERVER_KEY_EXCHANGE => match (self.suite, self.version) {
                (Some(suite), Some(version)) => {
                    Event::ServerKeyExchange(ServerKeyExchange::read_body(body, base, suite, version)?)
                }
                _ => Event::ServerKeyExchange(ServerKeyExchange::Opaque(body.to_vec())),
            },
            HandshakeType::CERTIFICATE_STATUS => Event::CertificateStatus(CertificateStatus::read_body(body, base)?),
            HandshakeType::CERTIFICATE_REQUEST if !tls13 => Event::CertificateRequest(CertificateRequest::read_body(
                body,
                base,
                self.version == Some(ProtocolVersion::TLS12),
            )?),
            HandshakeType::SERVER_HELLO_DONE => {
                Reader::at(body, base).finish("server_hello_done")?;
                Event::ServerHelloDone
            }
            other => Event::Handshake {
                typ: other,
                len: body.len(),
            },
        };
        self.pending.push_back(event);
        Ok(())
    }

    fn sslv2_message(&mut self, body: &[u8], base: usize) -> Result<(), DecodeError> {
        let typ = body.first().copied();
        let event = match typ {
            Some(t) if t == Sslv2MessageType::CLIENT_HELLO.0 && !self.first_done => {
                let hello = Sslv2ClientHello::read_body(body, base)?;
                if hello.version.0 >= 0x0300 {
                    // RFC 5246 §E.2: the rest of the client's stream is TLS.
                    self.framing = Framing::Tls;
                }
                Event::Sslv2ClientHello(hello)
            }
            Some(t) if t == Sslv2MessageType::SERVER_HELLO.0 && !self.first_done => {
                let hello = Sslv2ServerHello::read_body(body, base)?;
                self.version = Some(ProtocolVersion::SSL2);
                Event::Sslv2ServerHello(hello)
            }
            Some(t) if t == Sslv2MessageType::ERROR.0 && !self.first_done => {
                let mut r = Reader::at(body, base);
                r.u8("sslv2.msg_type")?;
                let code = r.u16("sslv2.error_code")?;
                r.finish("sslv2.error")?;
                Event::Sslv2Error(code)
            }
            _ => Event::Sslv2Other { len: body.len() },
        };
        if !self.first_done {
            self.first = Some(HelloFraming {
                record_version: ProtocolVersion::SSL2,
                records: 1,
                bytes: body.len() + 2,
            });
            self.first_done = true;
        }
        self.pending.push_back(event);
        Ok(())
    }
}
