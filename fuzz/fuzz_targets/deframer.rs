//! Arbitrary bytes pushed into a deframer of each side in uneven chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsscan_wire::fuzzing::deframer(data));
