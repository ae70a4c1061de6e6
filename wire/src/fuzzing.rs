//! Entry points for the cargo-fuzz targets in `fuzz/` and for the tests
//! that replay their saved corpus. Each takes arbitrary bytes and must
//! return without panicking; where an encoder exists, a decoded value must
//! re-encode to bytes that decode to the same value.

use crate::certificate::Certificate;
use crate::client_hello::ClientHello;
use crate::codepoints::{CipherSuite, ProtocolVersion};
use crate::deframer::{Deframer, Side};
use crate::handshake::HANDSHAKE_HEADER_LEN;
use crate::server_key_exchange::ServerKeyExchange;

/// Pushes `data` into a deframer of each side in uneven chunks and drains
/// every event.
pub fn deframer(data: &[u8]) {
    for side in [Side::Client, Side::Server] {
        let mut d = Deframer::new(side);
        let mut rest = data;
        let mut step = 1;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at(step.min(rest.len()));
            rest = tail;
            step = step * 3 % 1031 + 1;
            if d.push(head).is_err() {
                break;
            }
            while let Ok(Some(_)) = d.next_event() {}
        }
    }
}

/// Decodes a ClientHello handshake message; a decoded hello must round-trip.
pub fn client_hello(data: &[u8]) {
    if let Ok(hello) = ClientHello::read_message(data) {
        let bytes = hello.to_bytes();
        assert!(bytes.is_ok(), "a decoded hello failed to encode");
        if let Ok(bytes) = bytes {
            assert_eq!(
                ClientHello::read_message(&bytes).ok(),
                Some(hello),
                "round trip changed the hello"
            );
        }
    }
}

/// Decodes a server flight: the deframer on the server side, then the
/// ServerKeyExchange of the first byte's choice of suite at TLS 1.0 and 1.2.
pub fn server_flight(data: &[u8]) {
    let mut d = Deframer::new(Side::Server);
    if d.push(data).is_ok() {
        while let Ok(Some(_)) = d.next_event() {}
    }
    if let [a, b, rest @ ..] = data {
        let suite = CipherSuite(u16::from_be_bytes([*a, *b]));
        for v in [ProtocolVersion::TLS10, ProtocolVersion::TLS12] {
            let _ = ServerKeyExchange::read_body(rest, 2, suite, v);
        }
    }
}

/// Decodes a certificate list in both layouts; a decoded list must round-trip.
pub fn certificate(data: &[u8]) {
    for tls13 in [false, true] {
        // A chain with omitted entries is written without them, by design.
        if let Some(c) = Certificate::read_body(data, 0, tls13)
            .ok()
            .filter(|c| c.omitted.is_empty())
        {
            let mut w = crate::Writer::new();
            if c.write(&mut w).is_ok() {
                let body = w.as_bytes().get(HANDSHAKE_HEADER_LEN..).unwrap_or(&[]);
                assert_eq!(
                    Certificate::read_body(body, 0, tls13).ok(),
                    Some(c),
                    "round trip changed the chain"
                );
            }
        }
    }
}
