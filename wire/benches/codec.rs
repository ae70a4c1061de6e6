//! Codec benchmarks on real bytes: ClientHello encoding (the scanner sends
//! one per probe) and decoding of captured server flights and a captured
//! ClientHello (the capture analyser reads every one). See
//! `benches/README.md` at the repository root for the figures.
//!
//! Run: `cargo bench -p hsscan-wire --bench codec`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hsscan_wire::catalog::{self, SUITES};
use hsscan_wire::deframer::{Deframer, Event, Side};
use hsscan_wire::{CipherSuite, ClientHello, ProtocolVersion};

const TLS12_3CERTS: &[u8] = include_bytes!("../testdata/flights/openssl-tls12-ecdhe-rsa-3certs.bin");
const GNUTLS_TLS12: &[u8] = include_bytes!("../testdata/flights/gnutls-tls12-flight.bin");
const TLS13_HRR: &[u8] = include_bytes!("../testdata/flights/openssl-tls13-hrr.bin");
const POSTFIX_HELLO_HEX: &str = include_str!("../testdata/clienthellos/postfix-3.7-openssl-3.0.19-may.hex");

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|c| (c as char).to_digit(16).unwrap() as u8)
        .collect();
    digits.chunks_exact(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// A TLS 1.0–1.3 hello in the scanner's usual shape (SNI, seven groups with
/// X25519 and P-256 key shares, signature algorithms, supported_versions …)
/// offering `suites`.
fn hello(suites: Vec<CipherSuite>) -> ClientHello {
    ClientHello::typical(
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS13,
        [0x42; 32],
        suites,
        Some("mx.example.net"),
    )
}

/// Every real suite offerable at TLS 1.2, then the TLS 1.3 suites.
fn full_catalog_suites() -> Vec<CipherSuite> {
    let mut suites: Vec<CipherSuite> = catalog::suites_for(ProtocolVersion::TLS12).map(|s| s.id).collect();
    for s in catalog::suites_for(ProtocolVersion::TLS13) {
        if !suites.contains(&s.id) {
            suites.push(s.id);
        }
    }
    suites
}

/// Pushes the whole flight into a fresh deframer and drains every event.
fn decode(side: Side, bytes: &[u8]) -> usize {
    let mut d = Deframer::new(side);
    d.push(bytes).unwrap();
    let mut n = 0;
    while let Some(e) = d.next_event().unwrap() {
        black_box(e);
        n += 1;
    }
    n
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    for (name, suites) in [
        ("encode full-catalog hello", full_catalog_suites()),
        ("encode all-433-codepoints hello", SUITES.iter().map(|s| s.id).collect()),
    ] {
        let h = hello(suites);
        let record = h.to_record(ProtocolVersion::TLS10).unwrap();
        assert_eq!(ClientHello::read_message(&record[5..]).unwrap(), h);
        g.bench_function(name, |b| {
            b.iter(|| black_box(&h).to_record(ProtocolVersion::TLS10).unwrap())
        });
    }
    g.finish();
}

fn decode_flights(c: &mut Criterion) {
    let postfix = unhex(POSTFIX_HELLO_HEX);
    let mut d = Deframer::new(Side::Client);
    d.push(&postfix).unwrap();
    assert!(matches!(d.next_event(), Ok(Some(Event::ClientHello(_)))));
    let cases: [(&str, Side, &[u8], usize); 4] = [
        // ServerHello, Certificate (3 certs), ServerKeyExchange, ServerHelloDone
        ("decode flight tls12 3-cert chain", Side::Server, TLS12_3CERTS, 4),
        // ServerHello, Certificate (2 certs), SKE, CertificateRequest, ServerHelloDone
        ("decode flight gnutls tls12", Side::Server, GNUTLS_TLS12, 5),
        // HelloRetryRequest, ChangeCipherSpec
        ("decode flight tls13 hrr", Side::Server, TLS13_HRR, 2),
        ("decode client hello postfix", Side::Client, &postfix, 1),
    ];
    let mut g = c.benchmark_group("wire");
    for (name, side, bytes, events) in cases {
        assert_eq!(decode(side, bytes), events, "{name}");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| b.iter(|| decode(side, black_box(bytes))));
    }
    g.finish();
}

criterion_group!(benches, encode, decode_flights);
criterion_main!(benches);
