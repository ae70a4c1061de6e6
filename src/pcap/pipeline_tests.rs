//! The whole pipeline (capture bytes to records) on synthetic captures:
//! every frame is built here, so each TCP oddity — reordering,
//! retransmission, overlap, loss, a mid-stream start, port reuse — and
//! each SMTP turn can be staged exactly. Real captures are tested from
//! `pcaps/` by tests/it/pcap.rs; these cover what loopback cannot stage.
//! The randomized tests at the end feed garbage, truncations and bit flips
//! of real captures through the same entry point as the fuzz target.

use super::analyse_bytes;
use super::report::ConnectionRecord;
use crate::outcome::FailureKind;
use etherparse::PacketBuilder;
use hsscan_wire::{CipherSuite, ClientHello, CompressionMethod, ProtocolVersion, ServerExtension, ServerHello, Writer};

const CLIENT: [u8; 4] = [192, 0, 2, 1];
const SERVER: [u8; 4] = [192, 0, 2, 25];

/// A capture being written: a pcap header and frames.
struct Pcap {
    bytes: Vec<u8>,
    usec: u32,
}

impl Pcap {
    fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
        Self { bytes, usec: 0 }
    }

    fn frame(&mut self, frame: &[u8]) {
        self.usec += 1000;
        self.bytes.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        self.bytes.extend_from_slice(&self.usec.to_le_bytes());
        self.bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(frame);
    }
}

#[derive(Clone, Copy)]
enum Who {
    C,
    S,
}

/// One TCP connection's frames, sequence numbers kept per side.
struct Tcp {
    cport: u16,
    sport: u16,
    seq: [u32; 2],
}

#[derive(Default, Clone, Copy)]
struct F {
    syn: bool,
    fin: bool,
    rst: bool,
    no_ack: bool,
}

impl Tcp {
    fn new(cport: u16, sport: u16) -> Self {
        Self {
            cport,
            sport,
            seq: [1000, 50_000],
        }
    }

    /// A frame from `who` at sequence offset `seq` (absolute), not advancing.
    fn raw(&self, who: Who, seq: u32, payload: &[u8], f: F) -> Vec<u8> {
        let (i, src, dst, sp, dp) = match who {
            Who::C => (0, CLIENT, SERVER, self.cport, self.sport),
            Who::S => (1, SERVER, CLIENT, self.sport, self.cport),
        };
        let mut b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 65535);
        if !f.no_ack {
            b = b.ack(self.seq[1 - i]);
        }
        if f.syn {
            b = b.syn();
        }
        if f.fin {
            b = b.fin();
        }
        if f.rst {
            b = b.rst();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// The next in-order frame from `who`.
    fn send(&mut self, pcap: &mut Pcap, who: Who, payload: &[u8], f: F) {
        let i = match who {
            Who::C => 0,
            Who::S => 1,
        };
        let frame = self.raw(who, self.seq[i], payload, f);
        self.seq[i] = self.seq[i]
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(f.syn) + u32::from(f.fin));
        pcap.frame(&frame);
    }

    fn open(&mut self, pcap: &mut Pcap) {
        self.send(
            pcap,
            Who::C,
            &[],
            F {
                syn: true,
                no_ack: true,
                ..F::default()
            },
        );
        self.send(
            pcap,
            Who::S,
            &[],
            F {
                syn: true,
                ..F::default()
            },
        );
    }

    fn data(&mut self, pcap: &mut Pcap, who: Who, payload: &[u8]) {
        self.send(pcap, who, payload, F::default());
    }

    fn fin(&mut self, pcap: &mut Pcap, who: Who) {
        self.send(
            pcap,
            who,
            &[],
            F {
                fin: true,
                ..F::default()
            },
        );
    }

    fn rst(&mut self, pcap: &mut Pcap, who: Who) {
        self.send(
            pcap,
            who,
            &[],
            F {
                rst: true,
                ..F::default()
            },
        );
    }
}

fn client_hello_record() -> Vec<u8> {
    let suites = vec![CipherSuite(0x0a0a), CipherSuite(0xc02f), CipherSuite(0x009c)];
    let hello = ClientHello::typical(
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS12,
        [7; 32],
        suites,
        Some("mx.example.net"),
    );
    hello.to_record(ProtocolVersion::TLS10).unwrap()
}

fn server_flight_tls12() -> Vec<u8> {
    let sh = ServerHello {
        legacy_version: ProtocolVersion::TLS12,
        random: [9; 32],
        session_id: Vec::new(),
        cipher_suite: CipherSuite(0xc02f),
        compression: CompressionMethod::NULL,
        extensions: Some(vec![ServerExtension::RenegotiationInfo(Vec::new())]),
    };
    let mut w = Writer::new();
    sh.write(&mut w).unwrap();
    let mut hs = w.into_bytes();
    hs.extend_from_slice(&[14, 0, 0, 0]); // ServerHelloDone
    let mut rec = vec![22, 3, 3];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// ClientKeyExchange, ChangeCipherSpec and an encrypted Finished.
fn client_finish_tls12() -> Vec<u8> {
    let mut v = vec![22, 3, 3, 0, 8, 16, 0, 0, 4, 3, 1, 2, 3];
    v.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
    v.extend_from_slice(&[22, 3, 3, 0, 40]);
    v.extend_from_slice(&[0x55; 40]);
    v
}

fn server_finish_tls12() -> Vec<u8> {
    let mut v = vec![20, 3, 3, 0, 1, 1, 22, 3, 3, 0, 40];
    v.extend_from_slice(&[0x66; 40]);
    v
}

fn records(pcap: &Pcap) -> Vec<ConnectionRecord> {
    let a = analyse_bytes(&pcap.bytes);
    assert!(
        a.summary.warnings.is_empty(),
        "unexpected warnings: {:?}",
        a.summary.warnings
    );
    a.records
}

fn verdict(r: &ConnectionRecord) -> (&str, Option<FailureKind>) {
    (r.verdict.outcome, r.verdict.kind)
}

#[test]
fn smtp_starttls_then_tls12_is_established() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40001, 25);
    t.open(&mut p);
    t.data(&mut p, Who::S, b"220-mx.example.net ESMTP\r\n220 hello\r\n");
    t.data(&mut p, Who::C, b"EHLO client.example\r\n");
    t.data(
        &mut p,
        Who::S,
        b"250-mx.example.net\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
    );
    t.data(&mut p, Who::C, b"STARTTLS\r\n");
    t.data(&mut p, Who::S, b"220 2.0.0 Ready\r\n");
    t.data(&mut p, Who::C, &client_hello_record());
    t.data(&mut p, Who::S, &server_flight_tls12());
    t.data(&mut p, Who::C, &client_finish_tls12());
    t.data(&mut p, Who::S, &server_finish_tls12());
    t.fin(&mut p, Who::C);
    t.fin(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(verdict(r), ("established", None), "{}", r.verdict.message);
    assert_eq!(r.starttls, "smtp");
    let smtp = r.smtp.as_ref().unwrap();
    assert_eq!(smtp.banner.as_deref(), Some("220-mx.example.net ESMTP\n220 hello"));
    assert_eq!(smtp.ehlo.as_deref(), Some("client.example"));
    assert_eq!(smtp.extensions, ["SIZE 1000", "STARTTLS"]);
    assert_eq!(smtp.starttls_reply.as_deref(), Some("220 2.0.0 Ready"));
    assert_eq!(r.client_hello.as_ref().unwrap().sni.as_deref(), Some("mx.example.net"));
    assert_eq!(r.server_hello.as_ref().unwrap().cipher_suite, Some(CipherSuite(0xc02f)));
    assert_eq!((r.client_port, r.server_port), (40001, 25));
    assert_eq!((r.ended.by, r.ended.how), ("client", "fin"));
    // GREASE stays out of JA3.
    assert!(r.ja3_string.as_deref().unwrap().starts_with("771,49199-156,"));
}

#[test]
fn a_hello_reordered_retransmitted_and_overlapping_is_read_once() {
    let hello = client_hello_record();
    let (a, rest) = hello.split_at(40);
    let (b, c) = rest.split_at(60);
    let mut p = Pcap::new();
    let mut t = Tcp::new(40002, 465);
    t.open(&mut p);
    let base = t.seq[0];
    let off = |n: usize| base.wrapping_add(n as u32);
    // The third part first, then the first, the first again, then an
    // overlapping copy of the second and third, then the second.
    p.frame(&t.raw(Who::C, off(100), c, F::default()));
    p.frame(&t.raw(Who::C, off(0), a, F::default()));
    p.frame(&t.raw(Who::C, off(0), a, F::default()));
    p.frame(&t.raw(Who::C, off(70), &hello[70..], F::default()));
    p.frame(&t.raw(Who::C, off(40), b, F::default()));
    t.seq[0] = off(hello.len());
    t.data(&mut p, Who::S, &server_flight_tls12());
    t.rst(&mut p, Who::C);
    let r = records(&p);
    assert_eq!(r.len(), 1);
    let h = r[0].client_hello.as_ref().unwrap();
    assert_eq!(h.bytes, hello.len());
    assert_eq!(h.cipher_suites.len(), 3);
    assert_eq!(r[0].client_hellos, 1);
    assert_eq!((r[0].ended.by, r[0].ended.how), ("client", "rst"));
    assert_eq!(r[0].bytes.client, hello.len() as u64);
}

#[test]
fn data_in_the_handshake_completing_ack_is_read() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40003, 443);
    t.open(&mut p);
    // No separate ACK: the hello rides on the segment that completes the handshake.
    t.data(&mut p, Who::C, &client_hello_record());
    t.data(&mut p, Who::S, &[21, 3, 3, 0, 2, 2, 40]);
    t.fin(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(verdict(&r[0]), ("failed", Some(FailureKind::Alert)));
    assert!(r[0].verdict.message.contains("handshake_failure(40)"));
    assert_eq!(r[0].alerts.len(), 1);
    assert_eq!(r[0].alerts[0].from, "server");
}

#[test]
fn a_lost_segment_the_peer_acknowledged_makes_the_connection_incomplete() {
    let flight = server_flight_tls12();
    let mut p = Pcap::new();
    let mut t = Tcp::new(40004, 443);
    t.open(&mut p);
    t.data(&mut p, Who::C, &client_hello_record());
    let base = t.seq[1];
    // The first 20 bytes of the server's flight never reach the capture.
    p.frame(&t.raw(Who::S, base.wrapping_add(20), &flight[20..], F::default()));
    t.seq[1] = base.wrapping_add(flight.len() as u32);
    t.data(&mut p, Who::C, &client_finish_tls12());
    t.fin(&mut p, Who::C);
    let r = records(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].verdict.outcome, "incomplete", "{}", r[0].verdict.message);
    assert!(r[0].verdict.message.contains("missing"), "{}", r[0].verdict.message);
    assert!(
        r[0].warnings.iter().any(|w| w.contains("missing")),
        "{:?}",
        r[0].warnings
    );
}

#[test]
fn a_capture_starting_mid_stream_still_reads_a_hello_and_says_so() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40005, 465);
    t.data(&mut p, Who::C, &client_hello_record());
    t.rst(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(verdict(&r[0]), ("failed", Some(FailureKind::ResetAfterHello)));
    assert!(r[0].warnings[0].contains("no SYN"), "{:?}", r[0].warnings);
    // Mid-stream bytes that start nowhere recognisable are not reported.
    let mut p = Pcap::new();
    let mut t = Tcp::new(40006, 443);
    t.data(&mut p, Who::C, &[23, 3, 3, 0, 3, 1, 2, 3]);
    t.data(&mut p, Who::S, &[23, 3, 3, 0, 3, 1, 2, 3]);
    assert!(records(&p).is_empty());
}

#[test]
fn smtp_refusals_are_named() {
    let cases: [(&[u8], FailureKind); 3] = [
        (
            b"421 4.7.0 mx Error: too many connections\r\n",
            FailureKind::RateLimited,
        ),
        (b"554 5.7.1 go away\r\n", FailureKind::SmtpRejected),
        (b"220 mx ESMTP\r\n", FailureKind::StarttlsAbsent),
    ];
    for (banner, kind) in cases {
        let mut p = Pcap::new();
        let mut t = Tcp::new(40007, 25);
        t.open(&mut p);
        t.data(&mut p, Who::S, banner);
        t.data(&mut p, Who::C, b"EHLO c\r\n");
        t.data(&mut p, Who::S, b"250-mx\r\n250 8BITMIME\r\n");
        t.data(&mut p, Who::C, b"QUIT\r\n");
        t.data(&mut p, Who::S, b"221 bye\r\n");
        t.fin(&mut p, Who::S);
        let r = records(&p);
        assert_eq!(r.len(), 1, "{kind}");
        assert_eq!(verdict(&r[0]), ("failed", Some(kind)), "{}", r[0].verdict.message);
        // An SMTP dialog without a granted STARTTLS is no STARTTLS (SPEC §3b).
        assert_eq!(r[0].starttls, "none");
        assert_eq!(r[0].preamble.as_ref().map(|p| p.protocol), Some("smtp"));
    }
}

#[test]
fn starttls_rejected_and_the_dialog_goes_on() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40008, 587);
    t.open(&mut p);
    t.data(&mut p, Who::S, b"220 mx ESMTP\r\n");
    t.data(&mut p, Who::C, b"EHLO c\r\n");
    t.data(&mut p, Who::S, b"250-mx\r\n250 STARTTLS\r\n");
    // STARTTLS and QUIT in one segment: what follows STARTTLS waits for its reply.
    t.data(&mut p, Who::C, b"STARTTLS\r\nQUIT\r\n");
    t.data(&mut p, Who::S, b"454 4.7.0 TLS not available\r\n221 bye\r\n");
    t.fin(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(verdict(&r[0]), ("failed", Some(FailureKind::StarttlsRejected)));
    assert_eq!(
        r[0].smtp.as_ref().unwrap().starttls_reply.as_deref(),
        Some("454 4.7.0 TLS not available")
    );
}

#[test]
fn tls_after_an_http_connect_preamble_is_not_smtp() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40009, 3128);
    t.open(&mut p);
    t.data(&mut p, Who::C, b"CONNECT mx.example.net:465 HTTP/1.1\r\n\r\n");
    t.data(&mut p, Who::S, b"HTTP/1.1 200 Connection established\r\n\r\n");
    t.data(&mut p, Who::C, &client_hello_record());
    t.data(&mut p, Who::S, &server_flight_tls12());
    t.data(&mut p, Who::C, &client_finish_tls12());
    t.data(&mut p, Who::S, &server_finish_tls12());
    t.fin(&mut p, Who::C);
    let r = records(&p);
    assert_eq!(verdict(&r[0]), ("established", None), "{}", r[0].verdict.message);
    assert_eq!(r[0].starttls, "none");
    let pre = r[0].preamble.as_ref().unwrap();
    assert_eq!(pre.client.as_deref(), Some("CONNECT mx.example.net:465 HTTP/1.1"));
    assert!(r[0].smtp.is_none());
}

#[test]
fn an_unanswered_hello_the_client_abandons_is_a_timeout() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40010, 465);
    t.open(&mut p);
    t.data(&mut p, Who::C, &client_hello_record());
    t.fin(&mut p, Who::C);
    t.fin(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(verdict(&r[0]), ("failed", Some(FailureKind::TimeoutAfterHello)));
    // And one the capture ends on is incomplete.
    let mut p = Pcap::new();
    let mut t = Tcp::new(40011, 465);
    t.open(&mut p);
    t.data(&mut p, Who::C, &client_hello_record());
    let r = records(&p);
    assert_eq!(verdict(&r[0]), ("incomplete", None));
    assert_eq!(r[0].ended.by, "capture-end");
}

#[test]
fn a_reused_port_pair_is_two_connections_reported_in_start_order() {
    let mut p = Pcap::new();
    let mut first = Tcp::new(40012, 465);
    first.open(&mut p);
    // A second connection starts while the first is open and ends first.
    let mut second = Tcp::new(40013, 465);
    second.open(&mut p);
    second.data(&mut p, Who::C, &client_hello_record());
    second.rst(&mut p, Who::S);
    first.data(&mut p, Who::C, &client_hello_record());
    first.rst(&mut p, Who::S);
    // The first port pair again, with a new initial sequence number.
    let mut again = Tcp::new(40012, 465);
    again.seq = [9000, 90_000];
    again.open(&mut p);
    again.data(&mut p, Who::C, &client_hello_record());
    again.fin(&mut p, Who::S);
    let r = records(&p);
    let ports: Vec<u16> = r.iter().map(|r| r.client_port).collect();
    assert_eq!(ports, [40012, 40013, 40012]);
    assert_eq!(verdict(&r[2]), ("failed", Some(FailureKind::ClosedAfterHello)));
}

#[test]
fn a_syn_after_a_connection_seen_mid_stream_starts_a_new_one() {
    let mut p = Pcap::new();
    // The capture begins inside a connection (no SYN seen) that never ends.
    let mut old = Tcp::new(40020, 465);
    old.data(&mut p, Who::C, &client_hello_record());
    old.data(&mut p, Who::S, &[21, 3, 3, 0, 2, 2, 40]);
    // The same port pair, a fresh SYN with another initial sequence number.
    let mut new = Tcp::new(40020, 465);
    new.seq = [3_000_000_000, 70_000];
    new.open(&mut p);
    new.data(&mut p, Who::C, &client_hello_record());
    new.rst(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(verdict(&r[0]), ("failed", Some(FailureKind::Alert)));
    assert_eq!(verdict(&r[1]), ("failed", Some(FailureKind::ResetAfterHello)));
}

#[test]
fn plaintext_ehlo_to_an_implicit_tls_port_is_named() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40014, 465);
    t.open(&mut p);
    t.data(&mut p, Who::C, b"EHLO client.example\r\n");
    t.data(&mut p, Who::S, &[21, 3, 1, 0, 2, 2, 70]);
    t.fin(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(verdict(&r[0]), ("failed", Some(FailureKind::NotTls)));
    assert!(
        r[0].verdict.message.contains("protocol_version(70)"),
        "{}",
        r[0].verdict.message
    );
    assert!(
        r[0].verdict.message.contains("implicit TLS"),
        "{}",
        r[0].verdict.message
    );
}

#[test]
fn plain_tcp_without_tls_or_smtp_is_not_reported() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40015, 80);
    t.open(&mut p);
    t.data(&mut p, Who::C, b"GET / HTTP/1.1\r\n\r\n");
    t.data(&mut p, Who::S, b"HTTP/1.1 200 OK\r\n\r\n");
    t.fin(&mut p, Who::S);
    assert!(records(&p).is_empty());
}

/// xorshift64*: a fixed, dependency-free source of test noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn real_captures() -> Vec<&'static [u8]> {
    vec![
        include_bytes!("../../pcaps/tls12.pcap"),
        include_bytes!("../../pcaps/starttls.pcap"),
        include_bytes!("../../pcaps/hrr.pcap"),
        include_bytes!("../../pcaps/sslv2.pcap"),
        include_bytes!("../../pcaps/sections.pcapng"),
        include_bytes!("../../pcaps/sll2.pcap"),
    ]
}

#[test]
fn every_prefix_of_real_captures_is_read_without_panic() {
    for cap in real_captures() {
        for cut in 0..cap.len() {
            let _ = analyse_bytes(&cap[..cut]);
        }
    }
}

#[test]
fn bit_flips_and_garbage_never_panic() {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for cap in real_captures() {
        for _ in 0..300 {
            let mut bytes = cap.to_vec();
            for _ in 0..1 + noise.below(8) {
                let i = noise.below(bytes.len());
                bytes[i] ^= 1 << noise.below(8);
            }
            let _ = analyse_bytes(&bytes);
        }
    }
    for _ in 0..500 {
        let len = noise.below(4096);
        let mut bytes: Vec<u8> = (0..len).map(|_| noise.next() as u8).collect();
        // Half of them start like a capture, to get past the format check.
        if noise.below(2) == 0 && bytes.len() >= 24 {
            let header = if noise.below(2) == 0 {
                &include_bytes!("../../pcaps/tls12.pcap")[..24]
            } else {
                &include_bytes!("../../pcaps/sections.pcapng")[..24]
            };
            bytes[..24].copy_from_slice(header);
        }
        let _ = analyse_bytes(&bytes);
    }
}

#[test]
fn oversized_blocks_are_refused_with_a_warning() {
    // A pcap frame header announcing 1 GiB.
    let mut bytes = include_bytes!("../../pcaps/tls12.pcap")[..24].to_vec();
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.extend_from_slice(&[0; 100]);
    let a = analyse_bytes(&bytes);
    assert!(a.records.is_empty());
    assert_eq!(a.summary.warnings.len(), 1, "{:?}", a.summary.warnings);
}

#[test]
fn a_flood_on_one_connection_stays_within_the_caps() {
    // 4 MiB from the client after a hello: analysed up to the cap only.
    let mut p = Pcap::new();
    let mut t = Tcp::new(40016, 465);
    t.open(&mut p);
    t.data(&mut p, Who::C, &client_hello_record());
    let chunk = vec![0x16; 60_000];
    for _ in 0..70 {
        t.data(&mut p, Who::C, &chunk);
    }
    t.fin(&mut p, Who::C);
    let a = analyse_bytes(&p.bytes);
    assert_eq!(a.records.len(), 1);
    assert!(a.records[0].bytes.client > 4_000_000);
}

#[test]
fn an_idle_connection_is_reported_after_the_timeout_not_at_the_end() {
    let mut p = Pcap::new();
    let mut idle = Tcp::new(40017, 465);
    idle.open(&mut p);
    idle.data(&mut p, Who::C, &client_hello_record());
    // Ten minutes of capture time later, another connection starts and ends.
    p.usec = 0;
    let later = 1_700_000_600u32;
    let mut busy = Tcp::new(40018, 465);
    let mut frames = Pcap::new();
    busy.open(&mut frames);
    busy.data(&mut frames, Who::C, &client_hello_record());
    busy.rst(&mut frames, Who::S);
    // Re-stamp the second connection's frames at `later`.
    let mut off = 24;
    while off + 16 <= frames.bytes.len() {
        frames.bytes[off..off + 4].copy_from_slice(&later.to_le_bytes());
        let len = u32::from_le_bytes(frames.bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + len;
    }
    p.bytes.extend_from_slice(&frames.bytes[24..]);
    let a = analyse_bytes(&p.bytes);
    assert_eq!(a.counters.timed_out, 1);
    assert_eq!(a.records.len(), 2);
    assert_eq!(a.records[0].client_port, 40017);
    assert_eq!(verdict(&a.records[0]), ("incomplete", None));
    assert_eq!(a.records[0].ended.by, "capture-end");
    assert!(a.records[0]
        .warnings
        .iter()
        .any(|w| w.contains("no packet for over 300 s")));
}

#[test]
fn a_full_flow_table_reports_the_oldest_connections_early() {
    let mut p = Pcap::new();
    // One handshake, then more half-open connections than the table holds.
    let mut first = Tcp::new(1, 465);
    first.open(&mut p);
    first.data(&mut p, Who::C, &client_hello_record());
    for i in 0..super::flow::MAX_FLOWS as u32 + 10 {
        let t = Tcp::new(2 + (i % 60_000) as u16, 20_000 + (i / 60_000) as u16);
        p.frame(&t.raw(
            Who::C,
            1000,
            &[],
            F {
                syn: true,
                no_ack: true,
                ..F::default()
            },
        ));
    }
    let a = analyse_bytes(&p.bytes);
    assert!(a.counters.evicted > 0);
    assert_eq!(a.records.len(), 1);
    assert!(
        a.records[0]
            .warnings
            .iter()
            .any(|w| w.contains("reported before its end")),
        "{:?}",
        a.records[0].warnings
    );
    assert!(a
        .summary
        .warnings
        .iter()
        .any(|w| w.contains("reported before their end")));
}

#[test]
fn a_tls13_client_encrypted_alert_after_the_flight_is_recognised_by_its_size() {
    use hsscan_wire::{KeyShareEntry, NamedGroup};
    let sh = ServerHello {
        legacy_version: ProtocolVersion::TLS12,
        random: [3; 32],
        session_id: Vec::new(),
        cipher_suite: CipherSuite(0x1301),
        compression: CompressionMethod::NULL,
        extensions: Some(vec![
            ServerExtension::SupportedVersions(ProtocolVersion::TLS13),
            ServerExtension::KeyShare(KeyShareEntry {
                group: NamedGroup::X25519,
                key_exchange: vec![5; 32],
            }),
        ]),
    };
    let mut w = Writer::new();
    sh.write(&mut w).unwrap();
    let hs = w.into_bytes();
    let mut flight = vec![22, 3, 3];
    flight.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    flight.extend_from_slice(&hs);
    flight.extend_from_slice(&[20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 200]);
    flight.extend_from_slice(&[0x77; 200]);
    let run = |client_record: usize| {
        let mut p = Pcap::new();
        let mut t = Tcp::new(40019, 465);
        t.open(&mut p);
        t.data(&mut p, Who::C, &client_hello_record());
        t.data(&mut p, Who::S, &flight);
        let mut answer = vec![20, 3, 3, 0, 1, 1, 23, 3, 3, 0, client_record as u8];
        answer.extend(std::iter::repeat_n(0x42, client_record));
        t.data(&mut p, Who::C, &answer);
        t.fin(&mut p, Who::C);
        records(&p).remove(0)
    };
    // 2 bytes of alert, the inner content type and a 16-byte tag.
    let r = run(19);
    assert_eq!(
        verdict(&r),
        ("failed", Some(FailureKind::Alert)),
        "{}",
        r.verdict.message
    );
    assert!(r.verdict.message.contains("encrypted alert"), "{}", r.verdict.message);
    // A Finished (32 bytes of verify data, header, type, tag) completes it.
    let r = run(53);
    assert_eq!(verdict(&r), ("established", None), "{}", r.verdict.message);
}

/// A server flight of `messages` (whole handshake messages) in one record.
fn handshake_record(messages: &[u8]) -> Vec<u8> {
    let mut rec = vec![22, 3, 3];
    rec.extend_from_slice(&(messages.len() as u16).to_be_bytes());
    rec.extend_from_slice(messages);
    rec
}

#[test]
fn alpn_and_sni_bytes_that_are_not_utf8_are_kept_as_hex_escapes() {
    use hsscan_wire::{ClientExtension, ExtensionType};
    let mut hello = ClientHello::typical(
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS12,
        [7; 32],
        vec![CipherSuite(0xc02f)],
        None,
    );
    let name = b"mx.\xffexample.net";
    let mut sni = vec![0, (name.len() + 3) as u8, 0, 0, name.len() as u8];
    sni.extend_from_slice(name);
    hello.extensions = Some(vec![
        ClientExtension::Raw {
            typ: ExtensionType::SERVER_NAME,
            data: sni,
        },
        ClientExtension::Alpn(vec![b"h2".to_vec(), b"\xc3\xa9t\xe9\x80".to_vec()]),
    ]);
    let sh = ServerHello {
        legacy_version: ProtocolVersion::TLS12,
        random: [9; 32],
        session_id: Vec::new(),
        cipher_suite: CipherSuite(0xc02f),
        compression: CompressionMethod::NULL,
        extensions: Some(vec![ServerExtension::Alpn(b"\xc3\xa9t\xe9\x80".to_vec())]),
    };
    let mut w = Writer::new();
    sh.write(&mut w).unwrap();
    let mut flight = w.into_bytes();
    // An empty Certificate message: a certificate_list of length 0.
    flight.extend_from_slice(&[11, 0, 0, 3, 0, 0, 0]);
    flight.extend_from_slice(&[14, 0, 0, 0]);
    let mut p = Pcap::new();
    let mut t = Tcp::new(40030, 443);
    t.open(&mut p);
    t.data(&mut p, Who::C, &hello.to_record(ProtocolVersion::TLS10).unwrap());
    t.data(&mut p, Who::S, &handshake_record(&flight));
    t.fin(&mut p, Who::C);
    let r = records(&p);
    let h = r[0].client_hello.as_ref().unwrap();
    assert_eq!(h.sni.as_deref(), Some("mx.\\xffexample.net"));
    assert_eq!(h.alpn, ["h2", "ét\\xe9\\x80"]);
    assert_eq!(
        r[0].server_hello.as_ref().unwrap().alpn.as_deref(),
        Some("ét\\xe9\\x80")
    );
    // An empty Certificate message is [], a missing one null.
    assert_eq!(r[0].server_certificates.as_ref().map(Vec::len), Some(0));
    assert!(r[0].client_certificates.is_none());
    let json = serde_json::to_value(&r[0]).unwrap();
    assert_eq!(json["server_certificates"], serde_json::json!([]));
    assert!(json["client_certificates"].is_null());
    assert!(json["warnings"].is_array());
}

#[test]
fn smtp_starttls_inside_a_socks5_tunnel_is_both() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40031, 1080);
    t.open(&mut p);
    t.data(&mut p, Who::C, &[5, 1, 0]);
    t.data(&mut p, Who::S, &[5, 0]);
    t.data(&mut p, Who::C, &[5, 1, 0, 1, 192, 0, 2, 25, 0, 25]);
    // The reply and the tunnelled banner in one segment.
    let mut reply = vec![5, 0, 0, 1, 192, 0, 2, 25, 0, 25];
    reply.extend_from_slice(b"220 mx ESMTP\r\n");
    t.data(&mut p, Who::S, &reply);
    t.data(&mut p, Who::C, b"EHLO c\r\n");
    t.data(&mut p, Who::S, b"250-mx\r\n250 STARTTLS\r\n");
    t.data(&mut p, Who::C, b"STARTTLS\r\n");
    t.data(&mut p, Who::S, b"220 go ahead\r\n");
    t.data(&mut p, Who::C, &client_hello_record());
    t.data(&mut p, Who::S, &server_flight_tls12());
    t.data(&mut p, Who::C, &client_finish_tls12());
    t.data(&mut p, Who::S, &server_finish_tls12());
    t.fin(&mut p, Who::C);
    let r = records(&p);
    assert_eq!(verdict(&r[0]), ("established", None), "{}", r[0].verdict.message);
    assert_eq!(r[0].starttls, "smtp");
    let pre = r[0].preamble.as_ref().unwrap();
    assert_eq!((pre.protocol, pre.client_bytes), ("socks5", 3 + 10 + 8 + 10));
    assert_eq!(pre.server_bytes, 2 + 10 + 14 + 22 + 14);
    assert_eq!(r[0].smtp.as_ref().unwrap().banner.as_deref(), Some("220 mx ESMTP"));
}

#[test]
fn a_banner_then_a_client_hello_is_implicit_tls_not_starttls() {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40032, 25);
    t.open(&mut p);
    t.data(&mut p, Who::S, b"220 mx ESMTP\r\n");
    t.data(&mut p, Who::C, &client_hello_record());
    t.data(&mut p, Who::S, b"500 5.5.2 Error: bad syntax\r\n");
    t.fin(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(
        verdict(&r[0]).1,
        Some(FailureKind::PlaintextReply),
        "{}",
        r[0].verdict.message
    );
    assert_eq!(r[0].starttls, "none");
    let pre = r[0].preamble.as_ref().unwrap();
    assert_eq!((pre.protocol, pre.client_bytes, pre.server_bytes), ("smtp", 0, 14));
}

#[test]
fn a_tls13_draft_server_hello_is_decoded_not_taken_for_not_tls() {
    // Draft 18's ServerHello: version 0x7f12, random, suite, extensions
    // (key_share as 40), then the encrypted flight.
    let mut body = vec![0x7f, 0x12];
    body.extend_from_slice(&[0x11; 32]);
    body.extend_from_slice(&[0x13, 0x01, 0, 40, 0, 40, 0, 36, 0, 29, 0, 32]);
    body.extend_from_slice(&[0x42; 32]);
    let mut msg = vec![2, 0, 0, body.len() as u8];
    msg.extend_from_slice(&body);
    let mut flight = handshake_record(&msg);
    flight.extend_from_slice(&[23, 3, 1, 0, 40]);
    flight.extend_from_slice(&[0x55; 40]);
    let mut p = Pcap::new();
    let mut t = Tcp::new(40033, 443);
    t.open(&mut p);
    t.data(&mut p, Who::C, &client_hello_record());
    t.data(&mut p, Who::S, &flight);
    let mut fin = vec![23, 3, 1, 0, 53];
    fin.extend_from_slice(&[0x66; 53]);
    t.data(&mut p, Who::C, &fin);
    t.fin(&mut p, Who::C);
    let r = records(&p);
    assert_eq!(verdict(&r[0]), ("established", None), "{}", r[0].verdict.message);
    let h = r[0].server_hello.as_ref().unwrap();
    assert_eq!(h.selected_version, ProtocolVersion(0x7f12));
    assert_eq!(h.key_share_group, Some(hsscan_wire::NamedGroup(29)));
}

/// A TLS 1.2 server flight with a Certificate message of `n` entries of
/// `size` bytes, in records of at most 16 KiB.
fn server_flight_with_chain(n: usize, size: usize) -> Vec<u8> {
    let sh = ServerHello {
        legacy_version: ProtocolVersion::TLS12,
        random: [9; 32],
        session_id: Vec::new(),
        cipher_suite: CipherSuite(0xc02f),
        compression: CompressionMethod::NULL,
        extensions: None,
    };
    let mut w = Writer::new();
    sh.write(&mut w).unwrap();
    let mut hs = w.into_bytes();
    let mut list = Vec::new();
    for i in 0..n {
        list.extend_from_slice(&(size as u32).to_be_bytes()[1..]);
        list.extend(std::iter::repeat_n((i % 250) as u8, size));
    }
    hs.push(11);
    hs.extend_from_slice(&((list.len() + 3) as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&(list.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&list);
    hs.extend_from_slice(&[14, 0, 0, 0]);
    let mut out = Vec::new();
    for chunk in hs.chunks(16 * 1024) {
        out.extend_from_slice(&[22, 3, 3]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn handshake_with_chain(n: usize, size: usize) -> Vec<ConnectionRecord> {
    let mut p = Pcap::new();
    let mut t = Tcp::new(40034, 443);
    t.open(&mut p);
    t.data(&mut p, Who::C, &client_hello_record());
    for seg in server_flight_with_chain(n, size).chunks(16_000) {
        t.data(&mut p, Who::S, seg);
    }
    t.data(&mut p, Who::C, &client_finish_tls12());
    t.data(&mut p, Who::S, &server_finish_tls12());
    t.fin(&mut p, Who::C);
    records(&p)
}

#[test]
fn a_340_kb_certificate_message_is_reported_in_full() {
    let r = handshake_with_chain(4, 85_000);
    assert_eq!(verdict(&r[0]), ("established", None), "{}", r[0].verdict.message);
    assert_eq!(r[0].server_certificates.as_ref().map(Vec::len), Some(4));
    assert!(r[0].warnings.is_empty(), "{:?}", r[0].warnings);
}

#[test]
fn a_300_certificate_chain_is_reported_in_full() {
    let r = handshake_with_chain(300, 900);
    assert_eq!(verdict(&r[0]), ("established", None), "{}", r[0].verdict.message);
    assert_eq!(r[0].server_certificates.as_ref().map(Vec::len), Some(300));
    assert!(r[0].warnings.is_empty(), "{:?}", r[0].warnings);
}

#[test]
fn a_chain_over_the_caps_is_kept_as_far_as_they_go_and_named_in_warnings() {
    // 600 certificates: 512 kept, 88 counted; the verdict is still the handshake's.
    let r = handshake_with_chain(600, 200);
    assert_eq!(verdict(&r[0]), ("established", None), "{}", r[0].verdict.message);
    assert_eq!(r[0].server_certificates.as_ref().map(Vec::len), Some(512));
    assert_eq!(r[0].warnings.len(), 1, "{:?}", r[0].warnings);
    assert!(r[0].warnings[0].contains("88 more certificates"), "{:?}", r[0].warnings);
}

/// The records of `capture` as JSON lines, from the sequential pipeline.
fn sequential_json(capture: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut write = |r: ConnectionRecord| {
        serde_json::to_writer(&mut out, &r).unwrap();
        out.push(b'\n');
    };
    super::analyse(capture, &super::Options::default(), &mut write).unwrap();
    out
}

fn sharded_json(capture: &[u8], workers: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let render = |r: &mut ConnectionRecord| {
        let mut bytes = serde_json::to_vec(r).unwrap();
        bytes.push(b'\n');
        bytes
    };
    super::shard::analyse(capture, &super::Options::default(), workers, &render, &mut |b| {
        out.extend_from_slice(b)
    })
    .unwrap();
    out
}

#[test]
fn sharded_analysis_writes_what_the_sequential_one_does_in_the_same_order() {
    // 60 connections, interleaved frame by frame, some reusing a port pair,
    // some never closed; then the real captures one after another.
    let mut p = Pcap::new();
    let mut conns: Vec<Tcp> = (0..60)
        .map(|i| Tcp::new(41000 + (i % 50) as u16, 25 + (i % 3) as u16))
        .collect();
    for t in conns.iter_mut() {
        t.open(&mut p);
    }
    for t in conns.iter_mut() {
        t.data(&mut p, Who::C, &client_hello_record());
    }
    for (i, t) in conns.iter_mut().enumerate() {
        t.data(&mut p, Who::S, &server_flight_tls12());
        if i % 4 != 0 {
            t.data(&mut p, Who::C, &client_finish_tls12());
            t.data(&mut p, Who::S, &server_finish_tls12());
            t.fin(&mut p, Who::C);
            t.fin(&mut p, Who::S);
        }
    }
    let expected = sequential_json(&p.bytes);
    assert_eq!(expected.iter().filter(|&&b| b == b'\n').count(), 60);
    for workers in [1, 2, 3, 7] {
        assert_eq!(
            String::from_utf8_lossy(&sharded_json(&p.bytes, workers)),
            String::from_utf8_lossy(&expected),
            "{workers} workers"
        );
    }
    for capture in real_captures() {
        let expected = sequential_json(capture);
        assert_eq!(sharded_json(capture, 2), expected);
    }
}

#[test]
fn tls_after_an_unknown_preamble_is_found_by_its_record_header() {
    // A binary request answered by one byte (PostgreSQL's SSLRequest and
    // 'S'), then a text one that no rule knows; each followed by TLS.
    let cases: [(&[u8], &[u8]); 2] = [
        (&[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f], b"S"),
        (b"HELLO TLS PLEASE\r\n", b"OK go\r\n"),
    ];
    for (i, (client, server)) in cases.into_iter().enumerate() {
        let mut p = Pcap::new();
        let mut t = Tcp::new(40040 + i as u16, 5432);
        t.open(&mut p);
        t.data(&mut p, Who::C, client);
        t.data(&mut p, Who::S, server);
        t.data(&mut p, Who::C, &client_hello_record());
        t.data(&mut p, Who::S, &server_flight_tls12());
        t.data(&mut p, Who::C, &client_finish_tls12());
        t.data(&mut p, Who::S, &server_finish_tls12());
        t.fin(&mut p, Who::C);
        let r = records(&p);
        assert_eq!(verdict(&r[0]), ("established", None), "{}", r[0].verdict.message);
        let pre = r[0].preamble.as_ref().unwrap();
        assert_eq!(
            (pre.protocol, pre.client_bytes, pre.server_bytes),
            ("other", client.len() as u64, server.len() as u64)
        );
        assert_eq!(r[0].starttls, "none");
        assert!(r[0].smtp.is_none());
    }
}

#[test]
fn a_dropped_hello_names_what_in_it_some_receivers_drop() {
    // OpenSSL 3.5's Postfix hello: over 1,500 bytes with an X25519MLKEM768
    // share, reset by the server unanswered.
    let p35 = crate::senders::Profile::shipped("postfix-openssl-3.5-may").expect("profile");
    let hello: Vec<u8> = p35.prepare(None).expect("encodes").writes.concat();
    let mut p = Pcap::new();
    let mut t = Tcp::new(40011, 465);
    t.open(&mut p);
    t.data(&mut p, Who::C, &hello);
    t.rst(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(verdict(&r[0]), ("failed", Some(FailureKind::ResetAfterHello)));
    let m = &r[0].verdict.message;
    assert!(m.contains("a post-quantum key share (X25519MLKEM768)"), "{m}");
    assert!(m.contains("bytes on the wire"), "{m}");
    assert!(m.contains("hsscan --bisect"), "{m}");

    // A small hello of nothing unusual: the plain verdict.
    let mut p = Pcap::new();
    let mut t = Tcp::new(40012, 465);
    t.open(&mut p);
    t.data(&mut p, Who::C, &client_hello_record());
    t.rst(&mut p, Who::S);
    let r = records(&p);
    assert_eq!(verdict(&r[0]), ("failed", Some(FailureKind::ResetAfterHello)));
    assert!(
        !r[0].verdict.message.contains("some receivers"),
        "{}",
        r[0].verdict.message
    );
}
