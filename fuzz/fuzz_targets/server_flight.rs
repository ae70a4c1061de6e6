//! A server flight through a server-side deframer, plus ServerKeyExchange bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsscan_wire::fuzzing::server_flight(data));
