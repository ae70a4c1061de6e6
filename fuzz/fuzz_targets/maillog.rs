//! A mail log (plain or gzip) as `hsscan log` reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsscan::fuzzing::maillog(data));
