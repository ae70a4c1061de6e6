//! A ClientHello handshake message: decode, and a decoded hello must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsscan_wire::fuzzing::client_hello(data));
