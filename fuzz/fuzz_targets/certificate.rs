//! A Certificate body in the TLS 1.2 and 1.3 layouts; a decoded chain must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsscan_wire::fuzzing::certificate(data));
