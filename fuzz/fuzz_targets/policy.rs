//! The MTA-STS TXT and policy parsers, the TLS-RPT TXT parser, and DNS
//! responses whose TXT and TLSA answers go through them and DANE matching.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsscan::fuzzing::policy(data));
