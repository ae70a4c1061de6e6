//! The TLS 1.3 certificate hello reading a server's first flight: plaintext
//! (ServerHello, HelloRetryRequest) or, for odd first bytes, inner
//! plaintexts the target encrypts under RFC 8448's handshake keys.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsscan::fuzzing::tls13_flight(data));
